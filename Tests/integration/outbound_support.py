# The world the outbound agent sends into (issue 13), built from real programs on loopback:
# Debian's unbound serving the test zones, Postfix's smtp-sink as receiving MTAs (each on its own
# 127.0.0.x address, capturing with -d), a socket that accepts and never answers, and a private
# receiving Postfix (self-signed STARTTLS, one refused recipient pattern, virtual(8) Maildir).
# All listen on one port, `[outbound] smtp_port`, free on every address (never a system MTA's 25).
import email
import email.policy
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from conftest import PrivatePostfix, wait_for

UNBOUND = "/usr/sbin/unbound"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"

# Receiving hosts. 127/8 is routed to lo on Linux, so each address is a host of its own.
MAIN = "127.0.0.2"          # smtp-sink: single MX, and the A fallback's target
REFUSED = "127.0.0.3"       # nothing listens: connection refused
SECOND = "127.0.0.4"        # smtp-sink: the secondary MX
SILENT = "127.0.0.5"        # accepts, never says a word
POSTFIX = "127.0.0.6"       # the receiving Postfix
SEVENBIT = "127.0.0.7"      # smtp-sink -8: no 8BITMIME
FLAKY = "127.0.0.8"         # smtp-sink, restarted with and without -r RCPT (450)
RELAY = "127.0.0.9"         # smtp-sink: the relay host of the relayhost-mode instance
ADMIN = "127.0.0.10"        # smtp-sink for the queue CLI test, with and without -r RCPT
SLOW = "127.0.0.11"         # smtp-sink -w: slow DATA replies, for kill -9 mid-delivery
V6 = "::1"                  # smtp-sink on IPv6 loopback (AAAA only)

ZONE = "o.example"          # not .test: unbound and libunbound answer RFC 6761 names themselves

ZONE_DATA = [
    # one MX
    f"single.{ZONE}. MX 10 mx.single.{ZONE}.", f"mx.single.{ZONE}. A {MAIN}",
    # two preferences, the better one refuses connections
    f"two.{ZONE}. MX 10 mx1.two.{ZONE}.", f"two.{ZONE}. MX 20 mx2.two.{ZONE}.",
    f"mx1.two.{ZONE}. A {REFUSED}", f"mx2.two.{ZONE}. A {SECOND}",
    # no MX: the domain's own address (RFC 5321 §5.1)
    f"nomx.{ZONE}. A {MAIN}",
    # null MX (RFC 7505)
    f"nullmx.{ZONE}. MX 0 .",
    f"silent.{ZONE}. MX 10 mx.silent.{ZONE}.", f"mx.silent.{ZONE}. A {SILENT}",
    f"pf.{ZONE}. MX 10 mx.pf.{ZONE}.", f"mx.pf.{ZONE}. A {POSTFIX}",
    # the same Postfix, under tls_policy = "verify"
    f"verify.{ZONE}. MX 10 mx.pf.{ZONE}.",
    f"seven.{ZONE}. MX 10 mx.seven.{ZONE}.", f"mx.seven.{ZONE}. A {SEVENBIT}",
    f"flaky.{ZONE}. MX 10 mx.flaky.{ZONE}.", f"mx.flaky.{ZONE}. A {FLAKY}",
    f"admin.{ZONE}. MX 10 mx.admin.{ZONE}.", f"mx.admin.{ZONE}. A {ADMIN}",
    f"slow.{ZONE}. MX 10 mx.slow.{ZONE}.", f"mx.slow.{ZONE}. A {SLOW}",
    # IPv6 only
    f"v6.{ZONE}. MX 10 mx.v6.{ZONE}.", f"mx.v6.{ZONE}. AAAA {V6}",
]


def free_port_everywhere(addresses, tries=50):
    """A TCP port nothing listens on at any of `addresses` (checked by binding each)."""
    for _ in range(tries):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        socks = []
        try:
            for a in addresses:
                fam = socket.AF_INET6 if ":" in a else socket.AF_INET
                t = socket.socket(fam, socket.SOCK_STREAM)
                socks.append(t)
                t.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no port free on every test address")


def wait_listening(addr, port, timeout=10, proc=None, what="server"):
    def up():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            return s.connect_ex((addr, port)) == 0
    wait_for(up, timeout, interval=0.05, what=f"{what} on {addr} port {port}")


def _stop(proc):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ---------------------------------------------------------------------------------------------
# DNS

class Unbound:
    """unbound in the foreground on 127.0.0.1:<free port>, serving `ZONE_DATA` (plus `extra`
    local-data lines) from a static local-zone; no recursion anywhere else."""

    def __init__(self, root, extra=()):
        self.dir = os.path.join(root, "unbound")
        os.makedirs(self.dir)
        self.port = free_port_everywhere(["127.0.0.1"])
        data = "".join(f'    local-data: "{r}"\n' for r in list(ZONE_DATA) + list(extra))
        conf = (
            "server:\n"
            "    interface: 127.0.0.1\n"
            f"    port: {self.port}\n"
            "    do-daemonize: no\n"
            '    username: ""\n'
            '    chroot: ""\n'
            f'    directory: "{self.dir}"\n'
            '    pidfile: ""\n'
            '    logfile: ""\n'
            "    use-syslog: no\n"
            "    verbosity: 0\n"
            "    do-ip6: no\n"
            "    access-control: 127.0.0.0/8 allow\n"
            "    module-config: \"iterator\"\n"
            "    num-threads: 1\n"
            f'    local-zone: "{ZONE}." static\n'
            f"{data}"
            "remote-control:\n"
            "    control-enable: no\n")
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.log = open(os.path.join(self.dir, "unbound.log"), "wb")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        wait_listening("127.0.0.1", self.port, proc=self.proc, what="unbound")

    @property
    def address(self):
        """What `[outbound] resolver` takes."""
        return f"127.0.0.1@{self.port}"

    def stop(self):
        _stop(self.proc)
        self.log.close()


# ---------------------------------------------------------------------------------------------
# Receiving MTAs

class Dump:
    """One transaction captured by smtp-sink -d: its envelope and the message (CRLF lines)."""

    def __init__(self, path, raw):
        self.path = path
        head, _, rest = raw.partition(b"\nReceived: ")
        fields = [l.split(b": ", 1) for l in head.split(b"\n") if b": " in l]
        self.client = next(v for k, v in fields if k == b"X-Client-Addr").decode()
        self.helo = next((v.decode() for k, v in fields if k == b"X-Helo-Args"), None)
        self.mail_args = next(v for k, v in fields if k == b"X-Mail-Args").decode()
        self.rcpt_args = [v.decode() for k, v in fields if k == b"X-Rcpt-Args"]
        self.recipients = [a.split(">", 1)[0].lstrip("<").lower() for a in self.rcpt_args]
        self.sender = self.mail_args.split(">", 1)[0].lstrip("<")
        # smtp-sink's own three-line Received ends the envelope part; the message follows, then
        # the one empty line the dump format adds.
        lines = rest.split(b"\n")
        msg = b"\n".join(lines[3:])
        assert msg.endswith(b"\n\n"), f"incomplete dump {path}"
        self.message = msg[:-1].replace(b"\n", b"\r\n")

    def parsed(self):
        return email.message_from_bytes(self.message, policy=email.policy.default)


class SmtpSink:
    """Postfix's smtp-sink on addr:port capturing every transaction into its own directory
    (`args`: more smtp-sink options, e.g. ["-8"] or ["-r", "RCPT"]). As root it runs as nobody."""

    def __init__(self, root, name, addr, port, args=()):
        self.addr, self.port, self.name = addr, port, name
        self.dir = os.path.join(root, f"sink-{name}")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.proc = None
        self.start(args)

    def start(self, args=()):
        assert self.proc is None or self.proc.poll() is not None
        self.args = list(args)
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.log = open(os.path.join(self.dir, "..", f"sink-{self.name}.log"), "ab")
        self.proc = subprocess.Popen([SMTP_SINK, *user, "-h", f"sink-{self.name}", "-d", os.path.join(self.dir, "m."),
                                      *self.args, f"{host}:{self.port}", "128"],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_listening(self.addr, self.port, proc=self.proc, what=f"smtp-sink {self.name}")
        return self

    def restart(self, args=()):
        self.stop()
        return self.start(args)

    def stop(self):
        _stop(self.proc)
        self.log.close()

    def dumps(self):
        """Every complete transaction so far (a dump being written is left for the next call)."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "m.*"))):
            try:
                with open(path, "rb") as f:
                    raw = f.read()
                out.append(Dump(path, raw))
            except (AssertionError, StopIteration, FileNotFoundError):
                continue
        return out

    def for_rcpt(self, rcpt):
        return [d for d in self.dumps() if rcpt.lower() in d.recipients]

    def wait_rcpt(self, rcpt, timeout=30, count=1):
        """The transactions that carried `rcpt`, once there are at least `count` of them."""
        return wait_for(lambda: (lambda ds: ds if len(ds) >= count else None)(self.for_rcpt(rcpt)), timeout,
                        interval=0.1, what=f"{rcpt} at smtp-sink {self.name}")


class SilentServer:
    """Accepts TCP connections on addr:port and never sends or reads a byte: the greeting
    never comes (RFC 5321 §4.5.3.2.1's 5-minute wait, shortened by the agent's config)."""

    def __init__(self, addr, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.held = []
        self.accepted = 0
        self.stopping = False
        import threading
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.held.append(c)
            self.accepted += 1

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()


class ReceivingPostfix(PrivatePostfix):
    """A private Postfix as the MX of pf.o.example and verify.o.example on POSTFIX:port:
    STARTTLS with a self-signed certificate (and the TLS line in its Received field), recipients
    matching ^bad- refused with 550 5.1.1, everything else delivered by virtual(8) into one
    Maildir under the instance directory."""

    DOMAINS = (f"pf.{ZONE}", f"verify.{ZONE}")

    def __init__(self, port):
        import pwd
        super().__init__("mx")
        self.port = port
        pw = pwd.getpwnam("postfix")
        self.maildir_base = os.path.join(self.root, "vmail")
        os.makedirs(self.maildir_base)
        os.chown(self.maildir_base, pw.pw_uid, pw.pw_gid)
        self.key, self.cert = os.path.join(self.etc, "key.pem"), os.path.join(self.etc, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        f"/CN=mx.pf.{ZONE}", "-addext", f"subjectAltName=DNS:mx.pf.{ZONE}",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True)
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            f.write("".join(f"@{d} all/\n" for d in self.DOMAINS))
        with open(os.path.join(self.etc, "rcpt_access"), "w") as f:
            f.write("/^bad-/ 550 5.1.1 no such user here\n")
        self.write_config(
            self.base_main_cf("Tests/integration/outbound_support.py", f"mx.pf.{ZONE}")
            .replace("inet_interfaces = 127.0.0.1\n", "inet_interfaces = all\n")   # master.cf names the address
            + f"virtual_mailbox_domains = {' '.join(self.DOMAINS)}\n"
            f"virtual_mailbox_maps = texthash:{self.etc}/vmailbox\n"
            f"virtual_mailbox_base = {self.maildir_base}\n"
            f"virtual_uid_maps = static:{pw.pw_uid}\n"
            f"virtual_gid_maps = static:{pw.pw_gid}\n"
            "virtual_transport = virtual\n"
            "mynetworks = 127.0.0.1/32\n"
            f"smtpd_recipient_restrictions = check_recipient_access regexp:{self.etc}/rcpt_access\n"
            "smtpd_tls_security_level = may\n"
            f"smtpd_tls_chain_files = {self.key}, {self.cert}\n"
            "smtpd_tls_received_header = yes\n"
            "smtpd_tls_loglevel = 1\n"
            "message_size_limit = 52428800\n"
            "virtual_mailbox_limit = 0\n",
            self.master_cf(f"{POSTFIX}:{port} inet  n       -       n       -       -       smtpd\n",
                           "virtual   unix  -       n       n       -       -       virtual\n", smtp_client=True))
        self.smtp_port = port

    def start(self):
        r = self.postfix("check")
        assert r.stderr.strip() == "", f"postfix check warns: {r.stderr}"
        self.postfix("start")

        def banner():
            with socket.create_connection((POSTFIX, self.port), timeout=5) as s:
                return s.makefile("rb").readline().startswith(b"220 ")
        wait_for(banner, 20, interval=0.1, what="the receiving Postfix")

    def delivered(self):
        """Every message in the Maildir, as bytes (CRLF lines)."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.maildir_base, "all", "new", "*"))
                           + glob.glob(os.path.join(self.maildir_base, "all", "cur", "*"))):
            with open(path, "rb") as f:
                out.append(f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        return out

    def find(self, needle, timeout=30):
        return wait_for(lambda: [m for m in self.delivered() if needle in m], timeout, interval=0.1,
                        what=f"{needle!r} in the receiving Postfix's Maildir")


# ---------------------------------------------------------------------------------------------
# The instance's [outbound] table

def outbound_section(resolver, smtp_port, **keys):
    """`[outbound]` for the test instance: the test resolver and port, short timeouts and
    retries (tests call `postern queue flush` rather than wait), then `keys` (Python values)
    and a `[outbound.tls_policy_domains]` table from `tls_policy_domains`."""
    conf = {
        "helo_name": "out.postern.test",
        "resolver": resolver,
        "smtp_port": smtp_port,
        "connect_timeout": 3,
        "command_timeout": 3,
        "retry_initial": 2,
        "retry_max": 4,
        "lease": 10,
    }
    domains = keys.pop("tls_policy_domains", {})
    conf.update(keys)

    def toml(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = "[outbound]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in conf.items())
    if domains:
        text += "\n[outbound.tls_policy_domains]\n" + "".join(f'"{d}" = {toml(p)}\n' for d, p in domains.items())
    return text


def cleanup_dir(root):
    if not os.environ.get("POSTERN_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


def make_root(name):
    root = tempfile.mkdtemp(prefix=f"postern-it-{name}-")
    os.chmod(root, 0o755)
    return root

