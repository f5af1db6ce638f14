#!/usr/bin/env python3
"""IMAP COMPRESS=DEFLATE (RFC 4978) costs and gains, with uncompressed connections of the same
run as the anchor: what a compressing connection adds to imapd's memory (PSS from
/proc/PID/smaps_rollup, one imapd process holding --connections IMAPS sessions, each logged in
with INBOX selected: after COMPRESS and one compressed NOOP, after a FETCH of 20 bodies on each,
and after they idle past DeflateHandler.releaseAfter), and the bytes on the
wire for the same FETCHes with and without it (plaintext loopback, so TLS is not counted).
Every figure is the median of --runs runs. Not a timing benchmark (the debug build will do).

Run as root:
    python3 bench/imap_compress_bench.py --runs 5 --bin $(swift build --show-bin-path)
"""
import argparse, os, random, socket, statistics, sys, time, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "integration"))

USER = "bench@example.test"
RELEASE_AFTER = 5    # DeflateHandler.releaseAfter, seconds
WORDS = "mail server queue index cache folder message header body alpha bravo charlie delta echo".split()


def make_msg(i):
    r = random.Random(i)
    head = (f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\nTo: <{USER}>\r\n"
            f"Subject: message {i} about {r.choice(WORDS)}\r\nDate: Sun, 06 Dec 2026 03:00:00 +0000\r\n"
            f"Message-ID: <{i}.{r.getrandbits(40)}@example.org>\r\n\r\n")
    body = "".join(" ".join(r.choice(WORDS) for _ in range(11)) + "\r\n" for _ in range(60))
    return head + body


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss")


class Client:
    """Blocking line client; `compress()` switches to raw DEFLATE both ways."""

    def __init__(self, port, ctx=None):
        s = socket.create_connection(("127.0.0.1", port))
        self.s = ctx.wrap_socket(s) if ctx else s
        self.z = None
        self.buf = b""
        self.wire = 0
        self.n = 0
        self.line()

    def recv(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.wire += len(d)
        self.buf += self.z[1].decompress(d) if self.z else d

    def line(self):
        while b"\r\n" not in self.buf:
            self.recv()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def cmd(self, text):
        self.n += 1
        tag = f"b{self.n}"
        data = f"{tag} {text}\r\n".encode()
        if self.z:
            data = self.z[0].compress(data) + self.z[0].flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)
        end = f"\r\n{tag} ".encode()
        while end not in b"\r\n" + self.buf:
            self.recv()
        head, rest = (b"\r\n" + self.buf).split(end, 1)
        status, self.buf = rest.split(b"\r\n", 1)
        assert status.startswith(b"OK"), status
        return head

    def compress(self):
        self.cmd("COMPRESS DEFLATE")
        self.z = (zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15))
        self.buf = self.z[1].decompress(self.buf)

    def close(self):
        self.s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--bin")
    a = ap.parse_args()
    if a.bin:
        os.environ["POSTERN_BIN"] = a.bin
    from conftest import DEFAULT_PASSWORD, wait_for
    from imap_support import imap_instance, tls_context

    cm, ports = imap_instance("compressbench", extra="processes = 1\nmax_connections_per_client = 100000\n", users=[USER])
    with cm as p:
        wait_for(lambda: "imapd ready" in p.log(), 30, what="imapd ready")
        for i in range(a.messages):
            p.deliver([USER], make_msg(i))
        (pid,) = p.pids("imap")
        ctx = tls_context(p)
        plain_cost, deflate_cost, busy_cost, idle_cost, wire = [], [], [], [], {}
        for _ in range(a.runs):
            time.sleep(0.5)
            base = pss_kib(pid)
            cs = []
            for _ in range(a.connections):
                c = Client(ports["imaps"], ctx)
                c.cmd(f'LOGIN "{USER}" "{DEFAULT_PASSWORD}"')
                c.cmd("SELECT INBOX")
                cs.append(c)
            time.sleep(0.5)
            opened = pss_kib(pid)
            for c in cs:
                c.compress()
                c.cmd("NOOP")
            time.sleep(0.5)
            compressed = pss_kib(pid)
            for c in cs:
                c.cmd("FETCH 1:20 (BODY.PEEK[])")
            time.sleep(0.5)
            busy = pss_kib(pid)
            time.sleep(RELEASE_AFTER + 1)
            idle = pss_kib(pid)
            for c in cs:
                c.close()
            plain_cost.append((opened - base) / a.connections)
            deflate_cost.append((compressed - opened) / a.connections)
            busy_cost.append((busy - opened) / a.connections)
            idle_cost.append((idle - opened) / a.connections)
            for name, command in (("headers", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"),
                                  ("flags", "FETCH 1:* (UID FLAGS RFC822.SIZE)"),
                                  ("bodies", f"FETCH 1:{min(100, a.messages)} (BODY.PEEK[])")):
                sizes = []
                for on in (False, True):
                    c = Client(ports["imap"])
                    c.cmd(f'LOGIN "{USER}" "{DEFAULT_PASSWORD}"')
                    if on:
                        c.compress()
                    c.cmd("EXAMINE INBOX")
                    before = c.wire
                    c.cmd(command)
                    sizes.append(c.wire - before)
                    c.close()
                wire.setdefault(name, []).append(sizes)
        med = statistics.median
        print(f"imapd PSS per IMAPS connection (logged in, INBOX selected): {med(plain_cost):.1f} KiB")
        print(f"added by COMPRESS=DEFLATE (zlib both ways):                  {med(deflate_cost):.1f} KiB")
        print(f"  ... after FETCH 1:20 BODY.PEEK[] on each:                  {med(busy_cost):.1f} KiB")
        print(f"  ... then {RELEASE_AFTER + 1} s idle (compressor released):             {med(idle_cost):.1f} KiB")
        for name, rows in wire.items():
            off, on = med(r[0] for r in rows), med(r[1] for r in rows)
            print(f"FETCH {name:8s} bytes on the wire: {off:9.0f} plain, {on:9.0f} compressed ({on / off:.2f})")
        print(f"(median of {a.runs} runs, {a.connections} connections, {a.messages} messages)")


if __name__ == "__main__":
    main()
