#!/usr/bin/env python3
"""Idle IMAPS connections: memory per connection and the EXISTS fan-out (issue 11 point 5).

Postern: --conns (10,000) IMAPS connections (implicit TLS, RFC 8314) to imapd, each LOGIN,
SELECT INBOX (a 1-message INBOX), IDLE. --watchers (1,000) of them are one user's, the rest
spread over --users other users (few users: the store's [auth] cache_ttl credentials cache keeps
logins cheap after each user's first). Then:

  memory   Pss and Rss of every imapd process and of the store, from /proc/PID/smaps_rollup,
           before the connections (after a warm-up connection) and with all of them in IDLE;
           the deltas divided by the connection count.
  fan-out  one message delivered over LMTP to the watched INBOX; the time from the start of
           the LMTP transaction until every watcher has read its `* n EXISTS` (and, apart,
           how long the LMTP transaction itself took). --deliveries times, median reported.

Dovecot (the anchor, ../shared/anchors) in the same run, same client, users user11..user100
(its mail_max_userip_connections is 10 per user and address), Pss/Rss summed over the dovecot
master and all its descendants (the anchors' bench.py idle row): --dovecot-tls-conns (90) IMAPS
connections on 20993 — each keeps an imap-login process as its TLS proxy, and the anchors run
imap-login with Dovecot's default process_limit of 100, so 500 IMAPS connections are refused
there — and --dovecot-conns (500) plain IMAP connections on 20143, the anchors' own figure.

Run as root (the anchors need it, and 10,000 connections need the fd limit):
    python3 bench/imap_idle_bench.py --bin $(swift build -c release --show-bin-path)
imap_bench.py can call `run(bindir, ...)` for its idle row.
"""
import argparse, asyncio, os, re, resource, shutil, signal, smtplib, socket, ssl, statistics, subprocess
import sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "anchors"))
AHOME = os.environ.get("ANCHORS_HOME", "/tmp/mail-anchors")
HOST, DOMAIN, PASSWORD = "127.0.0.1", "example.test", "pass"
DOVECOT_IMAPS, DOVECOT_IMAP = 20993, 20143
DOVECOT_RUN = os.path.join(AHOME, "run", "dovecot")
DOVECOT_USERS = range(11, 101)
OPENING = 200          # connections being opened at once (handshake, LOGIN, SELECT, IDLE)
DOVECOT_OPENING = 20   # Dovecot: within its imap-login process_limit (100) with room to spare

user = lambda n: f"user{n}@{DOMAIN}"


def message(i, rcpt):
    return (f"From: <bench@{DOMAIN}>\r\nTo: <{rcpt}>\r\nSubject: idle bench {i}\r\n"
            f"Message-ID: <idle-{i}-{time.time_ns()}@{DOMAIN}>\r\n\r\nhello {i}\r\n").encode()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- memory
def memory(pids):
    """(Pss kB, Rss kB) summed over pids, from smaps_rollup."""
    pss = rss = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"): pss += int(line.split()[1])
                elif line.startswith("Rss:"): rss += int(line.split()[1])
        except OSError:
            pass
    return pss, rss


def descendants(root):
    kids = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try: kids.setdefault(int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]), []).append(int(p))
        except OSError: pass
    todo, out = [root], []
    while todo:
        p = todo.pop(); out.append(p); todo += kids.get(p, [])
    return out


# ---------------------------------------------------------------- the client
class Idler:
    """One IMAPS connection: LOGIN, SELECT INBOX, IDLE; then reads untagged lines."""

    def __init__(self, reader, writer, exists):
        self.r, self.w, self.exists = reader, writer, exists

    @classmethod
    async def open(cls, port, ctx, login, stage="idle"):
        """`stage`: how far to go ("tls", "login", "select" or "idle")."""
        r, w = await asyncio.open_connection(HOST, port, ssl=ctx, server_hostname=None)
        line = await r.readline()
        if not line.startswith(b"* OK"): raise RuntimeError(f"greeting {line!r}")
        if stage == "tls": return cls(r, w, 0)
        await cls.command(r, w, b"a1", f"LOGIN {login} {PASSWORD}".encode())
        if stage == "login": return cls(r, w, 0)
        sel = await cls.command(r, w, b"a2", b"SELECT INBOX")
        if stage == "select": return cls(r, w, 0)
        exists = int(re.search(rb"\* (\d+) EXISTS", sel).group(1))
        w.write(b"a3 IDLE\r\n")
        while True:
            line = await r.readline()
            if not line: raise ConnectionError("closed before IDLE's continuation")
            if line.startswith(b"+"): break
        return cls(r, w, exists)

    @staticmethod
    async def command(r, w, tag, cmd):
        w.write(tag + b" " + cmd + b"\r\n")
        got = b""
        while True:
            line = await r.readline()
            if not line: raise ConnectionError(cmd)
            got += line
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"): raise RuntimeError(f"{cmd!r}: {line!r}")
                return got

    async def wait_exists(self, n):
        """Until `* n EXISTS` (or more) -> monotonic time it was read."""
        while True:
            line = await self.r.readline()
            if not line: raise ConnectionError("closed while idle")
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m and int(m.group(1)) >= n:
                self.exists = int(m.group(1))
                return time.monotonic()

    def close(self):
        try: self.w.transport.abort()
        except Exception: pass


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def open_many(port, logins, stage="idle", tls=True, opening=OPENING):
    ctx, sem = client_context() if tls else None, asyncio.Semaphore(opening)

    async def one(login):
        async with sem:
            for attempt in range(3):
                try: return await asyncio.wait_for(Idler.open(port, ctx, login, stage), 60)
                except (ConnectionError, OSError, asyncio.TimeoutError) as e:
                    if attempt == 2: raise
                    await asyncio.sleep(0.5)
    return await asyncio.gather(*(one(l) for l in logins))


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 1000))
    if want > soft: resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n + 100: sys.exit(f"fd limit {hard} is too low for {n} connections")


# ---------------------------------------------------------------- Postern
class Postern:
    def __init__(self, bindir, users, conns, processes):
        self.bin, self.dir = bindir, tempfile.mkdtemp(prefix="postern-idle-bench-")
        os.chmod(self.dir, 0o755)
        self.conf, self.port = os.path.join(self.dir, "postern.toml"), free_port()
        with open(self.conf, "w") as f:
            f.write(f'hostname = "bench.example.test"\ndata_dir = "{self.dir}/data"\nrun_dir = "{self.dir}/run"\n'
                    'log_level = "warning"\n'
                    '[auth]\nfailures_per_client = 100000\n'
                    '[smtp]\nmta = []\nsubmission = []\nsmtps = []\n'
                    f'[imap]\nprocesses = {processes}\nlisten = ["imaps@{HOST}:{self.port}"]\n'
                    f'max_connections = {conns + 100}\nmax_connections_per_client = {conns + 100}\n'
                    '[lmtp]\nlisten = ["unix:lmtp"]\n[pop3]\nlisten = []\n[outbound]\nenabled = false\n')
        self.log = open(os.path.join(self.dir, "master.log"), "a")
        self.proc = subprocess.Popen([os.path.join(bindir, "master"), "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.lmtp = os.path.join(self.dir, "run", "lmtp")
        try:
            self.wait(lambda: self.cli("domain", "list").returncode == 0, "the control socket")
            self.cli("domain", "add", DOMAIN, check=True)
            for u in users:
                self.cli("user", "add", u, "--password-stdin", input=PASSWORD + "\n", check=True)
            self.wait(lambda: os.path.exists(self.lmtp) and self.pids("imap"), "lmtpd and imapd")
        except BaseException:
            self.stop(); raise

    def wait(self, pred, what):
        for _ in range(300):
            if self.proc.poll() is not None: raise RuntimeError(f"master exited; see {self.log.name}")
            try:
                if pred(): return
            except Exception: pass
            time.sleep(0.1)
        raise RuntimeError(f"no {what}; see {self.log.name}")

    def cli(self, *a, check=False, **kw):
        r = subprocess.run([os.path.join(self.bin, "postern"), *a, "-c", self.conf], capture_output=True, text=True, **kw)
        if check and r.returncode: raise RuntimeError(f"postern {' '.join(a)}: {r.stderr}")
        return r

    def pids(self, service):
        out = self.cli("status").stdout.splitlines()[1:]
        return [int(f[2]) for f in (l.split("\t") for l in out) if len(f) > 3 and f[0] == service and f[2].isdigit() and int(f[2]) > 0]

    def deliver(self, rcpt, i):
        c = smtplib.LMTP(self.lmtp)
        c.sendmail(f"bench@{DOMAIN}", [rcpt], message(i, rcpt))
        c.quit()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try: self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


async def measure_postern(p, a):
    watched = user(1)
    others = [user(n) for n in range(2, 2 + a.users)]
    for u in [watched] + others:
        p.deliver(u, 0)                         # a 1-message INBOX each
    # Warm-up: every user's first (hashing) login, and one of each kind of connection.
    warm = await open_many(p.port, [watched] + others)
    for c in warm: c.close()
    await asyncio.sleep(2)
    imapd, store = p.pids("imap"), p.pids("store")
    base_i, base_s = memory(imapd), memory(store)
    t0 = time.monotonic()
    logins = [watched] * a.watchers + [others[k % len(others)] for k in range(a.conns - a.watchers)]
    conns = await open_many(p.port, logins)
    opened = time.monotonic() - t0
    await asyncio.sleep(3)
    held_i, held_s = memory(imapd), memory(store)
    n = len(conns)
    res = {"open_s": opened,
           "imapd_pss": (held_i[0] - base_i[0]) / n, "imapd_rss": (held_i[1] - base_i[1]) / n,
           "store_pss": (held_s[0] - base_s[0]) / n, "store_rss": (held_s[1] - base_s[1]) / n,
           "imapd_total": held_i, "store_total": held_s, "imapd_procs": len(imapd)}
    print(f"  postern: {n} IDLE connections opened in {opened:.1f} s over {len(imapd)} imapd; "
          f"imapd Pss/Rss {base_i} -> {held_i} kB, store {base_s} -> {held_s} kB", flush=True)
    watchers, lat, lmtp = conns[:a.watchers], [], []
    for d in range(a.deliveries):
        want = watchers[0].exists + 1
        waits = [asyncio.ensure_future(c.wait_exists(want)) for c in watchers]
        t0 = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, p.deliver, watched, 1 + d)
        t1 = time.monotonic()
        seen = await asyncio.wait_for(asyncio.gather(*waits), 60)
        lat.append(max(seen) - t0); lmtp.append(t1 - t0)
        print(f"    delivery {d + 1}: all {len(watchers)} watchers saw {want} EXISTS after {lat[-1] * 1000:.0f} ms "
              f"(LMTP transaction {lmtp[-1] * 1000:.0f} ms; first watcher {(min(seen) - t0) * 1000:.0f} ms)", flush=True)
        await asyncio.sleep(0.5)
    res["fanout_s"], res["lmtp_s"] = lat, lmtp
    for c in conns: c.close()
    return res


# ---------------------------------------------------------------- Dovecot
def anchors(script, log):
    with open(log, "a") as f:
        return subprocess.run(["bash", os.path.join(ANCHORS, script)], stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


async def measure_dovecot(n, tls):
    pids = lambda: descendants(int(open(os.path.join(DOVECOT_RUN, "master.pid")).read()))
    port = DOVECOT_IMAPS if tls else DOVECOT_IMAP
    warm = await open_many(port, [user(DOVECOT_USERS[0])], tls=tls)
    for c in warm: c.close()
    await asyncio.sleep(2)
    base = memory(pids())
    logins = [user(DOVECOT_USERS[k % len(DOVECOT_USERS)]) for k in range(n)]
    conns = await open_many(port, logins, tls=tls, opening=DOVECOT_OPENING)
    await asyncio.sleep(2)
    procs = pids(); held = memory(procs)
    for c in conns: c.close()
    for _ in range(100):     # until its imap (and imap-login) processes are gone
        if len(pids()) <= len(procs) - n: break
        await asyncio.sleep(0.2)
    print(f"  dovecot: {n} IDLE {'IMAPS' if tls else 'IMAP'} connections, {len(procs)} processes; "
          f"Pss/Rss {base} -> {held} kB", flush=True)
    return {"pss": (held[0] - base[0]) / n, "rss": (held[1] - base[1]) / n, "conns": n, "tls": tls}


# ---------------------------------------------------------------- main
def med(xs): return statistics.median(xs)


def report(pr, dv):
    rows = []
    if pr:
        rows += [("idle IMAPS connections (Postern)", f"{pr['conns']}"),
             ("Postern imapd PSS per connection", f"{pr['imapd_pss']:.1f} KiB"),
             ("Postern imapd RSS per connection", f"{pr['imapd_rss']:.1f} KiB"),
             ("Postern store PSS per connection", f"{pr['store_pss']:.1f} KiB"),
             ("Postern store RSS per connection", f"{pr['store_rss']:.1f} KiB"),
             (f"all {pr['watchers']} watchers saw EXISTS (median of {len(pr['fanout_s'])})",
              f"{med(pr['fanout_s']) * 1000:.0f} ms (LMTP transaction {med(pr['lmtp_s']) * 1000:.0f} ms)")]
    for d in dv or []:
        kind = f"{d['conns']} {'IMAPS' if d['tls'] else 'IMAP'}"
        rows += [(f"Dovecot PSS per connection ({kind})", f"{d['pss']:.1f} KiB"),
                 (f"Dovecot RSS per connection ({kind})", f"{d['rss']:.1f} KiB")]
        if pr:
            rows += [(f"PSS ratio Postern imapd+store / Dovecot ({kind})", f"{(pr['imapd_pss'] + pr['store_pss']) / d['pss']:.3f}")]
    w = max(len(r[0]) for r in rows)
    print("\n| row | figure |\n|---|---|")
    for k, v in rows: print(f"| {k.ljust(w)} | {v} |")


def run(bindir, conns=10000, watchers=1000, users=9, deliveries=5, processes=1, dovecot_conns=500,
        dovecot_tls_conns=90, dovecot=True):
    """-> (Postern's figures or None when `conns` is 0, Dovecot's or None)."""
    a = argparse.Namespace(conns=conns, watchers=watchers, users=users, deliveries=deliveries,
                           processes=processes, dovecot_conns=dovecot_conns)
    raise_fd_limit(max(conns, dovecot_conns))
    pr = None
    if conns:
        p = Postern(bindir, [user(n) for n in range(1, 2 + users)], conns, processes)
        try:
            pr = asyncio.run(measure_postern(p, a))
        finally:
            p.stop()
        pr.update(conns=conns, watchers=watchers)
    dv = None
    if dovecot:
        log = os.path.join(tempfile.gettempdir(), "imap-idle-bench-anchors.log")
        if anchors("setup-anchors.sh", log) or anchors("start-anchors.sh", log):
            sys.exit(f"the anchors did not start; see {log}")
        dv = [asyncio.run(measure_dovecot(dovecot_tls_conns, True)), asyncio.run(measure_dovecot(dovecot_conns, False))]
    return pr, dv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="Postern binaries (default: the release build)")
    ap.add_argument("--conns", type=int, default=10000, help="Postern's connections (0: Dovecot only)")
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--users", type=int, default=9, help="users holding the other connections")
    ap.add_argument("--deliveries", type=int, default=5)
    ap.add_argument("--processes", type=int, default=1, help="imapd processes ([imap] processes)")
    ap.add_argument("--dovecot-conns", type=int, default=500, help="Dovecot's plain IMAP connections (the anchors' row)")
    ap.add_argument("--dovecot-tls-conns", type=int, default=90,
                    help="Dovecot's IMAPS connections: each keeps an imap-login process as its TLS proxy, and the "
                         "anchors' Dovecot has the default imap-login process_limit of 100")
    ap.add_argument("--no-dovecot", dest="dovecot", action="store_false")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the anchors and 10,000 connections need it")
    bindir = a.bin or subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                     capture_output=True, text=True, check=True).stdout.strip()
    pr, dv = run(bindir, a.conns, a.watchers, a.users, a.deliveries, a.processes, a.dovecot_conns, a.dovecot_tls_conns,
                 a.dovecot)
    report(pr, dv)


if __name__ == "__main__":
    main()
