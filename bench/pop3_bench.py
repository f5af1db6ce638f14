#!/usr/bin/env python3
"""POP3 benchmark: Postern's pop3d vs Dovecot's pop3 (the anchors' configuration), same run.

The load is the anchor's POP3 row (bench.py bench_pop3): login, LIST, RETR of every message of
a 1,000-message maildrop (the anchor's 5 KB messages, make_msg), QUIT, over plaintext on
loopback; each RETR waits for its reply (no pipelining). Three clients drive it: poplib (the
anchor's row; it reads line by line and is the bound), the same conversation over a raw socket
in Python, and in C (bench/pop3_raw.c, compiled here with cc): large recv()s, the end found by
CRLF "." CRLF. A trivial in-memory server (pop3_raw serve) runs in the same interleaving: what
each client reaches against it is its ceiling, and its CPU per message a floor for any server.
Per row: messages per second (median of --runs, the servers' runs interleaved so drift hits
all alike) and the servers' CPU per message, from cpuacct cgroups (the utime+stime of every
serving process, exited ones included: Postern's pop3d and store, the store's share shown;
every process of the Dovecot instance, which forks a pop3-login and a pop3 process per
connection). On a loaded machine the msg/s swing widely; CPU per message is the steadier figure.
Dovecot runs as a private instance of the anchors' config (shared/anchors/setup-anchors.sh's
base.conf with its own base_dir, ports and a one-user passwd-file), so the shared anchors
other benchmarks use are neither stopped nor loaded. Its user's password is {PLAIN}; Postern
stores only crypt(3) hashes, so its user gets the cheapest one libxcrypt verifies,
SHA512-CRYPT with 1,000 rounds (--hash yescrypt for Postern's default, whose ~20 ms login is
~20 µs per message of a 1,000-message session).
Run as root: `python3 bench/pop3_bench.py` (a release build by default; --bin DIR otherwise).
"""
import argparse, ctypes, os, poplib, pwd, re, shutil, signal, smtplib, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.abspath(__file__))
ANCHORS = os.environ.get("ANCHORS_DIR", os.path.join(os.path.dirname(ROOT), "..", "shared", "anchors"))
AHOME = os.environ.get("ANCHORS_HOME", "/tmp/mail-anchors")
sys.path.insert(0, ANCHORS)
sys.path.insert(0, ROOT)
USER, PASSWORD, FIRST_ID = "user2@example.test", "pass", 500_000      # the anchor's POP3_USER and ids


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, what):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} is not answering on port {port}")


# ---------------------------------------------------------------- clients

def run_poplib(port, user, password):
    """The anchor's bench_pop3 loop, once -> (messages, bytes, seconds)."""
    t0 = time.perf_counter()
    p = poplib.POP3("127.0.0.1", port); p.user(user); p.pass_(password)
    _, listing, _ = p.list()
    got = 0
    for entry in listing:
        got += p.retr(int(entry.split()[0]))[2]
    p.quit()
    return len(listing), got, time.perf_counter() - t0


def run_raw_python(port, user, password):
    """The same conversation over a raw socket: large recv()s, the end found by CRLF.CRLF."""
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    buf = bytearray()

    def reply(multi):
        buf.clear()
        while True:
            k = s.recv(1 << 20)
            if not k: raise RuntimeError("connection closed")
            start = max(0, len(buf) - 4)
            buf.extend(k)
            if buf[:1] == b"-": raise RuntimeError(bytes(buf))
            if buf.find(b"\r\n.\r\n" if multi else b"\n", start) >= 0: return len(buf)

    reply(False)
    s.sendall(f"USER {user}\r\n".encode()); reply(False)
    s.sendall(f"PASS {password}\r\n".encode()); reply(False)
    s.sendall(b"LIST\r\n"); reply(True)
    numbers = [line.split(b" ", 1)[0] for line in bytes(buf).split(b"\r\n")[1:-2]]
    got = 0
    for n in numbers:
        s.sendall(b"RETR " + n + b"\r\n"); got += reply(True)
    s.sendall(b"QUIT\r\n"); reply(False)
    s.close()
    return len(numbers), got, time.perf_counter() - t0


class RawC:
    """bench/pop3_raw.c, compiled once into a temporary directory."""
    def __init__(self, tmp):
        self.exe = os.path.join(tmp, "pop3_raw")
        subprocess.run(["cc", "-O2", "-o", self.exe, os.path.join(ROOT, "pop3_raw.c")], check=True)

    def __call__(self, port, user, password):
        out = subprocess.run([self.exe, "client", "127.0.0.1", str(port), user, password],
                             check=True, capture_output=True, text=True).stdout.split()
        return int(out[0]), int(out[1]), float(out[2])


# ---------------------------------------------------------------- CPU accounting

class CPUGroup:
    """A cpuacct cgroup (v1) holding a server's processes: `usage()` is their CPU time in ns,
    children forked later and exited processes included. Falls back to utime+stime(+cutime+
    cstime) from /proc/<pid>/stat, which misses processes that exited unreaped."""
    BASE = "/sys/fs/cgroup/cpuacct"

    def __init__(self, name, pids):
        self.pids, self.dir = list(pids), None
        path = os.path.join(self.BASE, f"pop3bench-{os.getpid()}-{name}")
        try:
            os.mkdir(path)
            for p in self.pids:
                with open(os.path.join(path, "cgroup.procs"), "w") as f: f.write(str(p))
            self.dir = path
        except OSError:
            if os.path.isdir(path): self.close(path)

    def usage(self):
        if self.dir:
            with open(os.path.join(self.dir, "cpuacct.usage")) as f: return int(f.read())
        tick, total = os.sysconf("SC_CLK_TCK"), 0
        for p in self.pids:
            try:
                with open(f"/proc/{p}/stat") as f: fields = f.read().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:15])
            except OSError:
                pass
        return total * 1_000_000_000 // tick

    def close(self, path=None):
        path = path or self.dir
        if not path: return
        try:
            with open(os.path.join(path, "cgroup.procs")) as f: pids = f.read().split()
            for p in pids:
                try:
                    with open(os.path.join(self.BASE, "cgroup.procs"), "w") as f: f.write(p)
                except OSError: pass
            os.rmdir(path)
        except OSError:
            pass
        self.dir = None


def children(root):
    """root and its descendants (pid -> comm)."""
    kids, comm = {}, {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f: s = f.read()
            comm[int(p)] = s[s.index("(") + 1:s.rindex(")")]
            kids.setdefault(int(s.rsplit(")", 1)[1].split()[1]), []).append(int(p))
        except (OSError, ValueError):
            pass
    todo, out = [root], {}
    while todo:
        p = todo.pop(); out[p] = comm.get(p, "?"); todo += kids.get(p, [])
    return out


# ---------------------------------------------------------------- servers

def crypt(password, setting):
    lib = ctypes.CDLL("libcrypt.so.1"); lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib.crypt(password.encode(), setting.encode()).decode()


class PrivateDovecot:
    """The anchors' Dovecot config (base.conf) with a private base_dir, state, log, mail home and
    POP3 port, POP3 and LMTP (unix socket) only."""
    def __init__(self, tmp, user, password):
        base = os.path.join(AHOME, "etc/dovecot/base.conf")
        if not os.path.exists(base):
            subprocess.run(["bash", os.path.join(ANCHORS, "setup-anchors.sh")], check=True, stdout=subprocess.DEVNULL)
        self.dir = os.path.join(tmp, "dovecot"); os.makedirs(self.dir)
        os.chmod(tmp, 0o755); os.chmod(self.dir, 0o755)
        for d in ("run", "lib", "log", "mail"): os.makedirs(os.path.join(self.dir, d))
        shutil.chown(os.path.join(self.dir, "mail"), "vmail", "vmail")
        self.port, self.run = free_port(), os.path.join(self.dir, "run")
        conf = open(base).read()
        for old, new in [(f"{AHOME}/run/dovecot", self.run), (f"{AHOME}/lib/dovecot", f"{self.dir}/lib"),
                         (f"{AHOME}/log", f"{self.dir}/log"), (f"{AHOME}/etc/dovecot/users", f"{self.dir}/users"),
                         ("instance_name = anchors", "instance_name = pop3bench")]:
            assert old in conf, f"{old} not in {base}"
            conf = conf.replace(old, new)
        conf = re.sub(r"(?m)^protocols = .*$", "protocols = pop3 lmtp", conf)
        conf = re.sub(r"(inet_listener pop3 \{\s*port = )\d+", rf"\g<1>{self.port}", conf)
        conf = re.sub(r"(inet_listener (imap|imaps|lmtp) \{[^}]*port = )\d+", r"\g<1>0", conf)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f: f.write(conf + "mail_location = maildir:~/Maildir\n")
        vmail = pwd.getpwnam("vmail"); uid, gid = vmail.pw_uid, vmail.pw_gid
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{self.dir}/mail/{user.split('@')[0]}::\n")
        subprocess.run(["dovecot", "-c", self.conf], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, "dovecot")
        self.lmtp, pidfile = os.path.join(self.run, "lmtp"), os.path.join(self.run, "master.pid")
        for _ in range(100):
            if os.path.exists(pidfile) and os.path.getsize(pidfile): break
            time.sleep(0.1)
        with open(pidfile) as f: self.pid = int(f.read())

    def count(self, user):
        d = os.path.join(self.dir, "mail", user.split("@")[0], "Maildir")
        return sum(len(os.listdir(os.path.join(d, s))) for s in ("new", "cur") if os.path.isdir(os.path.join(d, s)))

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
            for _ in range(150):
                os.kill(self.pid, 0); time.sleep(0.1)
        except ProcessLookupError:
            pass


def deliver(socket_path, user, count, have, make_msg, sender):
    c = smtplib.LMTP(socket_path)
    for i in range(FIRST_ID + have, FIRST_ID + count):
        c.sendmail(sender, [user], make_msg(i, user))
    c.quit()


class TrivialServer:
    """pop3_raw serve: every RETR answered from one precomputed reply in memory. Against it a
    client shows its own ceiling; its CPU per message is a floor for any POP3 server here."""
    def __init__(self, raw, tmp, count, message):
        path = os.path.join(tmp, "message.eml")
        with open(path, "wb") as f: f.write(message)
        self.port = free_port()
        self.proc = subprocess.Popen([raw.exe, "serve", str(self.port), path, str(count)], stdout=subprocess.PIPE, text=True)
        self.proc.stdout.readline()

    def stop(self):
        self.proc.kill(); self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=1, help="pop3d processes")
    ap.add_argument("--hash", choices=["sha512-1000", "yescrypt"], default="sha512-1000",
                    help="Postern's password hash for the bench user (Dovecot's anchor user is {PLAIN})")
    ap.add_argument("--clients", default="poplib,raw Python,raw C")
    ap.add_argument("--bin", default=None, help="Postern binaries (default: release build)")
    a = ap.parse_args()
    if os.geteuid() != 0: sys.exit("run as root: dovecot and the cgroups need it")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))     # the servers are stopped on the way out
    os.environ.update({"DOMAIN": "example.test", "PASSWORD": PASSWORD, "IMAP_PORT": "0", "POP3_PORT": "0",
                       "SMTP_PORT": "0", "ANCHORS_HOME": AHOME, "DOVECOT_RUN": "", "MAIL_DIR": "", "LMTP_SOCKET": ""})
    import bench as anchor                   # make_msg, SENDER (its settings come from the environment)
    from lmtp_bench import Postern
    bindir = a.bin
    if not bindir:
        repo = os.path.dirname(ROOT)
        subprocess.run(["swift", "build", "-c", "release"], cwd=repo, check=True)
        bindir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=repo, check=True,
                                capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="pop3-bench-")
    raw = RawC(tmp)
    every = {"poplib": run_poplib, "raw Python": run_raw_python, "raw C": raw}
    clients = [(n, every[n]) for n in a.clients.split(",")]

    password = PASSWORD if a.hash == "yescrypt" else "{CRYPT}" + crypt(PASSWORD, "$6$rounds=1000$pop3bench$")
    port = free_port()
    pt = dc = trivial = None
    groups = []
    try:
        trivial = TrivialServer(raw, tmp, a.messages, anchor.make_msg(FIRST_ID, USER))
        pt = Postern(bindir, [], pop3=f'[pop3]\nprocesses = {a.processes}\nlisten = ["pop3@127.0.0.1:{port}"]\n')
        subprocess.run([pt.cli(), "user", "add", USER, "--password-stdin", "-c", pt.conf], input=password + "\n",
                       check=True, capture_output=True, text=True)
        dc = PrivateDovecot(tmp, USER, PASSWORD)
        # The same messages into both, over each one's LMTP socket.
        deliver(pt.socket, USER, a.messages, pt.count(USER), anchor.make_msg, anchor.SENDER)
        deliver(dc.lmtp, USER, a.messages, dc.count(USER), anchor.make_msg, anchor.SENDER)
        wait_port(port, "pop3d")
        ours = children(pt.proc.pid)
        assert sorted(ours.values()).count("pop3d") == a.processes and "store" in ours.values(), f"processes: {ours}"
        # Postern's pop3d and store apart (the split is reported); Dovecot's instance whole.
        groups = [CPUGroup(name, [p for p, c in ours.items() if c == name]) for name in ("pop3d", "store")]
        groups.append(CPUGroup("dovecot", children(dc.pid)))
        groups.append(CPUGroup("trivial", [trivial.proc.pid]))
        cpu = {"postern": groups[:2], "dovecot": groups[2:3], "trivial": groups[3:]}
        # The trivial server in the same interleaving: the clients' ceilings under the same load.
        servers = {"postern": (port, PASSWORD), "dovecot": (dc.port, PASSWORD), "trivial": (trivial.port, PASSWORD)}
        acct = "cpuacct cgroups" if all(g.dir for g in groups) else "/proc/<pid>/stat"
        for _, client in clients:            # warm-up of both
            for p, pw in servers.values(): client(p, USER, pw)
        rates = {(c, s): [] for c, _ in clients for s in servers}
        cpus = {(c, s): [] for c, _ in clients for s in servers}
        store_share = {c: [] for c, _ in clients}
        for r in range(a.runs):
            line = []
            for cname, client in clients:
                for s, (p, pw) in servers.items():
                    before = [g.usage() for g in cpu[s]]
                    n, got, dt = client(p, USER, pw)
                    used = [g.usage() - b for g, b in zip(cpu[s], before)]
                    cpus[(cname, s)].append(sum(used) / 1000 / n)
                    if s == "postern": store_share[cname].append(used[1] / 1000 / n)
                    assert n >= a.messages and got >= n * 5000, f"{s}: {n} messages, {got} bytes"
                    rates[(cname, s)].append(n / dt)
                line.append(f"{cname} " + "/".join(f"{rates[(cname, s)][-1]:.0f}" for s in servers))
            print(f"  run {r + 1} (postern/dovecot/trivial msg/s): " + "   ".join(line), flush=True)
    finally:
        for g in groups: g.close()
        if pt: pt.stop()
        if dc: dc.stop()
        if trivial: trivial.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    print(f"\nPOP3: login + LIST + RETR all of {a.messages} x 5 KB msgs + QUIT (plaintext, loopback), median of {a.runs}; "
          f"Postern's user hash {a.hash}, Dovecot's {{PLAIN}}")
    print("| client | ceiling (trivial server) msg/s | Postern msg/s | Dovecot msg/s | ratio | ceiling ÷ Dovecot | Postern ÷ ceiling "
          "| Postern CPU µs/msg (of it store) | Dovecot CPU µs/msg | CPU ratio | trivial server CPU µs/msg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c, _ in clients:
        mo, md, mt = med(rates[(c, "postern")]), med(rates[(c, "dovecot")]), med(rates[(c, "trivial")])
        co, cd, ct = med(cpus[(c, "postern")]), med(cpus[(c, "dovecot")]), med(cpus[(c, "trivial")])
        print(f"| {c} | {mt:.0f} | {mo:.0f} | {md:.0f} | {mo / md:.2f}x | {mt / md:.2f}x | {mo / mt:.0%} "
              f"| {co:.1f} ({med(store_share[c]):.1f}) | {cd:.1f} | {cd / co:.2f}x | {ct:.1f} |")
    print(f"CPU: Postern pop3d + store, Dovecot every process of its instance ({acct}); "
          "CPU ratio = Dovecot's CPU per message / Postern's (higher is better for Postern)")
    print(f"load average at the end (1/5/15 min, {os.cpu_count()} CPUs): " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    mo, md, mt = (med(rates[(clients[0][0], s)]) for s in ("postern", "dovecot", "trivial"))
    print(f"goal >= 2x ({clients[0][0]} row): {'met' if mo >= 2 * md else 'NOT met'} ({mo / md:.2f}x; "
          f"the trivial server, answering from memory, reaches {mt / md:.2f}x with this client in the same runs)")


if __name__ == "__main__":
    main()
