# DESIGN §1: every worker and the store drop to their own unprivileged user, with every
# capability set empty and NoNewPrivs; the data dir belongs to the store user alone.
import grp
import os
import pwd
import stat
import subprocess

import pytest

from conftest import IS_ROOT, running_instance

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="privilege dropping is only real as root")


@pytest.fixture(scope="module")
def postern():
    """Two lmtpd processes, so that "every worker" means more than one."""
    with running_instance("priv", lmtp_extra="processes = 2\n") as p:
        yield p


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def assert_unprivileged(pid, user):
    st = proc_status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    assert len(uids) == 4 and len(gids) == 4
    assert all(u != 0 for u in uids), f"pid {pid} Uid: {st['Uid']}"
    assert all(g != 0 for g in gids), f"pid {pid} Gid: {st['Gid']}"
    pw = pwd.getpwnam(user)
    assert uids == [pw.pw_uid] * 4, f"pid {pid} should run as {user}: Uid {st['Uid']}"
    assert gids == [pw.pw_gid] * 4, f"pid {pid} should run with {user}'s group: Gid {st['Gid']}"
    assert st["Groups"] == "", f"pid {pid} kept supplementary groups: {st['Groups']!r}"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, f"pid {pid} {cap} = {st[cap]}"
    assert st["NoNewPrivs"] == "1", f"pid {pid} NoNewPrivs = {st['NoNewPrivs']}"


def test_store_is_unprivileged(postern):
    assert_unprivileged(postern.store_pid(), "postern-store")


def test_every_lmtpd_is_unprivileged(postern):
    pids = postern.pids("lmtp")
    assert len(set(pids)) == 2 and all(p > 0 for p in pids)
    for pid in pids:
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "lmtpd"
        assert_unprivileged(pid, "postern")


def test_master_stays_root(postern):
    # The master is the one process that keeps root (it binds listeners, spawns workers).
    assert proc_status(postern.proc.pid)["Uid"].split()[0] == "0"


def test_data_dir_belongs_to_store_user(postern):
    st = os.stat(postern.data_dir)
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    assert pwd.getpwuid(st.st_uid).pw_name == "postern-store"
    assert grp.getgrgid(st.st_gid).gr_name == "postern-store"
    db = os.path.join(postern.data_dir, "postern.db")
    assert os.path.exists(db)
    assert pwd.getpwuid(os.stat(db).st_uid).pw_name == "postern-store"


def test_worker_user_cannot_open_database(postern):
    db = os.path.join(postern.data_dir, "postern.db")
    r = subprocess.run(["runuser", "-u", "postern", "--", "cat", db], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert r.stdout == b""
    assert b"Permission denied" in r.stderr, r.stderr
    # The same with a direct open(2) as the worker uid (no help from runuser's PAM session).
    pw = pwd.getpwnam("postern")
    code = ("import sys\ntry:\n    open(sys.argv[1], 'rb').read(1)\nexcept PermissionError:\n    sys.exit(13)\nsys.exit(0)")
    r = subprocess.run(["python3", "-c", code, db], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                       capture_output=True, timeout=30)
    assert r.returncode == 13, (r.returncode, r.stderr)
