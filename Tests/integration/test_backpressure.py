"""Back-pressure (issue 9 point 2): a client that pipelines commands and never reads its
replies must not grow the worker. Per daemon (smtpd, lmtpd, lookupd tcp_table and socketmap)
one connection pipelines up to 20 MB of requests and reads nothing; the worker's resident
memory (/proc/PID/status VmRSS) may grow by less than RSS_BUDGET meanwhile, and the worker
keeps serving another client. Today's fix: a session stops reading while its unsent output is
over max_unsent_bytes (OutboundBackPressure), and lookupd's input buffer holds one request.
"""
import smtplib
import socket
import threading
import time

import pytest

from conftest import free_port, proc_status, running_instance, wait_for

FLOOD_BYTES = 20 * 1024 * 1024
RSS_BUDGET = 8 * 1024 * 1024
CHUNK = 64 * 1024
# The flood stops when the worker has not taken a chunk for this long (it stopped reading),
# or after FLOOD_LIMIT seconds in all: then the worker's memory is sampled.
STALL = 2.0
FLOOD_LIMIT = 60.0


@pytest.fixture(scope="module")
def bp():
    ports = {"mta": free_port(), "socketmap": free_port(), "recipients": free_port()}
    # The junk and error limits (which would end the flood early with 421) are raised out of the
    # way: this measures the back-pressure alone, on a session that lives as long as the flood.
    unlimited = "max_junk_commands = 1000000\nmax_errors = 10000\n"
    smtp = f'[smtp]\nmta = ["127.0.0.1:{ports["mta"]}"]\nsubmission = []\nsmtps = []\n{unlimited}'
    lookup = (unlimited + f'[lookup]\nsocketmap = ["127.0.0.1:{ports["socketmap"]}"]\n'
              f'[lookup.tcp_table]\nrecipients = "127.0.0.1:{ports["recipients"]}"\n')
    with running_instance("backpressure", smtp_section=smtp, lmtp_extra=lookup) as p:
        p.ports = ports
        yield p


def rss(pid):
    """Resident set size of `pid` in bytes."""
    kb, unit = proc_status(pid)["VmRSS"].split()
    assert unit == "kB"
    return int(kb) * 1024


class Flood:
    """A connection that sends `unit` over and over and never reads a byte of the replies,
    until FLOOD_BYTES are out or the server stops taking them. Samples the worker's RSS
    all along (the peak is what counts: the worker may free what it queued once the flood
    ends)."""

    def __init__(self, port, unit, pid, prologue=b""):
        self.pid = pid
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sent = 0
        self.peak = rss(pid)
        self.stalled = False
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        data = prologue + unit * (CHUNK // len(unit))
        self.sock.settimeout(STALL)
        deadline = time.monotonic() + FLOOD_LIMIT
        while self.sent < FLOOD_BYTES and time.monotonic() < deadline:
            try:
                self.sock.sendall(data)
            except socket.timeout:
                self.stalled = True
                break
            self.sent += len(data)
            data = unit * (CHUNK // len(unit))

    def _sample(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.05)

    def settle(self, seconds=1.0):
        """Lets the worker process what it read, sampling its memory, then stops sampling."""
        time.sleep(seconds)
        self._stop.set()
        self._sampler.join()
        self.peak = max(self.peak, rss(self.pid))
        return self.peak

    def close(self):
        self._stop.set()
        self.sock.close()


def flood_and_measure(p, service, port, unit, serve_another, prologue=b""):
    """`service` as `postern status` names it (smtp, lmtp, lookup)."""
    (pid,) = p.pids(service)
    serve_another()                        # warm up: the first session's allocations are not the flood's
    before = rss(pid)
    f = Flood(port, unit, pid, prologue)
    try:
        peak = f.settle()
        # The worker still serves other clients while the flood connection is open.
        serve_another()
    finally:
        f.close()
    growth = peak - before
    print(f"{service} {unit!r}: sent {f.sent / 2**20:.1f} MiB (stalled: {f.stalled}), "
          f"RSS {before / 2**20:.1f} -> peak {peak / 2**20:.1f} MiB (+{growth / 2**20:.1f} MiB)")
    assert growth < RSS_BUDGET, (
        f"{service} grew by {growth / 2**20:.1f} MiB while a client pipelined {f.sent / 2**20:.1f} MiB "
        f"of {unit!r} without reading (budget {RSS_BUDGET / 2**20:.0f} MiB)")
    assert f.stalled, f"{service} read all {f.sent / 2**20:.1f} MiB: it never stopped reading"
    # The worker survived.
    assert p.pids(service) == [pid]


def smtp_noop(port):
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        assert c.ehlo("other.example.org")[0] == 250
        assert c.noop()[0] == 250
    finally:
        c.quit()


def lmtp_noop(p):
    c = p.lmtp(tcp=True, timeout=10)
    try:
        assert c.noop()[0] == 250
    finally:
        c.quit()


def tcp_table_get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"get alice@example.test\n")
        assert s.makefile("rb").readline().startswith(b"200 "), "tcp_table lookup of a user"


def netstring(b):
    return str(len(b)).encode() + b":" + b + b","


def socketmap_get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(netstring(b"recipients alice@example.test"))
        assert s.recv(100).split(b":", 1)[1].startswith(b"OK "), "socketmap lookup of a user"


def test_smtpd_never_reading_client(bp):
    port = bp.ports["mta"]
    flood_and_measure(bp, "smtp", port, b"EHLO x\r\n", lambda: smtp_noop(port))


def test_lmtpd_never_reading_client(bp):
    flood_and_measure(bp, "lmtp", bp.lmtp_port, b"NOOP\r\n", lambda: lmtp_noop(bp), prologue=b"LHLO x\r\n")


def test_lookupd_tcp_table_never_reading_client(bp):
    port = bp.ports["recipients"]
    flood_and_measure(bp, "lookup", port, b"get x\n", lambda: tcp_table_get(port))


def test_lookupd_socketmap_never_reading_client(bp):
    port = bp.ports["socketmap"]
    flood_and_measure(bp, "lookup", port, netstring(b"recipients x"), lambda: socketmap_get(bp.ports["socketmap"]))
