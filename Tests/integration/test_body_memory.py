# Message bodies stream to the store (issue 9 point 3): ten unfinished 40 MiB DATA sessions
# (LMTP, and SMTP on the MTA port) cost the worker and the store together less than 64 MiB
# of resident memory; a finished
# one arrives byte-exact; abandoned ones — or ones whose lmtpd or store is killed -9 — leave no
# temporary file in the data dir's tmp.
import fcntl
import os
import signal
import socket
import struct
import termios
import time

import pytest

from conftest import free_port, header_value, strip_trace_headers, wait_for

SESSIONS = 10
BODY_MIB = 40
MAX_RSS_GROWTH_MIB = 64
BLOCK = 1 << 20                      # the client writes the body a MiB at a time


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def unread_bytes(sock):
    """Bytes written to a unix stream socket that the peer has not read yet (SIOCOUTQ)."""
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


class RawLMTP:
    """A bare LMTP (unix socket path) or SMTP ((host, port)) client: smtplib would want to
    send the whole body at once."""

    def __init__(self, address):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(address)
        self.buf = b""
        assert self.reply()[0] == 220

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                assert data, f"connection closed; replies so far {lines!r}"
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def command(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def body_block(seq):
    """One MiB of 80-byte lines, numbered so a misplaced block shows."""
    line_count = BLOCK // 80
    return b"".join(b"%06d %06d " % (seq, i) + b"x" * 64 + b"\r\n" for i in range(line_count))


def message_blocks():
    head = b"From: big@example.org\r\nSubject: forty megabytes\r\nMessage-ID: <mem-40@test.example.org>\r\n\r\n"
    blocks = [body_block(i) for i in range(BODY_MIB)]
    blocks[0] = head + blocks[0][len(head):]
    return blocks


def tmp_files(p):
    d = os.path.join(p.data_dir, "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def open_session(address, hello):
    c = RawLMTP(address)
    assert c.command(f"{hello} client.example.org")[0] == 250
    return c


@pytest.mark.parametrize("proto", ["lmtp", "smtp"])
def test_unfinished_bodies_do_not_sit_in_memory(make_postern, proto):
    limits = f"max_message_size = {(BODY_MIB + 8) << 20}\ndata_timeout = 900\n"
    if proto == "lmtp":
        p = make_postern(name="mem", lmtp_extra=limits)
        address, hello = p.lmtp_socket, "LHLO"
    else:
        port = free_port()
        p = make_postern(name="memsmtp", smtp_section=f'[smtp]\nmta = ["127.0.0.1:{port}"]\nsubmission = []\nsmtps = []\n'
                                                      + limits + "max_connections_per_client = 100\n")
        address, hello = ("127.0.0.1", port), "EHLO"
    workers = p.pids(proto)
    store = p.store_pid()

    def worker_rss():
        return sum(vm_rss_kib(w) for w in workers)
    # One small delivery per worker process first, so each side has its steady-state buffers.
    for _ in workers:
        c = open_session(address, hello)
        assert c.command("MAIL FROM:<big@example.org>")[0] == 250
        assert c.command("RCPT TO:<alice@example.test>")[0] == 250
        assert c.command("DATA")[0] == 354
        assert c.command("Subject: warm-up\r\n\r\nhi\r\n.")[0] == 250
        c.close()
    time.sleep(0.5)
    before_each = (worker_rss(), vm_rss_kib(store))
    before = sum(before_each)

    blocks = message_blocks()
    sessions = []
    for _ in range(SESSIONS):
        c = open_session(address, hello)
        assert c.command("MAIL FROM:<big@example.org>")[0] == 250
        assert c.command("RCPT TO:<alice@example.test>")[0] == 250
        assert c.command("DATA")[0] == 354
        for b in blocks:
            c.sock.sendall(b)
        sessions.append(c)
    # Everything sent has been read by the worker; then give the store time to take what it sent.
    wait_for(lambda: all(unread_bytes(c.sock) == 0 for c in sessions), 120, interval=0.2, what="the worker to read the bodies")
    samples = []

    def settled():
        samples.append(worker_rss() + vm_rss_kib(store))
        return len(samples) >= 4 and max(samples[-4:]) - min(samples[-4:]) < 1024
    wait_for(settled, 60, interval=0.5, what="resident memory to settle")
    after = max(samples[-4:])
    growth_mib = (after - before) / 1024
    print(f"{proto}d ({len(workers)}) + store VmRSS: before {before // 1024} MiB, after {after // 1024} MiB, growth {growth_mib:.1f} MiB "
          f"for {SESSIONS} unfinished {BODY_MIB} MiB bodies ({proto}d {before_each[0] // 1024} -> {worker_rss() // 1024} MiB, "
          f"store {before_each[1] // 1024} -> {vm_rss_kib(store) // 1024} MiB)")
    assert growth_mib < MAX_RSS_GROWTH_MIB, f"bodies held in memory: +{growth_mib:.1f} MiB"

    # One session finishes: the message arrives byte-exact.
    first = sessions.pop(0)
    first.sock.sendall(b".\r\n")
    code, lines = first.reply()
    assert code == 250, lines
    assert first.command("QUIT")[0] == 221
    first.close()
    found = [m for m in p.export("alice@example.test") if header_value(m, "Message-ID") == "<mem-40@test.example.org>"]
    assert len(found) == 1, f"found {len(found)} copies"
    got = strip_trace_headers(found[0])[2]
    want = b"".join(blocks)
    assert len(got) == len(want)
    assert got == want

    # The others are abandoned mid-body: their staged bodies go with the connections.
    for c in sessions:
        c.close()
    wait_for(lambda: tmp_files(p) == [], 30, interval=0.2, what=f"temporary files to go (left: {tmp_files(p)})")
    assert p.inbox_count("alice@example.test") == 1 + len(workers)


def start_unfinished(p, mib):
    """An LMTP session that has sent `mib` MiB of body and no final dot."""
    c = RawLMTP(p.lmtp_socket)
    assert c.command("LHLO client.example.org")[0] == 250
    assert c.command("MAIL FROM:<big@example.org>")[0] == 250
    assert c.command("RCPT TO:<alice@example.test>")[0] == 250
    assert c.command("DATA")[0] == 354
    for i in range(mib):
        c.sock.sendall(body_block(i))
    return c


def test_kill_9_mid_body_leaves_no_staged_file(make_postern):
    # DESIGN §3: kill -9 of any process mid-body leaves no half message. lmtpd killed: the
    # store sees the connection go and discards the staged bodies; the store killed: its
    # start-up sweep clears them.
    from test_crash import wait_restarted, wait_store_serving
    p = make_postern(name="memkill")
    sessions = [start_unfinished(p, 4) for _ in range(2)]
    wait_for(lambda: len(tmp_files(p)) == 2, 30, interval=0.1, what="two staged bodies")
    lmtp_pid = p.pids("lmtp")[0]
    os.kill(lmtp_pid, signal.SIGKILL)
    wait_for(lambda: tmp_files(p) == [], 30, interval=0.1, what=f"staged bodies to go (left: {tmp_files(p)})")
    for c in sessions:
        c.close()
    wait_restarted(p, "lmtp", lmtp_pid)

    c = start_unfinished(p, 4)
    wait_for(lambda: len(tmp_files(p)) == 1, 30, interval=0.1, what="a staged body")
    store_pid, lmtp_pid = p.store_pid(), p.pids("lmtp")[0]
    os.kill(store_pid, signal.SIGKILL)
    wait_store_serving(p, store_pid, lmtp_pid)
    c.close()
    assert tmp_files(p) == []
    assert p.inbox_count("alice@example.test") == 0
    assert p.deliver(["alice@example.test"], b"Subject: after\r\n\r\nhi\r\n")[1][0][0] == 250
    assert p.inbox_count("alice@example.test") == 1
