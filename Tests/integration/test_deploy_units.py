# The systemd units as shipped (issue 15): `systemd-analyze security --offline=true` rates
# postern.service at MAX_EXPOSURE or better and `systemd-analyze verify` has nothing to say on any
# unit; the socket units name their sockets the way the master matches them with the example
# configuration's listeners; `make install-files`/`make uninstall` honour DESTDIR and PREFIX.
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN, REPO

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze (Debian package systemd) missing")
UNITS = os.path.join(REPO, "systemd")
# The floor for a root master that spawns workers of two other users (README "Install": the
# remaining items are PrivateNetwork, User=root, CAP_SETUID/SETGID/SETPCAP, CAP_KILL, @privileged
# system calls, AF_INET/AF_INET6/AF_UNIX, PrivateUsers, the host root, no IP allow list, /dev/rtc).
MAX_EXPOSURE = 2.1
MASTER_CAPABILITIES = {"CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL"}
# SocketActivation.fdName(forKey:): the listener role, "smtp" for mta.
ROLE_NAMES = {"mta": "smtp", "submission": "submission", "smtps": "smtps", "imap": "imap", "imaps": "imaps",
              "pop3": "pop3", "pop3s": "pop3s", "lmtp": "lmtp"}


def unit_files():
    return sorted(f for f in os.listdir(UNITS) if f.endswith((".service", ".socket")))


def settings(path, section):
    out, cur = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith("["):
            cur = line
        elif cur == section and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.append((k, v))
    return out


def units_pointing_at_the_build(tmp):
    """Copies of the units whose ExecStart/ExecStartPre name the built binaries (verify checks
    that every command exists)."""
    for u in unit_files():
        text = open(os.path.join(UNITS, u)).read()
        text = text.replace("/usr/libexec/postern/", BIN + "/").replace("/usr/sbin/postern ", BIN + "/postern ")
        with open(os.path.join(tmp, u), "w") as f:
            f.write(text)
    return [os.path.join(tmp, u) for u in unit_files()]


def test_security_exposure_of_the_service():
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", os.path.join(UNITS, "postern.service")],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for postern\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    exposure = float(m.group(1))
    assert exposure <= MAX_EXPOSURE, r.stdout
    # The capability bounding set is exactly what the master needs (the unit's comment says why).
    caps = [v for k, v in settings(os.path.join(UNITS, "postern.service"), "[Service]") if k == "CapabilityBoundingSet"]
    assert set(caps[-1].split()) == MASTER_CAPABILITIES


def test_verify_has_no_warning():
    with tempfile.TemporaryDirectory() as tmp:
        files = units_pointing_at_the_build(tmp)
        r = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True, cwd=tmp)
        assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_socket_units_match_the_example_configuration():
    """Every TCP listener of postern.toml.example and the LMTP socket has a socket unit at the
    same address named for its role, and the service wants every socket unit."""
    example = open(os.path.join(REPO, "postern.toml.example")).read()
    wanted = set()
    def entries(text, key):
        line = re.search(rf"^{key} = (.*)$", text, re.M).group(1).split("#")[0]
        return re.findall(r'"([^"]+)"', line)
    for role in ("mta", "submission", "smtps"):
        wanted |= {(ROLE_NAMES[role], a) for a in entries(example, role)}
    for section in ("imap", "pop3"):
        body = example.split(f"\n[{section}]")[1]
        wanted |= {(ROLE_NAMES[e.split("@")[0]], e.split("@", 1)[1]) for e in entries(body, "listen")}
    wanted.add(("lmtp", "/run/postern/lmtp"))   # [lmtp] listen = ["unix:lmtp"] in run_dir /run/postern
    have = set()
    sockets = [u for u in unit_files() if u.endswith(".socket")]
    for u in sockets:
        s = settings(os.path.join(UNITS, u), "[Socket]")
        name = [v for k, v in s if k == "FileDescriptorName"][-1]
        assert ("Service", "postern.service") in s, u
        have |= {(name, v) for k, v in s if k == "ListenStream"}
    assert have == wanted
    wants = " ".join(v for k, v in settings(os.path.join(UNITS, "postern.service"), "[Unit]") if k == "Wants")
    assert set(sockets) <= set(wants.split())


def test_install_and_uninstall_honour_destdir_and_prefix():
    with tempfile.TemporaryDirectory() as dest:
        r = subprocess.run(["make", "-s", "install-files", f"DESTDIR={dest}", "PREFIX=/opt/pt", f"PKG_BIN={BIN}"], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        for f in ("opt/pt/libexec/postern/master", "opt/pt/libexec/postern/store", "opt/pt/libexec/postern/lmtpd",
                  "opt/pt/sbin/postern", "opt/pt/lib/postern/libswiftCore.so", "lib/systemd/system/postern.service",
                  "lib/systemd/system/postern-lmtp.socket", "usr/lib/sysusers.d/postern.conf", "usr/lib/tmpfiles.d/postern.conf",
                  "etc/postern/postern.toml", "opt/pt/share/doc/postern/README.md"):
            assert os.path.exists(os.path.join(dest, f)), f
        service = open(os.path.join(dest, "lib/systemd/system/postern.service")).read()
        assert "ExecStart=/opt/pt/libexec/postern/master " in service and "ExecStartPre=/opt/pt/sbin/postern " in service
        # The binaries find the Swift runtime next to them, wherever PREFIX is, not in the toolchain.
        rpath = subprocess.run(["readelf", "-d", os.path.join(dest, "opt/pt/libexec/postern/master")], capture_output=True, text=True).stdout
        assert "[$ORIGIN/../../lib/postern]" in rpath, rpath
        ldd = subprocess.run(["ldd", os.path.join(dest, "opt/pt/sbin/postern")], capture_output=True, text=True).stdout
        assert os.path.join(dest, "opt/pt/sbin/../lib/postern/libswiftCore.so") in ldd, ldd
        r = subprocess.run([os.path.join(dest, "opt/pt/sbin/postern"), "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "postern" in r.stdout
        # An edited configuration is never replaced.
        conf = os.path.join(dest, "etc/postern/postern.toml")
        with open(conf, "a") as f:
            f.write("# edited\n")
        r = subprocess.run(["make", "-s", "install-files", f"DESTDIR={dest}", "PREFIX=/opt/pt", f"PKG_BIN={BIN}"], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert open(conf).read().endswith("# edited\n")
        r = subprocess.run(["make", "-s", "uninstall", f"DESTDIR={dest}", "PREFIX=/opt/pt"], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        left = sorted(os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs)
        assert left == ["etc/postern/postern.toml"], left


SANDBOX_PROBE = r"""
import mmap, os, socket
def attempt(what, f):
    try:
        f()
        print(what, "allowed")
    except OSError as e:
        print(what, "refused", e.errno)
attempt("rwx-mmap", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC))
attempt("rw-mmap", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE))
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
attempt("inet6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
attempt("setpriority", lambda: os.setpriority(os.PRIO_PROCESS, 0, 5))
attempt("write-etc", lambda: open("/etc/postern-sandbox-probe", "w"))
attempt("write-data", lambda: open(os.environ["PROBE_DATA"] + "/probe", "w").close())
attempt("read-root-home", lambda: os.listdir("/root"))
print("capbnd", open("/proc/self/status").read().split("CapBnd:")[1].split()[0])
print("nnp", open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0])
"""


@pytest.mark.skipif(os.geteuid() != 0 or subprocess.run(["/usr/bin/python3", "-c", "import seccomp"]).returncode != 0,
                    reason="root and python3-seccomp (Debian) needed")
def test_unit_sandbox_applies_the_unit():
    """unit_sandbox.py (what test_deploy_package.py runs the installed master under) really
    enforces the unit: a probe under it is refused W+X memory, netlink sockets, nice, writes
    outside ReadWritePaths and /root; keeps the four capabilities in its bounding set."""
    # Not under /tmp: PrivateTmp hides it (under systemd too).
    with tempfile.TemporaryDirectory(dir="/run") as tmp:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        text = open(os.path.join(UNITS, "postern.service")).read()
        text = re.sub(r"^ReadWritePaths=.*$", f"ReadWritePaths={data}", text, flags=re.M)
        text = re.sub(r"^RuntimeDirectory=.*$", "RuntimeDirectory=postern-sandbox-probe", text, flags=re.M)
        unit = os.path.join(tmp, "postern.service")
        with open(unit, "w") as f:
            f.write(text)
        r = subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "unit_sandbox.py"), unit, "--",
                            "/usr/bin/python3", "-c", SANDBOX_PROBE], capture_output=True, text=True, env=dict(os.environ, PROBE_DATA=data))
        shutil.rmtree("/run/postern-sandbox-probe", ignore_errors=True)
        assert r.returncode == 0, r.stderr
        got = dict(l.split(" ", 1) for l in r.stdout.splitlines())
        assert got == {"rwx-mmap": "refused 1", "rw-mmap": "allowed", "netlink": "refused 1", "inet6": "allowed",
                       "setpriority": "refused 1", "write-etc": "refused 30", "write-data": "allowed",
                       "read-root-home": "refused 13", "capbnd": "00000000000001e0", "nnp": "1"}, r.stdout
