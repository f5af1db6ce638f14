"""Service behaviour a sysadmin relies on: sd_notify, unix socket owner/mode, the command
timeout and the per-process connection limit (each answered with the right reply)."""
import os, socket, stat, time

import pytest

from conftest import Postern, populate, wait_for, _teardown


def test_sd_notify_ready_status_and_stopping():
    path = os.path.join("/tmp", f"postern-notify-{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    os.environ["NOTIFY_SOCKET"] = path
    p = Postern(name="notify")
    try:
        p.start()
        got = []
        def seen(word):
            while not any(word in m for m in got):
                got.append(sock.recv(4096).decode())
            return True
        assert seen("READY=1")
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in got)
        assert p.stop() == 0
        assert seen("STOPPING=1")
    finally:
        del os.environ["NOTIFY_SOCKET"]
        sock.close(); os.unlink(path)
        _teardown(p)


def test_unix_socket_owner_group_and_mode(make_postern):
    p = make_postern(name="sockmode", lmtp_extra='socket_mode = "0660"\nsocket_owner = "postern"\nsocket_group = "postern"')
    st = os.stat(p.lmtp_socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    if os.geteuid() == 0:
        import pwd, grp
        assert pwd.getpwuid(st.st_uid).pw_name == "postern"
        assert grp.getgrgid(st.st_gid).gr_name == "postern"
    ctl = os.stat(p.control_socket)
    assert stat.S_IMODE(ctl.st_mode) == 0o600, "the control socket is root-only"


def test_idle_client_gets_421_after_the_command_timeout(make_postern):
    p = make_postern(name="timeout", lmtp_extra="command_timeout = 1")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(p.lmtp_socket)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    t0 = time.monotonic()
    line = f.readline()
    assert line.startswith(b"421 4.4.2"), line
    assert f.readline() == b"", "the server closes after 421"
    assert time.monotonic() - t0 < 8
    s.close()


def test_connections_over_the_limit_get_421_and_the_rest_work(make_postern):
    p = make_postern(name="connlimit", lmtp_extra="max_connections = 2")
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", p.lmtp_port), timeout=10)
        assert s.makefile("rb").readline().startswith(b"220 ")
        held.append(s)
    extra = socket.create_connection(("127.0.0.1", p.lmtp_port), timeout=10)
    assert extra.makefile("rb").readline().startswith(b"421 4.7.0")
    extra.close()
    for s in held:
        s.close()
    # the slots free up again
    def works():
        try:
            return p.deliver(["alice@example.test"], b"Subject: after\r\n\r\nok\r\n") is not None
        except Exception:
            return False
    wait_for(works, 10, what="delivery after the limit")
