# The RPC layer, spoken by hand over the master's control socket (DESIGN §2):
#   header: u32 payload length, u16 type, u16 flags, u32 request id (big-endian); strings are
#   u32 length + UTF-8. attach(role) hands the connection to the store with that role.
# A request outside the role's allow-list is refused with error code 4 (denied); garbage,
# oversized and truncated frames close that one connection and the store keeps serving.
import os
import socket
import struct
import subprocess
import uuid

from conftest import header_value

HELLO, HELLO_OK, ERROR, OK = 1, 2, 3, 4
LOOKUP_RECIPIENT, RECIPIENT = 10, 11
DOMAIN_ADD, DOMAIN_LIST, NAMES = 50, 52, 53
ATTACH = 112
DENIED = 4


def s(text):
    b = text.encode()
    return struct.pack(">I", len(b)) + b


def frame(type_, payload=b"", rid=1, flags=0):
    return struct.pack(">IHHI", len(payload), type_, flags, rid) + payload


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_frame(sock):
    length, type_, flags, rid = struct.unpack(">IHHI", read_exact(sock, 12))
    assert length < 1 << 20
    return type_, flags, rid, read_exact(sock, length)


def parse_string(payload, off=0):
    (n,) = struct.unpack_from(">I", payload, off)
    return payload[off + 4:off + 4 + n].decode(), off + 4 + n


def hello(sock, rid=1):
    sock.sendall(frame(HELLO, struct.pack(">HH", 1, 0) + s("pytest"), rid))
    type_, _, got_rid, payload = read_frame(sock)
    assert (type_, got_rid) == (HELLO_OK, rid), (type_, got_rid, payload)
    major, minor = struct.unpack_from(">HH", payload)
    role, _ = parse_string(payload, 4)
    assert major == 1
    return role


def attached(p, role="lmtpd"):
    """A connection to the store with `role`, by way of the master's control socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(p.control_socket)
    assert hello(sock) == "control"
    sock.sendall(frame(ATTACH, s(role), rid=2))
    type_, _, rid, payload = read_frame(sock)
    assert (type_, rid) == (OK, 2), (type_, rid, payload)
    return sock


def assert_closed_by_peer(sock):
    """The store must close the connection: EOF (or a reset) within the timeout."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
    except ConnectionResetError:
        return
    except socket.timeout:
        raise AssertionError("the store did not close the connection")


def test_control_socket_is_root_only(postern):
    st = os.stat(postern.control_socket)
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.geteuid()
    if os.geteuid() == 0:
        # The worker user can neither connect nor, therefore, attach itself to the store.
        code = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
                "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    sys.exit(13)\nsys.exit(0)")
        r = subprocess.run(["python3", "-c", code, postern.control_socket], user="postern", group="postern",
                           extra_groups=[], capture_output=True, timeout=30)
        assert r.returncode == 13, (r.returncode, r.stderr)


def test_role_allow_list_is_enforced(postern):
    sock = attached(postern, "lmtpd")
    try:
        assert hello(sock, rid=3) == "lmtpd"         # now talking to the store, with the role it was given
        sock.sendall(frame(DOMAIN_ADD, s("evil.test"), rid=4))
        type_, _, rid, payload = read_frame(sock)
        assert (type_, rid) == (ERROR, 4), (type_, rid, payload)
        (code,) = struct.unpack_from(">H", payload)
        assert code == DENIED, (code, payload)
        # An allowed request still works on the same connection.
        sock.sendall(frame(LOOKUP_RECIPIENT, s("alice@example.test") + struct.pack(">Q", 0), rid=5))   # address, declared size
        type_, _, rid, payload = read_frame(sock)
        assert (type_, rid) == (RECIPIENT, 5) and payload[0] == 0, (type_, rid, payload)
        sock.sendall(frame(DOMAIN_LIST, rid=6))
        type_, _, rid, payload = read_frame(sock)
        assert (type_, rid) == (ERROR, 6) and struct.unpack_from(">H", payload)[0] == DENIED
    finally:
        sock.close()
    assert "evil.test" not in postern.cli("domain", "list").stdout.split()


def test_admin_role_is_allowed(postern):
    sock = attached(postern, "admin")
    try:
        assert hello(sock, rid=3) == "admin"
        sock.sendall(frame(DOMAIN_LIST, rid=7))
        type_, _, rid, payload = read_frame(sock)
        assert (type_, rid) == (NAMES, 7)
        (n,) = struct.unpack_from(">I", payload)
        names, off = [], 4
        for _ in range(n):
            name, off = parse_string(payload, off)
            names.append(name)
        assert "example.test" in names and "catch.test" in names
    finally:
        sock.close()


def bad_connections():
    yield "garbage", b"\x00\xffGARBAGE\r\n" * 3 + os.urandom(4096), False
    yield "unknown type", frame(0xBEEF, b"\x01\x02\x03\x04", rid=9), False
    yield "bad payload", frame(DOMAIN_LIST, b"trailing bytes", rid=9), False
    yield "oversized header", struct.pack(">IHHI", 0xFFFFFFFF, DOMAIN_LIST, 0, 9) + b"x" * 64, False
    yield "truncated frame", struct.pack(">IHHI", 100, LOOKUP_RECIPIENT, 0, 9) + b"\x00\x00\x00\x05ali", True


def test_malformed_frames_close_only_that_connection(postern):
    store_pid = postern.store_pid()
    for name, data, half_close in bad_connections():
        for greet in (False, True):
            sock = attached(postern, "lmtpd")
            try:
                if greet:
                    assert hello(sock, rid=3) == "lmtpd"
                sock.sendall(data)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
                try:
                    assert_closed_by_peer(sock)
                except AssertionError as e:
                    raise AssertionError(f"{name} (after hello: {greet}): {e}") from None
            finally:
                sock.close()
        assert postern.store_pid() == store_pid, f"the store restarted after {name}"

    # The store kept serving everyone else: CLI, a fresh RPC connection, and LMTP delivery.
    assert postern.store_pid() == store_pid
    assert "example.test" in postern.cli("domain", "list").stdout.split()
    sock = attached(postern, "lmtpd")
    try:
        assert hello(sock, rid=3) == "lmtpd"
    finally:
        sock.close()
    mid = f"<after-garbage.{uuid.uuid4().hex}@test.example.org>"
    body = b"Subject: after garbage\r\nMessage-ID: " + mid.encode() + b"\r\n\r\nstill here\r\n"
    _, data = postern.deliver(["bob@example.test"], body)
    assert [d[0] for d in data] == [250]
    assert any(header_value(m, "Message-ID") == mid for m in postern.export("bob@example.test"))
    assert postern.store_pid() == store_pid
    log = postern.log()
    assert "store died" not in log


def test_malformed_frames_on_the_control_socket(postern):
    master_pid = postern.proc.pid
    for name, data, half_close in bad_connections():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(40)          # the master's control threads time out idle clients at 30 s
        sock.connect(postern.control_socket)
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            try:
                assert_closed_by_peer(sock)
            except AssertionError as e:
                raise AssertionError(f"control socket, {name}: {e}") from None
        finally:
            sock.close()
    assert postern.proc.poll() is None
    assert postern.row("master")["PID"] == str(master_pid)
    assert postern.cli("domain", "list").returncode == 0
