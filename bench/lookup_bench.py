#!/usr/bin/env python3
"""lookupd benchmark: lookups per second over Postfix's tcp_table(5) and socketmap_table(5).

Starts its own Postern instance from the release build (`swift build -c release`, built
here if lookupd is missing; --bin to use other binaries) with a domain, 50 users, aliases
and a catch-all domain, and asks the `recipients` map (the one Postfix asks at every RCPT)
a fixed mix of keys: users, +detail, aliases, catch-all, unknown users, unknown domains.

Clients are Python processes (multiprocessing), one connection each. By default each does
sequential request/response, which is how Postfix's tcp and socketmap clients use a
connection. --pipeline N sends N requests per write instead. Every reply is checked against
the expected answer, and a run with a wrong answer fails. A run lasts --duration seconds.
The figure is the median of --runs runs. The clients share the machine with lookupd and the
store, so with few CPUs the numbers include the clients' own cost.

    python3 bench/lookup_bench.py [--runs 3] [--duration 5] [--conns 1,16] [--pipeline 1]
"""
import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXES = ("master", "store", "lmtpd", "lookupd", "postern")
MAPS = ("recipients", "aliases", "domains", "senders")
USERS = 50

# (key, found?) for the recipients map
KEYS = [(f"user{i}@example.test", True) for i in (1, 7, 23, 49)] + [
    ("user3+news@example.test", True),
    ("sales@example.test", True),            # alias with two targets
    ("anyone@catch.test", True),             # catch-all domain
    ("nobody@example.test", False),
    ("user3x@example.test", False),
    ("someone@elsewhere.test", False),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bin_dir(arg):
    if arg:
        return arg
    path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    if not all(os.access(os.path.join(path, e), os.X_OK) for e in EXES):
        print("building the release binaries (swift build -c release; takes a few minutes) ...", file=sys.stderr)
        subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True)
    return path


class Postern:
    def __init__(self, bindir):
        if os.geteuid() == 0:
            subprocess.run(["bash", os.path.join(ROOT, "scripts", "ensure-users.sh")], check=True)
        self.bin = bindir
        self.dir = tempfile.mkdtemp(prefix="postern-lookup-bench-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "postern.toml")
        self.ports = {m: free_port() for m in ("socketmap",) + MAPS}
        with open(self.conf, "w") as f:
            f.write(f'hostname = "bench.example.test"\ndata_dir = "{self.dir}/data"\nrun_dir = "{self.dir}/run"\n'
                    'log_level = "warning"\n'
                    '[lmtp]\nlisten = ["unix:lmtp"]\n'
                    f'[lookup]\nsocketmap = ["127.0.0.1:{self.ports["socketmap"]}"]\n'
                    "[lookup.tcp_table]\n"
                    + "".join(f'{m} = "127.0.0.1:{self.ports[m]}"\n' for m in MAPS))
        self.log = open(os.path.join(self.dir, "master.log"), "w")
        self.proc = subprocess.Popen([os.path.join(bindir, "master"), "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.setup()
        except BaseException:
            self.stop()
            raise

    def cli(self, *args, input=None):
        return subprocess.run([os.path.join(self.bin, "postern"), *args, "-c", self.conf], input=input,
                              check=True, capture_output=True, text=True).stdout

    def setup(self):
        for _ in range(300):
            r = subprocess.run([os.path.join(self.bin, "postern"), "status", "-c", self.conf],
                               capture_output=True, text=True)
            if r.returncode == 0 and "lookup" in r.stdout and "\trunning\t" in r.stdout.split("lookup", 1)[1]:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"master exited; see {self.log.name}")
            time.sleep(0.1)
        else:
            raise RuntimeError(f"postern did not start; see {self.log.name}")
        self.cli("domain", "add", "example.test")
        self.cli("domain", "add", "catch.test")
        for i in range(1, USERS + 1):
            self.cli("user", "add", f"user{i}@example.test", "--password-stdin", input="pass\n")
        self.cli("alias", "add", "sales@example.test", "user1@example.test")
        self.cli("alias", "add", "sales@example.test", "user2@example.test")
        self.cli("alias", "add", "@catch.test", "user1@example.test")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def ns(b):
    return str(len(b)).encode() + b":" + b + b","


def requests_and_replies(proto):
    reqs, reps = [], []
    for key, found in KEYS:
        k = key.encode()
        if proto == "tcp_table":
            reqs.append(b"get " + k + b"\n")     # no byte of these keys needs %-encoding
            reps.append(b"200 OK\n" if found else b"500 not found\n")
        else:
            reqs.append(ns(b"recipients " + k))
            reps.append(ns(b"OK OK") if found else ns(b"NOTFOUND "))
    return reqs, reps


def recv_exact(sock, n, buf):
    view = memoryview(buf)[:n]
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError("lookupd closed the connection")
        got += r
    return bytes(view)


def client(proto, port, pipeline, duration, ready, go, results):
    reqs, reps = requests_and_replies(proto)
    # batches of `pipeline` requests, cycling through the key mix
    batches = []
    for i in range(len(reqs)):
        idx = [(i * pipeline + j) % len(reqs) for j in range(pipeline)]
        batches.append((b"".join(reqs[j] for j in idx), b"".join(reps[j] for j in idx)))
    buf = bytearray(max(len(r) for _, r in batches))
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for req, rep in batches:                      # warm-up, and a check of every answer
        s.sendall(req)
        got = recv_exact(s, len(rep), buf)
        if got != rep:
            results.put(("error", f"{proto}: expected {rep!r}, got {got!r}"))
            return
    ready.put(1)
    go.wait()
    n, i, wrong = 0, 0, 0
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline:
        req, rep = batches[i]
        s.sendall(req)
        if recv_exact(s, len(rep), buf) != rep:
            wrong += 1
        n += pipeline
        i = (i + 1) % len(batches)
    s.close()
    results.put(("ok", n, wrong))


def run_once(proto, port, conns, pipeline, duration):
    ctx = mp.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=client, args=(proto, port, pipeline, duration, ready, go, results)) for _ in range(conns)]
    for p in procs:
        p.start()
    for _ in range(conns):
        ready.get(timeout=60)
    t0 = time.perf_counter()
    go.set()
    total, errors = 0, []
    for _ in range(conns):
        r = results.get(timeout=duration + 60)
        if r[0] == "error":
            errors.append(r[1])
        else:
            total += r[1]
            if r[2]:
                errors.append(f"{r[2]} wrong answers")
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(10)
    if errors:
        raise RuntimeError("; ".join(errors))
    return total / max(elapsed, duration)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=None, help="Postern binaries (default: the release build)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    ap.add_argument("--conns", default="1,16")
    ap.add_argument("--pipeline", type=int, default=1, help="requests per write (1: sequential)")
    a = ap.parse_args()
    bindir = bin_dir(a.bin)
    conns = [int(c) for c in a.conns.split(",")]
    p = Postern(bindir)
    rows = []
    try:
        for proto, port in (("tcp_table", p.ports["recipients"]), ("socketmap", p.ports["socketmap"])):
            for c in conns:
                runs = [run_once(proto, port, c, a.pipeline, a.duration) for _ in range(a.runs)]
                rows.append((proto, c, statistics.median(runs), runs))
                print(f"  {proto} x{c}: " + ", ".join(f"{r:,.0f}" for r in runs), file=sys.stderr)
    finally:
        p.stop()
    mode = "sequential request/response" if a.pipeline == 1 else f"pipelined, {a.pipeline} requests per write"
    print(f"\nlookupd, recipients map, {mode} per connection; {a.runs} runs x {a.duration:g} s, median")
    print(f"binaries: {bindir}; {os.cpu_count()} CPUs shared by lookupd, the store and the clients\n")
    print(f"{'protocol':<10} {'conns':>5} {'lookups/s':>11} {'mean latency':>13}   runs")
    for proto, c, med, runs in rows:
        lat = c * a.pipeline / med * 1e3 if a.pipeline == 1 else float("nan")
        lat_s = f"{lat:.3f} ms" if a.pipeline == 1 else "-"
        print(f"{proto:<10} {c:>5} {med:>11,.0f} {lat_s:>13}   " + " / ".join(f"{r:,.0f}" for r in runs))


if __name__ == "__main__":
    main()
