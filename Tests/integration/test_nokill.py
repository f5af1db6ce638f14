# The master without CAP_KILL (issue 15's last 0.1): started as root with CAP_KILL dropped from
# its bounding set (setpriv, as CapabilityBoundingSet= does), it still drains and retires workers
# on SIGHUP, stops every child on SIGTERM within the grace period, and its children still die with
# it — every signal travels as a byte on the child's control pipe (FDContract, ControlPipe).
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BIN, IS_ROOT, Postern, _live_instances, _teardown, header_value, lmtp_transaction, populate, wait_for

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="needs root: the workers and the store must run as other users"),
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (Debian package util-linux) missing")]

CAP_KILL = 5
GRACE = 3                 # shutdown_grace in conftest.render_config
LMTP_PROCESSES = 2


class NoKillPostern(Postern):
    """The daemon set under a master whose bounding set lacks CAP_KILL."""

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["setpriv", "--bounding-set", "-kill", "--", os.path.join(BIN, "master"), "-c", self.conf],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if self not in _live_instances:
            _live_instances.append(self)
        try:
            self.wait_ready(timeout)
        except BaseException as e:
            self.kill()
            raise AssertionError(f"postern did not start ({e}); log:\n{self.log_tail()}") from None
        return self


def caps(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v, 16) for k, v in (l.split(":\t") for l in f if l.startswith("Cap"))}


def uid(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("Uid:")).split()[1])


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def processes_of(conf):
    """Every live child started for this configuration (the fd contract's POSTERN_CONFIG; not the master)."""
    needle = f"POSTERN_CONFIG={conf}\0".encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if needle in f.read() + b"\0" and not gone(int(d)):
                    found.append(int(d))
        except OSError:
            pass
    return found


def children(p):
    return [p.store_pid()] + p.pids("lmtp")


@pytest.fixture
def nokill():
    p = NoKillPostern(name="nokill", lmtp_extra=f"processes = {LMTP_PROCESSES}\n")
    try:
        p.start()
        populate(p)
        yield p
    finally:
        _teardown(p)


def test_master_runs_without_cap_kill_and_kill_would_be_refused(nokill):
    c = caps(nokill.proc.pid)
    assert not c["CapBnd"] >> CAP_KILL & 1 and not c["CapEff"] >> CAP_KILL & 1 and not c["CapPrm"] >> CAP_KILL & 1, c
    assert uid(nokill.proc.pid) == 0
    pids = children(nokill)
    assert len(pids) == 1 + LMTP_PROCESSES and all(uid(pid) != 0 for pid in pids)
    assert sorted(processes_of(nokill.conf)) == sorted(pids)
    # Each child holds the read end of its control pipe where POSTERN_CONTROL_FD says.
    for pid in pids:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        assert os.readlink(f"/proc/{pid}/fd/{int(env[b'POSTERN_CONTROL_FD'])}").startswith("pipe:"), pid
    # What the master could not do any more: kill(2) across uids without CAP_KILL is EPERM.
    r = subprocess.run(["setpriv", "--bounding-set", "-kill", "--", "kill", "-0", str(pids[0])], capture_output=True, text=True)
    assert r.returncode != 0, "kill(2) across uids succeeded without CAP_KILL: the test proves nothing"
    # Mail still flows.
    c = nokill.lmtp()
    try:
        _, rcpt, data = lmtp_transaction(c, "sender@example.org", ["bob@example.test"], b"Subject: nokill\r\n\r\nbody\r\n")
        assert [d[0] for d in data] == [250], data
    finally:
        c.quit()


def test_sighup_retires_workers_without_cap_kill(nokill):
    store, old = nokill.store_pid(), nokill.pids("lmtp")
    os.kill(nokill.proc.pid, signal.SIGHUP)
    # The old workers get SIGTERM by their pipes, drain and exit; new ones take their place.
    for pid in old:
        wait_for(lambda: gone(pid), 15, what=f"retired lmtpd {pid} gone")
    wait_for(lambda: all(r["STATE"] == "running" and int(r["PID"]) > 0 for r in nokill.status())
             and not set(nokill.pids("lmtp")) & set(old), 15, what="new lmtpd running")
    assert nokill.store_pid() == store
    assert "kill(" not in nokill.log() and "not writable" not in nokill.log(), nokill.log_tail()


def test_sigterm_drains_and_stops_every_child_within_grace(nokill):
    pids = children(nokill)
    mid = f"<nokill-drain.{time.time_ns()}@test.example.org>"
    body = b"Subject: drain\r\nMessage-ID: " + mid.encode() + b"\r\n\r\nbody\r\n"
    c = nokill.lmtp()
    assert c.mail("sender@example.org")[0] == 250
    assert c.rcpt("bob@example.test")[0] == 250
    assert c.docmd("DATA")[0] == 354
    c.send(body[:20])
    t0 = time.monotonic()
    nokill.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: nokill.row("master")["STATE"] == "stopping", 5, what="master stopping")
    # Draining, not killed: the open session finishes.
    c.send(body[20:] + b".\r\n")
    assert c.getreply()[0] == 250
    assert c.quit()[0] == 221
    c.close()
    assert nokill.proc.wait(timeout=GRACE + 10) == 0
    assert time.monotonic() - t0 < GRACE + 8
    for pid in pids:
        wait_for(lambda: gone(pid), 5, what=f"child {pid} gone")
    assert processes_of(nokill.conf) == []
    assert "kill(" not in nokill.log() and "not writable" not in nokill.log(), nokill.log_tail()
    nokill.start()
    assert any(header_value(m, "Message-ID") == mid for m in nokill.export("bob@example.test"))


def test_children_die_with_the_master(nokill):
    pids = children(nokill)
    os.kill(nokill.proc.pid, signal.SIGKILL)      # no drain, no byte: only the pipes' EOF and PDEATHSIG
    nokill.proc.wait(timeout=10)
    for pid in pids:
        wait_for(lambda: gone(pid), GRACE + 10, what=f"child {pid} gone after the master")
    assert processes_of(nokill.conf) == []
