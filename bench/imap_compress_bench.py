#!/usr/bin/env python3
"""IMAP COMPRESS=DEFLATE (RFC 4978) costs and gains, with uncompressed connections of the same
run as the anchor: what a compressing connection adds to imapd's memory (PSS from
/proc/PID/smaps_rollup, one imapd process holding --connections IMAPS sessions, each logged in
with INBOX selected and 20 bodies fetched: a batch without COMPRESS (the anchor), a batch with
it, and another batch with it once the first idled past DeflateHandler.releaseAfter and gave
its compressors back), and the bytes on the
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
        def batch(compress):
            """N sessions that log in, select, maybe compress, and FETCH 20 bodies each ->
            (the sessions, PSS growth per session in KiB)."""
            time.sleep(0.5)
            before = pss_kib(pid)
            cs = []
            for _ in range(a.connections):
                c = Client(ports["imaps"], ctx)
                c.cmd(f'LOGIN "{USER}" "{DEFAULT_PASSWORD}"')
                c.cmd("SELECT INBOX")
                if compress:
                    c.compress()
                c.cmd("FETCH 1:20 (BODY.PEEK[])")
                cs.append(c)
            time.sleep(0.5)
            return cs, (pss_kib(pid) - before) / a.connections

        cost, wire = {"plain": [], "deflate": [], "deflate, first batch idle": []}, {}
        for _ in range(a.runs):
            plain, cost_plain = batch(False)
            first, cost_first = batch(True)
            time.sleep(RELEASE_AFTER + 1)          # the first batch's compressors are released
            second, cost_second = batch(True)
            for c in plain + first + second:
                c.close()
            cost["plain"].append(cost_plain)
            cost["deflate"].append(cost_first)
            cost["deflate, first batch idle"].append(cost_second)
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
        for name, rows in cost.items():
            print(f"imapd PSS per IMAPS session after FETCH 1:20 BODY.PEEK[], {name:26s}: {med(rows):6.1f} KiB")
        for name, rows in wire.items():
            off, on = med(r[0] for r in rows), med(r[1] for r in rows)
            print(f"FETCH {name:8s} bytes on the wire: {off:9.0f} plain, {on:9.0f} compressed ({on / off:.2f})")
        print(f"(median of {a.runs} runs, {a.connections} connections, {a.messages} messages)")


if __name__ == "__main__":
    main()
