"""A real Postfix relaying into smtpd (issue 4): a private Postfix instance (its own config
directory, queue, data directory and log under a temporary directory; smtpd on a free loopback
port; no local delivery) with `relayhost = [127.0.0.1]:<Postern's mta port>` and opportunistic
STARTTLS. Test mail goes into Postfix (smtp-source, smtplib), Postfix hands it to Postern's
port 25 listener, and it must arrive in the store: checked with `postern export` once Postfix's
queue is empty. Postfix is stopped (and its processes checked gone) in teardown.
"""
import os
import shutil
import smtplib
import subprocess
import uuid

import pytest

from conftest import IS_ROOT, PrivatePostfix, free_port, running_instance, wait_for
from test_smtpd import queue_rows, received_fields, smtp_section, store_counts

HAVE_POSTFIX = IS_ROOT and all(shutil.which(t) for t in ("postfix", "postqueue", "smtp-source"))
pytestmark = pytest.mark.skipif(not HAVE_POSTFIX, reason="a private Postfix instance needs root, postfix and smtp-source")

class PostfixRelay(PrivatePostfix):
    """Relays everything it receives to [127.0.0.1]:relay_port (Postern's mta listener)."""

    def __init__(self, relay_port):
        super().__init__("relay")
        self.relay_port = relay_port
        self.write_config(
            self.base_main_cf("Tests/integration/test_smtpd_postfix.py", "relay.postern.test")
            + "relay_domains =\n"
            f"relayhost = [127.0.0.1]:{relay_port}\n"
            "mynetworks = 127.0.0.0/8\n"
            "smtp_tls_security_level = may\n"
            "smtp_tls_loglevel = 1\n",
            self.master_cf(f"127.0.0.1:{self.smtp_port} inet  n       -       n       -       -       smtpd\n",
                           smtp_client=True))

    @property
    def port(self):
        return self.smtp_port

    def queue_empty(self):
        return "Mail queue is empty" in self.queue()

    def flush(self):
        subprocess.run(["postqueue", "-c", self.etc, "-f"], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def chain():
    ports = {"mta": free_port()}
    with running_instance("smtpd-postfix", users=["relayed@example.test", "jürgen@example.test"],
                          smtp_section=smtp_section(ports)) as p:
        p.ports = ports
        pf = PostfixRelay(ports["mta"])
        try:
            pf.start()
            p.postfix = pf
            yield p
        finally:
            try:
                pf.stop()
                assert not pf.processes(), f"Postfix processes left: {pf.processes()}"
            finally:
                if not os.environ.get("POSTERN_KEEP"):
                    pf.cleanup()


def drain(p, timeout=40):
    def empty():
        if p.postfix.queue_empty():
            return True
        p.postfix.flush()          # deferred mail (e.g. after a 4xx) is retried at once
        return False
    try:
        wait_for(empty, timeout, interval=0.2, what="Postfix's queue to empty")
    except AssertionError:
        raise AssertionError(f"Postfix queue not empty; Postfix log:\n{p.postfix.log_tail()}") from None


def test_postfix_relays_smtp_source_load_in(chain):
    before = chain.inbox_count("relayed@example.test")
    r = subprocess.run(["smtp-source", "-s", "4", "-m", "20", "-l", "5120", "-f", "sender@example.org",
                        "-t", "relayed@example.test", "-M", "source.example.org", f"127.0.0.1:{chain.postfix.port}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    drain(chain)
    wait_for(lambda: chain.inbox_count("relayed@example.test") == before + 20, 20, what="20 messages in the store")
    msgs = chain.export("relayed@example.test")
    assert len(msgs) == before + 20
    log = chain.postfix.log()
    assert log.count(f"relay=127.0.0.1[127.0.0.1]:{chain.ports['mta']}") >= 20, chain.postfix.log_tail()
    assert "status=sent (250 2.0.0 Message accepted for delivery)" in log
    # Postfix used STARTTLS; Postern's Received says so, then Postfix's own Received follows.
    assert "TLS connection established to 127.0.0.1" in log, chain.postfix.log_tail()
    rcv = received_fields(msgs[-1])
    assert rcv[0].startswith("from relay.postern.test ([127.0.0.1])") and "(using TLSv1." in rcv[0], rcv
    assert " with ESMTPS id " in rcv[0] and "by relay.postern.test (Postfix)" in rcv[1], rcv
    assert msgs[-1].startswith(b"Return-Path: <sender@example.org>\r\n")


def test_postfix_relays_a_message_byte_exact_to_several_recipients(chain):
    tag = uuid.uuid4().hex
    body = (f"From: Sender <sender@example.org>\r\nTo: alice@example.test, bob@example.test\r\n"
            f"Subject: via postfix {tag}\r\nMessage-ID: <{tag}@example.org>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Grüße über Postfix\r\n.leading dot\r\n\r\nend\r\n").encode()
    with smtplib.SMTP("127.0.0.1", chain.postfix.port, timeout=30) as s:
        s.ehlo("client.example.org")
        assert s.sendmail("sender@example.org", ["alice@example.test", "bob@example.test"], body,
                          mail_options=["BODY=8BITMIME"]) == {}
        # SMTPUTF8 end to end: a UTF-8 recipient.
        assert s.sendmail("absender@example.org", ["jürgen@example.test"], body.replace(b"via postfix", b"utf8 via postfix"),
                          mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
    drain(chain)

    def arrived(user, needle):
        return [m for m in chain.export(user) if needle in m]
    for user in ("alice@example.test", "bob@example.test"):
        (msg,) = wait_for(lambda: arrived(user, tag.encode()), 20, what=f"the message at {user}")
        # Postfix adds its Received (and nothing else to a message that has From, Date and
        # Message-ID); the rest is byte-exact.
        assert msg.endswith(body.split(b"\r\n\r\n", 1)[1])
        for line in body.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            assert line + b"\r\n" in msg, line
    (msg,) = wait_for(lambda: arrived("jürgen@example.test", b"utf8 via postfix " + tag.encode()), 20,
                      what="the SMTPUTF8 message")
    assert " with UTF8SMTPS id " in received_fields(msg)[0], received_fields(msg)


def test_postfix_bounces_what_postern_refuses(chain):
    before = store_counts(chain)
    with smtplib.SMTP("127.0.0.1", chain.postfix.port, timeout=30) as s:
        s.ehlo("client.example.org")
        # Null sender: Postfix cannot bounce it, so its queue empties.
        s.sendmail("<>", ["nosuchuser@example.test"], b"Subject: unknown\r\n\r\nx\r\n")
    drain(chain)
    wait_for(lambda: "said: 550 5.1.1 User unknown (in reply to RCPT TO command)" in chain.postfix.log(), 20,
             what="Postfix logging Postern's 550")
    assert store_counts(chain) == before
    assert queue_rows(chain) == []
