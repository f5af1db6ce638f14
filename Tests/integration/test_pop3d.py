"""pop3d (issue 12) driven by real clients: Python's poplib over the whole command set (plain
on trusted loopback, STLS, implicit TLS on pop3s), AUTH PLAIN/LOGIN with initial response,
fetchmail (--mda into a file) and getmail6 retrieving and deleting, byte-exact messages (8-bit,
20 MB, lines starting with a dot), IN-USE, DELE + dropped connection keeps the mail, DELE + QUIT
removes it while an IMAP IDLE client sees EXPUNGE, kill -9 of pop3d during UPDATE is all or
nothing, the worker's privileges and the fail2ban line. (The pop3d store role's confinement to
its user's INBOX is an RPC test: Tests/POP3ServerTests/POP3StoreTests.swift.)
"""
import base64
import os
import pathlib
import poplib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import DEFAULT_PASSWORD, IS_ROOT, WORKER_USER, assert_unprivileged, free_port, running_instance, \
    strip_trace_headers, wait_for
from imap_support import RawIMAP, imap_section, tls_context

USERS = ["carol@example.test", "dave@example.test", "erin@example.test", "frank@example.test", "gina@example.test",
         "hank@example.test", "ivy@example.test", "jack@example.test", "kate@example.test", "liam@example.test"]


@pytest.fixture(scope="module")
def pop3():
    ports = {"pop3": free_port(), "pop3s": free_port(), "imap": free_port(), "imaps": free_port()}
    extra = (imap_section(ports) +
             f'\n[pop3]\nprocesses = 2\nlisten = ["pop3@127.0.0.1:{ports["pop3"]}", "pop3s@127.0.0.1:{ports["pop3s"]}"]\n'
             "auth_failure_delay = 0.2\n")
    with running_instance("pop3d", users=USERS, lmtp_extra=extra) as p:
        p.ports = ports
        wait_for(lambda: p.log().count("pop3d ready") >= 2, 30, what="pop3d ready")
        yield p


def message(subject, body="Hello there.\r\n"):
    return (f"From: Bob <bob@example.test>\r\nTo: someone@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4()}@example.test>\r\nDate: Sun, 06 Dec 2026 03:00:00 +0000\r\n\r\n{body}").encode()


def connect(p, tls=False, stls=False):
    if tls:
        return poplib.POP3_SSL("127.0.0.1", p.ports["pop3s"], context=tls_context(p), timeout=60)
    c = poplib.POP3("127.0.0.1", p.ports["pop3"], timeout=60)
    if stls:
        c.stls(tls_context(p))
    return c


def login(p, user, tls=False, stls=False):
    c = connect(p, tls=tls, stls=stls)
    c.user(user)
    c.pass_(DEFAULT_PASSWORD)
    return c


def retrieved(c, n):
    """RETR n as the bytes stored (poplib undoes the dot-stuffing and drops CRLFs)."""
    _, lines, _ = c.retr(n)
    return b"\r\n".join(lines) + b"\r\n"


def test_poplib_over_the_command_set_with_stls(pop3):
    user = USERS[0]
    bodies = [message("first", ".a dot\r\n..two dots\r\n.\r\nend\r\n"), message("second"), message("third")]
    for b in bodies:
        pop3.deliver([user], b)
    c = connect(pop3)
    caps = c.capa()
    assert "STLS" in caps and "TOP" in caps and "UIDL" in caps and "RESP-CODES" in caps, caps
    assert "PIPELINING" in caps and "AUTH-RESP-CODE" in caps and caps.get("EXPIRE") == ["NEVER"], caps
    assert "IMPLEMENTATION" in caps
    c.stls(tls_context(pop3))
    caps = c.capa()
    assert "STLS" not in caps and "USER" in caps and caps.get("SASL") == ["PLAIN", "LOGIN"], caps
    assert c.user(user).startswith(b"+OK")
    assert c.pass_(DEFAULT_PASSWORD).startswith(b"+OK")
    count, octets = c.stat()
    assert count == 3
    resp, listing, _ = c.list()
    sizes = [int(l.split()[1]) for l in listing]
    assert sum(sizes) == octets and len(sizes) == 3
    assert c.list(2).split()[2] == str(sizes[1]).encode()
    _, uidls, _ = c.uidl()
    uids = [l.split()[1] for l in uidls]
    assert len(set(uids)) == 3 and all(re.fullmatch(rb"\d+\.\d+", u) for u in uids), uids
    assert c.uidl(3).split()[2] == uids[2]
    for i, b in enumerate(bodies, 1):
        got = retrieved(c, i)
        assert strip_trace_headers(got)[2] == b
        assert len(got) == sizes[i - 1]
    _, top, _ = c.top(1, 2)
    text = b"\r\n".join(top)
    assert b"Subject: first" in text and text.endswith(b"\r\n\r\n.a dot\r\n..two dots"), text[-80:]
    _, top0, _ = c.top(1, 0)
    assert top0[-1] == b"" and b"Subject: first" in b"\r\n".join(top0)
    assert c.noop().startswith(b"+OK")
    assert c.dele(2).startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="already deleted"):
        c.retr(2)
    assert c.stat()[0] == 2
    assert c.rset().startswith(b"+OK")
    assert c.stat()[0] == 3
    with pytest.raises(poplib.error_proto, match="No such message"):
        c.retr(4)
    c.dele(1)
    assert c.quit().startswith(b"+OK")
    c = login(pop3, user, tls=True)
    _, uidls2, _ = c.uidl()
    assert [l.split()[1] for l in uidls2] == uids[1:], "UIDL values are stable across sessions"
    c.quit()


def test_implicit_tls_and_sasl(pop3):
    user = USERS[1]
    pop3.deliver([user], message("sasl"))
    c = connect(pop3, tls=True)
    assert "STLS" not in c.capa()
    ir = base64.b64encode(f"\0{user}\0{DEFAULT_PASSWORD}".encode()).decode()
    assert c._shortcmd(f"AUTH PLAIN {ir}").startswith(b"+OK")
    assert c.stat()[0] == 1
    c.quit()
    # AUTH LOGIN with an initial response (RFC 5034 §4), the password on a continuation.
    c = connect(pop3, tls=True)
    c._putcmd("AUTH LOGIN " + base64.b64encode(user.encode()).decode())
    assert c._getline()[0] == b"+ UGFzc3dvcmQ6"
    assert c._shortcmd(base64.b64encode(DEFAULT_PASSWORD.encode()).decode()).startswith(b"+OK")
    c.quit()


def test_plaintext_is_refused_before_tls_from_a_non_loopback_view(pop3):
    # 127.0.0.1 is trusted loopback here (plaintext_auth_on_loopback = true): USER works without
    # TLS; the refusal without TLS is an engine test (POP3EngineTests).
    c = connect(pop3)
    assert c.user(USERS[1]).startswith(b"+OK")
    c.quit()


def test_stls_drops_pipelined_plaintext(pop3):
    """RFC 2595 §4 (CVE-2011-0411): a command pipelined behind STLS in plaintext is never run."""
    s = socket.create_connection(("127.0.0.1", pop3.ports["pop3"]), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"STLS\r\nUSER injected@example.test\r\n")
    assert f.readline().startswith(b"+OK")
    t = tls_context(pop3).wrap_socket(s)
    tf = t.makefile("rb")
    t.sendall(b"PASS whatever\r\n")
    assert tf.readline().startswith(b"-ERR USER first"), "the plaintext USER was acted on"
    t.sendall(b"QUIT\r\n")
    assert tf.readline().startswith(b"+OK")
    t.close()


def test_in_use_and_dropped_connection_keeps_the_mail(pop3):
    user = USERS[2]
    pop3.deliver([user], message("keep me"))
    a = login(pop3, user)
    assert a.stat()[0] == 1
    b = connect(pop3, tls=True)
    b.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        b.pass_(DEFAULT_PASSWORD)
    b.quit()
    assert a.dele(1).startswith(b"+OK")
    a.sock.shutdown(socket.SHUT_RDWR)   # dropped without QUIT: RFC 1939 §6, nothing is deleted
    a.close()
    # The store frees the lock when pop3d ends the session; then a new session sees the mail.
    wait_for(lambda: _try_login(pop3, user), 10, what="lock released")
    c = login(pop3, user)
    assert c.stat()[0] == 1
    c.quit()


def _try_login(p, user):
    try:
        c = login(p, user)
    except poplib.error_proto:
        return False
    c.quit()
    return True


def test_dele_quit_expunges_and_imap_idle_sees_it(pop3):
    user = USERS[3]
    pop3.deliver([user], message("one"))
    pop3.deliver([user], message("two"))
    m = RawIMAP("127.0.0.1", pop3.ports["imap"])
    m.login(user, DEFAULT_PASSWORD)
    m.cmd("SELECT INBOX")
    m.send("i1 IDLE\r\n")
    assert m.line().startswith(b"+")
    c = login(pop3, user)
    c.dele(1)
    assert c.quit().startswith(b"+OK")
    assert m.read_until(rb"^\* 1 EXPUNGE") == b"* 1 EXPUNGE\r\n"
    m.send("DONE\r\n")
    m.until_tag("i1")
    m.close()
    assert pop3.inbox_count(user) == 1


def test_byte_exact_eight_bit_dots_and_twenty_megabytes(pop3):
    user = USERS[4]
    eight = ("From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             "Grüße, Jürgen — ✓\r\n.\r\n..\r\n. leading dot and space\r\n\xff?\r\n").encode("utf-8")
    line = b".line that starts with a dot and is padded out " + b"x" * 60 + b"\r\n"
    big = b"From: big@example.org\r\nSubject: twenty megabytes\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    pop3.deliver([user], eight)
    pop3.deliver([user], big)
    c = login(pop3, user, tls=True)
    assert strip_trace_headers(retrieved(c, 1))[2] == eight
    got = strip_trace_headers(retrieved(c, 2))[2]
    assert len(got) == len(big) and got == big
    c.quit()


def _mark_all_and_quit(p, user, n):
    """Delivers n messages, marks them all (pipelined, RFC 2449) and sends QUIT without waiting:
    the UPDATE state is running when this returns. Returns the client."""
    for i in range(n):
        p.deliver([user], message(f"bulk {i}"))
    c = login(p, user)
    for i in range(1, n + 1):
        c._putcmd(f"DELE {i}")
    for i in range(1, n + 1):
        assert c._getresp().startswith(b"+OK")
    c._putcmd("QUIT")
    return c


def test_kill_during_update_is_all_or_nothing(pop3):
    user = USERS[5]
    n = 300
    _mark_all_and_quit(pop3, user, n)
    for pid in pop3.pids("pop3"):
        os.kill(pid, signal.SIGKILL)
    left = pop3.inbox_count(user)
    assert left in (0, n), f"{left} of {n}: UPDATE was not all or nothing"
    # The master restarts pop3d; the lock went with the dead connection.
    wait_for(lambda: _try_login(pop3, user), 30, what="pop3d restarted and the lock released")


def _store_back(p, old_store):
    """The store restarted, and pop3d (which exits when it loses the store) serves logins again."""
    wait_for(lambda: p.store_pid() != old_store and all(r["STATE"] == "running" for r in p.status()
                                                        if r["SERVICE"] in ("store", "pop3", "imap")), 30, what="store back")


def test_kill_of_the_store_before_and_during_update(pop3):
    user = USERS[9]
    n = 100
    for i in range(n):
        pop3.deliver([user], message(f"store kill {i}"))
    # Marked, then the store dies before QUIT: nothing is deleted.
    c = login(pop3, user)
    for i in range(1, n + 1):
        c.dele(i)
    old = pop3.store_pid()
    os.kill(old, signal.SIGKILL)
    c.close()
    _store_back(pop3, old)
    assert pop3.inbox_count(user) == n
    # Marked, QUIT sent, the store dies at once: all or nothing.
    wait_for(lambda: _try_login(pop3, user), 30, what="pop3d serving again")
    c = login(pop3, user)
    for i in range(1, n + 1):
        c.dele(i)
    c._putcmd("QUIT")
    old = pop3.store_pid()
    os.kill(old, signal.SIGKILL)
    c.close()
    _store_back(pop3, old)
    assert pop3.inbox_count(user) in (0, n)


@pytest.mark.skipif(not IS_ROOT, reason="privileges are dropped only when started as root")
def test_pop3d_is_unprivileged(pop3):
    for pid in pop3.pids("pop3"):
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "pop3d"
        assert_unprivileged(pid, WORKER_USER)


def test_failed_logins_are_logged_for_fail2ban(pop3):
    c = connect(pop3)
    c.user(USERS[6])
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        c.pass_("wrong")
    c.quit()
    wait_for(lambda: re.search(r"pop3d.*authentication failed client=127\.0\.0\.1 failures=\d+ mechanism=user user=ivy@example\.test",
                               pop3.log()), 5, what="fail2ban line")
    # docs/fail2ban.md's filter takes the line, with the client address.
    from test_smtpd import load_fail2ban_regex
    regex = load_fail2ban_regex()
    lines = [l for l in pop3.log().splitlines() if "authentication failed" in l and "ivy@example.test" in l]
    assert lines and all(regex.match(l) and regex.match(l).group("host") == "127.0.0.1" for l in lines), lines


def test_hostile_input(pop3):
    s = socket.create_connection(("127.0.0.1", pop3.ports["pop3"]), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"A" * 100_000 + b"\r\nRETR 1\r\nLIST 99999999999999999999\r\nUSER\r\nXYZZY\r\n\0\0\r\n")
    replies = [f.readline() for _ in range(6)]
    assert all(r.startswith(b"-ERR") for r in replies), replies
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()


def _tool(name):
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} not installed (make deps installs TEST_PKGS)")
    return path


def test_fetchmail_retrieves_and_deletes(pop3, tmp_path):
    fetchmail = _tool("fetchmail")
    user = USERS[7]
    bodies = [message(f"fetchmail {i}", f".dot line {i}\r\n") for i in range(3)]
    for b in bodies:
        pop3.deliver([user], b)
    out = tmp_path / "fetched.mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 service {pop3.ports["pop3"]} protocol pop3 uidl\n'
                  f'  user "{user}" password "{DEFAULT_PASSWORD}" is "{user}"\n'
                  f'  sslproto tls1.2+ no sslcertck\n'  # STLS on the plain listener
                  f'  mda "/bin/sh -c \'cat >> {out}; echo __END__ >> {out}\'"\n')
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run([fetchmail, "-f", str(rc), "--nodetach", "-v", "--nosyslog", "-i", str(tmp_path / "ids")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    data = out.read_bytes()
    for b in bodies:
        assert b.split(b"\r\n\r\n")[1].replace(b"\r\n", b"\n") in data.replace(b"\r\n", b"\n"), data[:400]
    assert pop3.inbox_count(user) == 0, "fetchmail deletes what it retrieved"


def test_getmail_retrieves_and_deletes(pop3, tmp_path):
    getmail = shutil.which("getmail") or _tool("getmail6")
    user = USERS[8]
    bodies = [message(f"getmail {i}", f"..two dots {i}\r\n") for i in range(3)]
    for b in bodies:
        pop3.deliver([user], b)
    # getmail refuses to deliver as root: the Maildir then belongs to `nobody`, who delivers.
    base = pathlib.Path(tempfile.mkdtemp(prefix="pop3-getmail-"))
    os.chmod(base, 0o755)
    maildir = base / "Maildir"
    for d in ("cur", "new", "tmp"):
        (maildir / d).mkdir(parents=True)
    as_user = ""
    if IS_ROOT:
        nobody = pwd.getpwnam("nobody")
        for d in (maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
            os.chown(d, nobody.pw_uid, nobody.pw_gid)
        as_user = "user = nobody\n"
    (tmp_path / "getmailrc").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
        f"port = {pop3.ports['pop3s']}\nusername = {user}\npassword = {DEFAULT_PASSWORD}\n"
        "[destination]\ntype = Maildir\n" f"path = {maildir}/\n{as_user}"
        "[options]\ndelete = true\nread_all = true\nverbose = 2\n")
    r = subprocess.run([getmail, "--getmaildir", str(tmp_path), "--rcfile", "getmailrc"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [p.read_bytes() for p in (maildir / "new").iterdir()]
    assert len(got) == 3, r.stdout
    for b in bodies:
        assert any(b.split(b"\r\n\r\n")[1].replace(b"\r\n", b"\n") in g.replace(b"\r\n", b"\n") for g in got)
    assert pop3.inbox_count(user) == 0, "getmail deletes what it retrieved"
    shutil.rmtree(base, ignore_errors=True)
