"""imapd in the daemon set (DESIGN §1, §4): the master spawns it from [imap], it greets on the
plain (STARTTLS) and the implicit-TLS (RFC 8314) listener, runs without privileges, refuses a
client over max_connections_per_client with a BYE, and logs one line per connection open and
close. Only what the glue owns is tested here; the protocol's own tests come with the engine.
(What is sent after the greeting is framed by the glue only: these tests do not depend on the
command set.)"""
import itertools
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import IS_ROOT, WORKER_USER, assert_unprivileged, free_port, running_instance, wait_for

PER_CLIENT = 3
LOGIN_TIMEOUT = 2
COMMAND_TIMEOUT = 1
_sources = itertools.count(1)


def new_source():
    """A loopback client address no other test here uses (per-client limits count by address)."""
    n = next(_sources)
    return f"127.0.{40 + n // 250}.{n % 250 + 2}"


@pytest.fixture(scope="module")
def imap():
    ports = {"imap": free_port(), "imaps": free_port()}
    section = (f'[imap]\nlisten = ["imap@127.0.0.1:{ports["imap"]}", "imaps@127.0.0.1:{ports["imaps"]}"]\n'
               f"max_connections_per_client = {PER_CLIENT}\nlogin_timeout = {LOGIN_TIMEOUT}\n"
               f"command_timeout = {COMMAND_TIMEOUT}\n")
    with running_instance("imapd", imap_section=section) as p:
        p.ports = ports
        wait_for(lambda: "imapd ready" in p.log(), 20, what="imapd ready")
        yield p


def tls_context(p):
    """Verifies the chain against the instance's generated certificate (host name not checked)."""
    ctx = ssl.create_default_context(cafile=os.path.join(p.root, "tls", "cert.pem"))
    ctx.check_hostname = False
    return ctx


def connect(p, role="imap", src="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", p.ports[role]), timeout=15, source_address=(src, 0))
    if role == "imaps":
        s = tls_context(p).wrap_socket(s)
    return s


def read_line(s):
    line = b""
    while not line.endswith(b"\r\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return line


def at_eof(s, timeout=10):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_master_runs_imapd(imap):
    (pid,) = imap.pids("imap")
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "imapd"
    assert imap.row("imap")["STATE"] == "running"


def test_plain_listener_greets(imap):
    with connect(imap) as s:
        greeting = read_line(s)
    assert greeting.startswith(b"* OK ") and greeting.endswith(b"\r\n"), greeting


def test_implicit_tls_listener_greets_after_the_handshake(imap):
    with connect(imap, "imaps") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        greeting = read_line(s)
    assert greeting.startswith(b"* OK "), greeting


def test_openssl_s_client_gets_the_greeting(imap):
    """openssl s_client on the imaps port: the first line it prints is the greeting. (Its stdin
    stays open and empty: s_client would otherwise close before the server speaks.)"""
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{imap.ports['imaps']}", "-quiet"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert line.startswith(b"* OK "), line


def test_no_plaintext_on_the_tls_listener(imap):
    """RFC 8314 §3.3: a client that does not start TLS hears nothing in plaintext."""
    with socket.create_connection(("127.0.0.1", imap.ports["imaps"]), timeout=3) as s:
        try:
            got = s.recv(100)
        except socket.timeout:
            got = b""
    assert not got.startswith(b"* "), got


@pytest.mark.skipif(not IS_ROOT, reason="privilege dropping is only real as root")
def test_imapd_is_unprivileged(imap):
    """Uid postern, CapEff/CapPrm/CapBnd (every set) 0, NoNewPrivs 1."""
    for pid in imap.pids("imap"):
        assert_unprivileged(pid, WORKER_USER)


@pytest.mark.parametrize("role", ["imap", "imaps"])
def test_too_many_connections_from_one_client(imap, role):
    src = new_source()
    held = [connect(imap, role, src) for _ in range(PER_CLIENT)]
    try:
        assert all(read_line(c).startswith(b"* OK ") for c in held)
        extra = connect(imap, role, src)
        assert read_line(extra) == b"* BYE Too many connections from your address\r\n"
        assert at_eof(extra)
        extra.close()
        # Another address is not affected.
        with connect(imap, role, new_source()) as other:
            assert read_line(other).startswith(b"* OK ")
        # A slot comes back when a connection ends.
        held.pop().close()

        def greeted():
            with connect(imap, role, src) as c:
                return read_line(c).startswith(b"* OK ")
        wait_for(greeted, 10, interval=0.1, what="a free connection slot")
    finally:
        for c in held:
            c.close()


def test_one_log_line_per_connection_open_and_close(imap):
    src = new_source()
    with connect(imap, "imap", src) as s:
        assert read_line(s).startswith(b"* OK ")
    key = f"imap@127.0.0.1:{imap.ports['imap']}"

    def logged():
        lines = [l for l in imap.log().splitlines() if l.startswith("imapd[") and src in l]
        opened = [l for l in lines if f"connect from {src}" in l and "disconnect" not in l]
        closed = [l for l in lines if f"disconnect from {src}" in l]
        return (opened, closed) if opened and closed else None
    opened, closed = wait_for(logged, 10, what="imapd's connection lines")
    assert len(opened) == 1 and len(closed) == 1, (opened, closed)
    assert f"listener={key}" in opened[0], opened[0]
    # Both carry the same session id.
    session = opened[0].split("[", 2)[2].split("]", 1)[0]
    assert f"[{session}]" in closed[0], (opened[0], closed[0])


def test_login_timeout_reaches_the_session(imap):
    """No byte within login_timeout: the glue tells the session (and logs it)."""
    src = new_source()
    with connect(imap, "imap", src) as s:
        assert read_line(s).startswith(b"* OK ")
        wait_for(lambda: any(f"no traffic for {LOGIN_TIMEOUT}s before login from {src}" in l for l in imap.log().splitlines()),
                 LOGIN_TIMEOUT + 10, what="the login timeout")


def test_synchronizing_literal_gets_the_continuation_request(imap):
    """RFC 9051 §4.3: the glue answers a synchronizing literal within the limit with "+" as the
    session takes the command; a non-synchronizing one (LITERAL+, RFC 7888) gets none."""
    src = new_source()
    with connect(imap, "imap", src) as s:
        assert read_line(s).startswith(b"* OK ")
        s.sendall(b"a1 LOGIN {5}\r\n")
        assert read_line(s) == b"+ Ready for literal data\r\n"
        s.sendall(b"alice {6+}\r\nsecret\r\n")
        s.settimeout(1)
        with pytest.raises(socket.timeout):
            s.recv(100)


def test_stalled_command_reaches_the_session(imap):
    """A command begun and not finished: command_timeout after its last byte, the glue tells the
    session (and logs it); bytes that keep coming keep it alive."""
    src = new_source()
    with connect(imap, "imap", src) as s:
        assert read_line(s).startswith(b"* OK ")
        s.sendall(b"a1 LOGIN {5}\r\n")
        assert read_line(s) == b"+ Ready for literal data\r\n"
        for b in b"ali":                       # a byte every quarter command_timeout: no timeout
            time.sleep(COMMAND_TIMEOUT / 4)
            s.sendall(bytes([b]))
        assert not any(f"command incomplete {COMMAND_TIMEOUT}s after its last byte from {src}" in l
                       for l in imap.log().splitlines())
        wait_for(lambda: any(f"command incomplete {COMMAND_TIMEOUT}s after its last byte from {src}" in l
                             for l in imap.log().splitlines()), COMMAND_TIMEOUT + 10, what="the command timeout")


def test_documented_fail2ban_filter_covers_imapd():
    """docs/fail2ban.md's failregex takes imapd's failed-login line (AuthLog's shape, the same
    as smtpd's) and finds the client address in it; a forged client= in the user name does not
    move it. (The engine's tests log real failed LOGINs against it.)"""
    from test_smtpd import load_fail2ban_regex
    regex = load_fail2ban_regex()
    line = ("imapd[4343] warning: [2LX0K7QZ1M] authentication failed client=192.0.2.7 failures=4 mechanism=login "
            "user=alice@example.org")
    m = regex.match(line)
    assert m and m.group("host") == "192.0.2.7"
    journal = "mail postern[99]: " + line.replace("user=alice@example.org", 'user="x client=198.51.100.1"')
    m = regex.match(journal)
    assert m and m.group("host") == "192.0.2.7"
