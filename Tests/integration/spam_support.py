"""A private rspamd (Debian's package) and the private redis-server its Bayes statistics need,
started by the tests on free loopback ports: config overrides, databases, pid files and logs
under one temporary directory; Debian's /etc/rspamd is read, never written. Used by
test_spam.py and, through `python3 spam_support.py start|stop DIR`, by Tests/SpamFilterTests."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CONTROLLER_PASSWORD = "rspamd-test-controller-secret"
# GTUBE: rspamd answers `reject` to any message holding it.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# Action thresholds far above what DNS-dependent symbols (RDNS_NONE, HFILTER_*) add up to, so
# an ordinary message is `no action` with or without a network; the markers below cross them.
ACTIONS = {"greylist": 30, "rewrite_subject": 60, "add_header": 80, "reject": 150}
# What rspamd makes of a Subject with `rewrite subject` (%s: the old one).
REWRITE_TEMPLATE = "***SPAM*** %s"
# A Subject holding this marker scores past `add_header`, under `reject`.
ADD_HEADER_MARKER = "POSTERN-TEST-ADD-HEADER"
ADD_HEADER_SCORE = 90.0
# A Subject holding this one scores past `rewrite_subject`, under `add_header`.
REWRITE_MARKER = "POSTERN-TEST-REWRITE"
REWRITE_SCORE = 65.0
# A Subject holding this one scores past `greylist` only.
GREYLIST_MARKER = "POSTERN-TEST-GREYLIST"
GREYLIST_SCORE = 40.0
START_TIMEOUT = 180
RSPAMD_USER = "_rspamd"


def rspamd_binary():
    """The rspamd executable, or None when the package is not installed."""
    return shutil.which("rspamd") or (os.access("/usr/bin/rspamd", os.X_OK) and "/usr/bin/rspamd") or None


def redis_binary():
    return shutil.which("redis-server") or (os.access("/usr/bin/redis-server", os.X_OK) and "/usr/bin/redis-server") or None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Rspamd:
    """One private rspamd + redis. `start()` returns once both workers answer /ping."""

    def __init__(self, root=None):
        self.root = root or tempfile.mkdtemp(prefix="postern-rspamd-")
        os.makedirs(self.root, exist_ok=True)
        self.local = os.path.join(self.root, "local")
        self.db = os.path.join(self.root, "db")
        self.run = os.path.join(self.root, "run")
        self.logs = os.path.join(self.root, "log")
        self.state_file = os.path.join(self.root, "state.json")
        self.normal_port = self.controller_port = self.redis_port = None
        self.rspamd_proc = self.redis_proc = None

    # -- configuration -----------------------------------------------------------------------

    def _user(self):
        """rspamd refuses to run workers as root: as root the Debian `_rspamd` user, else us."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(RSPAMD_USER)
            return RSPAMD_USER
        except KeyError:
            return "nobody"

    def write_config(self):
        for d in (self.local, os.path.join(self.local, "local.d"), os.path.join(self.local, "override.d"),
                  self.db, self.run, self.logs):
            os.makedirs(d, exist_ok=True)
        ov = os.path.join(self.local, "override.d")
        loc = os.path.join(self.local, "local.d")
        _write(os.path.join(ov, "worker-normal.inc"), f'bind_socket = "127.0.0.1:{self.normal_port}";\ncount = 1;\n')
        _write(os.path.join(ov, "worker-controller.inc"),
               f'bind_socket = "127.0.0.1:{self.controller_port}";\ncount = 1;\n'
               f'password = "{CONTROLLER_PASSWORD}";\nenable_password = "{CONTROLLER_PASSWORD}";\n'
               f'secure_ip = [];\nstatic_dir = "${{WWWDIR}}";\n')
        # No proxy, no fuzzy storage: only the two workers the tests talk to.
        _write(os.path.join(ov, "worker-proxy.inc"), "count = -1;\n")
        _write(os.path.join(ov, "logging.inc"),
               f'type = "file";\nfilename = "{self.logs}/rspamd.log";\nlevel = "info";\n')
        # The sandbox may have no DNS: short timeouts keep a scan from waiting on RBLs. Compiling
        # the public suffix list takes rspamd half a minute at start; a few TLDs serve the tests.
        _write(os.path.join(self.root, "tlds.dat"), "com\norg\nnet\ntest\nexample\n")
        _write(os.path.join(loc, "options.inc"),
               f'dns {{ timeout = 0.5s; retransmits = 1; }}\nurl_tld = "{self.root}/tlds.dat";\n')
        _write(os.path.join(ov, "actions.conf"), "".join(f"{k} = {v};\n" for k, v in ACTIONS.items())
               + f'subject = "{REWRITE_TEMPLATE}";\n')
        # rspamd's greylist module would answer `soft reject` to every first message.
        _write(os.path.join(loc, "greylist.conf"), "enabled = false;\n")
        _write(os.path.join(loc, "redis.conf"), f'servers = "127.0.0.1:{self.redis_port}";\n')
        # Bayes learns with a handful of messages (the default wants 200 before it scores).
        _write(os.path.join(loc, "classifier-bayes.conf"),
               f'servers = "127.0.0.1:{self.redis_port}";\nmin_learns = 1;\nmin_tokens = 1;\n'
               "autolearn = false;\n")
        _write(os.path.join(self.root, "test-subjects.map"),
               f"/{ADD_HEADER_MARKER}/ POSTERN_TEST_ADD_HEADER\n/{GREYLIST_MARKER}/ POSTERN_TEST_GREYLIST\n"
               f"/{REWRITE_MARKER}/ POSTERN_TEST_REWRITE\n")
        _write(os.path.join(loc, "multimap.conf"), f"""
POSTERN_TEST_SUBJECT {{
  type = "header";
  header = "Subject";
  regexp = true;
  map = "file://{self.root}/test-subjects.map";
  symbols = ["POSTERN_TEST_ADD_HEADER", "POSTERN_TEST_GREYLIST", "POSTERN_TEST_REWRITE"];
  score = 0.0;
}}
""")
        _write(os.path.join(loc, "groups.conf"), f"""
symbols {{
  "POSTERN_TEST_ADD_HEADER" {{ weight = {ADD_HEADER_SCORE}; }}
  "POSTERN_TEST_GREYLIST" {{ weight = {GREYLIST_SCORE}; }}
  "POSTERN_TEST_REWRITE" {{ weight = {REWRITE_SCORE}; }}
}}
""")

    # -- processes ---------------------------------------------------------------------------

    def start(self):
        if not rspamd_binary() or not redis_binary():
            raise RuntimeError("rspamd or redis-server is not installed (Makefile TEST_PKGS)")
        self.normal_port, self.controller_port, self.redis_port = _free_port(), _free_port(), _free_port()
        self.write_config()
        user = self._user()
        if user:
            for d in (self.db, self.run, self.logs, self.root):
                shutil.chown(d, user=user)
        self.redis_proc = subprocess.Popen(
            [redis_binary(), "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--dir", self.db, "--logfile", os.path.join(self.logs, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        cmd = [rspamd_binary(), "-f", "-c", "/etc/rspamd/rspamd.conf",
               f"--var=LOCAL_CONFDIR={self.local}", f"--var=DBDIR={self.db}", f"--var=RUNDIR={self.run}",
               f"--var=LOGDIR={self.logs}"]
        if user:
            cmd += ["-u", user, "-g", user]
        with open(os.path.join(self.logs, "rspamd.stderr"), "ab") as err:
            self.rspamd_proc = subprocess.Popen(cmd, stdout=err, stderr=err, start_new_session=True)
        self._save_state()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.rspamd_proc.poll() is not None:
                raise RuntimeError(f"rspamd exited {self.rspamd_proc.returncode}:\n{self.log_tail()}")
            if self.ping(self.normal_port) and self.ping(self.controller_port):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"rspamd did not answer /ping within {START_TIMEOUT}s:\n{self.log_tail()}")

    def _save_state(self):
        _write(self.state_file, json.dumps({
            "normal_port": self.normal_port, "controller_port": self.controller_port,
            "redis_port": self.redis_port, "password": CONTROLLER_PASSWORD,
            "rspamd_pid": self.rspamd_proc.pid if self.rspamd_proc else None,
            "redis_pid": self.redis_proc.pid if self.redis_proc else None,
            "root": self.root}))

    @staticmethod
    def ping(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop_rspamd(self):
        """Stops rspamd only (redis stays): the 'rspamd is down' case."""
        _stop_pid(self.rspamd_proc.pid if self.rspamd_proc else None)
        self.rspamd_proc = None

    def stop(self):
        self.stop_rspamd()
        _stop_pid(self.redis_proc.pid if self.redis_proc else None)
        self.redis_proc = None

    def cleanup(self):
        self.stop()
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    # -- what tests read ----------------------------------------------------------------------

    @property
    def url(self):
        return f"http://127.0.0.1:{self.normal_port}"

    @property
    def controller_url(self):
        return f"http://127.0.0.1:{self.controller_port}"

    def stat(self):
        req = urllib.request.Request(self.controller_url + "/stat", headers={"Password": CONTROLLER_PASSWORD})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def learned(self):
        """/stat's `learned`: learn requests rspamd took since it started (its statfiles'
        revisions lag behind: rspamd refreshes them from redis now and then)."""
        return self.stat().get("learned", 0)

    def log_tail(self, lines=60):
        out = []
        for name in ("rspamd.stderr", "rspamd.log"):
            try:
                with open(os.path.join(self.logs, name), errors="replace") as f:
                    out += f.read().splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(out)


def _stop_pid(pid, timeout=10):
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
            try:
                os.kill(pid, 0)
                done = 0
            except ProcessLookupError:
                pass
        if done:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv):
    """`start DIR` prints the state as JSON (ports, password, pids); `stop DIR` stops both,
    `stop-rspamd DIR` only rspamd. The processes outlive this script (own sessions)."""
    if len(argv) != 3 or argv[1] not in ("start", "stop", "stop-rspamd"):
        print("usage: spam_support.py start|stop|stop-rspamd DIR", file=sys.stderr)
        return 2
    root = argv[2]
    if argv[1] == "start":
        r = Rspamd(root).start()
        with open(r.state_file) as f:
            print(f.read())
        return 0
    with open(os.path.join(root, "state.json")) as f:
        st = json.load(f)
    _stop_pid(st.get("rspamd_pid"))
    if argv[1] == "stop":
        _stop_pid(st.get("redis_pid"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
