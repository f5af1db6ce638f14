#!/usr/bin/env python3
"""LMTP delivery benchmark: Postern vs Dovecot's LMTP (from ../shared/anchors), same run.

Load: Postfix's smtp-source in LMTP mode (-L), 5 KB payloads, 1/4/16 parallel connections
that stay open (-d), fsync durability on for both. A run's time is until smtp-source has its
last reply: both servers answer 250 only once the message is in the mailbox, and the mailbox
counts are checked afterwards. Prints the median of --runs runs per point and the ratio.
Run as root (the anchors need it): `make bench` or `python3 bench/lmtp_bench.py`.
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "anchors"))
AHOME = os.environ.get("ANCHORS_HOME", "/tmp/mail-anchors")
DOVECOT_LMTP = os.path.join(AHOME, "run/dovecot/lmtp")
DOVECOT_MAIL = os.path.join(AHOME, "mail/example.test")

def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout

def smtp_source(target, conns, msgs, rcpt, size):
    t0 = time.perf_counter()
    p = subprocess.run(["smtp-source", "-L", "-d", "-s", str(conns), "-m", str(msgs), "-l", str(size),
                        "-f", "bench@example.org", "-t", rcpt, target], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {p.stderr.strip()}")
    return dt

def maildir_count(user):
    d = os.path.join(DOVECOT_MAIL, user, "Maildir")
    return sum(len(os.listdir(os.path.join(d, s))) for s in ("new", "cur") if os.path.isdir(os.path.join(d, s)))

class Postern:
    def __init__(self, bindir, users):
        self.dir = tempfile.mkdtemp(prefix="postern-bench-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "postern.toml")
        with open(self.conf, "w") as f:
            f.write(f'hostname = "bench.example.test"\ndata_dir = "{self.dir}/data"\nrun_dir = "{self.dir}/run"\n'
                    f'log_level = "warning"\n[store]\nfsync = true\n[smtp]\nmta = []\nsubmission = []\nsmtps = []\n'
                    f'[lmtp]\nlisten = ["unix:lmtp"]\n[imap]\nlisten = []\n')
        self.bin = bindir
        self.log = open(os.path.join(self.dir, "master.log"), "w")
        self.proc = subprocess.Popen([os.path.join(bindir, "master"), "-c", self.conf], stdout=self.log, stderr=self.log)
        try:
            self.setup(users)
        except BaseException:
            self.stop(); raise

    def setup(self, users):
        for _ in range(300):
            if subprocess.run([self.cli(), "status", "-c", self.conf], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("postern did not start; see " + self.log.name)
        self.run("domain", "add", "example.test")
        for u in users:
            subprocess.run([self.cli(), "user", "add", u, "--password-stdin", "-c", self.conf], input="pass\n",
                           check=True, capture_output=True, text=True)
        self.socket = os.path.join(self.dir, "run/lmtp")

    def cli(self): return os.path.join(self.bin, "postern")
    def run(self, *a): return sh(self.cli(), *a, "-c", self.conf)
    def count(self, user):
        for line in self.run("mailbox", "list", user).splitlines()[1:]:
            f = line.split("\t")
            if f[0] == "INBOX": return int(f[2])
        return 0
    def stop(self):
        self.proc.send_signal(signal.SIGTERM); self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=2000, help="messages per run")
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--conns", default="1,4,16")
    ap.add_argument("--bin", default=None, help="Postern binaries (default: release build)")
    a = ap.parse_args()
    if os.geteuid() != 0: sys.exit("run as root: the anchors need it")
    bindir = a.bin or sh("swift", "build", "-c", "release", "--show-bin-path", cwd=ROOT).strip()
    if not a.bin: subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True)
    subprocess.run(["bash", os.path.join(ANCHORS, "setup-anchors.sh")], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["bash", os.path.join(ANCHORS, "stop-anchors.sh")], stdout=subprocess.DEVNULL)
    shutil.rmtree(DOVECOT_MAIL, ignore_errors=True)
    subprocess.run(["bash", os.path.join(ANCHORS, "start-anchors.sh")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = [int(c) for c in a.conns.split(",")]
    users = [f"user{11 + i}@example.test" for i in range(len(conns) * a.runs)]
    pt = Postern(bindir, users)
    rows = []
    try:
        # warm-up of both (first-touch costs: page cache, dovecot's auth and index creation)
        smtp_source("unix:" + pt.socket, 2, 50, "user99@example.test", a.size) if False else None
        k = 0
        for c in conns:
            ours, theirs = [], []
            for r in range(a.runs):
                u = users[k]; k += 1
                # interleave the two so drift on the machine hits both alike
                before = pt.count(u)
                dt = smtp_source("unix:" + pt.socket, c, a.messages, u, a.size)
                got = pt.count(u) - before
                assert got == a.messages, f"postern stored {got} of {a.messages}"
                ours.append(a.messages / dt)
                before = maildir_count(u.split("@")[0])
                dt = smtp_source("unix:" + DOVECOT_LMTP, c, a.messages, u, a.size)
                got = maildir_count(u.split("@")[0]) - before
                assert got == a.messages, f"dovecot stored {got} of {a.messages}"
                theirs.append(a.messages / dt)
            mo, md = statistics.median(ours), statistics.median(theirs)
            rows.append((c, mo, md, ours, theirs))
            print(f"{c:>3} conns: postern {mo:8.0f} msg/s  dovecot {md:8.0f} msg/s  ratio {mo / md:5.2f}x"
                  f"   (runs: {', '.join(f'{x:.0f}' for x in ours)} | {', '.join(f'{x:.0f}' for x in theirs)})", flush=True)
    finally:
        pt.stop()
        subprocess.run(["bash", os.path.join(ANCHORS, "stop-anchors.sh")], stdout=subprocess.DEVNULL)
    print(f"\nLMTP, {a.size}-byte payloads, {a.messages} messages per run, median of {a.runs}, fsync on (both)")
    print("| connections | Postern msg/s | Dovecot LMTP msg/s | ratio |\n|---|---|---|---|")
    for c, mo, md, _, _ in rows:
        print(f"| {c} | {mo:.0f} | {md:.0f} | {mo / md:.2f}x |")

if __name__ == "__main__":
    main()
