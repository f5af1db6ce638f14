# The package under systemd as PID 1 (issue 15): a Debian container (systemd-nspawn -b on a
# debootstrap root, volatile: nothing it does stays) installs the .deb and runs postern.service
# for real: the hardened unit, the eight socket units, the default configuration, journald;
# nspawn_check.sh drives it inside (every client on the socket-activated ports, a restart that
# refuses no connection, reload, stop, remove keeps the mail, purge).
# POSTERN_DEB=path tests that package instead of packaging the debug build.
# Needs the container root, made once with `make nspawn-root` (debootstrap from the Debian
# mirror, about 4 minutes); skipped without it.
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN, IS_ROOT, REPO

ROOT = os.environ.get("POSTERN_NSPAWN_ROOT", "/var/tmp/postern-nspawn-root")
CHECK = os.path.join(os.path.dirname(__file__), "nspawn_check.sh")
EXPECTED = ["installed", "enabled", "active"] + [f"socket-{s}" for s in
            ("smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s", "lmtp")] + [
            "status", "master-capbnd", "master-seccomp", "domain", "user", "clients", "export", "journald", "activation",
            "restart", "reload", "stop", "remove-keeps-mail", "remove-keeps-config", "purge-removes"]

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="systemd-nspawn needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="systemd-nspawn (systemd-container) missing"),
    pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "lib/systemd/systemd")),
                       reason=f"no container root at {ROOT} (make nspawn-root)"),
]

UNIT = """[Unit]
Description=Postern package check
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/sh /postern-check.sh
"""


def test_package_under_systemd_in_a_container():
    work = tempfile.mkdtemp(prefix="postern-nspawn-")
    try:
        if os.environ.get("POSTERN_DEB"):          # a package made before (e.g. the release `make deb`)
            shutil.copy(os.environ["POSTERN_DEB"], work)
        else:
            r = subprocess.run(["make", "-s", "deb", f"PKG_BIN={BIN}", "DEB_COMPRESS=none", f"DEB_OUT={work}"], cwd=REPO,
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
        (deb,) = [f for f in os.listdir(work) if f.endswith(".deb")]
        results = os.path.join(work, "results")
        os.makedirs(results)
        unit = os.path.join(work, "postern-check.service")
        with open(unit, "w") as f:
            f.write(UNIT)
        cmd = ["systemd-nspawn", "-b", "-D", ROOT, "--volatile=overlay", "--register=no", "--keep-unit", "--private-network",
               "--console=pipe", f"--bind-ro={os.path.join(work, deb)}:/postern.deb", f"--bind-ro={CHECK}:/postern-check.sh",
               f"--bind-ro={unit}:/etc/systemd/system/postern-check.service", f"--bind={results}:/results",
               "systemd.wants=postern-check.service"]
        boot = subprocess.run(cmd, capture_output=True, text=True, timeout=170)
        log = open(os.path.join(results, "log")).read() if os.path.exists(os.path.join(results, "log")) else boot.stdout[-4000:]
        checks = open(os.path.join(results, "checks")).read().split("\n") if os.path.exists(os.path.join(results, "checks")) else []
        assert checks[-2:] == ["done", ""], f"the check did not finish:\n{log[-6000:]}"
        failed = [c for c in checks if c.startswith("FAIL")]
        assert failed == [], f"{failed}\n{log[-8000:]}"
        assert [c.split(" ", 1)[1] for c in checks if c.startswith("ok ")] == EXPECTED
    finally:
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
