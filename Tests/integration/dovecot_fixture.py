"""A private Dovecot 2.3 (imap only, plain on loopback) started by the test itself: config,
base_dir, state_dir, log and maildirs under one temporary directory, one passwd-file user with a
{PLAIN} password. Nothing outside the temporary directory is read or written (CI is a clean
machine); the test skips only when Dovecot is not installed."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import free_port, wait_for

DOVECOT_USER = "dovecot-test@example.test"
DOVECOT_PASSWORD = "dovecot test password"
# Dovecot processes run as the mail user; as root a system user owns the maildirs.
MAIL_USER_CANDIDATES = ("nobody", "postern")
START_TIMEOUT = 20


def dovecot_binary():
    """The dovecot executable, or None when it is not installed."""
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        p = os.path.join(d, "dovecot")
        if os.access(p, os.X_OK):
            return p
    return shutil.which("dovecot")


def _mail_account():
    """(user name, uid, gid) the mail processes run as: a system user when we are root, else us."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return pw.pw_name, pw.pw_uid, pw.pw_gid
    for name in MAIL_USER_CANDIDATES:
        try:
            pw = pwd.getpwnam(name)
            return name, pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    raise AssertionError(f"none of the users {MAIL_USER_CANDIDATES} exists to own the Dovecot maildirs")


def _internal_users():
    """default_internal_user / default_login_user: Debian's `dovecot` and `dovenull` as root,
    ourselves otherwise (Dovecot then runs unprivileged as one user)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, me
    names = []
    for name in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(name)
            names.append(name)
        except KeyError:
            names.append("nobody")
    return names[0], names[1]


class PrivateDovecot:
    def __init__(self, name="cmp"):
        self.binary = dovecot_binary()
        self.root = tempfile.mkdtemp(prefix=f"postern-it-dovecot-{name}-")
        os.chmod(self.root, 0o755)
        self.base_dir = os.path.join(self.root, "run")
        self.state_dir = os.path.join(self.root, "state")
        self.mail_dir = os.path.join(self.root, "mail")
        for d in (self.base_dir, self.state_dir, self.mail_dir):
            os.makedirs(d)
            os.chmod(d, 0o755)
        self.log_path = os.path.join(self.root, "dovecot.log")
        self.conf = os.path.join(self.root, "dovecot.conf")
        self.users = os.path.join(self.root, "users")
        self.port = free_port()
        self.user, self.password = DOVECOT_USER, DOVECOT_PASSWORD
        self.proc = None
        mail_user, uid, gid = _mail_account()
        os.chown(self.mail_dir, uid, gid)
        home = os.path.join(self.mail_dir, "home")
        with open(self.users, "w") as f:
            f.write(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{home}::\n")
        internal, login = _internal_users()
        with open(self.conf, "w") as f:
            f.write(self.render(uid, internal, login))

    def render(self, uid, internal_user, login_user):
        return (
            "# private Dovecot for test_imap_dovecot.py: loopback imap only\n"
            "instance_name = postern-test\n"
            f"base_dir = {self.base_dir}\n"
            f"state_dir = {self.state_dir}\n"
            f"log_path = {self.log_path}\n"
            f"info_log_path = {self.log_path}\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "ssl = no\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            f"default_internal_user = {internal_user}\n"
            f"default_login_user = {login_user}\n"
            f"first_valid_uid = {uid}\n"
            f"last_valid_uid = {uid}\n"
            "mail_location = maildir:~/Maildir\n"
            "mail_max_userip_connections = 100\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {self.users}\n}}\n"
            "userdb {\n  driver = passwd-file\n"
            f"  args = username_format=%u {self.users}\n}}\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
            "service imap-login {\n  inet_listener imap {\n"
            f"    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}\n"
            # the stock services listen on sockets in base_dir only; no stats/anvil surprises
            "service stats {\n  unix_listener stats-writer {\n    mode = 0666\n  }\n}\n"
        )

    def start(self):
        log = open(os.path.join(self.root, "dovecot.stderr"), "ab")
        # -F: stay in the foreground, so the process is ours to stop.
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "-F"], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited with {self.proc.returncode}:\n{self.log_tail()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.makefile("rb").readline().startswith(b"* OK")
        try:
            wait_for(listening, START_TIMEOUT, interval=0.1, what="dovecot imap listener")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """SIGTERM to Dovecot's process group (its master stops the rest), SIGKILL if that hangs."""
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            if self.proc is None or self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue

    def cleanup(self):
        self.stop()
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n=40):
        text = ""
        for name in ("dovecot.log", "dovecot.stderr"):
            try:
                with open(os.path.join(self.root, name), encoding="utf-8", errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return "\n".join(text.splitlines()[-n:])


@pytest.fixture(scope="module")
def dovecot():
    """A started private Dovecot (`.port`, `.user`, `.password`), stopped and removed afterwards."""
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (Debian: dovecot-imapd)")
    d = PrivateDovecot()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()
