#!/usr/bin/env python3
"""Outbound benchmark (issue 13): submission -> queue -> relay host, Postern vs Postfix, same run.

Load: --messages (2,000) messages of --size (5 KB), each with its own Message-ID, to remote
recipients (user<i>@remote.example), sent by --clients (10) processes, each on one connection, the
same client for both systems: bench/smtp_raw.c (compiled here with cc; EHLO, AUTH PLAIN for
Postern, then per message MAIL/RCPT/DATA in one write as RFC 2920 allows, the body, one message
per transaction), or with `--client python` smtplib (MAIL, RCPT, DATA each awaited). Each run
also sends the same load to smtp_raw's trivial in-memory server: the client's ceiling. Postern: its submission port on
loopback with AUTH PLAIN (allowed before TLS on loopback, `plaintext_auth_on_loopback`), the
outbound agent in relayhost mode. Postfix: a private instance (smtpd on loopback, mynetworks
127.0.0.0/8, so no AUTH) with `relayhost = [127.0.0.1]:SINK`. Both relay, without TLS, to one
Postfix smtp-sink (`-c`: its running counter "mesg=N" is read from its output), and fsync on for
both (Postern `[store] fsync = true`; Postfix's queue files).

A run's clock starts before the clients and stops when the sink has counted every message
(end to end); "accepted" is messages / time until the last client had its last 250. Each
figure is the median of --runs runs, the two systems interleaved so machine drift hits both
alike; one warm-up run of 100 messages each first. Both run with their shipped defaults for
concurrency (Postern [outbound] concurrency 20, per_destination 4, connection_cache_time_ms 2000; Postfix's 20 per destination).
Postern's `command_timeout = 10` and `retry_initial = 5` only bound what a stalled connection
costs (the agent sometimes never greets a server: see test_outbound.py's
test_a_stream_of_submissions_is_relayed_without_stalls); without a stall they change nothing.

Run as root (Postfix needs it): `python3 bench/outbound_bench.py` builds the release binaries
first, or `--bin DIR` for prebuilt ones.
"""
import argparse, base64, multiprocessing as mp, os, re, shutil, smtplib, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import release_bin                             # noqa: E402
from smtp_bench import Postern, free_port, wait_until      # noqa: E402

SENDER = "bench@example.test"
PASSWORD = "pass"                     # smtp_bench.Postern's users' password


class OutboundPostern(Postern):
    """smtp_bench's instance with submission instead of mta, and the agent relaying to the sink."""

    def __init__(self, bindir, sink_port, log_level, extra):
        self.sink_port, self.extra = sink_port, extra
        super().__init__(bindir, [SENDER], log_level)

    def services(self):
        return (f'[smtp]\nmta = []\nsubmission = ["127.0.0.1:{self.port}"]\nsmtps = []\nmax_connections_per_client = 1000\n'
                f'[lmtp]\nlisten = ["unix:lmtp"]\n[imap]\nlisten = []\n[pop3]\nlisten = []\n'
                f'[outbound]\nrelayhost = "127.0.0.1:{self.sink_port}"\nrelay_tls = "none"\n'
                f'command_timeout = 10\nretry_initial = 5\nretry_max = 5\n{self.extra}')

    def queue_size(self):
        r = self.cli("queue", "list")
        return max(0, len([l for l in r.stdout.splitlines() if l.strip()]) - 1)


class Sink:
    """smtp-sink -c on 127.0.0.1:port; `count()` is its last "mesg=N"."""
    MESG = re.compile(rb"mesg=(\d+)")

    def __init__(self, workdir):
        self.port = free_port()
        self.out = os.path.join(workdir, "sink.out")
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.f = open(self.out, "wb")
        self.proc = subprocess.Popen(["smtp-sink", *user, "-c", f"127.0.0.1:{self.port}", "1024"], stdout=self.f,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        time.sleep(0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"smtp-sink exited: {open(self.out, 'rb').read()[-500:]!r}")

    def count(self):
        with open(self.out, "rb") as f:
            f.seek(max(0, os.path.getsize(self.out) - 200))
            found = self.MESG.findall(f.read())
        return int(found[-1]) if found else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.f.close()


class RelayPostfix:
    """A private Postfix (conftest.PrivatePostfix: its own config, queue and log in a temporary
    directory) accepting from loopback and relaying everything to the sink."""

    def __init__(self, bindir, sink_port):
        os.environ.setdefault("POSTERN_BIN", bindir)
        sys.path.insert(0, os.path.join(ROOT, "Tests", "integration"))
        from conftest import PrivatePostfix
        self.pf = PrivatePostfix("bench")
        self.port = self.pf.smtp_port
        self.pf.write_config(
            self.pf.base_main_cf("bench/outbound_bench.py", "relay.bench.example")
            + "relay_domains =\n"
            f"relayhost = [127.0.0.1]:{sink_port}\n"
            "mynetworks = 127.0.0.0/8\n"
            "smtpd_client_connection_count_limit = 1000\n"
            "smtp_tls_security_level = none\n",
            self.pf.master_cf(f"127.0.0.1:{self.port} inet  n       -       n       -       -       smtpd\n", smtp_client=True))
        self.pf.start()

    def stop(self):
        self.pf.stop()
        self.pf.cleanup()


def message(i, size, run):
    head = (f"From: <{SENDER}>\r\nTo: <user{i}@remote.example>\r\nSubject: outbound bench {run} {i}\r\n"
            f"Message-ID: <bench.{run}.{i}@client.example.test>\r\nDate: Sun, 6 Dec 2026 05:00:00 +0000\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = (line * (size // len(line) + 1))[:max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


def client(args):
    """One connection: `n` messages, MAIL/RCPT/DATA each. Returns the time of its last reply."""
    port, login, first, n, size, run = args
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
        s.ehlo("client.example.test")
        if login:
            s.login(SENDER, PASSWORD)
        for i in range(first, first + n):
            refused = s.sendmail(SENDER, [f"user{i}@remote.example"], message(i, size, run))
            if refused:
                raise RuntimeError(f"refused: {refused}")
    return time.perf_counter()


class RawClient:
    """bench/smtp_raw.c, compiled once into a temporary directory: the C client (MAIL/RCPT/DATA
    pipelined, RFC 2920) and the trivial server that measures the client's ceiling."""

    def __init__(self, workdir):
        self.exe = os.path.join(workdir, "smtp_raw")
        subprocess.run(["cc", "-O2", "-o", self.exe, os.path.join(ROOT, "bench", "smtp_raw.c")], check=True)

    def serve(self):
        port = free_port()
        proc = subprocess.Popen([self.exe, "serve", str(port)], stdin=subprocess.DEVNULL)
        time.sleep(0.2)
        return port, proc

    def send(self, jobs):
        """Runs every job as its own process at once; the time of the last reply."""
        auth = base64.b64encode(f"\0{SENDER}\0{PASSWORD}".encode()).decode()
        procs = [subprocess.Popen([self.exe, "client", "127.0.0.1", str(port), auth if login else "-", str(first),
                                   str(n), str(size), run], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
                 for port, login, first, n, size, run in jobs]
        ends = []
        for p in procs:
            out, _ = p.communicate(300)
            if p.returncode != 0:
                raise RuntimeError(f"smtp_raw client exited {p.returncode}")
            ends.append(float(out))
        return max(ends)


def send_all(raw, jobs):
    """The load through the C client, or smtplib processes when `raw` is None."""
    if raw is not None:
        return raw.send(jobs)
    with mp.Pool(len(jobs)) as pool:
        return max(pool.map(client, jobs))


def jobs_for(name, port, login, n, clients, size, run):
    share = [n // clients + (1 if k < n % clients else 0) for k in range(clients)]
    return [(port, login, sum(share[:k]), share[k], size, f"{name}-{run}") for k in range(clients) if share[k]]


def one_run(name, port, login, sink, n, clients, size, run, raw):
    """-> (accepted msg/s, end-to-end msg/s)"""
    before = sink.count()
    jobs = jobs_for(name, port, login, n, clients, size, run)
    t0 = time.perf_counter()
    t_acc = send_all(raw, jobs) - t0
    t_end = wait_until(lambda: sink.count() >= before + n, t0 + 900, f"{name}: {n} messages at the sink")
    got = sink.count() - before
    if got != n:
        raise RuntimeError(f"{name}: the sink counted {got} messages, expected {n}")
    return n / t_acc, n / (t_end - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--clients", type=int, default=10, help="parallel submission connections")
    ap.add_argument("--log-level", default="info", help="Postern's log_level (default: its shipped default, info)")
    ap.add_argument("--outbound", default="", help="more [outbound] keys for Postern, e.g. 'dkim = true\\n'")
    ap.add_argument("--client", choices=("c", "python"), default="c",
                    help="the load generator: bench/smtp_raw.c (pipelined, default) or smtplib processes")
    ap.add_argument("--bin", default=None, help="Postern binaries (default: build and use the release build)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the private Postfix needs it")
    for tool in ("smtp-sink", "postfix"):
        if not shutil.which(tool):
            sys.exit(f"{tool} (Debian postfix) is not installed")
    bindir = release_bin(a.bin)

    workdir = tempfile.mkdtemp(prefix="outbound-bench-")
    sink = Sink(workdir)
    pt = pf = trivial = None
    res = {"postern": ([], []), "postfix": ([], [])}
    ceiling = []
    try:
        raw = RawClient(workdir)
        t_port, trivial = raw.serve()
        pt = OutboundPostern(bindir, sink.port, a.log_level, a.outbound.replace("\\n", "\n"))
        pf = RelayPostfix(bindir, sink.port)
        systems = {"postern": (pt.port, True), "postfix": (pf.port, False)}
        for name, (port, login) in systems.items():
            one_run(name, port, login, sink, 100, min(4, a.clients), a.size, "warm", raw if a.client == "c" else None)
        for r in range(a.runs):
            t0 = time.perf_counter()
            ceiling.append(a.messages / (send_all(raw if a.client == "c" else None,
                                                  jobs_for("ceiling", t_port, True, a.messages, a.clients, a.size, r)) - t0))
            print(f"  run {r + 1}: client ceiling (trivial in-memory server) {ceiling[-1]:7.0f} msg/s", flush=True)
            for name, (port, login) in systems.items():
                acc, e2e = one_run(name, port, login, sink, a.messages, a.clients, a.size, r,
                                   raw if a.client == "c" else None)
                res[name][0].append(acc)
                res[name][1].append(e2e)
                print(f"  run {r + 1}: {name:8} accepted {acc:7.0f} msg/s, at the sink {e2e:7.0f} msg/s", flush=True)
        left = pt.queue_size()
        with open(pt.log.name, errors="replace") as f:
            deferred = f.read().count("status=deferred")
    finally:
        if trivial is not None:
            trivial.terminate()
            trivial.wait(10)
        if pt is not None:
            pt.stop()
        if pf is not None:
            pf.stop()
        sink.stop()
    (po, pe), (fo, fe) = ([statistics.median(x) for x in res[k]] for k in ("postern", "postfix"))
    print(f"\nOutbound end to end (submission -> relay host smtp-sink), {a.size}-byte messages, {a.messages} per run, "
          f"{a.clients} client connections ({'bench/smtp_raw.c, pipelined' if a.client == 'c' else 'smtplib'}), median of {a.runs}, fsync on (both); Postern log_level {a.log_level}"
          f"{', [outbound] ' + a.outbound if a.outbound else ''}; {os.cpu_count()} CPUs")
    print("| system | end to end msg/s | accepted msg/s |\n|---|---|---|")
    print(f"| Postern | {pe:.0f} | {po:.0f} |\n| Postfix | {fe:.0f} | {fo:.0f} |")
    print(f"client ceiling (trivial in-memory server): {statistics.median(ceiling):.0f} msg/s")
    print(f"ratio (end to end): {pe / fe:.2f}x  (goal >= 2x); accepted: {po / fo:.2f}x")
    print("runs (end to end, msg/s): postern " + ", ".join(f"{x:.0f}" for x in res["postern"][1])
          + " | postfix " + ", ".join(f"{x:.0f}" for x in res["postfix"][1]))
    print(f"Postern deferrals over all runs: {deferred} (each stalls its connection up to command_timeout, "
          f"then waits retry_initial)")
    if left:
        print(f"warning: {left} rows still in Postern's queue at the end")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
