# Spam filtering with a real rspamd (issue 14): the daemon set scans mail arriving on port 25
# through a private rspamd (spam_support.py) before the final reply of DATA; rspamd's action
# decides 550 / 451 / delivery with X-Spam-* fields; rspamd stopped follows [spam] on_failure.
# No worker gains a role, and the controller password reaches no log line.
import os
import smtplib
import uuid

import pytest

from conftest import assert_all_unprivileged, free_port, running_instance
from spam_support import (ADD_HEADER_MARKER, CONTROLLER_PASSWORD, GREYLIST_MARKER, GTUBE, Rspamd, rspamd_binary,
                          redis_binary)

pytestmark = pytest.mark.skipif(not (rspamd_binary() and redis_binary()),
                                reason="rspamd / redis-server not installed (make test installs them)")


@pytest.fixture(scope="module")
def rspamd():
    r = Rspamd()
    try:
        r.start()
        yield r
    finally:
        r.cleanup()


def spam_section(r, root, on_failure="accept", url=None, extra=""):
    pw = os.path.join(root, "rspamd.pass")
    with open(pw, "w") as f:
        f.write(CONTROLLER_PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return ("[spam]\nenabled = true\n"
            f'url = "{url or r.url}"\ncontroller_url = "{r.controller_url}"\n'
            f'controller_password_file = "{pw}"\ntimeout = 5\non_failure = "{on_failure}"\n{extra}')


def smtp_section(port):
    return f'[smtp]\nmta = ["127.0.0.1:{port}"]\nsubmission = []\nsmtps = []\n'


def instance(name, r, tmp_path, **kw):
    port = free_port()
    p = running_instance(name, smtp_section=smtp_section(port), top_extra=spam_section(r, str(tmp_path), **kw))
    return p, port


@pytest.fixture(scope="module")
def mta(rspamd, tmp_path_factory):
    cm, port = instance("spam", rspamd, tmp_path_factory.mktemp("spam"))
    with cm as p:
        p.mta_port = port
        yield p


def message(subject, body="Shall we meet for lunch on Thursday at noon?\r\n"):
    mid = f"<{uuid.uuid4().hex}@client.example.org>"
    return mid, (f"From: <sender@example.org>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n"
                 f"Message-ID: {mid}\r\nDate: Sun, 6 Dec 2026 05:00:00 +0000\r\n\r\n{body}").encode()


def send(port, msg, rcpt="alice@example.test"):
    """(code, text) of the reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("client.example.org")
        code, _ = s.mail("sender@example.org")
        assert code == 250
        code, _ = s.rcpt(rcpt)
        assert code == 250
        return s.data(msg)


def stored(p, user, mid, mailbox=None):
    return [m for m in p.export(user, mailbox) if mid.encode() in m]


def head(msg):
    return msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def test_gtube_is_rejected_with_550_and_not_stored(mta):
    mid, msg = message("GTUBE", body=GTUBE + "\r\n")
    code, text = send(mta.mta_port, msg)
    assert code == 550 and text.startswith(b"5.7.1"), (code, text)
    assert stored(mta, "alice@example.test", mid) == []
    assert "refused by the spam filter" in mta.log()


def test_clean_message_lands_in_inbox_marked_no(mta):
    mid, msg = message("Lunch on Thursday")
    code, text = send(mta.mta_port, msg)
    assert code == 250, (code, text)
    (m,) = stored(mta, "alice@example.test", mid, "INBOX")
    assert "X-Spam-Status: No, score=" in head(m)
    assert "action=no action" in mta.log()


def test_add_header_message_lands_in_junk_with_headers(mta):
    mid, msg = message(f"{ADD_HEADER_MARKER} cheap watches")
    code, text = send(mta.mta_port, msg)
    assert code == 250, (code, text)
    found = stored(mta, "alice@example.test", mid, "Junk")
    assert len(found) == 1, mta.mailbox_counts("alice@example.test")
    h = head(found[0])
    assert h.startswith("X-Spam-Status: Yes, score="), h
    assert "X-Spam-Score: " in h
    assert "POSTERN_TEST_ADD_HEADER" in h.replace("\r\n ", " ")
    assert stored(mta, "alice@example.test", mid, "INBOX") == []


def test_greylist_score_gets_451_and_is_not_stored(mta):
    mid, msg = message(f"{GREYLIST_MARKER} hello")
    code, text = send(mta.mta_port, msg)
    assert code == 451 and text.startswith(b"4.7.1"), (code, text)
    assert stored(mta, "alice@example.test", mid) == []


def test_a_sender_cannot_forge_the_verdict(mta):
    mid, msg = message("Lunch again")
    msg = b"X-Spam-Status: No, score=-100\r\nX-Spam-Score: -100\r\n" + msg
    assert send(mta.mta_port, msg)[0] == 250
    (m,) = stored(mta, "alice@example.test", mid, "INBOX")
    assert "score=-100" not in head(m)
    assert head(m).count("X-Spam-Status:") == 1


def test_spam_status_shows_reachability_and_counts(mta, rspamd):
    r = mta.cli("spam", "status")
    assert "scanner" in r.stdout and "controller" in r.stdout, r.stdout
    assert r.stdout.count("unreachable") == 0, r.stdout
    assert "learned" in r.stdout and "scanned" in r.stdout, r.stdout


def test_no_new_role_and_password_in_no_log_line(mta):
    rows = assert_all_unprivileged(mta)
    assert {r["SERVICE"] for r in rows} == {"store", "lmtp", "smtp"}, rows
    assert CONTROLLER_PASSWORD not in mta.log()


def test_rspamd_stopped_accepts_or_tempfails_as_configured(rspamd, tmp_path_factory):
    """Runs last in this module: it stops the module's rspamd."""
    rspamd.stop_rspamd()
    cm_a, port_a = instance("spam-accept", rspamd, tmp_path_factory.mktemp("a"))
    cm_t, port_t = instance("spam-tempfail", rspamd, tmp_path_factory.mktemp("t"), on_failure="tempfail")
    with cm_a as a, cm_t as t:
        mid, msg = message("While rspamd is down")
        code, text = send(port_a, msg)
        assert code == 250, (code, text)
        (m,) = stored(a, "alice@example.test", mid, "INBOX")
        assert "X-Spam-" not in head(m)                       # nobody scanned it; nothing claims so
        assert "unscanned" in a.log()
        mid, msg = message("While rspamd is down, deferred")
        code, text = send(port_t, msg)
        assert code == 451 and text.startswith(b"4.7.1"), (code, text)
        assert stored(t, "alice@example.test", mid) == []     # the sender keeps it: nothing lost
        r = t.cli("spam", "status", check=False)
        assert r.returncode == 1 and "unreachable" in r.stdout, (r.returncode, r.stdout)
        assert CONTROLLER_PASSWORD not in a.log() + t.log()
