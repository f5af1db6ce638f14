# The Debian package end to end (issue 15), as root on this machine: `make deb` -> `apt-get
# install ./postern_*.deb` (users, directories, units, conffile) -> `postern config check` -> the
# installed master started the way postern.service starts it, as far as that goes without systemd
# as PID 1: its sockets below 1024 from an activator (postern-*.socket), its sandbox from the
# installed unit (unit_sandbox.py: mounts, capability bounding set, NoNewPrivileges,
# MemoryDenyWriteExecute, the seccomp system call filter) -> `postern user add` -> LMTP delivery
# -> `postern export` -> `apt-get remove` keeps the mail -> purge; the machine is left as it was.
# Packages the debug build (PKG_BIN, uncompressed) so it takes well under three minutes.
import os
import pwd
import grp
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import imaplib
import poplib

import pytest

from activator import Activator
from conftest import BIN, IS_ROOT, REPO, free_port, wait_for

VERSION = "0.1.0"
SANDBOX = os.path.join(os.path.dirname(__file__), "unit_sandbox.py")
SYSTEM_PYTHON = "/usr/bin/python3"          # Debian's, with python3-seccomp
UNIT = "/lib/systemd/system/postern.service"
MASTER = "/usr/libexec/postern/master"
CONF = "/etc/postern/postern.toml"
PASSWORD = "deb package password"
# CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_SETPCAP: bits 7, 6, 8.
MASTER_CAPBND = (1 << 6) | (1 << 7) | (1 << 8)


def _has_seccomp():
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"]).returncode == 0


def _installed_already():
    return (subprocess.run(["dpkg-query", "-W", "postern"], capture_output=True).returncode == 0
            or any(os.path.exists(p) for p in ("/etc/postern", "/var/lib/postern", "/usr/sbin/postern", MASTER)))


pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="installs a package: root only"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None, reason="not a Debian system"),
    pytest.mark.skipif(not _has_seccomp(), reason="python3-seccomp (Debian) missing: the unit's sandbox cannot be applied"),
    pytest.mark.skipif(_installed_already(), reason="a postern package or /etc/postern, /var/lib/postern exists: not touched"),
]


def privileged_port(exclude=()):
    """A free loopback port below 1024 (the standard ones first)."""
    for port in [25, 143, 24, 110, 587] + list(range(900, 1000)):
        if port in exclude:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free loopback port below 1024")


def run(*cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def postern(*args, input=None, check=True):
    r = subprocess.run(["/usr/sbin/postern", *args], input=input, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"postern {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


def proc_status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def status_rows():
    lines = [l for l in postern("status").stdout.splitlines() if l.strip()]
    header = lines[0].split("\t")
    return [dict(zip(header, l.split("\t"))) for l in lines[1:]]


def config(smtp_port, imap_port, pop3_port, lookup_port):
    """Every worker runs: smtp and imap on the passed ports below 1024, pop3 and lookupd's
    socketmap on loopback ports the master binds itself, lmtp on its unix socket."""
    return ('hostname = "mx.deb.test"\n'
            "[master]\nrestart_delay = 0.2\nshutdown_grace = 3\n"
            f'[smtp]\nmta = ["127.0.0.1:{smtp_port}"]\nsubmission = []\nsmtps = []\n'
            f'[imap]\nlisten = ["imap@127.0.0.1:{imap_port}"]\n'
            f'[pop3]\nlisten = ["pop3@127.0.0.1:{pop3_port}"]\n'
            f'[lookup]\nsocketmap = ["127.0.0.1:{lookup_port}"]\n'
            '[lmtp]\nlisten = ["unix:lmtp"]\n')


def socketmap(port, request):
    """One socketmap_table(5) query: netstring in, netstring out."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"%d:%s," % (len(request), request))
        data = b""
        while not data.endswith(b","):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    return data.split(b":", 1)[1][:-1]


def sandboxed_master():
    return [SYSTEM_PYTHON, SANDBOX, UNIT, "--", MASTER, "-c", CONF]


def test_make_deb_install_run_remove_purge():
    out = tempfile.mkdtemp(prefix="postern-deb-")
    act = None
    proc = None
    try:
        r = run("make", "-s", "deb", f"PKG_BIN={BIN}", f"VERSION={VERSION}", "DEB_COMPRESS=none", f"DEB_OUT={out}", cwd=REPO)
        deb = os.path.join(out, f"postern_{VERSION}_{run('dpkg', '--print-architecture').stdout.strip()}.deb")
        assert os.path.exists(deb), r.stdout + r.stderr
        fields = run("dpkg-deb", "-f", deb, "Depends").stdout
        for lib in ("libssl3", "libcap2", "libsqlite3-0", "libcrypt1"):
            assert lib in fields, fields
        run("apt-get", "install", "-y", "--no-install-recommends", deb, cwd=out)

        # What the package and its postinst made.
        for u in ("postern", "postern-store"):
            pwd.getpwnam(u)
        st = os.stat("/var/lib/postern")
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pwd.getpwnam("postern-store").pw_uid, 0o700)
        assert stat.S_IMODE(os.stat("/etc/postern/tls").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(CONF).st_mode) == 0o640
        assert CONF in run("dpkg-query", "-W", "-f=${Conffiles}", "postern").stdout
        units = [UNIT] + sorted(f"/lib/systemd/system/{u}" for u in os.listdir("/lib/systemd/system")
                                if u.startswith("postern-") and u.endswith(".socket"))
        assert len(units) == 9
        v = run("systemd-analyze", "verify", *units, check=False)
        assert v.returncode == 0 and not (v.stdout + v.stderr).strip(), v.stdout + v.stderr
        assert "OK" in postern("config", "check").stdout

        # The administrator's configuration (an edited conffile) survives a reinstall.
        smtp_port = privileged_port()
        imap_port = privileged_port(exclude=(smtp_port,))
        pop3_port, lookup_port = free_port(), free_port()
        text = config(smtp_port, imap_port, pop3_port, lookup_port)
        with open(CONF, "w") as f:
            f.write(text)
        run("dpkg", "-i", deb)
        assert open(CONF).read() == text
        assert "OK" in postern("config", "check").stdout

        # Under the unit's sandbox the master cannot bind a port below 1024 itself (no
        # CAP_NET_BIND_SERVICE): without its sockets passed it stops with the reason.
        log_path = os.path.join(out, "master.log")
        r = subprocess.run(sandboxed_master(), capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and f"127.0.0.1:{smtp_port}: bind: Permission denied" in r.stderr, r.stderr

        # With them passed (as postern-smtp.socket and postern-imap.socket would), it runs.
        act = Activator([("smtp", ("tcp", "127.0.0.1", smtp_port)), ("imap", ("tcp", "127.0.0.1", imap_port))])
        proc = act.start(sandboxed_master(), log_path)

        def ready():
            assert proc.poll() is None, open(log_path).read()
            rows = status_rows() if os.path.exists("/run/postern/control") else []
            # "running" is the master's view from the spawn on; a worker drops its privileges
            # only after it has read its keys (the outbound agent: CA store, DKIM keys), so wait
            # for every worker's drop before checking what it kept.
            return rows and all(r["STATE"] == "running" and int(r["PID"]) > 0 and
                                (r["SERVICE"] == "master" or proc_status(int(r["PID"]))["Uid"].split()[0] != "0")
                                for r in rows)
        wait_for(ready, 60, interval=0.2, what="the sandboxed master")
        rows = status_rows()
        assert {r["SERVICE"] for r in rows} == {"master", "store", "lmtp", "smtp", "imap", "pop3", "lookup", "outbound"}, rows
        for row in rows:
            s = proc_status(int(row["PID"]))
            assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2", (row, s)
            if row["SERVICE"] == "master":
                assert int(s["CapBnd"], 16) == MASTER_CAPBND and s["Uid"].split()[0] == "0", s
            else:
                assert int(s["CapBnd"], 16) == 0 and s["Uid"].split()[0] != "0", (row, s)
        # The LMTP socket the master bound itself got the workers' group without CAP_CHOWN
        # (SupplementaryGroups=postern).
        lst = os.stat("/run/postern/lmtp")
        assert (lst.st_gid, stat.S_IMODE(lst.st_mode)) == (grp.getgrnam("postern").gr_gid, 0o660)

        postern("domain", "add", "deb.test")
        postern("user", "add", "user@deb.test", "--password-stdin", input=PASSWORD + "\n")
        c = smtplib.LMTP("/run/postern/lmtp", timeout=60)
        c.ehlo("client.example.org")
        assert c.sendmail("sender@example.org", ["user@deb.test"], b"Subject: from the package\r\n\r\nbody\r\n") == {}
        c.quit()
        s = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30)
        assert s.ehlo("client.example.org")[0] == 250
        s.quit()
        m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
        m.login("user@deb.test", PASSWORD)
        assert m.select("INBOX") == ("OK", [b"1"])
        m.logout()
        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
        pop.user("user@deb.test")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        pop.quit()
        assert socketmap(lookup_port, b"recipients user@deb.test").startswith(b"OK"), "lookupd"
        assert "Subject: from the package" in postern("export", "user@deb.test").stdout

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, open(log_path).read()
        proc = None

        # remove: binaries gone; mail, configuration and keys stay.
        run("apt-get", "remove", "-y", "postern")
        assert not os.path.exists(MASTER) and not os.path.exists("/usr/sbin/postern")
        assert os.path.exists("/var/lib/postern/postern.db")
        assert open(CONF).read() == text and os.path.exists("/etc/postern/tls/key.pem")
        # purge: the rest goes too.
        run("apt-get", "purge", "-y", "postern")
        assert not os.path.exists("/var/lib/postern") and not os.path.exists("/etc/postern")
        assert run("dpkg-query", "-W", "postern", check=False).returncode != 0
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if act is not None:
            act.close()
        if run("dpkg-query", "-W", "-f=${Status}", "postern", check=False).returncode == 0:
            run("dpkg", "--purge", "postern", check=False)
        for p in ("/var/lib/postern", "/etc/postern", "/run/postern"):
            shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
