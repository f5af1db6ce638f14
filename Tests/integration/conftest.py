# End-to-end fixtures: the real daemon set (master + store + lmtpd) started from the built
# binaries with a temporary configuration, populated through the `postern` CLI, and driven
# with real clients (Python's smtplib, Postfix's smtp-source, raw sockets).
#
#   POSTERN_BIN=$(swift build --show-bin-path) python3 -m pytest -q Tests/integration
#
# As root (CI) the privilege drop is real: workers run as `postern`, the store as
# `postern-store`. Set POSTERN_KEEP=1 to keep the temporary directories for inspection.
import contextlib
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTNAME = "mx.postern.test"
DEFAULT_PASSWORD = "correct horse battery staple"


def _bin_dir():
    b = os.environ.get("POSTERN_BIN")
    if not b:
        b = subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.strip()
    return b


BIN = _bin_dir()
IS_ROOT = os.geteuid() == 0


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the predicate may fail while things restart
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


_HANDED_OUT = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port free on 127.0.0.1 for a listener a daemon binds later. Picked below the kernel's
    ephemeral range (and above the anchors' 20xxx): a port the kernel hands out by itself can be
    taken meanwhile by any outgoing connection's local end, and the daemon's bind then fails with
    EADDRINUSE (seen in a clean-clone run). Never the same port twice in one test run."""
    low, high = 21000, min(_ephemeral_low(), 65536) - 1
    for _ in range(500):
        port = random.randint(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# mboxrd and message helpers

_FROM_ESCAPED = re.compile(rb"^>+From ")


def parse_mboxrd(data):
    """Parses `postern export` output (mboxrd) into a list of message bytes, undoing the
    ">From " escaping and dropping the one "\\n" written after each message."""
    messages = []
    cur = None
    lines = data.split(b"\n")
    # split() leaves an empty last element when data ends in "\n"; re-add the line ends.
    pieces = [l + b"\n" for l in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    for line in pieces:
        if line.startswith(b"From "):
            if cur is not None:
                messages.append(_finish_message(cur))
            cur = []
            continue
        assert cur is not None, f"mbox does not start with a From line: {data[:200]!r}"
        if _FROM_ESCAPED.match(line):
            line = line[1:]
        cur.append(line)
    if cur is not None:
        messages.append(_finish_message(cur))
    return messages


def _finish_message(lines):
    m = b"".join(lines)
    assert m.endswith(b"\n"), "message in mbox not followed by its separator newline"
    return m[:-1]


def strip_trace_headers(msg):
    """Splits a delivered message into (return_path_line, received_field, original_bytes):
    the SMTP/LMTP glue must have prepended exactly `Return-Path:` and one (possibly folded)
    `Received:` (the store keeps the bytes it is given)."""
    assert msg.startswith(b"Return-Path: "), f"no Return-Path first: {msg[:120]!r}"
    i = msg.index(b"\r\n") + 2
    return_path = msg[:i]
    assert msg[i:].startswith(b"Received: "), f"no Received second: {msg[:300]!r}"
    j = msg.index(b"\r\n", i) + 2
    while msg[j:j + 1] in (b" ", b"\t"):           # folded continuation lines
        j = msg.index(b"\r\n", j) + 2
    return return_path, msg[i:j], msg[j:]


def header_value(msg, name):
    """First value of header `name` in the header section (unfolded), or None."""
    head = msg.split(b"\r\n\r\n", 1)[0]
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head)
    for line in unfolded.split(b"\r\n"):
        k, sep, v = line.partition(b":")
        if sep and k.strip().lower() == name.lower().encode():
            return v.strip().decode("latin-1")
    return None


def lmtp_transaction(conn, sender, recipients, body, mail_options=()):
    """One LMTP transaction with low-level smtplib calls. Returns (mail_reply, rcpt_replies,
    data_replies): one data reply per accepted recipient, in RCPT order (RFC 2033 §4.2)."""
    mail_reply = conn.mail(sender, list(mail_options))
    if mail_reply[0] != 250:
        return mail_reply, [], []
    rcpt_replies = [conn.rcpt(r) for r in recipients]
    accepted = [r for r, (code, _) in zip(recipients, rcpt_replies) if code == 250]
    data_replies = []
    if accepted:
        data_replies.append(conn.data(body))
        for _ in accepted[1:]:
            data_replies.append(conn.getreply())
    else:
        conn.rset()
    return mail_reply, rcpt_replies, data_replies


# ---------------------------------------------------------------------------------------------
# The instance

def render_config(data_dir, run_dir, lmtp_port, lmtp_extra="", master_extra="", top_extra="", smtp_section=None,
                  imap_section=None):
    """The test configuration; it ends inside [lmtp], so appended keys land there. smtpd
    listens nowhere unless `smtp_section` (a whole [smtp] table) says otherwise, imapd
    nowhere unless `imap_section` (a whole [imap] table) or an [imap] table in `lmtp_extra`
    (imap_support.py) does."""
    if smtp_section is None:
        smtp_section = "[smtp]\nmta = []\nsubmission = []\nsmtps = []\n"
    if imap_section is None:
        imap_section = "" if "[imap]" in lmtp_extra else "[imap]\nlisten = []\n"
    # pop3d likewise listens nowhere unless a [pop3] table in `lmtp_extra` (test_pop3d.py) says so.
    pop3_section = "" if "[pop3]" in lmtp_extra else "[pop3]\nlisten = []\n"
    # The outbound agent (enabled by default) runs only where an [outbound] table in `lmtp_extra`
    # (outbound_support.py) asks for it.
    outbound_section = "" if "[outbound]" in lmtp_extra else "[outbound]\nenabled = false\n"
    return (
        f'hostname = "{HOSTNAME}"\n'
        f'data_dir = "{data_dir}"\n'
        f'run_dir = "{run_dir}"\n'
        f"{top_extra}\n"
        "[master]\n"
        "restart_delay = 0.2\n"
        "shutdown_grace = 3\n"
        f"{master_extra}\n"
        f"{smtp_section}\n"
        f"{imap_section}\n"
        f"{pop3_section}\n"
        f"{outbound_section}\n"
        "[lmtp]\n"
        f'listen = ["unix:lmtp", "127.0.0.1:{lmtp_port}"]\n'
        f"{lmtp_extra}\n"
    )


_live_instances = []


class Postern:
    def __init__(self, name="postern", lmtp_extra="", master_extra="", top_extra="", smtp_section=None, imap_section=None):
        self.root = tempfile.mkdtemp(prefix=f"postern-it-{name}-")
        os.chmod(self.root, 0o755)           # traversable by postern and postern-store
        self.conf = os.path.join(self.root, "postern.toml")
        self.data_dir = os.path.join(self.root, "data")
        self.run_dir = os.path.join(self.root, "run")
        os.makedirs(self.run_dir)
        os.chmod(self.run_dir, 0o755)
        self.lmtp_socket = os.path.join(self.run_dir, "lmtp")
        self.control_socket = os.path.join(self.run_dir, "control")
        self.lmtp_port = free_port()
        self.log_path = os.path.join(self.root, "master.log")
        self.proc = None
        self.smtp_section = smtp_section     # a whole [smtp] table, or None: smtpd listens nowhere
        self.imap_section = imap_section     # a whole [imap] table, or None: imapd listens nowhere
        self.config_text = self.render_config(lmtp_extra, master_extra, top_extra)
        with open(self.conf, "w") as f:
            f.write(self.config_text)

    def render_config(self, lmtp_extra="", master_extra="", top_extra=""):
        return render_config(self.data_dir, self.run_dir, self.lmtp_port, lmtp_extra, master_extra, top_extra,
                             smtp_section=getattr(self, "smtp_section", None), imap_section=getattr(self, "imap_section", None))

    # -- lifecycle

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "master"), "-c", self.conf], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if self not in _live_instances:
            _live_instances.append(self)
        try:
            self.wait_ready(timeout)
        except BaseException as e:
            self.kill()
            raise AssertionError(f"postern did not start ({e}); log:\n{self.log_tail()}") from None
        return self

    def wait_ready(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"master exited with {self.proc.returncode}")
            st = self.status()
            if not all(r["STATE"] == "running" and int(r["PID"]) > 0 for r in st):
                return False
            return self.cli("domain", "list", check=False).returncode == 0
        wait_for(ready, timeout, interval=0.1, what="postern ready")

    def stop(self, timeout=10):
        """SIGTERM the master; returns its exit status (fails if it takes longer than `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"master did not exit within {timeout}s of SIGTERM; log:\n{self.log_tail()}")
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def cleanup(self):
        self.kill()
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    # -- logs

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=150):
        return "\n".join(self.log().splitlines()[-lines:])

    # -- the CLI

    def cli(self, *args, input=None, check=True, timeout=120, binary=False):
        r = subprocess.run([os.path.join(BIN, "postern"), *args, "-c", self.conf], input=input,
                           capture_output=True, timeout=timeout, text=not binary)
        if check and r.returncode != 0:
            raise AssertionError(f"postern {' '.join(args)} failed ({r.returncode}): {r.stderr!r}")
        return r

    def add_user(self, address, password=DEFAULT_PASSWORD):
        self.cli("user", "add", address, "--password-stdin", input=password + "\n")

    def status(self):
        out = self.cli("status").stdout
        lines = [l for l in out.splitlines() if l.strip()]
        header = lines[0].split("\t")
        assert header == ["SERVICE", "INSTANCE", "PID", "STATE", "UPTIME", "RESTARTS"], header
        return [dict(zip(header, l.split("\t"))) for l in lines[1:]]

    def pids(self, service):
        return [int(r["PID"]) for r in self.status() if r["SERVICE"] == service]

    def store_pid(self):
        (p,) = self.pids("store")
        return p

    def row(self, service, instance=0):
        for r in self.status():
            if r["SERVICE"] == service and int(r["INSTANCE"]) == instance:
                return r
        raise AssertionError(f"no {service}[{instance}] in status")

    def export(self, user, mailbox=None):
        args = ["export", user] + ([mailbox] if mailbox else [])
        return parse_mboxrd(self.cli(*args, binary=True).stdout)

    def mailbox_counts(self, user):
        out = self.cli("mailbox", "list", user).stdout
        lines = [l for l in out.splitlines() if l.strip()]
        header = lines[0].split("\t")
        assert header[:3] == ["NAME", "SPECIAL-USE", "MESSAGES"], header
        return {l.split("\t")[0]: int(l.split("\t")[2]) for l in lines[1:]}

    def inbox_count(self, user):
        return self.mailbox_counts(user)["INBOX"]

    # -- clients

    def lmtp(self, tcp=False, timeout=60):
        if tcp:
            c = smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=timeout)
        else:
            c = smtplib.LMTP(self.lmtp_socket, timeout=timeout)
        code, _ = c.ehlo("client.example.org")   # LMTP: smtplib sends LHLO
        assert code == 250
        return c

    def deliver(self, recipients, body, sender="sender@example.org", tcp=False):
        """Delivers one message in its own session; returns the per-recipient DATA replies."""
        c = self.lmtp(tcp=tcp)
        try:
            _, rcpt, data = lmtp_transaction(c, sender, recipients, body)
            return rcpt, data
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    # -- the store's files (root only)

    def db_query(self, sql):
        """Runs `sql` on a copy of the store's database (never opens the live files, so no
        root-owned -wal/-shm file can appear in the data dir)."""
        tmp = tempfile.mkdtemp(prefix="postern-db-")
        try:
            for suffix in ("", "-wal"):
                src = os.path.join(self.data_dir, "postern.db" + suffix)
                if os.path.exists(src):
                    shutil.copyfile(src, os.path.join(tmp, "postern.db" + suffix))
            db = sqlite3.connect(os.path.join(tmp, "postern.db"))
            try:
                return db.execute(sql).fetchall()
            finally:
                db.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def populate(p):
    p.cli("domain", "add", "example.test")
    p.add_user("alice@example.test")
    p.add_user("bob@example.test")
    p.cli("alias", "add", "postmaster@example.test", "alice@example.test")
    p.cli("domain", "add", "catch.test")
    p.cli("alias", "add", "@catch.test", "alice@example.test")


def ensure_system_users():
    if not IS_ROOT:
        return
    import pwd
    missing = []
    for u in ("postern", "postern-store"):
        try:
            pwd.getpwnam(u)
        except KeyError:
            missing.append(u)
    if missing:
        subprocess.run(["bash", os.path.join(REPO, "scripts", "ensure-users.sh")], check=True)


def _teardown(p):
    try:
        if p.proc is not None and p.proc.poll() is None:
            rc = p.stop(timeout=10)
            assert rc == 0, f"master exited with status {rc} after SIGTERM; log:\n{p.log_tail()}"
    finally:
        p.cleanup()


@pytest.fixture(scope="session", autouse=True)
def _system_users():
    for exe in ("master", "store", "lmtpd", "postern"):
        assert os.access(os.path.join(BIN, exe), os.X_OK), f"{exe} not built in {BIN} (run swift build)"
    ensure_system_users()


@contextlib.contextmanager
def running_instance(name, users=(), **config):
    """A started, populated instance (plus `users`), stopped and removed afterwards."""
    p = Postern(name=name, **config)
    try:
        p.start()
        populate(p)
        for u in users:
            p.add_user(u)
        yield p
    finally:
        _teardown(p)


@pytest.fixture(scope="module")
def postern():
    """One populated instance shared by a test module (tests must not disturb each other:
    they use their own users or unique Message-IDs)."""
    with running_instance("mod") as p:
        yield p


@pytest.fixture
def make_postern():
    """Factory for instances of one's own (destructive tests, special configurations)."""
    made = []

    def make(name="fn", populated=True, **config):
        p = Postern(name=name, **config)
        made.append(p)
        p.start()
        if populated:
            populate(p)
        return p
    yield make
    for p in made:
        _teardown(p)


# ---------------------------------------------------------------------------------------------
# Show the daemon set's log with every failure.

def pytest_runtest_setup(item):
    _live_instances[:] = [p for p in _live_instances if p.proc is not None and p.proc.poll() is None]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in _live_instances:
            rep.sections.append((f"postern log ({p.root})", p.log_tail()))


# ---------------------------------------------------------------------------------------------
# Privileges (DESIGN §1, §8): what /proc says about a process after the drop

WORKER_USER = "postern"
STORE_USER = "postern-store"


def proc_status(pid):
    """/proc/PID/status as a dict of field name to (stripped) value."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def assert_unprivileged(pid, user):
    """`pid` runs as `user` and that user's group (real, effective, saved, fs), with no
    supplementary groups, every capability set empty and NoNewPrivs set."""
    import pwd
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


def assert_all_unprivileged(p):
    """Every process `postern status` lists except the master (the store and every worker)
    is unprivileged: the store as STORE_USER, the workers as WORKER_USER, two different uids.
    Returns the status rows checked, so callers can assert which services were among them."""
    import pwd
    assert pwd.getpwnam(STORE_USER).pw_uid != pwd.getpwnam(WORKER_USER).pw_uid
    rows = [r for r in p.status() if r["SERVICE"] != "master"]
    assert any(r["SERVICE"] == "store" for r in rows), rows
    for r in rows:
        assert r["STATE"] == "running" and int(r["PID"]) > 0, r
        assert_unprivileged(int(r["PID"]), STORE_USER if r["SERVICE"] == "store" else WORKER_USER)
    return rows


# ---------------------------------------------------------------------------------------------
# A private Postfix instance (Postfix in front of Postern, or relaying into it)

class PrivatePostfix:
    """Config, queue, data and log under one temporary directory; smtpd on a free loopback
    port; no local delivery. Subclasses write main.cf (starting from `base_main_cf`) and
    master.cf."""

    def __init__(self, name):
        import pwd
        self.root = tempfile.mkdtemp(prefix=f"postern-it-postfix-{name}-")
        os.chmod(self.root, 0o755)
        self.etc, self.spool, self.data = (os.path.join(self.root, d) for d in ("etc", "spool", "data"))
        for d in (self.etc, self.spool, self.data):
            os.makedirs(d)
            os.chmod(d, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.log_path = os.path.join(self.root, "postfix.log")
        self.smtp_port = free_port()

    def base_main_cf(self, origin, myhostname):
        return (f"# private test instance ({origin})\n"
                "compatibility_level = 3.6\n"
                f"queue_directory = {self.spool}\n"
                f"data_directory = {self.data}\n"
                f"maillog_file = {self.log_path}\n"
                f"maillog_file_prefixes = {self.root}\n"
                f"myhostname = {myhostname}\n"
                "mydomain = postern.test\n"
                "mydestination =\n"
                "local_recipient_maps =\n"
                "local_transport = error:local delivery is disabled\n"
                "inet_interfaces = 127.0.0.1\n"
                "inet_protocols = ipv4\n"
                "smtp_dns_support_level = disabled\n"
                "smtpd_peername_lookup = no\n"
                "biff = no\n")

    # Postfix's stock services, chroot off like the Debian default.
    MASTER_CF_STOCK = (
        "pickup    unix  n       -       n       60      1       pickup\n"
        "cleanup   unix  n       -       n       -       0       cleanup\n"
        "qmgr      unix  n       -       n       300     1       qmgr\n"
        "rewrite   unix  -       -       n       -       -       trivial-rewrite\n"
        "bounce    unix  -       -       n       -       0       bounce\n"
        "defer     unix  -       -       n       -       0       bounce\n"
        "trace     unix  -       -       n       -       0       bounce\n"
        "verify    unix  -       -       n       -       1       verify\n"
        "flush     unix  n       -       n       1000?   0       flush\n"
        "proxymap  unix  -       -       n       -       -       proxymap\n"
        "showq     unix  n       -       n       -       -       showq\n"
        "error     unix  -       -       n       -       -       error\n"
        "retry     unix  -       -       n       -       -       error\n"
        "discard   unix  -       -       n       -       -       discard\n"
        "anvil     unix  -       -       n       -       1       anvil\n"
        "scache    unix  -       -       n       -       1       scache\n"
        "postlog   unix-dgram n  -       n       -       1       postlogd\n"
    )
    # The SMTP client and its TLS session cache, for an instance that sends mail on.
    MASTER_CF_SMTP_CLIENT = (
        "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
        "smtp      unix  -       -       n       -       -       smtp\n"
        "relay     unix  -       -       n       -       -       smtp\n"
    )

    def master_cf(self, *services, smtp_client=False):
        """master.cf: `services` (whole lines), then the stock ones (and the SMTP client)."""
        return "".join(services) + self.MASTER_CF_STOCK + (self.MASTER_CF_SMTP_CLIENT if smtp_client else "")

    def write_config(self, main_cf, master_cf):
        for name, text in (("main.cf", main_cf), ("master.cf", master_cf)):
            with open(os.path.join(self.etc, name), "w") as f:
                f.write(text)

    def postfix(self, *args, check=True):
        r = subprocess.run(["postfix", "-c", self.etc, *args], capture_output=True, text=True, timeout=60)
        if check:
            assert r.returncode == 0, f"postfix {' '.join(args)}: {r.stdout}{r.stderr}\n{self.log_tail()}"
        return r

    def start(self):
        r = self.postfix("check")
        assert r.stderr.strip() == "", f"postfix check warns: {r.stderr}"
        self.postfix("start")

        def banner():
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=5) as s:
                return s.makefile("rb").readline().startswith(b"220 ")
        wait_for(banner, 20, interval=0.1, what="Postfix smtpd")

    def processes(self):
        """Pids of this instance's processes: every Postfix daemon runs in its queue directory."""
        pids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.readlink(f"/proc/{d}/cwd").startswith(self.spool):
                        pids.append(int(d))
                except OSError:
                    pass
        return pids

    def stop(self):
        self.postfix("stop", check=False)
        try:
            wait_for(lambda: not self.processes(), 15, interval=0.1, what="Postfix processes to exit")
        finally:
            for pid in self.processes():       # only ours: their cwd is our queue directory
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def cleanup(self):
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    def queue(self):
        r = subprocess.run(["postqueue", "-c", self.etc, "-p"], capture_output=True, text=True, timeout=30)
        return r.stdout.strip()

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])
