#!/usr/bin/env python3
"""IMAP benchmark: Postern's imapd vs the Dovecot anchor (../shared/anchors), same load, same run.

Load: the IMAP rows of the anchor bench (../shared/anchors/bench.py, bench_imap and
bench_imap_parallel). One INBOX of --messages (10,000) ~5 KB messages on each server, filled
over LMTP with the same bytes (bench.py's make_msg: every 100th message mentions TERM), then
per run, Postern and Dovecot one after the other on a fresh connection each, a bare-socket
client that sends one command and reads until its tagged OK (no parsing, no client CPU to
speak of):

    SELECT INBOX
    FETCH 1:* (FLAGS)
    FETCH 1:* (UID RFC822.SIZE FLAGS)
    FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])
    UID SEARCH TEXT zebracorn                      (the word is in 1% of the messages)
    SORT (ARRIVAL) UTF-8 ALL                       (RFC 5256; the answer is every message)
    SORT (SUBJECT) UTF-8 ALL                       (base subjects, i;unicode-casemap)
    UID SEARCH UNSEEN                              (flags only; the answer is every message)
    FETCH 1:* (BODYSTRUCTURE)
    FETCH 1:* (ENVELOPE)
    FETCH 1:1000 (BODY.PEEK[])

then `UID SEARCH TEXT zebracorn` again in a second user's INBOX of --search-messages (100,000)
messages built the same way (the large-SEARCH rows; Dovecot too unless --no-search-dovecot:
filling it takes minutes and each of its SEARCHes reads every message), and the session loop
with 1 and 10 concurrent clients, each its own user with a --loop-messages
INBOX, for --secs seconds: connect, LOGIN, SELECT INBOX, FETCH 1:* (UID FLAGS RFC822.SIZE),
FETCH <last> (BODY.PEEK[]), LOGOUT (bench.py's loop, over the raw client) -> sessions/s.
The anchor Dovecot keeps {PLAIN} passwords and runs without its auth cache (auth_cache_size is
0 by default, and setup-anchors.sh does not set it); Postern keeps crypt(3) hashes (yescrypt by
default, tens of milliseconds a login) and its store remembers a verified password for
[auth] cache_ttl (300 s by default: Dovecot's auth_cache), so after each user's first login the
hash is not computed again. Postern runs the loop twice: with its default hashes (user11..20)
and with SHA-256-crypt at 1000 rounds (user21..30, about Dovecot's cost without the cache). Postern's [auth] failures_per_client is raised to 1000: its per-address budget counts
logins in flight, and ten clients on 127.0.0.1 would otherwise trip it.

Every row is the median of --runs runs; the ratio is Postern time / Dovecot time for the timed
rows (below 1: Postern faster) and Postern / Dovecot sessions per second for the loop (above 1:
Postern faster). One unmeasured warm-up pass of every row goes first on both (Dovecot builds
its dovecot.index.cache fields on first use, as after delivery); it also checks that both
servers answer alike (EXISTS, the SEARCH hits, the size of each response).
fsync on for both (Postern's `[store] fsync = true`; Dovecot fsyncs by default).

Run as root (the anchors need it):
    python3 bench/imap_bench.py --runs 5 --bin $(swift build -c release --show-bin-path)
--state DIR keeps Postern's instance and the Dovecot mail between invocations (filled once,
topped up after), for iterating on a fix; without it both start empty and are filled here.
"""
import argparse, email.utils, multiprocessing as mp, os, platform, random, re, shutil, signal
import smtplib, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "anchors"))
AHOME = os.environ.get("ANCHORS_HOME", "/tmp/mail-anchors")
HOST, DOMAIN, PASSWORD = "127.0.0.1", "example.test", "pass"
DOVECOT_IMAP = 20143                                      # common.sh IMAP_PORT
DOVECOT_LMTP = os.path.join(AHOME, "run", "dovecot", "lmtp")
DOVECOT_MAIL = os.path.join(AHOME, "mail", DOMAIN)        # homes: DOVECOT_MAIL/<user>/Maildir
SENDER, TERM, MSG_SIZE = f"bench@{DOMAIN}", "zebracorn", 5120
BIG_USER = 1                                              # the 10,000-message INBOX
SEARCH_USER = 2                                           # the --search-messages INBOX
SEARCH_FIRST_ID = 10_000_000                              # its make_msg ids (every 100th has TERM)
LOOP_USERS = range(11, 21)                                # one per concurrent loop client
CHEAP_USERS = range(21, 31)                               # the same on Postern, cheap password hash
FILL_CONNECTIONS = 4

user = lambda n: f"user{n}@{DOMAIN}"

# ---------------------------------------------------------------- messages (bench.py's, byte for byte)
_rnd = random.Random(42)
WORDS = ("mail server queue index cache folder message header body alpha bravo charlie delta "
         "echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec").split()
LINES = [" ".join(_rnd.choice(WORDS) for _ in range(11)) for _ in range(300)]


def make_msg(i, rcpt, size=MSG_SIZE):
    """Deterministic ~size-byte text message; every 100th one contains TERM."""
    r = random.Random(i)
    head = (f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\nTo: <{rcpt}>\r\n"
            f"Subject: message {i} about {r.choice(WORDS)} {r.choice(WORDS)}\r\n"
            f"Date: {email.utils.formatdate(1700000000 + 60 * i)}\r\n"
            f"Message-ID: <{i}.{r.getrandbits(40)}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    body = [f"this one mentions the {TERM}"] if i % 100 == 0 else []
    n = len(head)
    while n < size:
        body.append(r.choice(LINES)); n += len(body[-1]) + 2
    return (head + "\r\n".join(body) + "\r\n").encode()


# ---------------------------------------------------------------- helpers
def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def parallel(jobs):
    """Each job() prepares and returns go(); all go() start together. -> (seconds, results)"""
    ctx = mp.get_context("fork"); barrier = ctx.Barrier(len(jobs) + 1); q = ctx.Queue()

    def run(job):
        go = job(); barrier.wait()
        try: q.put(go())
        except Exception as e: q.put(e)
    procs = [ctx.Process(target=run, args=(j,)) for j in jobs]
    for p in procs: p.start()
    barrier.wait(); t0 = time.perf_counter()
    res = [q.get() for _ in procs]; dt = time.perf_counter() - t0
    for p in procs: p.join()
    for r in res:
        if isinstance(r, Exception): raise r
    return dt, res


def lmtp_deliver(socket_path, ids, rcpt):
    """Delivers message ids to rcpt over FILL_CONNECTIONS LMTP connections -> seconds."""
    def job(chunk):
        def prep():
            msgs = [make_msg(i, rcpt) for i in chunk]
            def go():
                c = smtplib.LMTP(socket_path)
                for m in msgs: c.sendmail(SENDER, [rcpt], m)
                c.quit(); return len(msgs)
            return go
        return prep
    dt, _ = parallel([job(ids[k::FILL_CONNECTIONS]) for k in range(FILL_CONNECTIONS)])
    return dt


class RawIMAP:
    """Bare-socket IMAP client: sends a command, reads until its tagged reply; no parsing.
    `cmd` returns the reply's bytes when asked to keep them, else their count."""

    def __init__(self, port, n):
        self.s, self.n = socket.create_connection((HOST, port)), 0
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        greeting = b""
        while not greeting.endswith(b"\r\n"):
            chunk = self.s.recv(4096)
            if not chunk: raise ConnectionError("no greeting")
            greeting += chunk
        self.cmd(f"LOGIN {user(n)} {PASSWORD}")

    def cmd(self, c, keep=False):
        self.n += 1; tag = f"R{self.n:04d}"; end, tail = f"\r\n{tag} ".encode(), b"\r\n"
        self.s.sendall(f"{tag} {c}\r\n".encode())
        got, kept = 0, []
        while True:
            chunk = self.s.recv(1 << 20)
            if not chunk: raise ConnectionError(c)
            got += len(chunk)
            if keep: kept.append(chunk)
            buf = tail + chunk; i = buf.find(end)
            if i >= 0 and buf.endswith(b"\r\n"):
                if buf[i + len(end):].split(b" ", 1)[0] != b"OK": raise RuntimeError(f"{c}: {buf[i:]!r}")
                return b"".join(kept) if keep else got
            tail = buf[-512:]

    def close(self):
        try:
            self.cmd("LOGOUT")
        finally:
            self.s.close()


# ---------------------------------------------------------------- the two servers
class Postern:
    """An instance from the release binaries: lmtpd on a unix socket, imapd on a loopback port."""

    def __init__(self, bindir, users, cheap_users, state=None):
        self.keep = state is not None
        self.dir = state or tempfile.mkdtemp(prefix="postern-imap-bench-")
        fresh = not os.path.exists(os.path.join(self.dir, "postern.toml"))
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "postern.toml")
        self.port = free_port()
        with open(self.conf, "w") as f:      # rewritten each time: the port is new
            f.write(f'hostname = "bench.example.test"\ndata_dir = "{self.dir}/data"\nrun_dir = "{self.dir}/run"\n'
                    f'log_level = "warning"\n[store]\nfsync = true\n'
                    # the loop's 10 clients log in at once from 127.0.0.1: logins in flight count
                    # against the per-address budget (default 10), a refused one as a failure
                    f'[auth]\nfailures_per_client = 1000\n'
                    f'[smtp]\nmta = []\nsubmission = []\nsmtps = []\n'
                    f'[imap]\nlisten = ["imap@{HOST}:{self.port}"]\nmax_connections_per_client = 1000\n'
                    f'[lmtp]\nlisten = ["unix:lmtp"]\n[pop3]\nlisten = []\n')
        self.bin = bindir
        self.log = open(os.path.join(self.dir, "master.log"), "a")
        self.proc = subprocess.Popen([os.path.join(bindir, "master"), "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.lmtp = os.path.join(self.dir, "run", "lmtp")
        try:
            self.setup(users if fresh else [], cheap_users if fresh else [])
        except BaseException:
            self.stop()
            raise

    def cli(self, *a, **kw):
        return subprocess.run([os.path.join(self.bin, "postern"), *a, "-c", self.conf], capture_output=True,
                              text=True, **kw)

    def setup(self, users, cheap_users):
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError("postern master exited; see " + self.log.name)
            if self.cli("domain", "list").returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("postern did not start; see " + self.log.name)
        if users and self.cli("domain", "add", DOMAIN).returncode != 0:
            raise RuntimeError("postern domain add failed")
        for u in users + cheap_users:
            pw = PASSWORD if u in users else "{CRYPT}" + cheap_hash(PASSWORD)
            r = self.cli("user", "add", u, "--password-stdin", input=pw + "\n")
            if r.returncode != 0:
                raise RuntimeError(f"user add {u}: {r.stderr}")
        for _ in range(100):        # imapd answers on its port
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    if s.recv(5).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("imapd does not answer; see " + self.log.name)

    def count(self, u):
        for line in self.cli("mailbox", "list", u).stdout.splitlines()[1:]:
            f = line.split("\t")
            if f[0] == "INBOX":
                return int(f[2])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def cheap_hash(password):
    """SHA-256-crypt at its fewest rounds (1000, ~0.3 ms): a login costs about what Dovecot's
    {PLAIN} passdb costs, where Postern's default yescrypt costs tens of milliseconds."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, "$5$rounds=1000$" + crypt.mksalt(crypt.METHOD_SHA256)[3:])


def maildir_count(u):
    d = os.path.join(DOVECOT_MAIL, u.split("@")[0], "Maildir")
    return sum(len(os.listdir(os.path.join(d, s))) for s in ("new", "cur") if os.path.isdir(os.path.join(d, s)))


def anchors(script, log):
    """Runs an anchor script; the daemons it starts must not hold our pipes."""
    with open(log, "a") as f:
        return subprocess.run(["bash", os.path.join(ANCHORS, script)], stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)


def fill(name, lmtp, count, u, want, first_id):
    have = count(u)
    if have > want:
        raise RuntimeError(f"{name}: {u} has {have} messages, more than {want}: use a fresh --state")
    if have < want:
        t = lmtp_deliver(lmtp, list(range(first_id + have, first_id + want)), u)
        print(f"  filled {name} {u}: {want - have} messages in {t:.1f} s ({(want - have) / t:.0f} msg/s)", flush=True)
    got = count(u)
    if got != want:
        raise RuntimeError(f"{name}: {u} has {got} messages, expected {want}")


# ---------------------------------------------------------------- measurements
def steps(a):
    return [("SELECT INBOX", "SELECT INBOX"),
            ("FETCH 1:* (FLAGS)", "FETCH 1:* (FLAGS)"),
            ("FETCH 1:* (UID RFC822.SIZE FLAGS)", "FETCH 1:* (UID RFC822.SIZE FLAGS)"),
            ("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
             "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"),
            (f"UID SEARCH TEXT {TERM} (1% match)", f"UID SEARCH TEXT {TERM}"),
            ("SORT (ARRIVAL) UTF-8 ALL", "SORT (ARRIVAL) UTF-8 ALL"),
            ("SORT (SUBJECT) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL"),
            ("UID SEARCH UNSEEN", "UID SEARCH UNSEEN"),
            ("FETCH 1:* (BODYSTRUCTURE)", "FETCH 1:* (BODYSTRUCTURE)"),
            ("FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)"),
            (f"FETCH 1:{a.bodies} (BODY.PEEK[])", f"FETCH 1:{a.bodies} (BODY.PEEK[])")]


def warm_up(a, systems):
    """One unmeasured pass on each; checks the two answer alike."""
    sizes, sorts = {}, {}
    for name, port in systems.items():
        c = RawIMAP(port, BIG_USER)
        sel = c.cmd("SELECT INBOX", keep=True)
        m = re.search(rb"\* (\d+) EXISTS", sel)
        if not m or int(m.group(1)) != a.messages:
            raise RuntimeError(f"{name}: SELECT says {sel[:200]!r}, expected {a.messages} EXISTS")
        for label, command in steps(a)[1:]:
            r = c.cmd(command, keep=True)
            sizes.setdefault(label, {})[name] = len(r)
            if "SEARCH" in command:
                hits = re.search(rb"\* SEARCH([ 0-9]*)\r\n", r)
                n = len(hits.group(1).split()) if hits else -1
                want = a.messages // 100 if "TEXT" in command else a.messages     # UNSEEN: none was read
                if n != want:
                    raise RuntimeError(f"{name}: SEARCH found {n}, expected {want}: {r[:300]!r}")
            if command.startswith("SORT"):
                found = re.search(rb"\* SORT([ 0-9]*)\r\n", r)
                sorts.setdefault(label, {})[name] = found.group(1).split() if found else None
        c.close()
    # Each server got the messages over parallel LMTP sessions, so sequence numbers (and
    # arrival seconds) name different messages on each: a SORT answer must be every message once.
    every = sorted(str(n).encode() for n in range(1, a.messages + 1))
    for label, per in sorts.items():
        for name, answer in per.items():
            if answer is None or sorted(answer) != every:
                raise RuntimeError(f"{name}: {label} is not every message once: {(answer or [])[:8]} ...")
    print("  response bytes (warm-up pass): " + "; ".join(
        f"{label}: " + " / ".join(f"{k} {v}" for k, v in per.items()) for label, per in sizes.items()), flush=True)


def bench_commands(a, systems):
    """-> {label: {system: [seconds per run]}}"""
    res = {label: {name: [] for name in systems} for label, _ in steps(a)}
    order = list(systems.items())
    for r in range(a.runs):
        for name, port in (order if r % 2 == 0 else order[::-1]):   # alternate who goes first
            c = RawIMAP(port, BIG_USER)
            for label, command in steps(a):
                t0 = time.perf_counter(); c.cmd(command); res[label][name].append(time.perf_counter() - t0)
            c.close()
        print(f"  run {r + 1}: " + "; ".join(f"#{k + 1} " + " / ".join(f"{res[label][n][-1] * 1000:.1f}" for n in systems)
                                          for k, (label, _) in enumerate(steps(a))) + " ms", flush=True)
    return res


def bench_search(a, systems):
    """UID SEARCH TEXT TERM in SEARCH_USER's large INBOX -> {system: [seconds per run]}; the
    first pass (unmeasured) checks the hit count on each."""
    res = {name: [] for name in systems}
    command = f"UID SEARCH TEXT {TERM}"
    for r in range(a.runs + 1):
        for name, port in (list(systems.items()) if r % 2 == 0 else list(systems.items())[::-1]):
            c = RawIMAP(port, SEARCH_USER)
            c.cmd("SELECT INBOX")
            t0 = time.perf_counter(); reply = c.cmd(command, keep=True); dt = time.perf_counter() - t0
            c.close()
            if r == 0:
                hits = re.search(rb"\* SEARCH([ 0-9]*)\r\n", reply)
                n = len(hits.group(1).split()) if hits else -1
                if n != a.search_messages // 100:
                    raise RuntimeError(f"{name}: SEARCH found {n}, expected {a.search_messages // 100}")
                continue
            res[name].append(dt)
        if r:
            print(f"  large SEARCH run {r}: " + " / ".join(f"{n} {res[n][-1] * 1000:.1f}" for n in systems) + " ms", flush=True)
    return res


def session_loop(port, n, secs):
    def prep():
        def go():
            done, end = 0, time.perf_counter() + secs
            while time.perf_counter() < end:
                c = RawIMAP(port, n)
                sel = c.cmd("SELECT INBOX", keep=True)
                exists = int(re.search(rb"\* (\d+) EXISTS", sel).group(1))
                c.cmd("FETCH 1:* (UID FLAGS RFC822.SIZE)")
                c.cmd(f"FETCH {exists} (BODY.PEEK[])")
                c.close(); done += 1
            return done
        return go
    return prep


def bench_loop(a, systems):
    """systems: {name: (port, users)} -> {clients: {name: [sessions/s per run]}}"""
    res = {}
    order = list(systems.items())
    for conc in a.clients:
        res[conc] = {name: [] for name in systems}
        for r in range(a.runs):
            for name, (port, users) in (order if r % 2 == 0 else order[::-1]):
                dt, done = parallel([session_loop(port, users[k], a.secs) for k in range(conc)])
                res[conc][name].append(sum(done) / dt)
            print(f"  {conc} client(s) run {r + 1}: " + " / ".join(f"{n} {res[conc][n][-1]:.0f}" for n in systems)
                  + " sessions/s", flush=True)
    return res


# ---------------------------------------------------------------- main
def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"nproc {sh('nproc').strip()}, {cpu}, kernel {platform.release()}"


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=None, help="Postern binaries (default: build and use the release build)")
    ap.add_argument("--messages", type=int, default=10000, help="messages in the measured INBOX")
    ap.add_argument("--bodies", type=int, default=1000, help="FETCH 1:N (BODY.PEEK[])")
    ap.add_argument("--loop-messages", type=int, default=200, help="messages in each loop client's INBOX")
    ap.add_argument("--clients", default="1,10", help="concurrent clients of the session loop")
    ap.add_argument("--secs", type=float, default=10, help="seconds per session-loop run")
    ap.add_argument("--search-messages", type=int, default=100_000, help="messages in the large-SEARCH INBOX (0: skip)")
    ap.add_argument("--no-search-dovecot", dest="search_dovecot", action="store_false",
                    help="the large SEARCH on Postern only (Dovecot's fill and scans take long)")
    ap.add_argument("--only", default="commands,search,loop",
                    help="any of commands, search, loop, idle (10,000 idle IMAPS connections: imap_idle_bench.py)")
    ap.add_argument("--no-cheap-hash", dest="cheap_hash", action="store_false",
                    help="skip the loop on Postern users with a SHA-256-crypt (1000 rounds) password hash")
    ap.add_argument("--state", default=None, help="keep Postern's instance and Dovecot's mail here between runs")
    a = ap.parse_args()
    a.clients = [int(c) for c in a.clients.split(",")]
    only = set(a.only.split(","))
    if os.geteuid() != 0:
        sys.exit("run as root: the anchors need it")
    if max(a.clients) > len(LOOP_USERS):
        sys.exit(f"at most {len(LOOP_USERS)} loop clients")
    if a.bin:
        bindir = a.bin
    else:
        subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True)
        bindir = sh("swift", "build", "-c", "release", "--show-bin-path", cwd=ROOT).strip()
    users = [user(BIG_USER), user(SEARCH_USER)] + [user(n) for n in LOOP_USERS]
    cheap_users = [user(n) for n in CHEAP_USERS] if a.cheap_hash else []

    workdir = tempfile.mkdtemp(prefix="imap-bench-")
    alog = os.path.join(workdir, "anchors.log")
    if anchors("setup-anchors.sh", alog).returncode != 0:
        sys.exit(f"setup-anchors.sh failed; see {alog}")
    anchors("stop-anchors.sh", alog)
    if a.state is None:
        for u in users:      # fresh Maildirs for the users measured here
            shutil.rmtree(os.path.join(DOVECOT_MAIL, u.split("@")[0]), ignore_errors=True)
    if anchors("start-anchors.sh", alog).returncode != 0:
        sys.exit(f"start-anchors.sh failed; see {alog}")
    load_before = load()
    pt = None
    try:
        pt = Postern(bindir, users, cheap_users, os.path.abspath(a.state) if a.state else None)
        print(f"postern imapd on {HOST}:{pt.port} ({pt.dir}), dovecot on {HOST}:{DOVECOT_IMAP}", flush=True)
        for name, lmtp, count in (("postern", pt.lmtp, pt.count), ("dovecot", DOVECOT_LMTP, maildir_count)):
            fill(name, lmtp, count, user(BIG_USER), a.messages, 0)
            for k, n in enumerate(LOOP_USERS):
                fill(name, lmtp, count, user(n), a.loop_messages, 2_000_000 + 1000 * k)
            if "search" in only and a.search_messages and (name == "postern" or a.search_dovecot):
                fill(name, lmtp, count, user(SEARCH_USER), a.search_messages, SEARCH_FIRST_ID)
        for k, u in enumerate(cheap_users):   # the same messages as LOOP_USERS' (Postern only)
            fill("postern", pt.lmtp, pt.count, u, a.loop_messages, 2_000_000 + 1000 * k)
        systems = {"postern": pt.port, "dovecot": DOVECOT_IMAP}
        load_start = load()
        cmds = loops = large = None
        if "commands" in only:
            print("== commands (ms, postern / dovecot)", flush=True)
            warm_up(a, systems)
            cmds = bench_commands(a, systems)
        if "search" in only and a.search_messages:
            print(f"== UID SEARCH TEXT in {a.search_messages} messages", flush=True)
            large = bench_search(a, systems if a.search_dovecot else {"postern": pt.port})
        if "loop" in only:
            print("== session loop", flush=True)
            loop_systems = {"postern": (pt.port, LOOP_USERS)}
            if cheap_users:
                loop_systems["postern-sha256crypt"] = (pt.port, CHEAP_USERS)
            loop_systems["dovecot"] = (DOVECOT_IMAP, LOOP_USERS)
            loops = bench_loop(a, loop_systems)
        load_end = load()
    finally:
        if pt is not None:
            pt.stop()
        anchors("stop-anchors.sh", alog)

    rev = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout.strip()
    print(f"\nIMAP, Postern imapd vs Dovecot (maildir), {a.messages} x ~{MSG_SIZE} B messages in INBOX, "
          f"median of {a.runs} runs after one warm-up pass, bare-socket client (read to the tagged OK), fsync on (both)")
    print(f"- machine: {machine()}; load average (1/5/15 min) before filling {load_before}, "
          f"before measuring {load_start}, after {load_end}")
    print(f"- Dovecot {sh('dovecot', '--version').strip()}; Postfix "
          f"{subprocess.run(['postconf', '-d', '-h', 'mail_version'], capture_output=True, text=True).stdout.strip()}; "
          f"Postern {rev} ({bindir}); Python {platform.python_version()}")
    print("\n| row | Postern | Dovecot | ratio | runs Postern | runs Dovecot |\n|---|---:|---:|---:|---|---|")
    if cmds:
        for label, per in cmds.items():
            p, d = statistics.median(per["postern"]), statistics.median(per["dovecot"])
            print(f"| {label} | {p * 1000:.1f} ms | {d * 1000:.1f} ms | {p / d:.2f}x time |"
                  f" {', '.join(f'{x * 1000:.1f}' for x in per['postern'])} | {', '.join(f'{x * 1000:.1f}' for x in per['dovecot'])} |")
    if large:
        p = statistics.median(large["postern"])
        d = statistics.median(large["dovecot"]) if "dovecot" in large else None
        print(f"| UID SEARCH TEXT {TERM} (1% match), {a.search_messages} messages | {p * 1000:.1f} ms | "
              + (f"{d * 1000:.1f} ms | {p / d:.3f}x time |" if d else "not run (--no-search-dovecot) | - |")
              + f" {', '.join(f'{x * 1000:.1f}' for x in large['postern'])} | "
              + (", ".join(f"{x * 1000:.1f}" for x in large["dovecot"]) if d else "-") + " |")
    if loops:
        for conc, per in loops.items():
            d = statistics.median(per["dovecot"])
            for name in [n for n in per if n != "dovecot"]:
                p = statistics.median(per[name])
                hashes = "users' hashes yescrypt (Postern's default)" if name == "postern" else "users' hashes SHA-256-crypt, 1000 rounds"
                print(f"| login/SELECT/FETCH flags/FETCH last body/LOGOUT loop, {conc} client(s), {a.secs:g} s; {hashes} | "
                      f"{p:.0f} sess/s | {d:.0f} sess/s | {p / d:.2f}x throughput |"
                      f" {', '.join(f'{x:.0f}' for x in per[name])} | {', '.join(f'{x:.0f}' for x in per['dovecot'])} |")
    print("\nratio: time rows Postern/Dovecot seconds (below 1: Postern faster); loop rows Postern/Dovecot "
          "sessions/s (above 1: Postern faster). Dovecot's users have {PLAIN} passwords (the anchor's passdb).")
    shutil.rmtree(workdir, ignore_errors=True)
    if "idle" in only:       # 10,000 idle IMAPS connections and the EXISTS fan-out (imap_idle_bench.py)
        import imap_idle_bench
        print("\n== idle IMAPS connections (imap_idle_bench.py)", flush=True)
        imap_idle_bench.report(*imap_idle_bench.run(bindir))


if __name__ == "__main__":
    main()
