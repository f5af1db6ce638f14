"""smtpd (DESIGN §4-5, issue 4): the mta, submission and smtps roles driven by real clients.

Two instances, each with loopback listeners on free ports:

- `smtp` (module): mta + submission + smtps, `plaintext_auth_on_loopback = false` (the tests
  connect from 127.0.0.x, which would otherwise count as trusted), small AUTH limits
  (max_auth_failures = 2; [auth] failures_per_client = 2 in a 4 s window, kept by the store),
  other limits default.
- `limited` (module): mta + submission with small limits, a 2 s command/DATA timeout,
  `bare_linefeed = "normalize"` and `received_shows_auth_user = true`.

Per-client limits count by client address, so every test that can trip one connects from an
address of its own in 127.0.0.0/8 (Linux routes the whole block to lo): see `new_source()`.
Clients: smtplib, raw sockets (pipelining, BDAT, smuggling, STARTTLS injection), swaks,
openssl s_client. The relay battery is in test_smtpd_relay.py, Postfix in test_smtpd_postfix.py.
"""
import itertools
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import (DEFAULT_PASSWORD, HOSTNAME, free_port, header_value, running_instance,
                      strip_trace_headers, wait_for)

SWAKS = shutil.which("swaks")
OPENSSL = shutil.which("openssl")

# The EHLO keywords every smtpd role advertises, in order (SMTPExtension.smtpdDefaults).
BASE_KEYWORDS = ["PIPELINING", "SIZE {size}", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "CHUNKING"]

# docs/fail2ban.md: the failregex, with fail2ban's <HOST> replaced by a named group.
FAIL2BAN_DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "fail2ban.md")

_sources = itertools.count(20)


def new_source():
    """A loopback client address no other test uses (per-client limits count by address)."""
    n = next(_sources)
    return f"127.0.{n // 250}.{n % 250 + 2}"


def smtp_section(ports, extra=""):
    """A whole [smtp] table: the roles in `ports` on 127.0.0.1, the others off, then `extra`."""
    lines = ["[smtp]"]
    for role in ("mta", "submission", "smtps"):
        lines.append(f'{role} = ["127.0.0.1:{ports[role]}"]' if ports.get(role) else f"{role} = []")
    return "\n".join(lines) + "\n" + extra


def tls_context(p, version=None):
    """Verifies the chain against the instance's generated certificate (host name not checked:
    we connect to 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=os.path.join(p.root, "tls", "cert.pem"))
    ctx.check_hostname = False
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


# ---------------------------------------------------------------------------------------------
# Instances

@pytest.fixture(scope="module")
def smtp():
    ports = {r: free_port() for r in ("mta", "submission", "smtps")}
    extra = ("plaintext_auth_on_loopback = false\n"
             "max_auth_failures = 2\n"
             "\n[auth]\n"
             "failures_per_client = 2\n"
             "failure_window = 4\n")
    with running_instance("smtpd", users=["carol@example.test"], smtp_section=smtp_section(ports, extra)) as p:
        p.ports = ports
        p.utf8_user = p.cli("user", "add", "jürgen@example.test", "--password-stdin", input="pw\n",
                            check=False).returncode == 0
        yield p


LIMITS = {
    "max_message_size": 4096,
    "max_recipients": 3,
    "max_command_line": 512,
    "max_line_length": 1000,
    "max_errors": 3,
    "command_timeout": 2,
    "data_timeout": 2,
    "max_connections_per_client": 2,
}


@pytest.fixture(scope="module")
def limited():
    ports = {"mta": free_port(), "submission": free_port()}
    extra = "".join(f"{k} = {v}\n" for k, v in LIMITS.items())
    extra += 'bare_linefeed = "normalize"\nreceived_shows_auth_user = true\n'
    users = [f"lim{i}@example.test" for i in range(1, 5)] + ["norm@example.test"]
    with running_instance("smtpd-limits", users=users, smtp_section=smtp_section(ports, extra)) as p:
        p.ports = ports
        yield p


# ---------------------------------------------------------------------------------------------
# Helpers

class Raw:
    """A raw SMTP connection: bytes out, parsed replies in (for pipelining, BDAT, smuggling)."""

    def __init__(self, port, src="127.0.0.1", timeout=15, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply() if greet else None

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """(code, text): text is the lines after "NNN-"/"NNN " joined by newlines."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(f"connection closed by the server; reply so far: {lines}")
            assert line.endswith(b"\r\n"), f"reply line without CRLF: {line!r}"
            lines.append(line[:-2].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                break
        return int(lines[0][:3]), "\n".join(l[4:] for l in lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def at_eof(self, timeout=5):
        """True if the server closes the connection within `timeout` s, sending nothing more."""
        self.sock.settimeout(timeout)
        try:
            rest = self.f.read()
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True
        assert rest == b"", f"unexpected bytes before close: {rest!r}"
        return True

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def expect(reply, code, enhanced=None):
    got_code, text = reply
    assert got_code == code, f"expected {code} {enhanced or ''}, got {reply}"
    if enhanced:
        assert text.startswith(enhanced + " ") or text == enhanced, f"expected {code} {enhanced}, got {reply}"


def ehlo_keywords(text):
    return text.split("\n")[1:]


def message(tag, extra_headers=b"", body=b"hello\r\n"):
    """A message whose Message-ID (and Subject) carry a unique token; returns (msgid, bytes)."""
    mid = f"<{tag}.{uuid.uuid4().hex}@client.example.org>"
    head = (f"From: <sender@example.org>\r\nSubject: {tag}\r\nMessage-ID: {mid}\r\n"
            "Date: Tue, 1 Jul 2025 10:00:00 +0000\r\n").encode()
    return mid, head + extra_headers + b"\r\n" + body


def find(p, user, needle):
    """Messages in `user`'s INBOX containing `needle` (bytes)."""
    return [m for m in p.export(user) if needle in m]


def received_fields(msg):
    """The unfolded Received: fields of a message, in order."""
    head = msg.split(b"\r\n\r\n", 1)[0]
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head).decode("utf-8", "replace")
    return [l[len("Received:"):].strip() for l in unfolded.split("\r\n") if l.lower().startswith("received:")]


def all_headers(msg, name):
    head = msg.split(b"\r\n\r\n", 1)[0]
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head).decode("utf-8", "replace")
    return [l.split(":", 1)[1].strip() for l in unfolded.split("\r\n") if l.lower().startswith(name.lower() + ":")]


def submission_login(p, mechanism="PLAIN", user="alice@example.test", password=DEFAULT_PASSWORD, src="127.0.0.1",
                     tls_version=None):
    s = smtplib.SMTP("127.0.0.1", p.ports["submission"], timeout=30, source_address=(src, 0))
    s.ehlo("client.example.org")
    s.starttls(context=tls_context(p, tls_version))
    s.ehlo("client.example.org")
    s.user, s.password = user, password
    if mechanism == "PLAIN":
        code, text = s.auth("PLAIN", s.auth_plain)
    elif mechanism == "LOGIN":
        code, text = s.auth("LOGIN", s.auth_login)
    else:
        code, text = s.login(user, password)
    assert code == 235, (code, text)
    return s


def store_counts(p):
    """(messages in any mailbox, rows in the outbound queue)."""
    (n_mail,), = p.db_query("SELECT COUNT(*) FROM mailbox_messages")
    (n_queue,), = p.db_query("SELECT COUNT(*) FROM queue")
    return n_mail, n_queue


def queue_rows(p):
    out = p.cli("queue", "list").stdout
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines[0].split("\t")[:3] == ["ID", "SENDER", "RECIPIENT"], lines[0]
    return [l.split("\t") for l in lines[1:]]


# ---------------------------------------------------------------------------------------------
# 1. Capabilities, by role and TLS state

def test_ehlo_capabilities_by_role_and_tls_state(smtp):
    base = [k.format(size=52428800) for k in BASE_KEYWORDS]
    ctx = tls_context(smtp)

    # mta: STARTTLS offered, never AUTH (not even after TLS); AUTH is not a command here.
    c = Raw(smtp.ports["mta"])
    assert c.greeting[0] == 220 and c.greeting[1].startswith(HOSTNAME) and "ESMTP" in c.greeting[1]
    code, text = c.cmd("EHLO client.example.org")
    assert code == 250 and text.split("\n")[0] == HOSTNAME
    assert ehlo_keywords(text) == base + ["STARTTLS"]
    expect(c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw=="), 502, "5.5.1")
    c.close()

    s = smtplib.SMTP("127.0.0.1", smtp.ports["mta"], timeout=30)
    s.ehlo("client.example.org")
    s.starttls(context=ctx)
    code, text = s.ehlo("client.example.org")
    assert code == 250 and text.decode().split("\n")[1:] == base, text
    s.quit()

    # submission: AUTH only after TLS (loopback is not trusted in this instance); DSN (RFC 3461)
    # on the submission roles only.
    s = smtplib.SMTP("127.0.0.1", smtp.ports["submission"], timeout=30)
    code, text = s.ehlo("client.example.org")
    assert text.decode().split("\n")[1:] == base + ["DSN", "STARTTLS"], text
    s.starttls(context=ctx)
    code, text = s.ehlo("client.example.org")
    assert text.decode().split("\n")[1:] == base + ["DSN", "AUTH PLAIN LOGIN"], text
    s.quit()

    # smtps: TLS from the first byte, AUTH offered, STARTTLS not.
    s = smtplib.SMTP_SSL("127.0.0.1", smtp.ports["smtps"], timeout=30, context=ctx)
    code, text = s.ehlo("client.example.org")
    assert text.decode().split("\n")[1:] == base + ["DSN", "AUTH PLAIN LOGIN"], text
    expect((lambda r: (r[0], r[1].decode()))(s.docmd("STARTTLS")), 503, "5.5.1")
    s.quit()


def test_plaintext_auth_on_trusted_loopback_is_advertised(limited):
    # plaintext_auth_on_loopback = true (the default): AUTH before TLS from 127.0.0.x.
    c = Raw(limited.ports["submission"], src=new_source())
    code, text = c.cmd("EHLO client.example.org")
    assert ehlo_keywords(text) == [k.format(size=LIMITS["max_message_size"]) for k in BASE_KEYWORDS] + \
        ["DSN", "STARTTLS", "AUTH PLAIN LOGIN"]
    c.cmd("QUIT")
    c.close()


def test_simple_commands(smtp):
    c = Raw(smtp.ports["mta"])
    expect(c.cmd("EHLO client.example.org"), 250)
    expect(c.cmd("NOOP"), 250, "2.0.0")
    # VRFY never discloses whether a mailbox exists: same answer for a user and a non-user.
    known, unknown = c.cmd("VRFY alice@example.test"), c.cmd("VRFY nobody@example.test")
    expect(known, 252)
    assert known == unknown
    expect(c.cmd("HELP"), 214)
    expect(c.cmd("EXPN staff"), 502, "5.5.1")
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd("RSET"), 250, "2.0.0")
    expect(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")     # RSET ended the transaction
    expect(c.cmd("QUIT"), 221, "2.0.0")
    assert c.at_eof()


# ---------------------------------------------------------------------------------------------
# 2. Real clients

def test_smtplib_mta_plain_delivery_is_byte_exact(smtp):
    mid, body = message("mta-plain", body=b"line one\r\n.leading dot\r\n..two dots\r\n \r\nlast\r\n")
    s = smtplib.SMTP("127.0.0.1", smtp.ports["mta"], timeout=30)
    s.ehlo("client.example.org")
    assert s.sendmail("sender@example.org", ["alice@example.test"], body) == {}
    s.quit()
    (msg,) = find(smtp, "alice@example.test", mid.encode())
    return_path, received, original = strip_trace_headers(msg)
    assert return_path == b"Return-Path: <sender@example.org>\r\n"
    assert original == body
    (rcv,) = received_fields(msg)
    assert rcv.startswith("from client.example.org ([127.0.0.1])"), rcv
    assert f"by {HOSTNAME} with ESMTP id " in rcv and "for <alice@example.test>;" in rcv, rcv
    assert "using" not in rcv and "Authenticated" not in rcv, rcv


def test_null_sender_accepted_for_local_recipient(smtp):
    mid, body = message("null-sender")
    s = smtplib.SMTP("127.0.0.1", smtp.ports["mta"], timeout=30)
    s.ehlo("client.example.org")
    assert s.sendmail("<>", ["bob@example.test"], body) == {}
    s.quit()
    (msg,) = find(smtp, "bob@example.test", mid.encode())
    assert msg.startswith(b"Return-Path: <>\r\n")


@pytest.mark.parametrize("mechanism,tls_version", [("PLAIN", ssl.TLSVersion.TLSv1_3), ("LOGIN", ssl.TLSVersion.TLSv1_2),
                                                   ("login()", None)])
def test_submission_starttls_then_auth(smtp, mechanism, tls_version):
    s = submission_login(smtp, mechanism, tls_version=tls_version)
    version, (cipher, _, bits) = s.sock.version(), s.sock.cipher()
    if tls_version is not None:
        assert version == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[tls_version]
    mid, body = message(f"submission-{mechanism}")
    assert s.sendmail("alice@example.test", ["bob@example.test"], body) == {}
    s.quit()
    (msg,) = find(smtp, "bob@example.test", mid.encode())
    rcv = received_fields(msg)[0]
    # Received names the TLS version and cipher and says ESMTPSA (RFC 3848); the user is not
    # named unless received_shows_auth_user is set.
    assert f"(using {version} with cipher {cipher} ({bits}/" in rcv, rcv
    assert " with ESMTPSA id " in rcv, rcv
    assert "Authenticated" not in rcv and "alice" not in rcv.split(" for ")[0], rcv


def test_smtps_implicit_tls_auth_login(smtp):
    s = smtplib.SMTP_SSL("127.0.0.1", smtp.ports["smtps"], timeout=30, context=tls_context(smtp))
    s.ehlo("client.example.org")
    # MAIL before AUTH is refused here too.
    code, text = s.mail("alice@example.test")
    assert (code, text.decode()[:5]) == (530, "5.7.0"), (code, text)
    s.user, s.password = "alice@example.test", DEFAULT_PASSWORD
    assert s.auth("LOGIN", s.auth_login)[0] == 235
    mid, body = message("smtps")
    assert s.sendmail("alice@example.test", ["bob@example.test"], body) == {}
    cipher = s.sock.cipher()[0]
    s.quit()
    (msg,) = find(smtp, "bob@example.test", mid.encode())
    rcv = received_fields(msg)[0]
    assert f"with cipher {cipher}" in rcv and " with ESMTPSA id " in rcv, rcv


def test_smtputf8(smtp):
    body = ("From: <sender@example.org>\r\nSubject: Grüße aus Köln\r\nMessage-ID: <utf8.%s@example.org>\r\n"
            "\r\nHallo Jürgen, schöne Grüße\r\n" % uuid.uuid4().hex).encode()
    rcpt = "jürgen@example.test" if smtp.utf8_user else "carol@example.test"
    if smtp.utf8_user:
        # Without SMTPUTF8 a UTF-8 address is refused (RFC 6531 §3.5) ...
        c = Raw(smtp.ports["mta"])
        c.cmd("EHLO client.example.org")
        expect(c.cmd("MAIL FROM:<sender@example.org>"), 250)
        c.send(f"RCPT TO:<{rcpt}>\r\n".encode())
        expect(c.reply(), 553, "5.6.7")
        c.cmd("QUIT")
        c.close()
    # ... with it the message is delivered, 8-bit body intact.
    s = smtplib.SMTP("127.0.0.1", smtp.ports["mta"], timeout=30)
    s.ehlo("client.example.org")
    assert s.has_extn("smtputf8")
    assert s.sendmail("absender@example.org", [rcpt], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
    s.quit()
    (msg,) = find(smtp, rcpt, body.split(b"\r\n")[2].split(b": ")[1])
    assert msg.endswith(body)
    rcv = received_fields(msg)[0]
    assert " with UTF8SMTP id " in rcv, rcv      # RFC 6531 §3.7.3
    if smtp.utf8_user:
        assert "for <jürgen@example.test>;" in rcv, rcv


def test_bdat_pipelined_chunks_are_stored_byte_exact(smtp):
    # CHUNKING (RFC 3030): no dot-stuffing, a lone "." line is content, no final CRLF needed.
    tag = uuid.uuid4().hex
    body = (b"Subject: bdat " + tag.encode() + b"\r\n\r\n.\r\n..double\r\n\r\n.\r\nbinary-ish \x01\x7f\r\n"
            b"no final line end")
    chunks = [body[:17], body[17:40], body[40:]]
    c = Raw(smtp.ports["mta"])
    wire = b"EHLO client.example.org\r\nMAIL FROM:<sender@example.org> BODY=8BITMIME\r\nRCPT TO:<carol@example.test>\r\n"
    for ch in chunks:
        wire += b"BDAT %d\r\n" % len(ch) + ch
    wire += b"BDAT 0 LAST\r\nQUIT\r\n"
    c.send(wire)                              # all of it in one write: pipelined
    r = c.replies(8)
    expect(r[0], 250)
    expect(r[1], 250, "2.1.0")
    expect(r[2], 250, "2.1.5")
    for reply, ch in zip(r[3:6], chunks):
        expect(reply, 250, "2.0.0")
        assert f"{len(ch)} octets" in reply[1], reply
    expect(r[6], 250, "2.0.0")
    expect(r[7], 221)
    assert c.at_eof()
    (msg,) = find(smtp, "carol@example.test", tag.encode())
    _, _, original = strip_trace_headers(msg)
    assert original == body


def test_bdat_with_last_on_the_data_chunk(smtp):
    tag = uuid.uuid4().hex.encode()
    body = b"Subject: " + tag + b"\r\n\r\nsingle chunk\r\n"
    c = Raw(smtp.ports["mta"])
    c.send(b"EHLO c.example.org\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<carol@example.test>\r\n"
           b"BDAT %d LAST\r\n%sQUIT\r\n" % (len(body), body))
    r = c.replies(5)
    assert [x[0] for x in r] == [250, 250, 250, 250, 221], r
    (msg,) = find(smtp, "carol@example.test", tag)
    assert strip_trace_headers(msg)[2] == body


@pytest.mark.skipif(not SWAKS, reason="swaks not installed (scripts/install-deps.sh)")
def test_swaks_pipelining_on_mta(smtp):
    tag = uuid.uuid4().hex
    r = subprocess.run([SWAKS, "--server", f"127.0.0.1:{smtp.ports['mta']}", "--pipeline", "--ehlo", "swaks.example.org",
                        "--from", "sender@example.org", "--to", "bob@example.test", "--header", f"Subject: {tag}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # swaks sent MAIL/RCPT/DATA in one go ("-> " lines without replies in between).
    assert re.search(r" -> MAIL FROM:<sender@example.org>\n -> RCPT TO:<bob@example.test>\n -> DATA\n", r.stdout), r.stdout
    assert "<-  250 2.0.0 Message accepted for delivery" in r.stdout, r.stdout
    assert len(find(smtp, "bob@example.test", tag.encode())) == 1


@pytest.mark.skipif(not SWAKS, reason="swaks not installed (scripts/install-deps.sh)")
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_starttls_auth_pipelining_on_submission(smtp, mechanism):
    tag = uuid.uuid4().hex
    r = subprocess.run([SWAKS, "--server", f"127.0.0.1:{smtp.ports['submission']}", "--tls", "--pipeline",
                        "--auth", mechanism, "--auth-user", "alice@example.test", "--auth-password", DEFAULT_PASSWORD,
                        "--from", "alice@example.test", "--to", "bob@example.test", "--header", f"Subject: {tag}"],
                       capture_output=True, text=True, timeout=60)
    if "TLS" in r.stdout + r.stderr and re.search(r"Net::SSLeay|IO::Socket::SSL", r.stdout + r.stderr):
        pytest.fail(f"swaks lacks TLS support (apt-get install libnet-ssleay-perl libio-socket-ssl-perl): {r.stderr}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "=== TLS started with cipher" in r.stdout, r.stdout
    assert "<~  235 2.7.0" in r.stdout, r.stdout
    assert "<~  250 2.0.0 Message accepted for delivery" in r.stdout, r.stdout
    (msg,) = find(smtp, "bob@example.test", tag.encode())
    assert " with ESMTPSA id " in received_fields(msg)[0]


@pytest.mark.skipif(not OPENSSL, reason="openssl not installed")
def test_openssl_s_client_starttls(smtp):
    for role, auth_after_tls in (("submission", True), ("mta", False)):
        port = smtp.ports[role]
        # Before TLS (plain socket): STARTTLS offered, no AUTH.
        c = Raw(port)
        code, text = c.cmd("EHLO client.example.org")
        assert "STARTTLS" in ehlo_keywords(text) and not any(k.startswith("AUTH") for k in ehlo_keywords(text)), text
        c.cmd("QUIT")
        c.close()
        # s_client sends its own EHLO and STARTTLS; -quiet shows only what follows the handshake.
        r = subprocess.run([OPENSSL, "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}", "-quiet",
                            "-verify_return_error", "-CAfile", os.path.join(smtp.root, "tls", "cert.pem")],
                           input=b"EHLO client.example.org\r\nQUIT\r\n", capture_output=True, timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, (out, r.stderr.decode())
        lines = out.split("\r\n")
        assert lines[0] == f"250-{HOSTNAME}", out
        assert "250-STARTTLS" not in out and "250 STARTTLS" not in out, out
        assert bool(re.search(r"^250[ -]AUTH PLAIN LOGIN\r$", out, re.M)) == auth_after_tls, out
        assert re.search(r"^221 2\.0\.0", out, re.M), out


# ---------------------------------------------------------------------------------------------
# 3. Submission rules

def test_auth_before_starttls_and_mail_before_auth_are_refused(smtp):
    c = Raw(smtp.ports["submission"])
    c.cmd("EHLO client.example.org")
    expect(c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnkgc3RhcGxl"), 530, "5.7.0")
    expect(c.cmd("AUTH LOGIN"), 530, "5.7.0")
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 530, "5.7.0")
    c.cmd("QUIT")
    c.close()
    # After TLS, MAIL still needs AUTH.
    s = smtplib.SMTP("127.0.0.1", smtp.ports["submission"], timeout=30)
    s.ehlo("client.example.org")
    s.starttls(context=tls_context(smtp))
    s.ehlo("client.example.org")
    code, text = s.mail("alice@example.test")
    assert (code, text.decode()[:5]) == (530, "5.7.0"), (code, text)
    s.quit()


def load_fail2ban_regex():
    """The failregex documented in docs/fail2ban.md, for Python's re."""
    with open(FAIL2BAN_DOC, encoding="utf-8") as f:
        doc = f.read()
    m = re.search(r"^failregex\s*=\s*(.+)$", doc, re.M)
    assert m, "docs/fail2ban.md has no failregex line"
    return re.compile(m.group(1).strip().replace("<HOST>", r"(?P<host>\S+)"))


def test_wrong_password_delayed_limited_blocked_and_logged(smtp):
    """535 5.7.8 after a growing delay; max_auth_failures (2) ends the session with 421; the
    address is then blocked ([auth] failures_per_client = 2 within 4 s) even with the right
    password, until the window has passed; each failure is one fail2ban-matchable line."""
    src = new_source()
    ctx = tls_context(smtp)
    s = smtplib.SMTP("127.0.0.1", smtp.ports["submission"], timeout=30, source_address=(src, 0))
    s.ehlo("client.example.org")
    s.starttls(context=ctx)
    s.ehlo("client.example.org")
    t0 = time.monotonic()
    assert s.noop()[0] == 250
    immediate = time.monotonic() - t0

    s.user, s.password = "alice@example.test", "wrong password"
    sent = [time.monotonic()]
    try:
        s.auth("PLAIN", s.auth_plain)
        pytest.fail("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert (e.smtp_code, e.smtp_error.decode()[:5]) == (535, "5.7.8"), e
    first = time.monotonic() - sent[0]
    sent.append(time.monotonic())
    try:
        s.auth("LOGIN", s.auth_login)
        pytest.fail("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert (e.smtp_code, e.smtp_error.decode()[:5]) == (535, "5.7.8"), e
    second = time.monotonic() - sent[1]
    # The engine delays 1 s, then 2 s.
    assert first >= 0.95 and first - immediate >= 0.9, (immediate, first)
    assert second - immediate >= 1.9 and second - first >= 0.9, (immediate, first, second)
    # max_auth_failures = 2: the 535 is followed by 421 and the connection is closed.
    code, text = s.getreply()
    assert (code, text.decode()[:5]) == (421, "4.7.0"), (code, text)
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        s.noop()
    s.close()

    # Blocked: the right password is refused from this address within the window ...
    s = smtplib.SMTP("127.0.0.1", smtp.ports["submission"], timeout=30, source_address=(src, 0))
    s.ehlo("client.example.org")
    s.starttls(context=ctx)
    s.ehlo("client.example.org")
    s.user, s.password = "alice@example.test", DEFAULT_PASSWORD
    sent.append(time.monotonic())
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.auth("PLAIN", s.auth_plain)
    assert e.value.smtp_code == 535, e.value
    s.close()
    # ... while another address is not affected ...
    other = submission_login(smtp, "PLAIN", src=new_source())
    other.quit()
    # ... and accepted once the window (4 s) has passed since the second-to-last failure
    # (the refused attempt counts as one too).
    time.sleep(max(0.0, sent[1] + 4.0 + 0.5 - time.monotonic()))
    s = submission_login(smtp, "PLAIN", src=src)
    s.quit()

    # Every failure is one log line the documented fail2ban regex matches, with this address.
    regex = load_fail2ban_regex()
    log = smtp.log().splitlines()
    failed = [l for l in log if "authentication failed" in l and f"client={src} " in l]
    assert len(failed) == 3, "\n".join(failed)
    for n, line in enumerate(failed, 1):
        m = regex.search(line)
        assert m and m.group("host") == src, f"fail2ban regex does not match {line!r}"
        assert f"failures={n} " in line, line
    assert "mechanism=plain" in failed[0] and "mechanism=login" in failed[1], failed
    assert all("user=alice@example.test" in l for l in failed), failed
    assert any("too many failures" in l and f"client={src}" in l for l in log), "blocked attempt not logged"
    # Nothing else in the log matches (no successful login, no other client).
    matched = [l for l in log if regex.search(l)]
    assert all(regex.search(l).group("host") != "127.0.0.1" for l in matched)


@pytest.mark.skipif(not shutil.which("fail2ban-regex"), reason="fail2ban not installed")
def test_fail2ban_regex_tool_matches_the_documented_filter(smtp, tmp_path):
    src = new_source()
    s = smtplib.SMTP("127.0.0.1", smtp.ports["submission"], timeout=30, source_address=(src, 0))
    s.ehlo("client.example.org")
    s.starttls(context=tls_context(smtp))
    s.ehlo("client.example.org")
    s.user, s.password = "nobody@example.test", "guess"
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s.auth("PLAIN", s.auth_plain)
    s.close()
    with open(FAIL2BAN_DOC, encoding="utf-8") as f:
        doc = f.read()
    m = re.search(r"```ini\n(# Postern smtpd.*?\[Definition\].*?)```", doc, re.S)
    assert m, "no filter block in docs/fail2ban.md"
    flt = tmp_path / "postern-smtpd.conf"
    flt.write_text(m.group(1))
    log = tmp_path / "postern.log"
    log.write_text(smtp.log())
    expected = sum(1 for l in smtp.log().splitlines() if " authentication failed client=" in l)
    assert expected >= 1
    r = subprocess.run(["fail2ban-regex", "--datepattern", "{NONE}", str(log), str(flt)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", r.stdout, re.M)
    assert m and int(m.group(1)) == expected, r.stdout


def test_sender_ownership(smtp):
    s = submission_login(smtp)
    try:
        code, text = s.mail("bob@example.test")
        assert (code, text.decode()[:5]) == (553, "5.7.1"), (code, text)
        code, text = s.mail("someone@example.org")
        assert (code, text.decode()[:5]) == (553, "5.7.1"), (code, text)
        # postmaster@example.test is an alias of alice: hers to send from.
        mid, body = message("alias-sender")
        assert s.sendmail("postmaster@example.test", ["bob@example.test"], body) == {}
        # The user's address in other case is hers too.
        mid2, body2 = message("case-sender")
        assert s.sendmail("Alice@Example.Test", ["bob@example.test"], body2) == {}
    finally:
        s.quit()
    (msg,) = find(smtp, "bob@example.test", mid.encode())
    assert msg.startswith(b"Return-Path: <postmaster@example.test>\r\n")
    assert len(find(smtp, "bob@example.test", mid2.encode())) == 1
    assert any("not owned" in l and "bob@example.test" in l for l in smtp.log().splitlines())


def test_remote_recipient_queued_local_delivered_in_one_transaction(smtp):
    remote = f"far-{uuid.uuid4().hex[:8]}@remote.example"
    mid, body = message("mixed")
    s = submission_login(smtp)
    try:
        assert s.sendmail("alice@example.test", [remote, "carol@example.test"], body) == {}
    finally:
        s.quit()
    rows = [r for r in queue_rows(smtp) if r[2] == f"<{remote}>"]
    assert len(rows) == 1 and rows[0][1] == "<alice@example.test>", queue_rows(smtp)
    (msg,) = find(smtp, "carol@example.test", mid.encode())
    assert msg.endswith(body)
    (qid, msg_in_queue), = smtp.db_query(
        f"SELECT q.id, m.size FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.recipient = '{remote}'")
    assert msg_in_queue >= len(body)


def test_local_copy_of_mixed_submission_has_return_path(smtp):
    """RFC 5321 §4.4: the final delivery agent adds Return-Path — also to the local copy of a
    message that has remote recipients too (the queued copy is not a final delivery)."""
    remote = f"far-{uuid.uuid4().hex[:8]}@remote.example"
    mid, body = message("mixed-return-path")
    s = submission_login(smtp)
    try:
        assert s.sendmail("alice@example.test", ["carol@example.test", remote], body) == {}
    finally:
        s.quit()
    (msg,) = find(smtp, "carol@example.test", mid.encode())
    assert header_value(msg, "Return-Path") == "<alice@example.test>", msg[:400]


def test_message_id_and_date_added_on_submission_only_when_missing(smtp):
    tag = uuid.uuid4().hex
    bare = f"From: alice@example.test\r\nSubject: bare {tag}\r\n\r\nno id, no date\r\n".encode()
    mid, full = message(f"full-{tag}")
    only_id = f"Subject: only-id {tag}\r\nMessage-ID: <only-id.{tag}@example.org>\r\n\r\nx\r\n".encode()
    s = submission_login(smtp)
    try:
        for b in (bare, full, only_id):
            assert s.sendmail("alice@example.test", ["bob@example.test"], b) == {}
    finally:
        s.quit()
    # The same on port 25: nothing is added there.
    s = smtplib.SMTP("127.0.0.1", smtp.ports["mta"], timeout=30)
    s.ehlo("client.example.org")
    mta_bare = bare.replace(b"bare ", b"mta-bare ")
    assert s.sendmail("sender@example.org", ["bob@example.test"], mta_bare) == {}
    s.quit()

    (m,) = find(smtp, "bob@example.test", f"Subject: bare {tag}".encode())
    (msgid,) = all_headers(m, "Message-ID")
    assert re.fullmatch(r"<[^<>@\s]+@" + re.escape(HOSTNAME) + ">", msgid), msgid
    (date,) = all_headers(m, "Date")
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", date), date
    assert m.endswith(bare)                                     # the original follows, untouched

    (m,) = find(smtp, "bob@example.test", mid.encode())
    assert all_headers(m, "Message-ID") == [mid] and all_headers(m, "Date") == ["Tue, 1 Jul 2025 10:00:00 +0000"]
    assert m.endswith(full)

    (m,) = find(smtp, "bob@example.test", f"only-id {tag}".encode())
    assert all_headers(m, "Message-ID") == [f"<only-id.{tag}@example.org>"] and len(all_headers(m, "Date")) == 1

    (m,) = find(smtp, "bob@example.test", f"mta-bare {tag}".encode())
    assert all_headers(m, "Message-ID") == [] and all_headers(m, "Date") == []


def test_received_shows_authenticated_sender_when_configured(limited):
    # received_shows_auth_user = true; AUTH in plaintext is fine here (trusted loopback).
    s = smtplib.SMTP("127.0.0.1", limited.ports["submission"], timeout=30, source_address=(new_source(), 0))
    s.ehlo("client.example.org")
    s.user, s.password = "lim1@example.test", DEFAULT_PASSWORD
    assert s.auth("PLAIN", s.auth_plain)[0] == 235
    mid, body = message("show-auth")
    assert s.sendmail("lim1@example.test", ["lim2@example.test"], body) == {}
    s.quit()
    (msg,) = find(limited, "lim2@example.test", mid.encode())
    rcv = received_fields(msg)[0]
    assert "(Authenticated sender: lim1@example.test)" in rcv, rcv
    assert " with ESMTPA id " in rcv and "using" not in rcv, rcv


# ---------------------------------------------------------------------------------------------
# 4. SMTP smuggling (CVE-2023-51766 class) on port 25

SMUGGLE_ENDS = {"LF.LF": b"\n.\n", "CR.CRLF": b"\r.\r\n", "LF.CRLF": b"\n.\r\n", "CRLF.LF": b"\r\n.\n",
                "CRLF.CR": b"\r\n.\r"}


def smuggle(port, rcpt, tag, end, src="127.0.0.1"):
    """One DATA whose body holds `end` followed by a complete second transaction. Returns the
    replies (the transaction's, then QUIT's) and the smuggled marker."""
    smuggled = (b"MAIL FROM:<smuggler@evil.example>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n"
                b"Subject: smuggled " + tag + b"\r\n\r\nsmuggled body " + tag + b"\r\n")
    wire = (b"EHLO client.example.org\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n"
            b"Subject: outer " + tag + b"\r\n\r\nouter body" + end + smuggled + b".\r\nQUIT\r\n")
    c = Raw(port, src=src)
    c.send(wire)
    replies = []
    while True:
        try:
            replies.append(c.reply())
        except EOFError:
            break
        if replies[-1][0] == 221:
            break
    assert c.at_eof()
    c.close()
    return replies


@pytest.mark.parametrize("name", list(SMUGGLE_ENDS))
def test_smuggling_rejected_by_default(smtp, name):
    tag = uuid.uuid4().hex.encode()
    before = store_counts(smtp)
    replies = smuggle(smtp.ports["mta"], "bob@example.test", tag, SMUGGLE_ENDS[name])
    codes = [r[0] for r in replies]
    # EHLO, MAIL, RCPT, 354, the refusal, QUIT: nothing answered the smuggled commands.
    assert codes == [250, 250, 250, 354, 550, 221], replies
    expect(replies[4], 550, "5.5.2")
    assert store_counts(smtp) == before
    assert not find(smtp, "bob@example.test", tag)
    log = smtp.log().splitlines()
    assert any("550 5.5.2" in l and "client=127.0.0.1" in l and "from=<sender@example.org>" in l
               and "to=bob@example.test" in l for l in log), "refusal not logged with its envelope"


@pytest.mark.parametrize("name", list(SMUGGLE_ENDS))
def test_smuggling_normalized_is_one_message(limited, name):
    tag = uuid.uuid4().hex.encode()
    before = store_counts(limited)
    replies = smuggle(limited.ports["mta"], "norm@example.test", tag, SMUGGLE_ENDS[name], src=new_source())
    assert [r[0] for r in replies] == [250, 250, 250, 354, 250, 221], replies
    assert store_counts(limited) == (before[0] + 1, before[1])
    (msg,) = find(limited, "norm@example.test", tag)
    assert b"Subject: outer " + tag in msg
    assert b"MAIL FROM:<smuggler@evil.example>" in msg and b"smuggled body " + tag in msg
    # Normalized: every line of the stored message ends in CRLF.
    assert b"\n" not in msg.replace(b"\r\n", b"") and b"\r" not in msg.replace(b"\r\n", b"")


# ---------------------------------------------------------------------------------------------
# 5. Limits

def test_command_line_too_long(limited):
    c = Raw(limited.ports["mta"], src=new_source())
    c.cmd("EHLO client.example.org")
    expect(c.cmd("NOOP " + "x" * (LIMITS["max_command_line"] - 7)), 250)          # 512 with CRLF: fits
    expect(c.cmd("NOOP " + "x" * (LIMITS["max_command_line"] - 6)), 500, "5.5.2")  # 513
    expect(c.cmd("NOOP"), 250)                                                       # the session goes on
    c.cmd("QUIT")
    c.close()


def data_transaction(c, rcpts, body, mail="MAIL FROM:<sender@example.org>"):
    expect(c.cmd(mail), 250)
    for r in rcpts:
        expect(c.cmd(f"RCPT TO:<{r}>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(body + b".\r\n")
    return c.reply()


def test_text_line_too_long(limited):
    before = limited.inbox_count("lim3@example.test")
    c = Raw(limited.ports["mta"], src=new_source())
    c.cmd("EHLO client.example.org")
    ok = b"Subject: line ok\r\n\r\n" + b"y" * (LIMITS["max_line_length"] - 2) + b"\r\n"
    expect(data_transaction(c, ["lim3@example.test"], ok), 250)
    long = b"Subject: line too long\r\n\r\n" + b"y" * (LIMITS["max_line_length"] - 1) + b"\r\nend\r\n"
    expect(data_transaction(c, ["lim3@example.test"], long), 500, "5.5.2")
    c.cmd("QUIT")
    c.close()
    assert limited.inbox_count("lim3@example.test") == before + 1


def test_message_size(limited):
    limit = LIMITS["max_message_size"]
    before = store_counts(limited)
    c = Raw(limited.ports["mta"], src=new_source())
    c.cmd("EHLO client.example.org")
    # Declared too big: refused at MAIL.
    expect(c.cmd(f"MAIL FROM:<sender@example.org> SIZE={limit + 1}"), 552, "5.3.4")
    # Declared small, sent too big (and not declared at all): refused after DATA.
    big = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * (limit // 72 + 2)
    assert len(big) > limit
    expect(data_transaction(c, ["lim4@example.test"], big, mail="MAIL FROM:<sender@example.org> SIZE=100"), 552, "5.3.4")
    expect(data_transaction(c, ["lim4@example.test"], big), 552, "5.3.4")
    # BDAT over the limit: 552 after LAST.
    expect(c.cmd("MAIL FROM:<sender@example.org>"), 250)
    expect(c.cmd("RCPT TO:<lim4@example.test>"), 250)
    c.send(b"BDAT %d LAST\r\n" % len(big) + big)
    expect(c.reply(), 552, "5.3.4")
    assert store_counts(limited) == before
    # Just under the limit is fine.
    fits = b"Subject: fits\r\n\r\n" + (b"z" * 70 + b"\r\n") * ((limit - 20) // 72)
    assert len(fits) <= limit
    expect(data_transaction(c, ["lim4@example.test"], fits, mail=f"MAIL FROM:<sender@example.org> SIZE={len(fits)}"), 250)
    c.cmd("QUIT")
    c.close()
    assert store_counts(limited)[0] == before[0] + 1
    assert any("552 5.3.4" in l and "from=<sender@example.org>" in l and "to=lim4@example.test" in l
               for l in limited.log().splitlines()), "size refusal not logged with the envelope"


def test_too_many_recipients(limited):
    before = [limited.inbox_count(f"lim{i}@example.test") for i in range(1, 5)]
    c = Raw(limited.ports["mta"], src=new_source())
    c.cmd("EHLO client.example.org")
    expect(c.cmd("MAIL FROM:<sender@example.org>"), 250)
    for i in range(1, 4):
        expect(c.cmd(f"RCPT TO:<lim{i}@example.test>"), 250, "2.1.5")
    expect(c.cmd("RCPT TO:<lim4@example.test>"), 452, "4.5.3")
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: three of four\r\n\r\nhi\r\n.\r\n")
    expect(c.reply(), 250)
    c.cmd("QUIT")
    c.close()
    after = [limited.inbox_count(f"lim{i}@example.test") for i in range(1, 5)]
    assert after == [before[0] + 1, before[1] + 1, before[2] + 1, before[3]]


def test_too_many_errors(limited):
    c = Raw(limited.ports["mta"], src=new_source())
    c.cmd("EHLO client.example.org")
    for _ in range(LIMITS["max_errors"] - 1):
        expect(c.cmd("BOGUS"), 500, "5.5.2")
    c.send(b"BOGUS\r\n")
    expect(c.reply(), 500, "5.5.2")
    expect(c.reply(), 421, "4.7.0")
    assert c.at_eof()
    c.close()


def test_command_and_data_timeouts(limited):
    # Both sessions wait at once: one for a command, one inside DATA.
    idle = Raw(limited.ports["mta"], src=new_source())
    idle.cmd("EHLO client.example.org")
    in_data = Raw(limited.ports["mta"], src=new_source())
    in_data.cmd("EHLO client.example.org")
    expect(in_data.cmd("MAIL FROM:<sender@example.org>"), 250)
    expect(in_data.cmd("RCPT TO:<lim1@example.test>"), 250)
    expect(in_data.cmd("DATA"), 354)
    in_data.send(b"Subject: never finished\r\n\r\npart")
    t0 = time.monotonic()
    before = limited.inbox_count("lim1@example.test")
    for c in (idle, in_data):
        expect(c.reply(), 421, "4.4.2")
        assert c.at_eof()
        c.close()
    waited = time.monotonic() - t0
    assert 1.0 <= waited < 6, waited            # the timeouts are 2 s
    assert limited.inbox_count("lim1@example.test") == before


def test_connections_per_client(limited):
    src = new_source()
    held = [Raw(limited.ports["mta"], src=src) for _ in range(LIMITS["max_connections_per_client"])]
    assert all(c.greeting[0] == 220 for c in held)
    extra = Raw(limited.ports["mta"], src=src, greet=False)
    expect(extra.reply(), 421, "4.7.0")
    assert extra.at_eof()
    extra.close()
    # Another address is not affected.
    other = Raw(limited.ports["mta"], src=new_source())
    assert other.greeting[0] == 220
    other.close()
    # A slot comes back when a connection ends.
    held[0].cmd("QUIT")
    held[0].close()

    def greeted():
        c = Raw(limited.ports["mta"], src=src, greet=False)
        try:
            return c.reply()[0] == 220
        finally:
            c.close()
    wait_for(greeted, 10, interval=0.1, what="a free connection slot")
    for c in held[1:]:
        c.close()


# ---------------------------------------------------------------------------------------------
# STARTTLS injection (CVE-2011-0411 class): plaintext pipelined after STARTTLS is discarded.

def recv_line(sock):
    buf = b""
    while not buf.endswith(b"\r\n"):
        b = sock.recv(1)
        if not b:
            raise EOFError(buf)
        buf += b
    return buf


@pytest.mark.parametrize("role", ["mta", "submission"])
def test_starttls_injection_is_discarded(smtp, role):
    sock = socket.create_connection(("127.0.0.1", smtp.ports[role]), timeout=15)
    assert recv_line(sock).startswith(b"220 ")
    sock.sendall(b"EHLO client.example.org\r\n")
    while not recv_line(sock).startswith(b"250 "):
        pass
    sock.sendall(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<injected@evil.example>\r\n")
    assert recv_line(sock).startswith(b"220 2.0.0"), "no 220 to STARTTLS"
    # Nothing else arrives in plaintext.
    sock.settimeout(0.5)
    try:
        extra = sock.recv(1024, socket.MSG_PEEK)
    except (socket.timeout, TimeoutError):
        extra = b""
    assert extra == b"", f"plaintext reply to injected commands: {extra!r}"
    sock.settimeout(15)
    tls = tls_context(smtp).wrap_socket(sock, server_hostname=HOSTNAME)
    tls.sendall(b"EHLO client.example.org\r\n")
    first = recv_line(tls)
    assert first == f"250-{HOSTNAME}\r\n".encode(), f"not the EHLO reply first: {first!r}"
    while not recv_line(tls).startswith(b"250 "):
        pass
    # The injected MAIL did not start a transaction: a new MAIL is not "nested".
    tls.sendall(b"MAIL FROM:<sender@example.org>\r\n" if role == "mta" else b"NOOP\r\n")
    assert recv_line(tls).startswith(b"250 2."), "injected command survived the handshake"
    tls.sendall(b"QUIT\r\n")
    assert recv_line(tls).startswith(b"221 ")
    tls.close()
