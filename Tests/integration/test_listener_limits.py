"""Connection limits per listener role and stress mode (issue 9 point 4), on smtpd.

- A flood of idle connections on the mta port (from several loopback addresses, each within
  max_connections_per_client) fills mta_max_connections; the next mta connection gets 421
  4.7.0, and submission still answers 220 at once: one role cannot lock another out.
- Stress mode (Postfix smtpd_timeout = ${stress?{10}:{300}}): once a role holds
  stress_threshold of its cap, its sessions, those already open included, time out after
  stress_command_timeout instead of command_timeout; the log says when stress begins and ends;
  the other role keeps its usual timeout.
"""
import itertools
import smtplib
import socket
import time

import pytest

from conftest import free_port, wait_for

PER_CLIENT = 5
_sources = itertools.count(2)


def sources(n):
    """`n` loopback addresses no other test here uses (per-client limits count by address)."""
    return [f"127.0.9.{next(_sources)}" for _ in range(n)]


def smtp_section(ports, **keys):
    return (f'[smtp]\nmta = ["127.0.0.1:{ports["mta"]}"]\nsubmission = ["127.0.0.1:{ports["submission"]}"]\n'
            "smtps = []\n" + f"max_connections_per_client = {PER_CLIENT}\n"
            + "".join(f"{k} = {v}\n" for k, v in keys.items()))


class Idle:
    """A connection that reads the greeting and then says nothing."""

    def __init__(self, port, src="127.0.0.1", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
        self.f = self.sock.makefile("rb")
        self.greeting = self.f.readline()

    def read_line(self):
        return self.f.readline()

    def close(self):
        self.f.close()
        self.sock.close()


def flood(port, count):
    """`count` idle connections, PER_CLIENT per source address; all greeted with 220."""
    conns = []
    srcs = sources((count + PER_CLIENT - 1) // PER_CLIENT)
    for i in range(count):
        c = Idle(port, srcs[i // PER_CLIENT])
        conns.append(c)
        assert c.greeting.startswith(b"220 "), (i, c.greeting)
    return conns


@pytest.fixture
def capped(make_postern):
    ports = {"mta": free_port(), "submission": free_port()}
    # Stress is off in effect: its timeout is the usual one.
    p = make_postern("role-caps", smtp_section=smtp_section(
        ports, max_connections=40, mta_max_connections=20, submission_max_connections=10,
        stress_command_timeout=300))
    p.ports = ports
    return p


def test_mta_flood_leaves_submission_answering(capped):
    conns = flood(capped.ports["mta"], 20)
    try:
        # The mta role is full: one more from a fresh address is refused with 421 4.7.0.
        extra = Idle(capped.ports["mta"], sources(1)[0])
        try:
            assert extra.greeting.startswith(b"421 4.7.0"), extra.greeting
        finally:
            extra.close()
        wait_for(lambda: "mta connection limit 20 reached" in capped.log(), 10, what="the refusal in the log")
        # Submission answers at once, and works.
        c = smtplib.SMTP("127.0.0.1", capped.ports["submission"], timeout=5)
        try:
            assert c.ehlo("client.example.org")[0] == 250
            assert c.noop()[0] == 250
        finally:
            c.quit()
    finally:
        for c in conns:
            c.close()
    # The slots come back once the flood is gone.
    def mta_again():
        c = Idle(capped.ports["mta"], sources(1)[0], timeout=5)
        try:
            return c.greeting.startswith(b"220 ")
        finally:
            c.close()
    wait_for(mta_again, 15, interval=0.2, what="an mta slot after the flood closed")


STRESS_TIMEOUT = 2


@pytest.fixture
def stressed(make_postern):
    ports = {"mta": free_port(), "submission": free_port()}
    p = make_postern("stress", smtp_section=smtp_section(
        ports, mta_max_connections=10, submission_max_connections=10, stress_threshold=0.5,
        stress_command_timeout=STRESS_TIMEOUT, command_timeout=300))
    p.ports = ports
    return p


def test_stress_shortens_the_idle_timeout_of_the_flooded_role(stressed):
    p = stressed
    # One session before stress: it too must get the short timeout once stress begins.
    first = Idle(p.ports["mta"], sources(1)[0], timeout=30)
    assert first.greeting.startswith(b"220 ")
    sub = smtplib.SMTP("127.0.0.1", p.ports["submission"], timeout=30)
    assert sub.ehlo("client.example.org")[0] == 250
    assert "stress:" not in p.log()
    conns = flood(p.ports["mta"], 4)            # 5 of 10: the threshold
    for c in conns:
        c.sock.settimeout(30)
    try:
        wait_for(lambda: "stress: mta has 5 of 10 connections" in p.log(), 10, what="stress to begin in the log")
        # Every mta session, the earlier one included, is closed after the short timeout
        # (command_timeout is 300 s: the test would not see it).
        for c in [first] + conns:
            assert c.read_line().startswith(b"421 4.4.2"), "idle mta session closed with 421 4.4.2"
        assert f"timeout after {STRESS_TIMEOUT}s waiting for a command" in p.log()
        wait_for(lambda: "stress ended: mta" in p.log(), 10, what="stress to end in the log")
        # The submission session was not under stress: it still answers after the short timeout.
        time.sleep(STRESS_TIMEOUT + 1)
        assert sub.noop()[0] == 250
    finally:
        for c in [first] + conns:
            c.close()
        sub.quit()
    # A new mta session after stress has the usual timeout again.
    later = Idle(p.ports["mta"], sources(1)[0], timeout=STRESS_TIMEOUT + 2)
    try:
        assert later.greeting.startswith(b"220 ")
        with pytest.raises(socket.timeout):
            later.read_line()
    finally:
        later.close()
