"""IMAP COMPRESS=DEFLATE (RFC 4978) driven by clients nobody here wrote: Python's imaplib (it has
no COMPRESS: a subclass switches its socket to zlib's raw DEFLATE after the tagged OK) inside
IMAPS, a raw client over plaintext loopback, STARTTLS and IMAPS (LOGIN, COMPRESS, SELECT, IDLE and
a delivery, bytes pipelined behind COMPRESS), mbsync (isync 1.4 uses COMPRESS DEFLATE on its own
when offered), and hostile input — an inflate bomb and a corrupt stream end in BYE, the worker
lives on and its memory does not grow.

    POSTERN_BIN=$(swift build --show-bin-path) python3 -m pytest -q Tests/integration/test_imap_compress.py
"""
import imaplib
import os
import random
import re
import shutil
import socket
import ssl
import time
import zlib

import pytest

from conftest import DEFAULT_PASSWORD, wait_for
from imap_support import RawIMAP, imap_instance, tls_context

USERS = ["hana@example.test", "ivan@example.test", "jo@example.test", "kim@example.test"]
MBSYNC = shutil.which("mbsync")

# RFC 4978 §3: the capability, and the code of a second COMPRESS.
CAPABILITY = "COMPRESS=DEFLATE"


@pytest.fixture(scope="module")
def imap():
    cm, ports = imap_instance("imapcompress", users=USERS)
    with cm as p:
        wait_for(lambda: "imapd ready" in p.log(), 20, what="imapd ready")
        p.ports = ports
        p.cert = os.path.join(p.root, "tls", "cert.pem")
        yield p


def message(subject, body, extra=""):
    return (f"From: Bob <bob@example.test>\r\nTo: someone@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{random.random()}@example.test>\r\n"
            f"Date: Sun, 06 Dec 2026 03:00:00 +0000\r\n{extra}\r\n{body}")


def large_body(size, seed=1):
    """Text lines with some randomness: compressible, as mail is, not trivially."""
    rnd = random.Random(seed)
    words = ["mailbox", "deflate", "window", "postern", "literal", "response", "header", "quota"]
    lines = []
    n = 0
    while n < size:
        line = " ".join(rnd.choice(words) for _ in range(10)) + f" {rnd.getrandbits(48):x}\r\n"
        lines.append(line)
        n += len(line)
    return "".join(lines)


class Wire:
    """A socket (TLS or not) as a file for imaplib and RawIMAP: lines in plain text until
    `compress()`, then RFC 4978 both ways — commands deflated raw (wbits -15) with a sync flush
    each, responses inflated, including what came behind the tagged OK in the same read."""

    def __init__(self, sock):
        self.sock = sock
        self.deflater = self.inflater = None
        self.buf = b""
        self.wire_in = 0      # compressed bytes received
        self.plain_in = 0     # what they inflated to
        self.wire_out = 0

    def compress(self):
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        pending, self.buf = self.buf, b""
        self._take(pending)

    def _take(self, raw):
        if self.inflater is None:
            self.buf += raw
            return
        self.wire_in += len(raw)
        data = self.inflater.decompress(raw)
        self.plain_in += len(data)
        self.buf += data

    def _fill(self):
        raw = self.sock.recv(65536)
        if not raw:
            raise EOFError("connection closed")
        self._take(raw)

    def deflate(self, data):
        return self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)

    def sendall(self, data):
        data = data if isinstance(data, bytes) else data.encode()
        if self.deflater:
            data = self.deflate(data)
            self.wire_out += len(data)
        self.sock.sendall(data)

    def readline(self, limit=-1):
        while b"\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def close(self):
        pass


imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class CompressingIMAP4_SSL(imaplib.IMAP4_SSL):
    """imaplib over IMAPS with COMPRESS: after the tagged OK its reads (`self.file`) and writes
    (`send`) go through zlib."""

    wire = None

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK" and self.wire is None:
            self.wire = Wire(self.sock)
            self.wire.compress()
            self.file = self.wire
        return typ, data

    def send(self, data):
        if self.wire:
            self.wire.sendall(data)
        else:
            super().send(data)


class RawClient(RawIMAP):
    """imap_support's line client over a Wire: plaintext loopback, STARTTLS or IMAPS, and
    `compress()` to switch it to COMPRESS."""

    def __init__(self, imap, mode):
        port = imap.ports["imaps" if mode == "imaps" else "imap"]
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock = tls_context(imap).wrap_socket(s) if mode == "imaps" else s
        self.f = self.z = Wire(self.sock)
        self.n = 0
        self.greeting = self.line()
        if mode == "starttls":
            assert self.cmd("STARTTLS")[-1].split()[1] == b"OK"
            assert not self.f.buf, "nothing may follow the STARTTLS OK in plain text"
            self.sock = tls_context(imap).wrap_socket(self.sock)
            self.f = self.z = Wire(self.sock)

    def send(self, data):
        self.f.sendall(data)

    def tag(self):
        self.n += 1
        return f"t{self.n}"

    def login(self, user, password=DEFAULT_PASSWORD):
        return super().login(user, password)

    def compress(self, behind=b""):
        """COMPRESS DEFLATE, with `behind` (plain text, sent deflated) in the same write."""
        tag = self.tag()
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        tail = z.compress(behind) + z.flush(zlib.Z_SYNC_FLUSH) if behind else b""
        self.sock.sendall(f"{tag} COMPRESS DEFLATE\r\n".encode() + tail)
        r = self.until_tag(tag)
        assert r[-1].split()[1] == b"OK", r
        self.f.compress()
        if behind:
            self.f.deflater = z
        return r


def status_of(r):
    return r[-1].split()[1]


def fetch_plain(imap, user, uid):
    """BODY[] of `uid` in INBOX over an ordinary (uncompressed) imaplib connection."""
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls_context(imap))
    try:
        m.login(user, DEFAULT_PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert typ == "OK", data
        return data[0][1]
    finally:
        m.logout()


def test_imaplib_over_compress_inside_tls(imap):
    user = USERS[0]
    big = message("big one", large_body(3 << 20))
    imap.deliver([user], big)
    m = CompressingIMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls_context(imap))
    assert CAPABILITY not in m.capabilities, "RFC 4978: offered after authentication only"
    typ, _ = m.login(user, DEFAULT_PASSWORD)
    assert typ == "OK"
    typ, caps = m.capability()
    assert CAPABILITY in caps[0].decode().split(), caps
    typ, data = m.compress()
    assert typ == "OK", data
    assert b"DEFLATE active" in data[0], data
    # Now compressed: the capability is gone, a second COMPRESS is NO [COMPRESSIONACTIVE].
    typ, caps = m.capability()
    assert typ == "OK" and CAPABILITY not in caps[0].decode().split(), caps
    typ, data = m._simple_command("COMPRESS", "DEFLATE")
    assert typ == "NO" and data[0].startswith(b"[COMPRESSIONACTIVE]"), (typ, data)

    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"], data
    before = m.wire.wire_in, m.wire.plain_in
    typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
    assert typ == "OK"
    fetched = data[0][1]
    assert fetched == fetch_plain(imap, user, 1)
    assert fetched.endswith(big.encode().split(b"\r\n\r\n", 1)[1])
    wire, plain = m.wire.wire_in - before[0], m.wire.plain_in - before[1]
    assert plain > len(big) and wire < plain / 2, (wire, plain)

    # APPEND with a (synchronizing) literal: the continuation request and the data compressed too.
    appended = message("appended", large_body(300_000, seed=2)).encode()
    typ, data = m.append("INBOX", r"(\Seen)", None, appended)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
    typ, data = m.uid("FETCH", str(uid), "(FLAGS BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == appended and b"\\Seen" in data[0][0], data[0][0]
    assert fetch_plain(imap, user, uid) == appended
    typ, _ = m.logout()
    assert typ == "BYE"


@pytest.mark.parametrize("mode", ["plain", "starttls", "imaps"])
def test_raw_client_idle_and_delivery(imap, mode):
    """Plaintext on loopback, after STARTTLS and on IMAPS: LOGIN, COMPRESS, SELECT, IDLE,
    and a delivery announced through the compressed stream."""
    user = USERS[1]
    c = RawClient(imap, mode)
    try:
        pre = c.cmd("CAPABILITY")
        assert CAPABILITY.encode() not in b"".join(pre), pre
        c.login(user)
        assert CAPABILITY.encode() in b"".join(c.cmd("CAPABILITY"))
        c.compress()
        assert CAPABILITY.encode() not in b"".join(c.cmd("CAPABILITY"))
        r = c.cmd("SELECT INBOX")
        assert status_of(r) == b"OK", r
        exists = int(re.search(rb"\* (\d+) EXISTS", b"".join(r)).group(1))
        tag = c.tag()
        c.send(f"{tag} IDLE\r\n")
        assert c.line().startswith(b"+ "), "continuation request"
        if mode == "imaps":
            # Longer than DeflateHandler.releaseAfter: the server's compressor is released
            # while idle and a fresh one continues the stream.
            time.sleep(6)
        imap.deliver([user], message(f"while idle {mode}", "Hello.\r\n"))
        line = c.read_until(rb"EXISTS")
        assert int(line.split()[1]) == exists + 1, line
        c.send("DONE\r\n")
        r = c.until_tag(tag)
        assert status_of(r) == b"OK", r
        r = c.cmd(f"FETCH {exists + 1} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert f"while idle {mode}".encode() in b"".join(r), r
        assert c.z.wire_in < c.z.plain_in
        r = c.cmd("LOGOUT")
        assert r[0].startswith(b"* BYE") and status_of(r) == b"OK", r
    finally:
        c.close()


def test_commands_pipelined_behind_compress_are_inflated(imap):
    c = RawClient(imap, "plain")
    try:
        c.login(USERS[1])
        c.compress(behind=b"p1 NOOP\r\np2 ID NIL\r\n")
        assert status_of(c.until_tag("p1")) == b"OK"
        r = c.until_tag("p2")
        assert status_of(r) == b"OK" and r[0].startswith(b'* ID ("name" "Postern")'), r
        assert status_of(c.cmd("NOOP")) == b"OK"
    finally:
        c.close()


def test_refusals(imap):
    c = RawClient(imap, "plain")
    try:
        # RFC 4978: an authenticated-state command, and DEFLATE is the only mechanism.
        assert status_of(c.cmd("COMPRESS DEFLATE")) == b"BAD"
        c.login(USERS[1])
        assert status_of(c.cmd("COMPRESS LZ4")) == b"BAD"
        assert status_of(c.cmd("COMPRESS")) == b"BAD"
        # Still uncompressed: a plain NOOP is answered in plain text.
        assert status_of(c.cmd("NOOP")) == b"OK"
        c.compress()
        r = c.cmd("compress deflate")
        assert status_of(r) == b"NO" and b"[COMPRESSIONACTIVE]" in r[-1], r
        assert status_of(c.cmd("NOOP")) == b"OK"
    finally:
        c.close()


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def expect_bye_then_close(c):
    """Lines until EOF: a BYE must be among them, and the connection must end."""
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, ssl.SSLError, zlib.error):
        pass
    assert any(l.startswith(b"* BYE") for l in lines), lines
    return lines


def test_inflate_bomb_ends_in_bye_and_the_worker_lives_on(imap):
    user = USERS[2]
    pids = imap.pids("imap")
    assert pids, imap.status()
    rss_before = {p: vm_rss_kib(p) for p in pids}
    c = RawClient(imap, "imaps")
    try:
        c.login(user)
        c.compress()
        # 1 GiB of zeros deflates to about 1 MiB; sent as it is made.
        zeros = bytes(1 << 20)
        sent = 0
        try:
            for _ in range(1024):
                piece = c.f.deflater.compress(zeros)
                if piece:
                    c.sock.sendall(piece)
                    sent += len(piece)
            c.sock.sendall(c.f.deflater.flush(zlib.Z_SYNC_FLUSH))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass      # the server closed while we were still sending
        lines = expect_bye_then_close(c)
        assert any(b"Compressed data expands too much" in l for l in lines), lines
    finally:
        c.close()
    assert imap.pids("imap") == pids, "no imapd restarted"
    for p in pids:
        assert vm_rss_kib(p) - rss_before[p] < 64 * 1024, (p, rss_before[p], vm_rss_kib(p))
    assert "compressed data expands too much" in imap.log()
    # The worker serves on, compressed or not.
    after = RawClient(imap, "imaps")
    try:
        after.login(user)
        after.compress()
        assert status_of(after.cmd("NOOP")) == b"OK"
    finally:
        after.close()


def test_corrupt_stream_ends_in_bye(imap):
    user = USERS[2]
    pids = imap.pids("imap")
    assert pids, imap.status()
    for mode in ("plain", "imaps"):
        c = RawClient(imap, mode)
        try:
            c.login(user)
            c.compress()
            c.sock.sendall(b"\xff" * 64)      # reserved block type: not DEFLATE
            lines = expect_bye_then_close(c)
            assert any(b"Invalid compressed data" in l for l in lines), lines
        finally:
            c.close()
    assert imap.pids("imap") == pids
    assert "invalid compressed data" in imap.log()


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) not installed; make test installs it")
def test_mbsync_syncs_with_compression(imap):
    from test_imap_clients import Mbsync, without_tuid, crlf_to_lf, subject_of  # noqa: F401
    user = USERS[3]
    delivered = {s: message(s, large_body(n, seed=n)) for s, n in (("small", 200), ("medium", 50_000), ("large", 2_000_000))}
    for body in delivered.values():
        imap.deliver([user], body)
    sync = Mbsync(imap, user)
    try:
        # -D: the protocol trace, to see COMPRESS negotiated (isync 1.4 asks on its own).
        r = sync.run("-D")
        trace = r.stdout + r.stderr
        assert re.search(r"COMPRESS DEFLATE", trace), sync.transcript()[-3000:]
        assert re.search(r"\d+ OK DEFLATE active", trace), sync.transcript()[-3000:]
        local = sync.files("INBOX")
        assert set(local) == set(delivered), sorted(local)
        for s, body in delivered.items():
            assert without_tuid(local[s][2]).endswith(crlf_to_lf(body.encode()).split(b"\n\n", 1)[1]), s
        # Up the other way, compressed too: a message written locally reaches the server.
        made = message("made locally", large_body(100_000, seed=9)).replace("\r\n", "\n")
        with open(os.path.join(sync.mail, "INBOX", "new", "1700000000.compress.local"), "w") as f:
            f.write(made)
        r = sync.run("-D")
        assert "OK DEFLATE active" in r.stdout + r.stderr
        m = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls_context(imap))
        try:
            m.login(user, DEFAULT_PASSWORD)
            m.select("INBOX", readonly=True)
            typ, data = m.search(None, 'SUBJECT "made locally"')
            assert typ == "OK" and len(data[0].split()) == 1, data
            typ, data = m.fetch(data[0].split()[0], "(BODY.PEEK[TEXT])")
            assert data[0][1] == made.split("\n\n", 1)[1].replace("\n", "\r\n").encode()
        finally:
            m.logout()
    finally:
        sync.cleanup()
