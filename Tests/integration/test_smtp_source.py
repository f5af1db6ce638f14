# Postfix's own load generator, smtp-source, in LMTP mode (-L) against both listeners.
import os
import shutil
import subprocess

import pytest

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"

pytestmark = pytest.mark.skipif(not os.path.exists(SMTP_SOURCE),
                                reason="postfix's smtp-source is not installed (scripts/install-deps.sh)")


def smtp_source(*args, timeout=180):
    r = subprocess.run([SMTP_SOURCE, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"smtp-source {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}"
    return r


def test_parallel_sessions_unix_socket(postern):
    postern.add_user("source@example.test")
    smtp_source("-L", "-s", "4", "-m", "40", "-c", "-f", "sender@example.org", "-t", "source@example.test",
                f"unix:{postern.lmtp_socket}")
    assert postern.inbox_count("source@example.test") == 40


def test_many_messages_per_connection_tcp(postern):
    # -d: all messages of a session over one connection; 5 KB bodies.
    postern.add_user("persist@example.test")
    smtp_source("-L", "-d", "-s", "3", "-m", "30", "-l", "5000", "-f", "sender@example.org",
                "-t", "persist@example.test", f"127.0.0.1:{postern.lmtp_port}")
    assert postern.inbox_count("persist@example.test") == 30


def test_multiple_recipients_per_transaction(postern):
    # -r 3 sends RCPT TO:<3rcpt@...>, <2rcpt@...>, <rcpt@...> in each transaction.
    for u in ("rcpt", "2rcpt", "3rcpt"):
        postern.add_user(f"{u}@example.test")
    smtp_source("-L", "-s", "2", "-m", "10", "-r", "3", "-f", "sender@example.org", "-t", "rcpt@example.test",
                f"unix:{postern.lmtp_socket}")
    for u in ("rcpt", "2rcpt", "3rcpt"):
        assert postern.inbox_count(f"{u}@example.test") == 10, u
    # Each of the 10 bodies is one transaction: every user has the same 10 messages.
    bodies = [sorted(postern.export(f"{u}@example.test")) for u in ("rcpt", "2rcpt", "3rcpt")]
    assert len(bodies[0]) == 10
    assert bodies[0] == bodies[1] == bodies[2]


def test_two_lmtpd_processes_share_the_listeners_under_load(make_postern):
    # DESIGN §1: N processes per service all accept on the shared listeners. None may die.
    p = make_postern("procs2", lmtp_extra="processes = 2\n")
    p.add_user("shared@example.test")
    before = {r["INSTANCE"]: (r["PID"], r["RESTARTS"]) for r in p.status() if r["SERVICE"] == "lmtp"}
    assert len(before) == 2
    runs = [
        subprocess.run([SMTP_SOURCE, "-L", "-s", "8", "-m", "80", "-f", "sender@example.org",
                        "-t", "shared@example.test", f"unix:{p.lmtp_socket}"], capture_output=True, text=True, timeout=180),
        subprocess.run([SMTP_SOURCE, "-L", "-s", "4", "-m", "40", "-f", "sender@example.org",
                        "-t", "shared@example.test", f"127.0.0.1:{p.lmtp_port}"], capture_output=True, text=True, timeout=180),
    ]
    after = {r["INSTANCE"]: (r["PID"], r["RESTARTS"]) for r in p.status() if r["SERVICE"] == "lmtp"}
    assert after == before, f"an lmtpd process died under load: before {before}, after {after}"
    for r in runs:
        assert r.returncode == 0, f"{' '.join(r.args)}: {r.stderr[-1000:]}"
    assert p.inbox_count("shared@example.test") == 120
