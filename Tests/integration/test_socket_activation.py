# Socket activation end to end (issue 15): the real master under systemd-socket-activate with
# several named sockets serves SMTP, LMTP and IMAP on them, hands them to its workers by the fd
# contract and binds only what was not passed (/proc shows the passed sockets are the ones the
# activator made); a passed socket no listener wants is closed; and under an activator that keeps
# its sockets (activator.py, like systemd), a restart of the master refuses no connection.
import imaplib
import os
import smtplib
import subprocess
import threading
import time

import pytest

from activator import Activator
from conftest import BIN, DEFAULT_PASSWORD, Postern, _teardown, free_port, populate, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/systemd-socket-activate"),
                                reason="systemd-socket-activate (Debian package systemd) is not installed")
MESSAGE = b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: passed socket\r\n\r\nhello\r\n"


def listening_inodes():
    """Inode of every listening TCP socket, by local port (/proc/net/tcp and tcp6, state 0A)."""
    out = {}
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as fh:
            for line in fh.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":
                    out.setdefault(int(cols[1].rsplit(":", 1)[1], 16), set()).add(int(cols[9]))
    return out


def socket_inodes(pid):
    """fd -> socket inode of a process (/proc/PID/fd)."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out[int(fd)] = int(target[8:-1])
    return out


def instance(name, ports):
    smtp = f'[smtp]\nmta = ["127.0.0.1:{ports["smtp"]}"]\nsubmission = ["127.0.0.1:{ports["submission"]}"]\nsmtps = []\n'
    imap = f'[imap]\nlisten = ["imap@127.0.0.1:{ports["imap"]}"]\n'
    return Postern(name=name, smtp_section=smtp, imap_section=imap)


def worker_pid(p, service):
    (pid,) = p.pids(service)
    return pid


def test_master_serves_on_sockets_passed_by_systemd_socket_activate():
    ports = {"smtp": free_port(), "submission": free_port(), "imap": free_port(), "stray": free_port()}
    p = instance("sockact", ports)
    # lmtp, smtp and imap are passed (named as the socket units name them), submission is not
    # (the master binds it), and "pop3" at a port no listener has is passed for nothing.
    passed = [("lmtp", p.lmtp_port), ("smtp", ports["smtp"]), ("imap", ports["imap"]), ("pop3", ports["stray"])]
    cmd = ["systemd-socket-activate"] + [a for _, port in passed for a in ("-l", f"127.0.0.1:{port}")]
    cmd += ["--fdname=" + ":".join(n for n, _ in passed), os.path.join(BIN, "master"), "-c", p.conf]
    log = open(p.log_path, "ab")
    p.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    try:
        # Before any connection the activator holds the sockets at fds 3..6; remember them.
        def activator_sockets():
            s = socket_inodes(p.proc.pid)
            return s if all(3 + i in s for i in range(len(passed))) else None
        before = wait_for(activator_sockets, 10, what="the activator's sockets")
        passed_inodes = {port: before[3 + i] for i, (_, port) in enumerate(passed)}
        assert ports["submission"] not in listening_inodes()
        # The first connection makes systemd-socket-activate exec the master (same pid).
        first = smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=60)
        p.wait_ready(60)
        populate(p)

        assert first.ehlo("client.example.org")[0] == 250
        first.quit()
        _, data = p.deliver(["alice@example.test"], MESSAGE, tcp=True)
        assert [c for c, _ in data] == [250]
        m = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=30)
        m.login("alice@example.test", DEFAULT_PASSWORD)
        assert m.select("INBOX") == ("OK", [b"1"])
        m.logout()
        s = smtplib.SMTP("127.0.0.1", ports["submission"], timeout=30)
        assert s.ehlo("client.example.org")[0] == 250
        s.quit()

        master = p.pids("master")[0]
        assert master == p.proc.pid
        listening = listening_inodes()
        held = set(socket_inodes(master).values())
        for port in (p.lmtp_port, ports["smtp"], ports["imap"]):
            # exactly one listener on the port, the activator's socket, and the master holds it
            assert listening[port] == {passed_inodes[port]}, (port, listening.get(port), passed_inodes[port])
            assert passed_inodes[port] in held
        # submission was not passed: the master bound it itself (a socket made after the activator's)
        assert len(listening[ports["submission"]]) == 1
        assert listening[ports["submission"]].isdisjoint(passed_inodes.values())
        # the stray one was closed: nothing listens there any more
        assert ports["stray"] not in listening
        log = p.log()
        assert "socket activation: passed socket closed" in log and "fdname=pop3" in log, log
        adopted = [l for l in log.splitlines() if "listening (socket activation)" in l]
        for port in (p.lmtp_port, ports["smtp"], ports["imap"]):
            assert any(f"address=127.0.0.1:{port} " in l for l in adopted), adopted
        assert not any(f"address=127.0.0.1:{ports['submission']} " in l for l in adopted)
        # The workers got them by the fd contract (fd 4 on).
        contract = {"lmtp": p.lmtp_port, "smtp": ports["smtp"], "imap": ports["imap"]}
        for service, port in contract.items():
            fds = socket_inodes(worker_pid(p, service))
            assert passed_inodes[port] in {ino for fd, ino in fds.items() if fd >= 4}, (service, fds)
    finally:
        _teardown(p)


def test_restart_under_socket_activation_refuses_no_connection():
    """While a client connects over and over, the master is stopped and started again; the
    activator keeps the listening sockets, so every connection waits in the backlog and is
    greeted by the next master: none is refused."""
    ports = {"smtp": free_port(), "submission": free_port(), "imap": free_port()}
    p = instance("restart", ports)
    act = Activator([("lmtp", ("tcp", "127.0.0.1", p.lmtp_port)), ("smtp", ("tcp", "127.0.0.1", ports["smtp"])),
                     ("imap", ("tcp", "127.0.0.1", ports["imap"]))])
    results, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            try:
                c = smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=60)
                results.append(c.ehlo("loop.example.org")[0])
                c.quit()
            except (OSError, smtplib.SMTPException) as e:
                results.append(repr(e))
            time.sleep(0.02)
    t = threading.Thread(target=client)
    try:
        p.proc = act.start([os.path.join(BIN, "master"), "-c", p.conf], p.log_path)
        p.wait_ready(60)
        populate(p)
        t.start()
        wait_for(lambda: len(results) >= 5, 30, what="the client loop")
        for _ in range(2):
            assert p.stop(timeout=30) == 0
            stopped_at = len(results)
            time.sleep(0.5)                     # connections pile up in the activator's backlog
            p.proc = act.start([os.path.join(BIN, "master"), "-c", p.conf], p.log_path)
            p.wait_ready(60)
            wait_for(lambda: len(results) >= stopped_at + 5, 60, what="connections after the restart")
        stop.set()
        t.join(90)
        failures = [r for r in results if r != 250]
        assert not failures, failures[:5]
        assert len(results) >= 15
        _, data = p.deliver(["alice@example.test"], MESSAGE, tcp=True)
        assert [c for c, _ in data] == [250]
    finally:
        stop.set()
        if t.is_alive():
            t.join(90)
        _teardown(p)
        act.close()
