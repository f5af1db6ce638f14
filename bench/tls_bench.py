#!/usr/bin/env python3
"""TLS benchmark: MailTLS (tls-bench-server) vs `openssl s_server`, same certificate, same cipher, same run.

Measures, per TLS version (1.3 pinned to TLS_AES_128_GCM_SHA256, 1.2 to ECDHE-ECDSA-AES128-GCM-SHA256,
both over X25519 with one ECDSA P-256 certificate):
  - handshakes/s: `openssl s_time -new` (new TCP connection + full handshake + close), --clients of
    them in parallel for --seconds;
  - upload MB/s: --bytes through one connection to the server, ended by close_notify both ways
    (s_server's plain mode reads and discards; tls-bench-server sinks);
  - download MB/s: --bytes from the server on one connection (`s_server -WWW` serving a file of that
    size; tls-bench-server's source mode sends the same count).
Each figure is the median of --runs runs, servers interleaved, and the ratio is postern / openssl
(>1: Postern is faster). Both servers use one thread (s_server is single-threaded); --threads
changes Postern's. Goal from issue 3: ratio >= 0.8 on every line.

Usage: python3 bench/tls_bench.py [--server-bin PATH] [--runs 3] [--seconds 4] [--clients 1]
                                  [--bytes 200000000] [--versions 1.3,1.2]
Without --server-bin the binary is found with `swift build -c release --show-bin-path` in the
repository (build it first: `swift build -c release --product tls-bench-server`).
"""
import argparse, os, re, shutil, signal, socket, ssl, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = {"1.3": ("TLS_AES_128_GCM_SHA256", ssl.TLSVersion.TLSv1_3, "-tls1_3"),
          "1.2": ("ECDHE-ECDSA-AES128-GCM-SHA256", ssl.TLSVersion.TLSv1_2, "-tls1_2")}
CIPHER12, CIPHER13 = SUITES["1.2"][0], SUITES["1.3"][0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def find_binary(arg):
    if arg:
        return arg
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    path = os.path.join(out, "tls-bench-server")
    if not os.path.exists(path):
        sys.exit(f"{path} missing: run `swift build -c release --product tls-bench-server` first")
    return path


class Servers:
    """tls-bench-server plus two s_server instances (sink and -WWW source) on one certificate."""

    def __init__(self, binary, nbytes, threads):
        self.dir = tempfile.mkdtemp(prefix="tls-bench-")
        self.cert, self.key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=bench.test",
                        "-addext", "subjectAltName=DNS:bench.test"], check=True, capture_output=True)
        os.chmod(self.key, 0o600)
        with open(os.path.join(self.dir, "bulk.bin"), "wb") as f:   # sparse: reading it costs no disk I/O
            f.truncate(nbytes)
        self.procs = []
        common = ["-cert", self.cert, "-key", self.key, "-cipher", CIPHER12, "-ciphersuites", CIPHER13]
        self.pids = {}
        self.postern = free_port()
        self.start([binary, "--port", str(self.postern), "--cert", self.cert, "--key", self.key, "--threads", str(threads),
                    "--cipher", CIPHER12, "--ciphersuites", CIPHER13, "--source-bytes", str(nbytes)],
                   self.postern, "tls-bench-server")
        self.sink = free_port()
        self.start(["openssl", "s_server", "-accept", str(self.sink), "-quiet"] + common, self.sink, "s_server")
        self.www = free_port()
        self.start(["openssl", "s_server", "-accept", str(self.www), "-WWW", "-quiet"] + common, self.www, "s_server -WWW")

    def start(self, argv, port, what):
        # stdin stays an open, silent pipe: s_server would otherwise spin on EOF.
        p = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.procs.append(p)
        self.pids[port] = p.pid
        wait_port(port, p, what)

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def handshakes(port, version, seconds, clients):
    """Returns (handshakes, wall seconds). s_time prints whole real seconds only, so the wall
    clock is ours: from the clients' start to the last one's exit."""
    cipher, _, flag = SUITES[version]
    pick = ["-ciphersuites", cipher] if version == "1.3" else ["-cipher", cipher]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds), flag]
                              + pick, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(clients)]
    count = 0
    for p in procs:
        out = p.communicate()[0]
        m = re.search(r"(\d+) connections in [\d.]+ real seconds", out)
        if not m:
            raise RuntimeError(f"s_time: {out.strip()[-300:]}")
        count += int(m.group(1))
    return count, time.perf_counter() - t0


def client_context(version):
    cipher, tls_version, _ = SUITES[version]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = tls_version
    if version == "1.2":
        ctx.set_ciphers(cipher)
    return ctx


def upload(port, version, nbytes):
    s = client_context(version).wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.settimeout(60)
    block = memoryview(b"x" * (1 << 20))
    t0 = time.perf_counter()
    left = nbytes
    while left > 0:
        n = min(left, len(block))
        s.sendall(block[:n])
        left -= n
    try:
        s.unwrap().close()            # our close_notify, then wait for theirs: all data was consumed
    except (ssl.SSLError, OSError):
        s.close()                     # a server that just closes after reading everything
    return nbytes, time.perf_counter() - t0


def download(port, version, nbytes):
    s = client_context(version).wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.settimeout(60)
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    s.sendall(b"GET /bulk.bin HTTP/1.0\r\n\r\n")
    got = 0
    while True:
        try:
            n = s.recv_into(buf)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if n == 0:
            break
        got += n
    dt = time.perf_counter() - t0
    s.close()
    if got < nbytes:
        raise RuntimeError(f"download from {port}: {got} of {nbytes} bytes")
    return nbytes, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server-bin")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--bytes", type=int, default=200_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--versions", default="1.3,1.2")
    a = ap.parse_args()
    binary = find_binary(a.server_bin)
    load = os.getloadavg()[0]
    print(f"TLS benchmark: {os.cpu_count()} cores, load {load:.2f} at start; {ssl.OPENSSL_VERSION};"
          f" median of {a.runs}; postern threads {a.threads}; {a.clients} s_time client(s)")
    srv = Servers(binary, a.bytes, a.threads)
    rows = []
    try:
        for version in a.versions.split(","):
            # rate[kind][server] and cpu[kind][server]: one entry per run
            rate = {k: {"postern": [], "openssl": []} for k in ("hs", "up", "down")}
            cpu = {k: {"postern": [], "openssl": []} for k in ("hs", "up", "down")}
            for _ in range(a.runs):
                for name, hs_port, sink_port, src_port in (("postern", srv.postern, srv.postern, srv.postern),
                                                           ("openssl", srv.sink, srv.sink, srv.www)):
                    for kind, port, fn, arg in (("hs", hs_port, handshakes, (a.seconds, a.clients)),
                                                ("up", sink_port, upload, (a.bytes,)),
                                                ("down", src_port, download, (a.bytes,))):
                        c0 = cpu_seconds(srv.pids[port])
                        units, dt = fn(port, version, *arg)
                        used = cpu_seconds(srv.pids[port]) - c0
                        scale = 1 if kind == "hs" else 1e6          # handshakes, or MB
                        rate[kind][name].append(units / scale / dt)
                        # server CPU per unit: microseconds per handshake, milliseconds per 100 MB
                        cpu[kind][name].append(used / units * (1e6 if kind == "hs" else 1e3 * 1e8))
            cipher = SUITES[version][0]
            mb = a.bytes // 1_000_000
            for key, label, cpu_label in (("hs", f"handshakes/s   TLS {version}", "server CPU us/handshake"),
                                          ("up", f"upload MB/s    TLS {version} ({mb} MB)", "server CPU ms/100 MB in"),
                                          ("down", f"download MB/s  TLS {version} ({mb} MB)", "server CPU ms/100 MB out")):
                p, o = statistics.median(rate[key]["postern"]), statistics.median(rate[key]["openssl"])
                cp, co = statistics.median(cpu[key]["postern"]), statistics.median(cpu[key]["openssl"])
                rows.append((label, cipher, p, o, p / o, rate[key], cpu_label, cp, co))
    finally:
        srv.stop()
    print(f"{'measure':34} {'cipher':30} {'postern':>10} {'s_server':>10} {'ratio':>6}   "
          f"{'(server CPU per unit)':26} {'postern':>8} {'s_server':>8} {'ratio':>6}")
    for label, cipher, p, o, r, _, cpu_label, cp, co in rows:
        flag = "" if r >= 0.8 else " <0.8"
        cr = co / cp if cp > 0 else float("inf")
        print(f"{label:34} {cipher:30} {p:10.1f} {o:10.1f} {r:6.2f}{flag:5} {cpu_label:26} {cp:8.0f} {co:8.0f} {cr:6.2f}")
    print("ratio: postern/s_server throughput; CPU ratio: s_server/postern CPU per unit (>1: Postern uses less)")
    print(f"load {os.getloadavg()[0]:.2f} at end (other work on this machine skews both columns, not always equally)")
    for label, _, _, _, _, raw, *_ in rows:
        print(f"  runs {label}: postern {['%.1f' % x for x in raw['postern']]} openssl {['%.1f' % x for x in raw['openssl']]}")
    return 0 if all(row[4] >= 0.8 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
