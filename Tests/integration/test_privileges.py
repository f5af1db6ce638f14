# DESIGN §1: every worker and the store drop to their own unprivileged user, with every
# capability set empty and NoNewPrivs; the data dir belongs to the store user alone.
import grp
import os
import pwd
import stat
import subprocess

import pytest

from conftest import (IS_ROOT, STORE_USER, WORKER_USER, assert_all_unprivileged, assert_unprivileged, proc_status,
                      running_instance)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="privilege dropping is only real as root")


@pytest.fixture(scope="module")
def postern():
    """Two lmtpd processes, so that "every worker" means more than one."""
    with running_instance("priv", lmtp_extra="processes = 2\n") as p:
        yield p


def test_every_process_but_the_master_is_unprivileged(postern):
    rows = assert_all_unprivileged(postern)
    assert sorted(r["SERVICE"] for r in rows) == ["lmtp", "lmtp", "store"], rows


def test_store_is_unprivileged(postern):
    assert_unprivileged(postern.store_pid(), STORE_USER)


def test_every_lmtpd_is_unprivileged(postern):
    pids = postern.pids("lmtp")
    assert len(set(pids)) == 2 and all(p > 0 for p in pids)
    for pid in pids:
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "lmtpd"
        assert_unprivileged(pid, WORKER_USER)


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
