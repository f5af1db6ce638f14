"""Probing and junk (issue 9 point 7) and the smaller points of 8, against the real daemon set:
unknown-recipient RCPTs count towards max_errors (smtpd_hard_error_limit), NOOP/RSET/VRFY
towards max_junk_commands (smtpd_junk_command_limit), max_session_time bounds a session —
each ends with 421 4.7.0 and a close; <Postmaster> reaches every target of the postmaster
alias; the LMTP socket is 0660 with the worker's group by default."""
import grp
import os
import smtplib
import socket
import stat
import time

from conftest import IS_ROOT, free_port


def mta(make_postern, name, extra):
    port = free_port()
    p = make_postern(name=name, smtp_section=f'[smtp]\nmta = ["127.0.0.1:{port}"]\nsubmission = []\nsmtps = []\n{extra}\n')
    p.mta_port = port
    return p


def closed(sock):
    """True once the server closed the connection (EOF or reset)."""
    sock.settimeout(10)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_unknown_recipients_count_towards_max_errors(make_postern):
    p = mta(make_postern, "harderr", "max_errors = 3")
    c = smtplib.SMTP("127.0.0.1", p.mta_port, timeout=10)
    c.ehlo("probe.example")
    assert c.mail("probe@probe.example")[0] == 250
    assert c.rcpt("alice@example.test")[0] == 250, "a known user is no error"
    for i, user in enumerate(("nobody1", "nobody2")):
        code, text = c.rcpt(f"{user}@example.test")
        assert (code, text[:5]) == (550, b"5.1.1"), (code, text)
    code, text = c.docmd("RCPT TO:<nobody3@example.test>")
    assert code == 550
    # The third error is followed by 421 4.7.0 and the close.
    code, text = c.getreply()
    assert (code, text[:5]) == (421, b"4.7.0"), (code, text)
    assert closed(c.sock)
    assert "Too many errors" in open(p.log_path, errors="replace").read()


def test_junk_commands_end_the_session(make_postern):
    p = mta(make_postern, "junk", "max_junk_commands = 3")
    c = smtplib.SMTP("127.0.0.1", p.mta_port, timeout=10)
    c.ehlo("junk.example")
    assert c.noop()[0] == 250
    assert c.rset()[0] == 250
    assert c.docmd("VRFY alice")[0] == 252
    code, text = c.docmd("NOOP")
    assert (code, text[:5]) == (421, b"4.7.0"), (code, text)
    assert b"junk" in text
    assert closed(c.sock)
    # A delivered message resets the count: 3 junk commands, a message, 3 more.
    c = smtplib.SMTP("127.0.0.1", p.mta_port, timeout=10)
    c.ehlo("junk.example")
    for _ in range(3):
        assert c.noop()[0] == 250
    c.sendmail("x@junk.example", ["alice@example.test"], b"Subject: junk reset\r\n\r\nhi\r\n")
    for _ in range(3):
        assert c.noop()[0] == 250
    assert c.noop()[0] == 421


def test_max_session_time_ends_an_lmtp_session(make_postern):
    p = make_postern(name="sesstime", lmtp_extra="max_session_time = 2")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(p.lmtp_socket)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    # Keep the session busy (never idle) past the limit.
    start = time.monotonic()
    while True:
        try:
            s.sendall(b"LHLO a.example\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                       # closed while we slept: its 421 is waiting to be read
        lines = []
        while True:
            line = f.readline()
            assert line, "closed without a reply"
            lines.append(line)
            if line[3:4] == b" ":
                break
        if lines[-1].startswith(b"421 "):
            break
        assert time.monotonic() - start < 8, "the session was never ended"
        time.sleep(0.3)
    assert lines[-1].startswith(b"421 4.7.0 Session too long"), lines
    assert 1.5 < time.monotonic() - start < 8
    assert f.readline() == b""


def test_postmaster_reaches_every_target_of_the_alias(make_postern):
    p = mta(make_postern, "pmall", "")
    p.cli("alias", "add", "postmaster@example.test", "bob@example.test")   # alice is the first target
    before = {u: p.inbox_count(u) for u in ("alice@example.test", "bob@example.test")}
    c = smtplib.SMTP("127.0.0.1", p.mta_port, timeout=10)
    c.ehlo("client.example")
    assert c.mail("x@client.example")[0] == 250
    assert c.docmd("RCPT TO:<Postmaster>")[0] == 250   # mx.postern.test is no mail domain
    code, _ = c.data(b"Subject: to postmaster\r\n\r\nhi\r\n")
    assert code == 250
    c.quit()
    for u, n in before.items():
        assert p.inbox_count(u) == n + 1, u


def test_lmtp_socket_defaults_to_0660_and_the_worker_group(make_postern):
    p = make_postern(name="lmtpmode")
    st = os.stat(p.lmtp_socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    if IS_ROOT:
        assert grp.getgrgid(st.st_gid).gr_name == "postern"


def test_local_sender_from_an_untrusted_client_is_refused(make_postern):
    """Port 25: MAIL FROM one of our domains without AUTH from outside trusted_networks is
    553 5.7.1; another domain is fine; with the client trusted, so is ours."""
    p = mta(make_postern, "localsender", 'trusted_networks = ["192.0.2.0/24"]')
    c = smtplib.SMTP("127.0.0.1", p.mta_port, timeout=10)
    c.ehlo("client.example")
    code, text = c.mail("alice@example.test")
    assert (code, text[:5]) == (553, b"5.7.1"), (code, text)
    assert c.mail("someone@client.example")[0] == 250
    c.quit()
    trusted = mta(make_postern, "localsendertrusted", "")
    c = smtplib.SMTP("127.0.0.1", trusted.mta_port, timeout=10)
    c.ehlo("client.example")
    assert c.mail("alice@example.test")[0] == 250, "loopback is trusted by default"
    c.quit()
