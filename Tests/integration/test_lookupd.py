"""lookupd (DESIGN §4, issue 5): Postfix tcp_table(5) and socketmap_table(5) lookups.

Real Postfix programs are the clients: postmap(1) asks the maps, and a private Postfix instance
(its own config directory, queue and log under a temporary directory, smtpd on loopback ports,
started and stopped here) sits in front of Postern and hands mail to lmtpd. Raw sockets do the
protocol hostility. The main.cf / master.cf / postern.toml lines in docs/postfix-front.md are
the ones these tests run with (test_doc_snippets_are_the_tested_ones keeps them in step).

Addresses used (on top of conftest.populate): users 100%pure@, jürgen@, weiß@ (if the CLI takes
it) in example.test; aliases team@ -> alice, bob; grüße@ -> jürgen; 50%off@ -> 100%pure;
ext@ -> someone@remote.example; domain bücher.test.
"""
import base64
import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import (BIN, IS_ROOT, REPO, WORKER_USER, Postern, PrivatePostfix, _teardown, assert_all_unprivileged, free_port,
                      populate, wait_for)

MAPS = ("recipients", "aliases", "domains", "senders")
HAVE_POSTMAP = shutil.which("postmap") is not None
HAVE_POSTFIX = IS_ROOT and shutil.which("postfix") is not None and shutil.which("postqueue") is not None
needs_postmap = pytest.mark.skipif(not HAVE_POSTMAP, reason="postmap (Postfix) not installed")
needs_postfix = pytest.mark.skipif(not HAVE_POSTFIX, reason="a private Postfix instance needs root and Postfix")
DOC = os.path.join(REPO, "docs", "postfix-front.md")


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


# The LMTP socket as the Postfix front needs it: Postfix's lmtp client runs as user postfix.
USE_POSTFIX_GROUP = IS_ROOT and _group_exists("postfix")


# ---------------------------------------------------------------------------------------------
# Configuration snippets. Each is rendered twice: with the test's ports and paths (the running
# config) and with the documentation's (docs/postfix-front.md must contain that rendering).

DOC_VALUES = {
    "ports": {"socketmap": 10030, "recipients": 10031, "aliases": 10032, "domains": 10033, "senders": 10034},
    "lmtp_socket": "/run/postern/lmtp",
    "smtp": "smtp",
    "submission": "submission",
}


def postern_lmtp_toml():
    return 'socket_group = "postfix"\nsocket_mode = "0660"\n'


def postern_lookup_toml(ports):
    """[lookup] with every map: one socketmap listener, one tcp_table listener per map."""
    return (
        "[lookup]\n"
        f'socketmap = ["127.0.0.1:{ports["socketmap"]}"]\n'
    ), (
        "[lookup.tcp_table]\n"
        + "".join(f'{m} = "127.0.0.1:{ports[m]}"\n' for m in MAPS)
    )


def map_ref(kind, m, ports):
    """How main.cf names lookupd's map `m` in a front of this kind."""
    if kind in ("tcp", "relay"):
        return f"tcp:127.0.0.1:{ports[m]}"
    if kind == "socketmap":
        return f"socketmap:inet:127.0.0.1:{ports['socketmap']}:{m}"
    if kind == "proxy":
        return f"proxy:tcp:127.0.0.1:{ports[m]}"
    raise ValueError(kind)


def front_main_cf(kind, ports, lmtp_socket):
    """The main.cf lines that put Postfix in front of Postern (the documented part)."""
    r = lambda m: map_ref(kind, m, ports)  # noqa: E731
    if kind == "relay":
        lines = [f"relay_domains = {r('domains')}",
                 f"relay_recipient_maps = {r('recipients')}",
                 f"virtual_alias_maps = {r('aliases')}",
                 "virtual_alias_domains =",
                 f"smtpd_sender_login_maps = {r('senders')}",
                 f"relay_transport = lmtp:unix:{lmtp_socket}"]
    else:
        lines = [f"virtual_mailbox_domains = {r('domains')}",
                 f"virtual_mailbox_maps = {r('recipients')}",
                 f"virtual_alias_maps = {r('aliases')}",
                 "virtual_alias_domains =",
                 f"smtpd_sender_login_maps = {r('senders')}",
                 f"virtual_transport = lmtp:unix:{lmtp_socket}"]
    lines += ["smtpd_relay_restrictions = reject_unauth_destination",
              "smtpd_recipient_restrictions = reject_unlisted_recipient"]
    return "\n".join(lines) + "\n"


def front_master_cf_lines(smtp, submission):
    """The master.cf lines of the documented part: smtpd, a submission smtpd that checks sender
    ownership with lookupd's senders map, and the lmtp client with chroot "n"."""
    return (
        f"{smtp:<9} inet  n       -       n       -       -       smtpd\n",
        f"{submission:<9} inet  n       -       n       -       -       smtpd\n"
        "  -o syslog_name=postfix/submission\n"
        "  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n",
        "lmtp      unix  -       -       n       -       -       lmtp\n",
    )


# ---------------------------------------------------------------------------------------------
# The Postern instance (one per module) and its data

def add_lookup_data(p):
    p.add_user("100%pure@example.test")
    p.add_user("jürgen@example.test")
    p.cli("alias", "add", "team@example.test", "alice@example.test")
    p.cli("alias", "add", "team@example.test", "bob@example.test")
    p.cli("alias", "add", "grüße@example.test", "jürgen@example.test")
    p.cli("alias", "add", "50%off@example.test", "100%pure@example.test")
    p.cli("alias", "add", "ext@example.test", "someone@remote.example")
    p.cli("domain", "add", "bücher.test")
    # Postfix case-folds keys with full Unicode case folding (ß -> ss) before it asks a table;
    # see test_postfix_casefolded_keys_are_found. Either the CLI refuses such an address, or
    # the lookups must find it under the folded key.
    p.weiss_added = p.cli("user", "add", "weiß@example.test", "--password-stdin", input="pw\n",
                          check=False).returncode == 0


def lookup_instance(name, ports, **settings):
    lookup, tcp_table = postern_lookup_toml(ports)
    extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
    lmtp = postern_lmtp_toml() if USE_POSTFIX_GROUP else ""
    return Postern(name=name, lmtp_extra=lmtp + "\n" + lookup + extra + "\n" + tcp_table)


@pytest.fixture(scope="module")
def lk():
    assert os.access(os.path.join(BIN, "lookupd"), os.X_OK), f"lookupd not built in {BIN}"
    ports = {m: free_port() for m in ("socketmap",) + MAPS}
    p = lookup_instance("lookup", ports, request_timeout="1.0")
    try:
        p.start()
        populate(p)
        add_lookup_data(p)
        p.ports = ports
        (p.lookupd_pid,) = p.pids("lookup")
        yield p
    finally:
        _teardown(p)


def assert_lookupd_survived(p):
    row = p.row("lookup")
    assert int(row["PID"]) == p.lookupd_pid and row["STATE"] == "running" and row["RESTARTS"] == "0", \
        f"lookupd was restarted: {row}"
    assert not re.search(r"lookupd.*(crash|fatal|signal)", p.log(), re.I), p.log_tail()


@contextlib.contextmanager
def store_stopped(p):
    """SIGSTOP the store (it keeps its connections, answers nothing), SIGCONT afterwards."""
    pid = p.store_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


# ---------------------------------------------------------------------------------------------
# Raw clients

class TCPTableClient:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        line = self.f.readline()
        assert line, "lookupd closed the connection"
        assert line.endswith(b"\n"), line
        return line

    def ask(self, line):
        self.send(line)
        return self.reply()

    def get(self, key):
        return self.ask(b"get " + key + b"\n")

    def close(self):
        self.f.close()
        self.sock.close()


def tcp_not_found(r):
    """A tcp_table "not found" (500 with lookupd's not-found text, %-encoded or not)."""
    return r.startswith(b"500 ") and r[4:].rstrip(b"\n").replace(b"%20", b" ") == b"not found"


def ns(body):
    return str(len(body)).encode() + b":" + body + b","


class SocketMapClient(TCPTableClient):
    def reply(self):
        n = b""
        while True:
            c = self.f.read(1)
            assert c, "lookupd closed the connection"
            if c == b":":
                break
            assert c.isdigit() and len(n) < 10, f"bad netstring length from lookupd: {n + c!r}"
            n += c
        body = self.f.read(int(n))
        assert self.f.read(1) == b",", "netstring from lookupd not terminated by ','"
        return body

    def ask(self, body):
        self.send(ns(body))
        return self.reply()

    def get(self, m, key):
        return self.ask(m.encode() + b" " + key)


def closed_by_peer(sock, timeout):
    """True once the peer closed (EOF or reset) within `timeout`; any data read is returned
    in the assertion message instead."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            c = sock.recv(4096)
            if not c:
                break
            got += c
    except ConnectionResetError:
        pass
    assert got == b"", f"unexpected bytes before close: {got[:200]!r}"
    return True


# ---------------------------------------------------------------------------------------------
# 1. postmap against both protocols

# (map, key, value or None for "not found")
CASES = {
    "recipients": [
        ("alice@example.test", "OK"),
        ("ALICE@Example.TEST", "OK"),
        ("alice+news@example.test", "OK"),            # +detail
        ("postmaster@example.test", "OK"),            # alias
        ("team@example.test", "OK"),                  # alias with two targets
        ("ext@example.test", "OK"),                   # alias to a remote address
        ("@catch.test", "OK"),                        # (Postfix itself never asks partial keys)
        ("anyone@catch.test", "OK"),                  # any address of a catch-all domain
        ("anyone+x@catch.test", "OK"),
        ("100%pure@example.test", "OK"),              # percent sign in the local part
        ("jürgen@example.test", "OK"),                # UTF-8
        ("JÜRGEN@EXAMPLE.TEST", "OK"),
        ("jürgen+ärger@example.test", "OK"),
        ("grüße@example.test", "OK"),
        ("nobody@example.test", None),                # unknown user
        ("nobody+x@example.test", None),
        ("@example.test", None),                      # not a catch-all domain
        ("alice@unknown.test", None),                 # unknown domain
        ("@unknown.test", None),
        ("example.test", None),                       # a bare domain is no recipient
        ("john doe@example.test", None),              # space: no such address can exist
        ("100%@example.test", None),
        ("%41lice@example.test", None),               # a literal "%41", not "A"
        ("ünknown@example.test", None),
        ("alice@bücher.test", None),
    ],
    "aliases": [
        ("postmaster@example.test", "alice@example.test"),
        ("team@example.test", "alice@example.test,bob@example.test"),
        ("@catch.test", "alice@example.test"),
        ("grüße@example.test", "jürgen@example.test"),
        ("50%off@example.test", "100%pure@example.test"),
        ("ext@example.test", "someone@remote.example"),
        ("alice@example.test", None),                 # a user is no alias
        ("team+x@example.test", None),                # exact entries only: +detail and catch-all
        ("anyone@catch.test", None),                  # forms are expanded by Postern at LMTP time
        ("example.test", None),                       # (virtual_alias_domains would ask this)
        ("nobody@unknown.test", None),
        ("john doe@example.test", None),
    ],
    "domains": [
        ("example.test", "OK"),
        ("EXAMPLE.test", "OK"),
        ("catch.test", "OK"),
        ("bücher.test", "OK"),
        ("BÜCHER.TEST", "OK"),
        ("unknown.test", None),
        ("alice@example.test", None),
        ("exa mple.test", None),
        ("ex%61mple.test", None),
    ],
    "senders": [
        ("alice@example.test", "alice@example.test"),
        ("Alice@Example.Test", "alice@example.test"),
        ("alice+tag@example.test", "alice@example.test"),
        ("postmaster@example.test", "alice@example.test"),        # alias -> the user it points to
        ("team@example.test", "alice@example.test,bob@example.test"),
        ("grüße@example.test", "jürgen@example.test"),
        ("50%off@example.test", "100%pure@example.test"),
        ("100%pure@example.test", "100%pure@example.test"),
        ("anyone@catch.test", None),                  # a catch-all grants no sender address
        ("ext@example.test", None),                   # an alias to a remote address has no login
        ("nobody@example.test", None),
        ("alice@unknown.test", None),
        ("john doe@example.test", None),
    ],
}


@pytest.fixture(scope="module")
def postmap_conf():
    d = tempfile.mkdtemp(prefix="postern-it-postmap-")
    with open(os.path.join(d, "main.cf"), "w") as f:
        f.write("compatibility_level = 3.6\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def postmap(conf, *args, input=None, timeout=30):
    r = subprocess.run(["postmap", "-c", conf, *args], input=input, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace")


def table(p, transport, m):
    return map_ref("tcp" if transport == "tcp" else "socketmap", m, p.ports)


@needs_postmap
@pytest.mark.parametrize("transport", ["tcp", "socketmap"])
@pytest.mark.parametrize("m", MAPS)
def test_postmap_answers(lk, postmap_conf, transport, m):
    """`postmap -q KEY TABLE`: found -> exit 0 and the value; not found -> exit 1, no output,
    no warning (an error would also exit 1, but with "query error" on stderr)."""
    t = table(lk, transport, m)
    wrong = []
    for key, want in CASES[m]:
        got = postmap(postmap_conf, "-q", key, t)
        expected = (0, want + "\n", "") if want is not None else (1, "", "")
        if got != expected:
            wrong.append(f"{key!r}: expected {expected}, got {got}")
    assert not wrong, f"postmap -q ... {t}:\n" + "\n".join(wrong)
    assert_lookupd_survived(lk)


@needs_postmap
@pytest.mark.parametrize("transport", ["tcp", "socketmap"])
def test_postmap_many_keys_on_one_connection(lk, postmap_conf, transport):
    """`postmap -q -` asks every key from stdin in turn on one connection."""
    keys = [k for k, _ in CASES["recipients"] if " " not in k] * 5
    rc, out, err = postmap(postmap_conf, "-q", "-", table(lk, transport, "recipients"),
                           input="".join(k + "\n" for k in keys).encode())
    assert rc == 0 and err == "", (rc, err)
    want = "".join(f"{k}\t{v}\n" for k, v in CASES["recipients"] if " " not in k and v is not None) * 5
    assert out == want


def test_space_in_local_part_is_refused_by_the_cli(lk):
    """Spaces cannot be in a Postern address, so the space keys above can only be "not found"."""
    r = lk.cli("user", "add", "john doe@example.test", "--password-stdin", input="pw\n", check=False)
    assert r.returncode != 0 and "invalid" in r.stderr.lower(), (r.returncode, r.stderr)


@needs_postmap
@pytest.mark.parametrize("transport", ["tcp", "socketmap"])
def test_postfix_casefolded_keys_are_found(lk, postmap_conf, transport):
    """Postfix (smtputf8_enable = yes, the default) case-folds an address with full Unicode
    case folding before it asks virtual_mailbox_maps, virtual_alias_maps or
    smtpd_sender_login_maps: for RCPT TO:<grüße@example.test> lookupd is asked
    "grüsse@example.test" (seen on the wire with Postfix 3.7). So the folded key must find the
    address -- or Postern must refuse to create addresses whose folded form differs."""
    cases = [("aliases", "grüsse@example.test", "jürgen@example.test"),
             ("recipients", "grüsse@example.test", "OK"),
             ("senders", "grüsse@example.test", "jürgen@example.test")]
    if lk.weiss_added:
        cases += [("recipients", "weiss@example.test", "OK"), ("senders", "weiss@example.test", "weiß@example.test")]
    wrong = []
    for m, key, want in cases:
        got = postmap(postmap_conf, "-q", key, table(lk, transport, m))
        if got != (0, want + "\n", ""):
            wrong.append(f"{m} {key!r}: expected {want!r}, got {got}")
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------------------------------------
# 2. Raw protocol hostility

def test_tcp_table_put_is_refused(lk):
    c = TCPTableClient(lk.ports["aliases"])
    try:
        assert c.ask(b"put team@example.test evil@attacker.example\n").startswith(b"500 ")
        assert c.ask(b"PUT postmaster@example.test x\n").startswith(b"500 ")
        assert c.get(b"team@example.test") == b"200 alice@example.test,bob@example.test\n"
    finally:
        c.close()
    assert_lookupd_survived(lk)


BAD_TCP_TABLE_LINES = [
    b"hello\n",
    b"\n",
    b"get\n",
    b"get \n",
    b"get a b\n",                       # an unencoded space splits the key
    b"get alice@example.test extra\n",
    b"get a%zz@example.test\n",         # bad %-encoding
    b"get alice@example.test%\n",
    b"get alice@example.test%4\n",
    b"get %ff%fe@example.test\n",       # decodes to invalid UTF-8
    b"delete alice@example.test\n",
    b"\x00\x01\x02\xff\n",
    b"get " + b"a" * 2000 + b"@example.test\n",   # key longer than max_key_length (1024)
]


def test_tcp_table_bad_requests_get_500_and_the_connection_keeps_working(lk):
    c = TCPTableClient(lk.ports["recipients"])
    try:
        for line in BAD_TCP_TABLE_LINES:
            r = c.ask(line)
            assert r.startswith(b"500 "), (line[:60], r)
            assert re.fullmatch(rb"500 [!-~]*\n", r), f"reply text must be %-encoded: {r!r}"
            assert c.get(b"alice@example.test") == b"200 OK\n", f"after {line[:60]!r}"
    finally:
        c.close()
    assert_lookupd_survived(lk)


def test_nul_in_a_key_is_a_permanent_error_never_a_shorter_key(lk):
    """A NUL (tcp_table %00, a raw NUL in a socketmap netstring) is refused with a permanent
    error; it never reaches SQLite's C strings, where the key would be cut short and match."""
    c = TCPTableClient(lk.ports["recipients"])
    try:
        for key in (b"alice@example.test%00", b"alice@example.test%00.evil", b"alice%00@example.test"):
            r = c.get(key)
            assert r.startswith(b"500 ") and not tcp_not_found(r), (key, r)
        assert c.get(b"alice@example.test") == b"200 OK\n"
    finally:
        c.close()
    d = TCPTableClient(lk.ports["domains"])
    try:
        r = d.get(b"example.test%00.evil")
        assert r.startswith(b"500 ") and not tcp_not_found(r), r
    finally:
        d.close()
    s = SocketMapClient(lk.ports["socketmap"])
    try:
        assert s.get("recipients", b"alice@example.test\x00").startswith(b"PERM "), "socketmap NUL"
    finally:
        s.close()
    assert_lookupd_survived(lk)


def test_tcp_table_overlong_line_gets_one_500_and_the_connection_keeps_working(lk):
    """A request line longer than max_request_length (4096) is answered once with 500; what
    follows the line's end is the next request. Sent in two parts so that lookupd has already
    answered the first 4097+ bytes before the rest of the line (and the next request) arrives."""
    c = TCPTableClient(lk.ports["recipients"])
    try:
        c.send(b"get " + b"a" * 5000)
        first = c.reply()
        assert first.startswith(b"500 "), first
        c.send(b"a" * 3000 + b"@example.test\nget alice@example.test\n")
        assert c.reply() == b"200 OK\n", "the rest of the over-long line was answered as a request of its own"
        assert c.get(b"nobody@example.test").startswith(b"500 ")
        assert c.get(b"alice@example.test") == b"200 OK\n"
    finally:
        c.close()
    # The same in one send.
    c = TCPTableClient(lk.ports["recipients"])
    try:
        c.send(b"get " + b"b" * 20000 + b"\nget alice@example.test\nget bob@example.test\n")
        assert c.reply().startswith(b"500 ")
        assert c.reply() == b"200 OK\n"
        assert c.reply() == b"200 OK\n"
    finally:
        c.close()
    assert_lookupd_survived(lk)


def test_tcp_table_percent_encoding_both_ways(lk):
    p = lk.ports
    c = TCPTableClient(p["aliases"])
    try:
        assert c.get(b"gr%C3%BC%C3%9Fe@example.test") == b"200 j%C3%BCrgen@example.test\n"
        assert c.get(b"gr%c3%bc%c3%9fe@example.test") == b"200 j%C3%BCrgen@example.test\n"
        assert c.get(b"50%25off@example.test") == b"200 100%25pure@example.test\n"
    finally:
        c.close()
    c = TCPTableClient(p["recipients"])
    try:
        assert c.get(b"%41LICE@example.test") == b"200 OK\n"            # encoded ASCII is decoded
        assert c.get(b"100%25pure@example.test") == b"200 OK\n"
        assert c.get(b"J%C3%9CRGEN@example.test") == b"200 OK\n"
        assert c.get("jürgen@example.test".encode()) == b"200 OK\n"       # raw UTF-8 also works
        assert tcp_not_found(c.get(b"john%20doe@example.test"))
        assert c.get(b"a%00b@example.test").startswith(b"500 ")
    finally:
        c.close()
    c = TCPTableClient(p["domains"])
    try:
        assert c.get(b"b%C3%BCcher.test") == b"200 OK\n"
    finally:
        c.close()


def test_tcp_table_pipelined_requests_are_answered_in_order(lk):
    keys = [(b"alice@example.test", b"200 OK\n"), (b"nobody@example.test", "not found"),
            (b"anyone@catch.test", b"200 OK\n"), (b"x@unknown.test", "not found"),
            (b"j%C3%BCrgen@example.test", b"200 OK\n")]
    reqs, want = [], []
    for i in range(300):
        if i % 37 == 5:
            reqs.append(b"put k v\n"); want.append(None)
        elif i % 41 == 7:
            reqs.append(b"get bad%zz\n"); want.append(None)
        else:
            k, r = keys[i % len(keys)]
            reqs.append(b"get " + k + b"\n"); want.append(r)
    c = TCPTableClient(lk.ports["recipients"])
    try:
        c.send(b"".join(reqs))
        for i, w in enumerate(want):
            r = c.reply()
            if w is None:
                assert r.startswith(b"500 ") and not tcp_not_found(r), (i, reqs[i], r)
            elif w == "not found":
                assert tcp_not_found(r), (i, reqs[i], r)
            else:
                assert r == w, (i, reqs[i], r)
    finally:
        c.close()


def test_tcp_table_request_arriving_byte_by_byte(lk):
    c = TCPTableClient(lk.ports["recipients"])
    try:
        for b in b"get alice@example.test\r":
            c.send(bytes([b]))
        c.send(b"\n")
        assert c.reply() == b"200 OK\n"
    finally:
        c.close()


@pytest.mark.parametrize("payload, what", [
    (b"abc", "no length"),
    (b"05:hello,", "leading zero"),
    (b":x,", "empty length"),
    (b"3:abcd,", "not terminated by ','"),
    (b"99999999999:x", "absurd length"),
    (b"5000:" + b"x" * 5001, "longer than max_request_length"),
    (ns(b"recipients"), "no map name / key separator"),
    (ns(b"recipients "), "empty key"),
    (ns(b"recipients \xff\xfe@example.test"), "invalid UTF-8"),
    (ns(b"recipients " + b"a" * 2000), "key too long"),
])
def test_socketmap_bad_netstring_gets_perm_then_close(lk, payload, what):
    c = SocketMapClient(lk.ports["socketmap"])
    try:
        c.send(ns(b"recipients alice@example.test") + payload)
        assert c.reply() == b"OK OK", "the valid request before the bad one is answered first"
        r = c.reply()
        assert r.startswith(b"PERM "), (what, r)
        assert closed_by_peer(c.sock, 10)
    finally:
        c.close()
    assert_lookupd_survived(lk)


def test_socketmap_unknown_map_is_perm_and_the_connection_stays(lk):
    c = SocketMapClient(lk.ports["socketmap"])
    try:
        r = c.get("nosuchmap", b"alice@example.test")
        assert r.startswith(b"PERM ") and b"nosuchmap" in r, r
        assert c.get("Recipients", b"alice@example.test").startswith(b"PERM ")   # names are exact
        assert c.get("recipients", b"alice@example.test") == b"OK OK"
    finally:
        c.close()
    assert_lookupd_survived(lk)


def test_socketmap_answers_every_map(lk):
    c = SocketMapClient(lk.ports["socketmap"])
    try:
        assert c.get("aliases", "grüße@example.test".encode()) == "OK jürgen@example.test".encode()
        assert c.get("aliases", b"team@example.test") == b"OK alice@example.test,bob@example.test"
        assert c.get("domains", "bücher.test".encode()) == b"OK OK"
        assert c.get("senders", b"postmaster@example.test") == b"OK alice@example.test"
        assert c.get("recipients", b"john doe@example.test") == b"NOTFOUND "
        assert c.get("recipients", b"100%pure@example.test") == b"OK OK"      # no %-decoding here
        assert c.get("recipients", b"100%25pure@example.test") == b"NOTFOUND "
    finally:
        c.close()


def test_socketmap_pipelined_requests_are_answered_in_order(lk):
    pairs = [(b"recipients alice@example.test", b"OK OK"), (b"recipients nobody@example.test", b"NOTFOUND "),
             (b"aliases team@example.test", b"OK alice@example.test,bob@example.test"),
             (b"nomap alice@example.test", None), (b"domains catch.test", b"OK OK"),
             (b"senders team@example.test", b"OK alice@example.test,bob@example.test")]
    seq = [pairs[i % len(pairs)] for i in range(300)]
    c = SocketMapClient(lk.ports["socketmap"])
    try:
        c.send(b"".join(ns(q) for q, _ in seq))
        for i, (q, w) in enumerate(seq):
            r = c.reply()
            if w is None:
                assert r.startswith(b"PERM "), (i, q, r)
            else:
                assert r == w, (i, q, r)
    finally:
        c.close()


def test_socketmap_request_arriving_byte_by_byte(lk):
    c = SocketMapClient(lk.ports["socketmap"])
    try:
        for b in ns(b"recipients alice@example.test"):
            c.send(bytes([b]))
        assert c.reply() == b"OK OK"
    finally:
        c.close()


def test_answers_for_requests_sent_before_a_half_close(lk):
    """A client may send its last request and shut down its sending side at once
    (`printf 'get alice@example.test\\n' | nc -N 127.0.0.1 PORT`): the requests already sent
    are still answered before lookupd closes."""
    got = {}
    c = TCPTableClient(lk.ports["recipients"])
    try:
        c.send(b"get alice@example.test\nget nobody@example.test\n")
        c.sock.shutdown(socket.SHUT_WR)
        got["tcp_table"] = c.f.read()
    finally:
        c.close()
    c = SocketMapClient(lk.ports["socketmap"])
    try:
        c.send(ns(b"recipients alice@example.test"))
        c.sock.shutdown(socket.SHUT_WR)
        got["socketmap"] = c.f.read()
    finally:
        c.close()
    t = got["tcp_table"].split(b"\n")
    assert len(t) == 3 and t[0] == b"200 OK" and tcp_not_found(t[1] + b"\n") and t[2] == b"", got
    assert got["socketmap"] == b"5:OK OK,", got
    assert_lookupd_survived(lk)


# ---------------------------------------------------------------------------------------------
# 3. Store unavailable: temporary answers, so that Postfix defers instead of rejecting

def test_store_unavailable_gives_temporary_answers(lk):
    t = TCPTableClient(lk.ports["recipients"], timeout=15)
    s = SocketMapClient(lk.ports["socketmap"], timeout=15)
    try:
        assert t.get(b"alice@example.test") == b"200 OK\n"
        with store_stopped(lk):
            t0 = time.monotonic()
            r = t.get(b"alice@example.test")
            assert r.startswith(b"400 ") and re.fullmatch(rb"400 [!-~]+\n", r), r
            assert 0.8 <= time.monotonic() - t0 < 8, "request_timeout = 1.0 is not honoured"
            assert t.get(b"nobody@example.test").startswith(b"400 "), "unknown users are not 'not found' then"
            assert s.get("recipients", b"alice@example.test").startswith(b"TEMP ")
            assert s.get("aliases", b"team@example.test").startswith(b"TEMP ")
        # The store's late answers to the timed-out requests must not leak into the stream.
        assert tcp_not_found(t.get(b"nobody@example.test"))
        assert t.get(b"alice@example.test") == b"200 OK\n"
        assert s.get("recipients", b"nobody@example.test") == b"NOTFOUND "
        assert s.get("aliases", b"team@example.test") == b"OK alice@example.test,bob@example.test"
    finally:
        t.close()
        s.close()
    assert "temporary failure" in lk.log()
    assert_lookupd_survived(lk)


# ---------------------------------------------------------------------------------------------
# Limits: idle timeout, connection limit (their own instance)

@pytest.fixture(scope="module")
def lk_limits():
    ports = {m: free_port() for m in ("socketmap",) + MAPS}
    p = lookup_instance("lookuplimits", ports, idle_timeout="1", max_connections="2")
    try:
        p.start()
        populate(p)
        p.ports = ports
        (p.lookupd_pid,) = p.pids("lookup")
        yield p
    finally:
        _teardown(p)


def connect_when_a_slot_is_free(port, check):
    """Connects and asks once; retries while an earlier test's connections are still being
    released (the connection limit is 2 here)."""
    def attempt():
        c = TCPTableClient(port, timeout=5) if check == "tcp" else SocketMapClient(port, timeout=5)
        try:
            ok = c.get(b"alice@example.test")[:4] in (b"200 ", b"500 ") if check == "tcp" \
                else (c.get("recipients", b"alice@example.test") == b"OK OK")
        except (AssertionError, OSError):
            ok = False
        if not ok:
            c.close()
            return None
        return c
    return wait_for(attempt, 10, interval=0.1, what="a lookupd connection slot")


def test_idle_connections_are_closed(lk_limits):
    p = lk_limits.ports
    t = connect_when_a_slot_is_free(p["recipients"], "tcp")
    t_last = time.monotonic()                 # its last request
    s = connect_when_a_slot_is_free(p["socketmap"], "socketmap")
    s_last = time.monotonic()
    try:
        assert closed_by_peer(s.sock, 10)
        assert 0.8 <= time.monotonic() - s_last < 6, time.monotonic() - s_last
        assert closed_by_peer(t.sock, 10)     # closed already (idle_timeout = 1)
        assert time.monotonic() - t_last < 6
    finally:
        t.close()
        s.close()
    assert_lookupd_survived(lk_limits)


def test_requests_keep_a_connection_open(lk_limits):
    c = connect_when_a_slot_is_free(lk_limits.ports["recipients"], "tcp")
    try:
        for _ in range(4):                    # 2 s in all, twice the idle timeout
            time.sleep(0.5)
            assert c.get(b"alice@example.test") == b"200 OK\n"
    finally:
        c.close()


def tcp_sockets(local_port=None, remote_port=None):
    """States of the loopback IPv4 TCP sockets with this local or remote port (/proc/net/tcp):
    "01" established, "08" close-wait (the peer has closed), ..."""
    states = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lport, rport, st = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[3]
            if (local_port is None or lport == local_port) and (remote_port is None or rport == remote_port):
                states.append(st)
    return states


def no_open_lookupd_connections(p):
    return not any(st in ("01", "08") for port in p.ports.values() for st in tcp_sockets(local_port=port))


@needs_postmap
def test_postfix_clients_recover_from_the_idle_close(lk_limits, postmap_conf):
    """Postfix keeps its table connections open; once lookupd has closed one for idleness,
    the next lookup must still be answered. (tcp: Postfix logs "unexpected EOF", sleeps 1 s
    and reconnects; socketmap reconnects at once and silently.)"""
    p = lk_limits.ports
    wait_for(lambda: no_open_lookupd_connections(lk_limits), 10, what="earlier connections to go")
    ports = {"tcp": p["recipients"], "socketmap": p["socketmap"]}
    procs = {t: subprocess.Popen(["postmap", "-c", postmap_conf, "-q", "-", map_ref(t, "recipients", p)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for t in ports}
    try:
        for proc in procs.values():
            proc.stdin.write(b"alice@example.test\n")
            proc.stdin.flush()
        # postmap's output is buffered until it exits: watch its connections instead.
        for t, port in ports.items():
            wait_for(lambda: "01" in tcp_sockets(remote_port=port), 10, what=f"postmap ({t}) connected")
        for t, port in ports.items():     # idle_timeout = 1: lookupd closes, postmap's side waits
            wait_for(lambda: "08" in tcp_sockets(remote_port=port) and "01" not in tcp_sockets(remote_port=port),
                     10, what=f"idle close ({t})")
        out = {t: proc.communicate(b"bob@example.test\nnobody@example.test\n", timeout=20)
               for t, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for t, (stdout, stderr) in out.items():
        assert procs[t].returncode == 0, (t, stderr)
        assert stdout == b"alice@example.test\tOK\nbob@example.test\tOK\n", (t, stdout, stderr)
    assert out["socketmap"][1] == b"", out["socketmap"][1]
    assert b"unexpected EOF" in out["tcp"][1] and b"fatal" not in out["tcp"][1], out["tcp"][1]


def test_connection_limit(lk_limits):
    p = lk_limits.ports
    held = [connect_when_a_slot_is_free(p["recipients"], "tcp"),
            connect_when_a_slot_is_free(p["socketmap"], "socketmap")]
    try:
        for port in (p["aliases"], p["socketmap"]):
            extra = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                try:
                    extra.sendall(b"get team@example.test\n")
                except OSError:
                    pass
                assert closed_by_peer(extra, 10), "a connection over max_connections must be closed"
            finally:
                extra.close()
        # the held ones still work
        assert held[0].get(b"bob@example.test") == b"200 OK\n"
        assert held[1].get("recipients", b"bob@example.test") == b"OK OK"
    finally:
        for c in held:
            c.close()
    wait_for(lambda: "connection limit 2 reached" in lk_limits.log(), 10, what="the refusal in the log")
    c = connect_when_a_slot_is_free(p["aliases"], "tcp")      # slots free up again
    c.close()
    assert_lookupd_survived(lk_limits)


# ---------------------------------------------------------------------------------------------
# 5. lookupd's privileges (the role's RPC limits are unit-tested)

@pytest.mark.skipif(not IS_ROOT, reason="privilege dropping is only real as root")
def test_lookupd_runs_unprivileged(lk):
    with open(f"/proc/{lk.lookupd_pid}/comm") as f:
        assert f.read().strip() == "lookupd"
    rows = assert_all_unprivileged(lk)
    assert lk.lookupd_pid in [int(r["PID"]) for r in rows if r["SERVICE"] == "lookup"]
    pw = pwd.getpwnam(WORKER_USER)
    # ... and it cannot read the mail store's files.
    assert os.stat(lk.data_dir).st_uid != pw.pw_uid


# ---------------------------------------------------------------------------------------------
# 4. A real Postfix in front of Postern

class FakeDovecotAuth:
    """A stand-in for the SASL server of Postfix's submission service (Dovecot's auth protocol,
    which Postfix speaks with smtpd_sasl_type = dovecot): PLAIN with password "pw" logs in as
    any name. Postern's own passwords are not involved; the test is about sender ownership."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        with c:
            c.sendall(b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t" + b"0" * 32 + b"\nDONE\n")
            for line in c.makefile("rb"):
                parts = line.rstrip(b"\n").split(b"\t")
                if parts[0] not in (b"AUTH", b"CONT") or len(parts) < 2:
                    continue
                rid = parts[1]
                resp = parts[2] if parts[0] == b"CONT" and len(parts) > 2 else \
                    next((x[5:] for x in parts if x.startswith(b"resp=")), None)
                if resp is None:
                    c.sendall(b"CONT\t" + rid + b"\t\n")
                    continue
                try:
                    _, login, password = base64.b64decode(resp).split(b"\0")
                except ValueError:
                    login, password = b"", b""
                verdict = b"OK" if password == b"pw" and login else b"FAIL"
                c.sendall(verdict + b"\t" + rid + b"\tuser=" + login + b"\n")

    def close(self):
        self.srv.close()


class PostfixFront(PrivatePostfix):
    """Postfix in front of Postern as docs/postfix-front.md says: smtpd and a submission smtpd
    on free loopback ports; no local delivery, no outbound mail."""

    def __init__(self, kind, lk, sasl_port):
        super().__init__(kind)
        self.kind = kind
        self.submission_port = free_port()
        smtpd, submission, lmtp = front_master_cf_lines(f"127.0.0.1:{self.smtp_port}",
                                                         f"127.0.0.1:{self.submission_port}")
        self.write_config(
            self.base_main_cf("Tests/integration/test_lookupd.py", "front.postern.test")
            + "default_transport = error:outbound mail is disabled\n"
            "smtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = inet:127.0.0.1:{sasl_port}\n"
            "# --- Postfix in front of Postern (docs/postfix-front.md) ---\n"
            + front_main_cf(kind, lk.ports, lk.lmtp_socket),
            self.master_cf(smtpd, submission, lmtp))

    def smtp(self, port=None):
        c = smtplib.SMTP("127.0.0.1", port or self.smtp_port, timeout=30)
        code, _ = c.ehlo("client.example.org")
        assert code == 250
        return c


FRONT_KINDS = ["tcp", "socketmap", "proxy", "relay"]


@pytest.fixture(scope="module")
def sasl():
    a = FakeDovecotAuth()
    yield a
    a.close()


@pytest.fixture(scope="module", params=FRONT_KINDS)
def front(request, lk, sasl):
    if not HAVE_POSTFIX:
        pytest.skip("a private Postfix instance needs root and Postfix")
    f = PostfixFront(request.param, lk, sasl.port)
    try:
        f.start()
        yield f
    finally:
        try:
            f.stop()
            leftover = f.processes()
            assert not leftover, f"Postfix processes left: {leftover}"
        finally:
            f.cleanup()


def rcpt_all(c, recipients, sender="sender@example.org", utf8=False):
    if utf8:
        c.command_encoding = "utf-8"
    mail = c.mail(sender, ["SMTPUTF8"] if utf8 else [])
    assert mail[0] == 250, mail
    return {r: c.rcpt(r) for r in recipients}


def message(msgid, subject="via postfix"):
    return (f"From: sender@example.org\r\nTo: someone@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\n\r\nDelivered by Postfix through lmtpd.\r\n").encode()


def delivered(p, user, msgid):
    return [m for m in p.export(user) if msgid.encode() in m]


@needs_postfix
def test_main_cf_maps_answer_through_postfix(front, lk):
    """Every map as main.cf names it (proxy: through the running proxymap) answers."""
    wrong = []
    for param, key, want in [("smtpd_sender_login_maps", "team@example.test", "alice@example.test,bob@example.test"),
                             ("virtual_alias_maps", "postmaster@example.test", "alice@example.test"),
                             ("relay_recipient_maps" if front.kind == "relay" else "virtual_mailbox_maps",
                              "alice@example.test", "OK"),
                             ("relay_domains" if front.kind == "relay" else "virtual_mailbox_domains",
                              "example.test", "OK")]:
        t = subprocess.run(["postconf", "-c", front.etc, "-h", param], capture_output=True, text=True).stdout.strip()
        got = postmap(front.etc, "-q", key, t)
        if got != (0, want + "\n", ""):
            wrong.append(f"{param} = {t}: {key}: {got}")
    assert not wrong, "\n".join(wrong)


@needs_postfix
def test_mail_to_existing_users_arrives_through_lmtpd(front, lk):
    msgid = f"<{front.kind}-{uuid.uuid4().hex}@front.test>"
    c = front.smtp()
    try:
        replies = rcpt_all(c, ["alice@example.test", "team@example.test", "anyone@catch.test",
                               "alice+front@example.test", "100%pure@example.test"])
        # Postfix takes "%" in a local part for sender-specified routing (allow_percent_hack)
        # and refuses it as a relay attempt before it asks any map: such users are unreachable
        # through Postfix with its default settings.
        code, text = replies.pop("100%pure@example.test")
        assert code == 554 and b"Relay access denied" in text, (code, text)
        assert all(code == 250 for code, _ in replies.values()), replies
        code, text = c.data(message(msgid))
        assert code == 250 and b"queued as" in text, (code, text)
    finally:
        c.quit()
    for user in ("alice@example.test", "bob@example.test"):
        msgs = wait_for(lambda: delivered(lk, user, msgid), 20, what=f"{msgid} in {user}'s mailbox")
        assert b"by front.postern.test (Postfix)" in msgs[0], msgs[0][:600]
        assert re.search(rb"with (UTF8)?LMTP", msgs[0]), msgs[0][:600]
    wait_for(lambda: front.queue() == "Mail queue is empty", 20, what="Postfix queue to drain")
    assert "status=bounced" not in front.log() and "status=deferred" not in front.log(), front.log_tail()


@needs_postfix
def test_utf8_recipient_arrives(front, lk):
    msgid = f"<utf8-{front.kind}-{uuid.uuid4().hex}@front.test>"
    c = front.smtp()
    try:
        replies = rcpt_all(c, ["jürgen@example.test"], utf8=True)
        assert replies["jürgen@example.test"][0] == 250, replies
        assert c.data(message(msgid, "grüße"))[0] == 250
    finally:
        c.quit()
    wait_for(lambda: delivered(lk, "jürgen@example.test", msgid), 20, what="UTF-8 delivery")


@needs_postfix
def test_unknown_recipients_are_refused_at_rcpt_and_nothing_is_queued(front, lk):
    c = front.smtp()
    try:
        replies = rcpt_all(c, ["nobody@example.test", "nobody+x@example.test", "NOBODY@EXAMPLE.TEST",
                               "x@unknown.test", "x@bücher.test"], utf8=True)
        for r in ("nobody@example.test", "nobody+x@example.test", "NOBODY@EXAMPLE.TEST"):
            code, text = replies[r]
            assert code == 550 and text.startswith(b"5.1.1 "), (r, code, text)
        code, text = replies["x@unknown.test"]                # not ours: no relaying
        assert code == 554 and text.startswith(b"5.7.1 "), (code, text)
        code, text = replies["x@bücher.test"]                 # ours, but no such user
        assert code == 550 and text.startswith(b"5.1.1 "), (code, text)
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.data(message("<never@front.test>"))
        assert e.value.smtp_code == 554, e.value
    finally:
        c.quit()
    assert front.queue() == "Mail queue is empty"
    log = front.log()
    assert "NOQUEUE: reject: RCPT from" in log and "<nobody@example.test>" in log
    assert "status=bounced" not in log and "non-delivery notification" not in log, front.log_tail()


@needs_postfix
def test_submission_checks_sender_ownership(front, lk):
    """reject_sender_login_mismatch with lookupd's senders map as smtpd_sender_login_maps.
    Postfix applies sender restrictions at RCPT time (smtpd_delay_reject = yes)."""
    cases = {
        None: [("alice@example.test", 553, b"not logged in"), ("team@example.test", 553, b"not logged in"),
               ("stranger@example.org", 250, None), ("anyone@catch.test", 250, None)],
        "alice@example.test": [("alice@example.test", 250, None), ("Alice+x@example.test", 250, None),
                               ("postmaster@example.test", 250, None), ("team@example.test", 250, None),
                               ("bob@example.test", 553, b"not owned by user alice@example.test"),
                               ("anyone@catch.test", 553, b"not owned"), ("stranger@example.org", 553, b"not owned")],
        "bob@example.test": [("team@example.test", 250, None), ("postmaster@example.test", 553, b"not owned")],
    }
    wrong = []
    for login, checks in cases.items():
        c = front.smtp(front.submission_port)
        try:
            if login:
                c.login(login, "pw")
            for sender, want, text_part in checks:
                assert c.mail(sender)[0] == 250
                code, text = c.rcpt("bob@example.test")
                if code != want or (text_part and (not text.startswith(b"5.7.1 ") or text_part not in text
                                                   or b"Sender address rejected" not in text)):
                    wrong.append(f"{login} MAIL FROM:<{sender}>: {code} {text!r}")
                c.rset()
        finally:
            c.quit()
    assert not wrong, "\n".join(wrong) + "\n" + front.log_tail()


@needs_postfix
def test_postfix_casefolded_recipient_is_accepted(front, lk):
    """RCPT TO:<grüße@example.test> (an alias of jürgen): Postfix asks lookupd for the
    case-folded "grüsse@example.test" (see test_postfix_casefolded_keys_are_found)."""
    msgid = f"<fold-{front.kind}-{uuid.uuid4().hex}@front.test>"
    rcpts = ["grüße@example.test"] + (["weiß@example.test"] if lk.weiss_added else [])
    c = front.smtp()
    try:
        replies = rcpt_all(c, rcpts, utf8=True)
        assert all(code == 250 for code, _ in replies.values()), replies
        assert c.data(message(msgid))[0] == 250
    finally:
        c.quit()
    wait_for(lambda: delivered(lk, "jürgen@example.test", msgid), 20, what="delivery to jürgen")


@needs_postfix
def test_store_down_means_451_not_550(front, lk):
    """With the store stopped, Postfix defers (451 4.3.0) instead of rejecting or accepting.
    Addresses unique to this test: a Postfix smtpd process caches the address resolutions it
    got from trivial-rewrite, failed ones included, for as long as it lives."""
    c = front.smtp()
    try:
        with store_stopped(lk):
            replies = rcpt_all(c, ["alice+down@example.test", "nobody+down@example.test"])
        for r, (code, text) in replies.items():
            assert code == 451 and text.startswith(b"4.3.0 "), (r, code, text, front.log_tail())
        c.rset()
    finally:
        c.quit()
    if front.kind == "tcp":       # the submission service (sender check) too; 3 s, so once
        c = front.smtp(front.submission_port)
        try:
            with store_stopped(lk):
                assert c.mail("bob+down@example.test")[0] == 250   # checked at RCPT (smtpd_delay_reject)
                code, text = c.rcpt("alice+down2@example.test")
            assert code == 451 and text.startswith(b"4.3.0 "), (code, text)
        finally:
            c.quit()
    assert front.queue() == "Mail queue is empty"
    assert "status=bounced" not in front.log()

    def accepted_again():
        c = front.smtp()
        try:
            return rcpt_all(c, ["alice+up@example.test"])["alice+up@example.test"][0] == 250
        finally:
            c.quit()
    wait_for(accepted_again, 20, interval=0.2, what="RCPT accepted after SIGCONT")
    assert_lookupd_survived(lk)


# ---------------------------------------------------------------------------------------------
# The documentation shows what these tests run

def test_doc_snippets_are_the_tested_ones():
    assert os.path.exists(DOC), f"{DOC} missing"
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    ports, sock = DOC_VALUES["ports"], DOC_VALUES["lmtp_socket"]
    snippets = [front_main_cf(k, ports, sock) for k in FRONT_KINDS]
    snippets += list(front_master_cf_lines(DOC_VALUES["smtp"], DOC_VALUES["submission"]))
    snippets += list(postern_lookup_toml(ports)) + [postern_lmtp_toml()]
    missing = [s for s in snippets if s not in doc]
    assert not missing, "docs/postfix-front.md lacks these tested lines:\n\n" + "\n---\n".join(missing)
