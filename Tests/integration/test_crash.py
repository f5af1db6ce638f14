# Crash safety (DESIGN §3 durability contract, §1 supervision):
# kill -9 of the store in the middle of a burst of LMTP deliveries loses nothing that got a
# 250, duplicates nothing that got a 250, and leaves no orphan blob after the start-up sweep;
# kill -9 of lmtpd gets it restarted by the master and delivery resumes.
import collections
import glob
import os
import signal
import smtplib
import threading
import time

import pytest

from conftest import header_value, strip_trace_headers, wait_for

THREADS = 4
PER_THREAD = 60
KILL_AFTER_ACKS = 70


def burst_body(mid, tid, seq):
    return (f"From: burst-{tid} <burst@example.org>\r\n"
            f"Subject: burst {tid}/{seq} {mid}\r\n"
            f"Message-ID: {mid}\r\n\r\n"
            f"thread {tid} message {seq}\r\n").encode() + b"payload line\r\n" * (seq % 7 + 1)


class BurstClient(threading.Thread):
    """Delivers PER_THREAD messages to alice, reconnecting and retrying after any error.
    Each attempt has its own Message-ID; an attempt counts as acknowledged only when its
    per-recipient 250 arrived."""

    def __init__(self, p, tid, deadline):
        super().__init__(daemon=True)
        self.p, self.tid, self.deadline = p, tid, deadline
        self.acked, self.unacked, self.bodies = [], [], {}
        self.replies = collections.Counter()     # non-250 reply codes seen
        self.exceptions = collections.Counter()
        self.done = 0

    def run(self):
        conn, seq, attempt = None, 0, 0
        while seq < PER_THREAD and time.monotonic() < self.deadline:
            mid = f"<burst-{self.tid}-{seq}-{attempt}@test.example.org>"
            body = burst_body(mid, self.tid, seq)
            self.bodies[mid] = body
            ok = False
            try:
                if conn is None:
                    conn = self.p.lmtp(timeout=15)
                code, _ = conn.mail("burst@example.org")
                if code == 250:
                    code, _ = conn.rcpt("alice@example.test")
                if code == 250:
                    self.unacked.append(mid)             # from here the store may have it
                    code, _ = conn.data(body)
                    if code == 250:
                        self.unacked.pop()
                        self.acked.append(mid)
                        ok = True
                if not ok:
                    self.replies[code] += 1
            except (smtplib.SMTPException, OSError, EOFError) as e:
                self.exceptions[type(e).__name__] += 1
                if isinstance(e, smtplib.SMTPResponseException):
                    self.replies[e.smtp_code] += 1
            if ok:
                seq, attempt = seq + 1, 0
                self.done = seq
                continue
            attempt += 1
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            time.sleep(0.05)
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass


def wait_restarted(p, service, old_pid, timeout=30):
    def restarted():
        r = p.row(service)
        return int(r["PID"]) not in (0, old_pid) and r["STATE"] == "running" and r
    return wait_for(restarted, timeout, what=f"{service} restarted (old pid {old_pid})")


def wait_store_serving(p, old_store_pid, old_lmtp_pid=None, timeout=30):
    row = wait_restarted(p, "store", old_store_pid, timeout)
    wait_for(lambda: p.cli("domain", "list", check=False).returncode == 0, timeout, what="store serving")
    if old_lmtp_pid is not None:
        wait_restarted(p, "lmtp", old_lmtp_pid, timeout)   # lmtpd exits 75 when it loses the store
    return row


def blob_files(p):
    return [f for f in glob.glob(os.path.join(p.data_dir, "blobs", "*", "*")) if os.path.isfile(f)]


def assert_no_orphans(p):
    files = blob_files(p)
    # bodies up to [store] inline_max live in their row; the rest are blob files
    hashes = {h.lower() for (h,) in p.db_query("SELECT hex(hash) FROM messages WHERE body IS NULL")}
    (count,) = p.db_query("SELECT count(*) FROM messages WHERE body IS NULL")[0]
    assert len(files) == count, f"{len(files)} blob files, {count} message rows"
    assert {os.path.basename(f) for f in files} == hashes
    for f in files:
        assert os.path.basename(os.path.dirname(f)) == os.path.basename(f)[:2]
    assert os.listdir(os.path.join(p.data_dir, "tmp")) == []
    unreferenced = p.db_query("SELECT count(*) FROM messages WHERE id NOT IN (SELECT message_id FROM mailbox_messages)"
                              " AND id NOT IN (SELECT message_id FROM queue)")[0][0]
    assert unreferenced == 0


@pytest.mark.parametrize("inline_max", [0, None], ids=["blob-files", "inline-bodies"])
def test_kill_store_during_burst(make_postern, inline_max):
    p = make_postern("burst", top_extra="" if inline_max is None else f"[store]\ninline_max = {inline_max}\n")
    store_pid, lmtp_pid = p.store_pid(), p.pids("lmtp")[0]
    store_restarts = int(p.row("store")["RESTARTS"])
    deadline = time.monotonic() + 150
    clients = [BurstClient(p, t, deadline) for t in range(THREADS)]
    for c in clients:
        c.start()
    wait_for(lambda: sum(len(c.acked) for c in clients) >= KILL_AFTER_ACKS, 60, interval=0.005,
             what=f"{KILL_AFTER_ACKS} acknowledged deliveries")
    acked_before_kill = sum(len(c.acked) for c in clients)
    os.kill(store_pid, signal.SIGKILL)
    for c in clients:
        c.join(timeout=max(1, deadline - time.monotonic()))
    assert not any(c.is_alive() for c in clients), "burst clients did not finish"
    assert acked_before_kill < THREADS * PER_THREAD, "the burst was over before the kill"
    print(f"acked before kill: {acked_before_kill}; unacknowledged attempts: "
          f"{sum(len(c.unacked) for c in clients)}; replies: {sum((c.replies for c in clients), collections.Counter())}; "
          f"exceptions: {sum((c.exceptions for c in clients), collections.Counter())}")

    # Every client finished its messages after reconnecting; failures were temporary only.
    for c in clients:
        assert c.done == PER_THREAD, f"client {c.tid} stopped at {c.done}: {c.replies} {c.exceptions}"
        assert all(400 <= code < 500 for code in c.replies), f"client {c.tid} got permanent failures: {c.replies}"

    row = wait_store_serving(p, store_pid, lmtp_pid)
    assert int(row["RESTARTS"]) == store_restarts + 1

    acked = {m for c in clients for m in c.acked}
    unacked = {m for c in clients for m in c.unacked}
    bodies = {k: v for c in clients for k, v in c.bodies.items()}
    assert len(acked) == THREADS * PER_THREAD

    def check_mailbox():
        msgs = p.export("alice@example.test")
        counts = collections.Counter(header_value(m, "Message-ID") for m in msgs)
        missing = [m for m in acked if counts[m] != 1]
        assert not missing, f"acknowledged messages not present exactly once: " \
                            f"{[(m, counts[m]) for m in missing[:10]]} ({len(missing)} in all)"
        # Other copies can only come from attempts that never got their 250 (the client then
        # retried under a new Message-ID); one transaction is never stored twice.
        for mid, n in counts.items():
            assert mid in bodies, f"unknown message {mid} in the mailbox"
            assert n == 1, f"{mid} present {n} times"
            assert mid in acked or mid in unacked
        # Whole messages only: each body is exactly what was sent for that Message-ID.
        for m in msgs:
            assert strip_trace_headers(m)[2] == bodies[header_value(m, "Message-ID")]
        return len(msgs)

    rows = p.inbox_count("alice@example.test")
    assert len(acked) <= rows <= len(acked) + len(unacked), (rows, len(acked), len(unacked))

    # A second kill -9 while idle: the store restarts and runs its start-up sweep, after
    # which no blob file lacks its row (and no row lacks its blob), and tmp/ is empty.
    store_pid, lmtp_pid = p.store_pid(), p.pids("lmtp")[0]
    os.kill(store_pid, signal.SIGKILL)
    wait_store_serving(p, store_pid, lmtp_pid)
    assert_no_orphans(p)
    assert p.inbox_count("alice@example.test") == rows

    # Every acknowledged message is in the mailbox exactly once, whole.
    assert check_mailbox() == rows


def test_kill_lmtpd_is_restarted(make_postern):
    p = make_postern("lmtpkill")
    before = p.row("lmtp")
    store_pid = p.store_pid()
    old = int(before["PID"])
    os.kill(old, signal.SIGKILL)
    row = wait_restarted(p, "lmtp", old)
    assert int(row["RESTARTS"]) == int(before["RESTARTS"]) + 1
    assert p.store_pid() == store_pid
    body = b"Subject: after lmtpd kill\r\nMessage-ID: <after-lmtpd-kill@test.example.org>\r\n\r\nhi\r\n"
    for tcp in (False, True):
        _, data = p.deliver(["bob@example.test"], body, tcp=tcp)
        assert [d[0] for d in data] == [250]
    assert p.inbox_count("bob@example.test") == 2
