"""Shared IMAP test support: an instance with imapd on loopback ports, a raw line client, and
which imapd process serves a connection (found through /proc, root only)."""
import os
import re
import socket
import ssl

from conftest import free_port, running_instance

DEFAULT_USERS = ["alice@example.test", "bob@example.test"]


def imap_section(ports, extra=""):
    return ("\n[imap]\n"
            f'listen = ["imap@127.0.0.1:{ports["imap"]}", "imaps@127.0.0.1:{ports["imaps"]}"]\n'
            + extra)


def imap_instance(name, extra="", users=()):
    ports = {"imap": free_port(), "imaps": free_port()}
    cm = running_instance(name, users=users, lmtp_extra=imap_section(ports, extra))
    return cm, ports


def tls_context(p):
    ctx = ssl.create_default_context(cafile=os.path.join(p.root, "tls", "cert.pem"))
    ctx.check_hostname = False
    return ctx


class RawIMAP:
    """A line client: `cmd()` sends a tagged command and returns every line up to the tagged
    response; `read_until()` reads untagged lines (IDLE)."""

    def __init__(self, host, port, tls=None, timeout=10, source=None):
        s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0) if source else None)
        self.sock = tls.wrap_socket(s) if tls else s
        self.f = self.sock.makefile("rb")
        self.n = 0
        self.greeting = self.line()

    def line(self):
        l = self.f.readline()
        if not l:
            raise EOFError("connection closed")
        return l

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, text, tag=None):
        self.n += 1
        tag = tag or f"t{self.n}"
        self.send(f"{tag} {text}\r\n")
        return self.until_tag(tag)

    def until_tag(self, tag):
        out = []
        while True:
            l = self.line()
            out.append(l)
            m = re.match(rb"\{(\d+)\}\r\n$", l[-12:]) if l.endswith(b"}\r\n") else None
            lit = re.search(rb"~?\{(\d+)\}\r\n$", l)
            if lit:
                out.append(self.f.read(int(lit.group(1))))
                continue
            if l.startswith(tag.encode() + b" "):
                return out

    def read_until(self, pattern, limit=100):
        """Reads lines until one matches `pattern` (bytes regex); returns it."""
        for _ in range(limit):
            l = self.line()
            if re.search(pattern, l):
                return l
        raise AssertionError(f"no line matching {pattern!r}")

    def login(self, user, password):
        r = self.cmd(f'LOGIN "{user}" "{password}"')
        assert r[-1].split()[1] == b"OK", r
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:["):
                out.add(t[8:-1])
    except FileNotFoundError:
        pass
    return out


def serving_pid(client_sock, server_port, pids):
    """The pid among `pids` whose socket is the server end of `client_sock` (root only)."""
    local_port = client_sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            if lport == server_port and rport == local_port:
                inode = parts[9]
    assert inode, "server socket not found in /proc/net/tcp"
    for pid in pids:
        if inode in _socket_inodes(pid):
            return pid
    return None
