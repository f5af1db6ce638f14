#!/usr/bin/env python3
"""SMTP end-to-end benchmark: Postern's smtpd (mta role) vs Postfix -> Dovecot (../shared/anchors),
same load, same run.

Load: Postfix's smtp-source, 5 KB messages, 1 and 20 parallel sessions, one recipient, exactly
the command the anchor bench (../shared/anchors/bench.py, bench_smtp) runs:

    smtp-source -s N -m M -l 5120 -f bench@example.test -t userK@example.test -M client.example.test HOST:PORT

(no -d: a new connection per message, as in the anchor figures; --reuse adds -d to both).
A run's clock starts before smtp-source and stops when every message is in the mailbox:
Postern - `postern mailbox list` shows the INBOX count reached (smtpd answers 250 only after
the store has committed with fsync, so this is normally true at once); Postfix+Dovecot - the
files in the user's Maildir new/+cur/ (Postfix queues, then delivers over LMTP to Dovecot).
"accepted" is messages / time until smtp-source had its last reply. Each point is the median
of --runs runs, the two systems interleaved so drift on the machine hits both alike; fsync on
for both (Postern's default `[store] fsync = true`; Dovecot and Postfix fsync by default).

Run as root (the anchors need it): `python3 bench/smtp_bench.py` (builds the release binaries
first) or `--bin DIR` for prebuilt ones.
"""
import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import release_bin   # noqa: E402

ANCHORS = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "anchors"))
AHOME = os.environ.get("ANCHORS_HOME", "/tmp/mail-anchors")
ANCHOR_SMTP = ("127.0.0.1", 20025)                      # common.sh SMTP_PORT
MAIL_DIR = os.path.join(AHOME, "mail", "example.test")  # Dovecot homes: MAIL_DIR/<user>/Maildir
POSTFIX_SPOOL = os.path.join(AHOME, "spool", "postfix")
SENDER = "bench@example.test"


def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_source(host, port, conns, msgs, rcpt, size, reuse):
    cmd = ["smtp-source", "-s", str(conns), "-m", str(msgs), "-l", str(size), "-f", SENDER, "-t", rcpt,
           "-M", "client.example.test"] + (["-d"] if reuse else []) + [f"{host}:{port}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()[-2000:]}")
    return cmd


def maildir_count(user):
    d = os.path.join(MAIL_DIR, user.split("@")[0], "Maildir")
    return sum(len(os.listdir(os.path.join(d, s))) for s in ("new", "cur") if os.path.isdir(os.path.join(d, s)))


def postfix_queue_size():
    return sum(len(f) for q in ("maildrop", "incoming", "active", "deferred", "hold")
               for _, _, f in os.walk(os.path.join(POSTFIX_SPOOL, q)))


def wait_until(done, deadline, what):
    while not done():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.perf_counter()


class Postern:
    """A temporary instance: smtpd mta on a free loopback port, lmtpd on a unix socket."""

    def __init__(self, bindir, users, log_level):
        self.dir = tempfile.mkdtemp(prefix="postern-smtp-bench-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "postern.toml")
        with open(self.conf, "w") as f:
            f.write(f'hostname = "bench.example.test"\ndata_dir = "{self.dir}/data"\nrun_dir = "{self.dir}/run"\n'
                    f'log_level = "{log_level}"\n[store]\nfsync = true\n' + self.services())
        self.bin = bindir
        self.log = open(os.path.join(self.dir, "master.log"), "w")
        self.proc = subprocess.Popen([os.path.join(bindir, "master"), "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.setup(users)
        except BaseException:
            self.stop()
            raise

    def services(self):
        """The config after [store]: smtpd's mta role on `self.port` (outbound_bench.py: submission)."""
        return (f'[smtp]\nmta = ["127.0.0.1:{self.port}"]\nsubmission = []\nsmtps = []\nmax_connections_per_client = 1000\n'
                f'[lmtp]\nlisten = ["unix:lmtp"]\n[imap]\nlisten = []\n[pop3]\nlisten = []\n')

    def cli(self, *a, **kw):
        return subprocess.run([os.path.join(self.bin, "postern"), *a, "-c", self.conf], capture_output=True, text=True, **kw)

    def setup(self, users):
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError("postern master exited; see " + self.log.name)
            if self.cli("domain", "list").returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("postern did not start; see " + self.log.name)
        if self.cli("domain", "add", "example.test").returncode != 0:
            raise RuntimeError("postern domain add failed")
        for u in users:
            r = self.cli("user", "add", u, "--password-stdin", input="pass\n")
            if r.returncode != 0:
                raise RuntimeError(f"user add {u}: {r.stderr}")
        for _ in range(100):        # smtpd answers on its port
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"220"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("smtpd does not answer; see " + self.log.name)

    def count(self, user):
        r = self.cli("mailbox", "list", user)
        for line in r.stdout.splitlines()[1:]:
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
        shutil.rmtree(self.dir, ignore_errors=True)


def anchors(script, log):
    """Runs an anchor script; the daemons it starts must not hold our pipes, so their output
    goes to a file."""
    with open(log, "a") as f:
        return subprocess.run(["bash", os.path.join(ANCHORS, script)], stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)


def one_run(name, host, port, count, conns, n, rcpt, size, reuse):
    """-> (accepted msg/s, end-to-end msg/s, command)"""
    before = count(rcpt)
    t0 = time.perf_counter()
    cmd = smtp_source(host, port, conns, n, rcpt, size, reuse)
    t_acc = time.perf_counter() - t0
    t_end = wait_until(lambda: count(rcpt) >= before + n, t0 + 600, f"{name}: {n} messages for {rcpt}")
    got = count(rcpt) - before
    if got != n:
        raise RuntimeError(f"{name}: {got} messages stored for {rcpt}, expected {n}")
    return n / t_acc, n / (t_end - t0), cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=2000, help="messages per run (anchor bench: 2000)")
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--sessions", default="1,20")
    ap.add_argument("--reuse", action="store_true", help="smtp-source -d: all of a session's messages on one connection")
    ap.add_argument("--log-level", default="info", help="Postern's log_level (default: its shipped default, info)")
    ap.add_argument("--bin", default=None, help="Postern binaries (default: build and use the release build)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the anchors need it")
    if not shutil.which("smtp-source"):
        sys.exit("smtp-source (postfix) not installed: run ../shared/anchors/setup-anchors.sh")
    bindir = release_bin(a.bin)
    sessions = [int(s) for s in a.sessions.split(",")]
    # One recipient per run, as the anchor bench does (users 3..10 there; 1 and 2 hold its IMAP
    # and POP3 mailboxes): user3..; user99 takes the warm-up.
    users = [f"user{3 + i}@example.test" for i in range(len(sessions) * a.runs)]
    if len(users) > 96:
        sys.exit("too many runs: the anchors have user1..user100")
    warm = "user99@example.test"

    workdir = tempfile.mkdtemp(prefix="smtp-bench-")
    alog = os.path.join(workdir, "anchors.log")
    if anchors("setup-anchors.sh", alog).returncode != 0:
        sys.exit(f"setup-anchors.sh failed; see {alog}")
    anchors("stop-anchors.sh", alog)
    for u in users + [warm]:        # fresh Maildirs for the users measured here
        shutil.rmtree(os.path.join(MAIL_DIR, u.split("@")[0]), ignore_errors=True)
    if anchors("start-anchors.sh", alog).returncode != 0:
        sys.exit(f"start-anchors.sh failed; see {alog}")
    pt = None
    rows = []
    try:
        if postfix_queue_size():
            raise RuntimeError(f"the anchor Postfix queue is not empty ({postfix_queue_size()} files): flush it first")
        pt = Postern(bindir, users + [warm], a.log_level)
        systems = {
            "postern": ("127.0.0.1", pt.port, pt.count),
            "postfix+dovecot": (*ANCHOR_SMTP, maildir_count),
        }
        # Warm-up of both (first-touch costs: page cache, Dovecot's auth and index creation,
        # Postfix's process pool).
        for name, (host, port, count) in systems.items():
            one_run(name, host, port, count, 4, 100, warm, a.size, a.reuse)
        k = 0
        for c in sessions:
            res = {name: ([], []) for name in systems}
            for r in range(a.runs):
                rcpt = users[k]
                k += 1
                for name, (host, port, count) in systems.items():
                    acc, e2e, cmd = one_run(name, host, port, count, c, a.messages, rcpt, a.size, a.reuse)
                    res[name][0].append(acc)
                    res[name][1].append(e2e)
                    print(f"  {c:>2} sessions run {r + 1}: {name:16} accepted {acc:7.0f} msg/s, in mailbox {e2e:7.0f} msg/s",
                          flush=True)
            po, pa = (statistics.median(x) for x in res["postern"])
            ao, aa = (statistics.median(x) for x in res["postfix+dovecot"])
            rows.append((c, po, pa, ao, aa, res))
            print(f"{c:>3} sessions: postern {pa:7.0f} msg/s  postfix+dovecot {aa:7.0f} msg/s  ratio {pa / aa:5.2f}x "
                  f"(end to end; accepted: {po:.0f} vs {ao:.0f})", flush=True)
        # Delivered mail leaves Postfix's queue a moment after Dovecot has the file.
        wait_until(lambda: postfix_queue_size() == 0, time.perf_counter() + 60, "the anchor Postfix queue to empty")
    finally:
        if pt is not None:
            pt.stop()
        anchors("stop-anchors.sh", alog)
    print(f"\nSMTP end to end (smtp-source -> in mailbox), {a.size}-byte messages, {a.messages} per run, "
          f"median of {a.runs}, fsync on (both), {'one connection per session (-d)' if a.reuse else 'a new connection per message'}; "
          f"Postern log_level {a.log_level}, {os.cpu_count()} CPUs")
    print("| sessions | Postern msg/s | Postfix+Dovecot msg/s | ratio | Postern accepted msg/s | Postfix accepted msg/s |")
    print("|---|---|---|---|---|---|")
    for c, po, pa, ao, aa, _ in rows:
        print(f"| {c} | {pa:.0f} | {aa:.0f} | {pa / aa:.2f}x | {po:.0f} | {ao:.0f} |")
    print("runs (end to end, msg/s): " + "; ".join(
        f"{c} sessions: postern {', '.join(f'{x:.0f}' for x in res['postern'][1])} | "
        f"postfix+dovecot {', '.join(f'{x:.0f}' for x in res['postfix+dovecot'][1])}" for c, _, _, _, _, res in rows))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
