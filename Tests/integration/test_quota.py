"""QUOTA (RFC 9208, issue 11) in the daemon set: limits set with `postern user quota`; an
over-quota recipient gets 552 5.2.2 (452 4.2.2 under [quota] full_tempfail) from smtpd's mta
port (at RCPT) and from lmtpd (at RCPT when full, per recipient after DATA when the message
would cross the limit) while the other recipient of the same transaction is delivered;
imaplib's GETQUOTAROOT/GETQUOTA figures equal the CLI's; APPEND over quota is NO [OVERQUOTA];
and after kill -9 of the store during a burst the usage counters equal COUNT/SUM over the rows."""
import imaplib
import os
import re
import signal
import smtplib
import time

import pytest

from conftest import DEFAULT_PASSWORD, free_port, lmtp_transaction, running_instance, wait_for
from test_crash import BurstClient, PER_THREAD, THREADS, wait_store_serving

USERS = ["full@example.test", "tight@example.test"]


def instance(name, tempfail):
    ports = {"mta": free_port(), "imap": free_port(), "imaps": free_port()}
    smtp = f'[smtp]\nmta = ["127.0.0.1:{ports["mta"]}"]\nsubmission = []\nsmtps = []\n'
    imap = f'[imap]\nlisten = ["imap@127.0.0.1:{ports["imap"]}", "imaps@127.0.0.1:{ports["imaps"]}"]\n'
    top = f"[quota]\nfull_tempfail = {'true' if tempfail else 'false'}\n"
    return running_instance(name, users=USERS, smtp_section=smtp, imap_section=imap, top_extra=top), ports


def quota(p, user, *args):
    """`postern user quota` → {"bytes", "messages", "storage_limit", "message_limit"} (None: no limit)."""
    out = p.cli("user", "quota", user, *args).stdout
    m = re.search(r"storage used (\d+) bytes \(\d+ KiB\), limit (none|(\d+) bytes)", out)
    n = re.search(r"messages used (\d+), limit (none|\d+)", out)
    assert m and n, out
    return {"bytes": int(m.group(1)), "messages": int(n.group(1)),
            "storage_limit": int(m.group(3)) if m.group(3) else None,
            "message_limit": None if n.group(2) == "none" else int(n.group(2))}


def body(tag, size):
    return (f"From: s@remote.example\r\nSubject: {tag}\r\nMessage-ID: <{tag}@remote.example>\r\n\r\n"
            + "y" * size + "\r\n").encode()


def setup_limits(p):
    """full: no room left (one message of one allowed); tight: 1 KiB of storage, nearly empty."""
    p.cli("user", "quota", "full@example.test", "--messages", "1")
    rcpt, data = p.deliver(["full@example.test"], body("fill", 10))
    assert [d[0] for d in data] == [250]
    p.cli("user", "quota", "tight@example.test", "--storage", "1K")


@pytest.fixture(scope="module", params=[False, True], ids=["permanent", "tempfail"])
def quota_instance(request):
    cm, ports = instance("quota-" + ("temp" if request.param else "perm"), request.param)
    with cm as p:
        p.ports = ports
        p.full_reply = (452, b"4.2.2") if request.param else (552, b"5.2.2")
        wait_for(lambda: "smtpd ready" in p.log() and "imapd ready" in p.log(), 30, what="smtpd and imapd ready")
        setup_limits(p)
        yield p


def expect_full(reply, p):
    code, text = reply
    assert (code, text[:5]) == p.full_reply, reply


def test_smtp_mta_refuses_the_full_recipient_and_delivers_the_other(quota_instance):
    p = quota_instance
    before = p.inbox_count("bob@example.test")
    with smtplib.SMTP("127.0.0.1", p.ports["mta"], timeout=30) as s:
        s.ehlo("client.remote.example")
        assert s.mail("s@remote.example")[0] == 250
        expect_full(s.rcpt("full@example.test"), p)
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(body(f"smtp-{p.full_reply[0]}", 100))[0] == 250
        # RFC 1870 SIZE larger than tight's room: refused at RCPT as well.
        assert s.mail("s@remote.example", ["SIZE=3000"])[0] == 250
        expect_full(s.rcpt("tight@example.test"), p)
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(body(f"smtp-size-{p.full_reply[0]}", 2000))[0] == 250
    assert p.inbox_count("bob@example.test") == before + 2
    assert p.inbox_count("tight@example.test") == 0
    assert quota(p, "full@example.test")["messages"] == 1


def test_smtp_one_reply_after_data_is_true_for_every_recipient(quota_instance):
    """No SIZE= declared and room at RCPT, but the message crosses tight's limit: SMTP has one
    reply to DATA (RFC 5321 §4.1.1.4), so nobody gets it — not bob either — and the failure
    the client hears is true for all; a retry (452 under full_tempfail) duplicates nothing."""
    p = quota_instance
    before = p.inbox_count("bob@example.test")
    with smtplib.SMTP("127.0.0.1", p.ports["mta"], timeout=30) as s:
        s.ehlo("client.remote.example")
        assert s.mail("s@remote.example")[0] == 250
        assert s.rcpt("tight@example.test")[0] == 250
        assert s.rcpt("bob@example.test")[0] == 250
        code, text = s.data(body(f"smtp-cross-{p.full_reply[0]}", 2000))
        expect_full((code, text), p)
    assert p.inbox_count("bob@example.test") == before
    assert p.inbox_count("tight@example.test") == 0
    assert quota(p, "tight@example.test")["bytes"] == 0


def test_lmtp_answers_per_recipient(quota_instance):
    p = quota_instance
    c = p.lmtp()
    try:
        # Full already: refused at RCPT.
        _, rcpt, _ = lmtp_transaction(c, "s@remote.example", ["full@example.test", "bob@example.test"], body(f"l1-{p.full_reply[0]}", 10))
        expect_full(rcpt[0], p)
        # Room left, but this message would cross 1 KiB: refused after DATA for tight only.
        before = p.inbox_count("bob@example.test")
        _, rcpt, data = lmtp_transaction(c, "s@remote.example", ["tight@example.test", "bob@example.test"], body(f"l2-{p.full_reply[0]}", 2000))
        assert [r[0] for r in rcpt] == [250, 250]
        expect_full(data[0], p)
        assert data[1][0] == 250
    finally:
        c.quit()
    assert p.inbox_count("bob@example.test") == before + 1
    assert p.inbox_count("tight@example.test") == 0
    assert quota(p, "tight@example.test")["bytes"] == 0


def test_imap_figures_equal_the_cli_and_append_over_quota(quota_instance):
    p = quota_instance
    user = "alice@example.test"
    p.cli("user", "quota", user, "--storage", "2G", "--messages", "100000")
    for i in range(3):
        p.deliver([user], body(f"imap-{i}-{p.full_reply[0]}", 1500 * (i + 1)))
    q = quota(p, user)
    assert q["storage_limit"] == 2 << 30 and q["message_limit"] == 100000 and q["messages"] >= 3
    m = imaplib.IMAP4("127.0.0.1", p.ports["imap"])
    try:
        m.login(user, DEFAULT_PASSWORD)
        caps = m.capability()[1][0].split()
        assert b"QUOTA=RES-STORAGE" in caps and b"QUOTA=RES-MESSAGE" in caps, caps
        typ, data = m.getquotaroot("INBOX")
        assert typ == "OK", data
        roots, quotas = data
        assert roots == [b'INBOX ""'], roots
        expected = f'"" (STORAGE {(q["bytes"] + 1023) // 1024} {2 << 20} MESSAGE {q["messages"]} 100000)'.encode()
        assert quotas == [expected], (quotas, q)
        assert m.getquota('""') == ("OK", [expected])
        # STORAGE limit just above the usage: an APPEND that would cross it stores nothing.
        p.cli("user", "quota", user, "--storage", str(q["bytes"] + 100))
        typ, data = m.append("Drafts", None, None, body(f"append-{p.full_reply[0]}", 500))
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), (typ, data)
        assert quota(p, user)["messages"] == q["messages"]
        # Limits removed: no quota root any more (RFC 9208 QUOTA needs a limit).
        p.cli("user", "quota", user, "--storage", "none", "--messages", "none")
        typ, data = m.getquotaroot("INBOX")
        assert typ == "OK" and data[0] == [b"INBOX"], data
        assert m.append("Drafts", None, None, body(f"append2-{p.full_reply[0]}", 500))[0] == "OK"
    finally:
        m.logout()
    listing = p.cli("user", "list", "example.test", "--quota").stdout
    assert re.search(r"full@example\.test  storage \d+/none  messages 1/1", listing), listing


COUNTERS = ("SELECT u.local, u.used_bytes, u.used_messages,"
            " (SELECT coalesce(sum(m.size), 0) FROM mailboxes b JOIN mailbox_messages mm ON mm.mailbox_id = b.id"
            "  JOIN messages m ON m.id = mm.message_id WHERE b.user_id = u.id),"
            " (SELECT count(*) FROM mailboxes b JOIN mailbox_messages mm ON mm.mailbox_id = b.id WHERE b.user_id = u.id)"
            " FROM users u")


def test_counters_exact_after_kill_during_burst(make_postern):
    p = make_postern("quota-burst")
    p.cli("user", "quota", "alice@example.test", "--storage", "1G", "--messages", "1000000")   # the checks run
    store_pid, lmtp_pid = p.store_pid(), p.pids("lmtp")[0]
    deadline = time.monotonic() + 150
    clients = [BurstClient(p, t, deadline) for t in range(THREADS)]
    for c in clients:
        c.start()
    wait_for(lambda: sum(len(c.acked) for c in clients) >= 40, 60, interval=0.005, what="40 acknowledged deliveries")
    acked_before_kill = sum(len(c.acked) for c in clients)
    os.kill(store_pid, signal.SIGKILL)
    assert acked_before_kill < THREADS * PER_THREAD, "the burst was over before the kill"
    for c in clients:
        c.join(timeout=max(1, deadline - time.monotonic()))
    assert all(c.done == PER_THREAD for c in clients)
    wait_store_serving(p, store_pid, lmtp_pid)
    rows = p.db_query(COUNTERS)
    for local, used_bytes, used_messages, total, count in rows:
        assert (used_bytes, used_messages) == (total, count), (local, used_bytes, used_messages, total, count)
    alice = quota(p, "alice@example.test")
    assert alice["messages"] == p.inbox_count("alice@example.test") >= THREADS * PER_THREAD


def test_cli_refuses_bad_limits_and_unknown_users(quota_instance):
    p = quota_instance
    for args in (["--storage", "2X"], ["--storage", "1.5G"], ["--messages", "10K"], ["--messages", "-1"]):
        r = p.cli("user", "quota", "bob@example.test", *args, check=False)
        assert r.returncode != 0 and "--" in r.stderr, (args, r.returncode, r.stderr)
    r = p.cli("user", "quota", "nobody@example.test", check=False)
    assert r.returncode == 2 and "no such user" in r.stderr, (r.returncode, r.stderr)
    q = quota(p, "bob@example.test", "--storage", "512M")
    assert q["storage_limit"] == 512 << 20 and q["message_limit"] is None
