# Limits and protocol edges of lmtpd, on an instance with small limits:
# max_message_size (552 5.3.4 per recipient), max_recipients (452 4.5.3), HELO/EHLO refused
# in LMTP, exact dot-stuffing, and SMTP smuggling attempts that must never end DATA early.
import smtplib
import uuid

import pytest

from conftest import header_value, lmtp_transaction, running_instance, strip_trace_headers

MAX_SIZE = 1024 * 1024
MAX_RCPTS = 3


@pytest.fixture(scope="module")
def limited():
    with running_instance("limits", users=[f"{u}@example.test" for u in ("carol", "dave", "erin", "dots", "smuggle")],
                          lmtp_extra=f"max_message_size = {MAX_SIZE}\nmax_recipients = {MAX_RCPTS}\n") as p:
        yield p


def message(tag, size=0):
    mid = f"<{tag}.{uuid.uuid4().hex}@test.example.org>"
    body = b"Subject: " + tag.encode() + b"\r\nMessage-ID: " + mid.encode() + b"\r\n\r\n"
    line = b"x" * 998 + b"\r\n"
    while len(body) < size:
        body += line
    return mid, body + b"end\r\n"


def raw_lmtp(p):
    """A session we drive with raw bytes (smtplib only for reading replies)."""
    c = smtplib.LMTP(p.lmtp_socket, timeout=30)
    assert c.ehlo("raw.example.org")[0] == 250
    return c


def test_size_is_advertised(limited):
    c = limited.lmtp()
    try:
        assert c.has_extn("size") and int(c.esmtp_features["size"]) == MAX_SIZE
    finally:
        c.quit()


def test_oversized_message_gets_552_per_recipient(limited):
    before = {u: limited.inbox_count(f"{u}@example.test") for u in ("carol", "dave")}
    mid, body = message("too-big", MAX_SIZE + 200 * 1024)
    c = limited.lmtp()
    try:
        mail, rcpt, data = lmtp_transaction(c, "sender@example.org", ["carol@example.test", "dave@example.test"], body)
        assert [r[0] for r in rcpt] == [250, 250]
        assert len(data) == 2
        for code, text in data:
            assert code == 552 and text.decode().startswith("5.3.4"), (code, text)
        # The session goes on: a small message on the same connection is delivered.
        mid2, small = message("after-too-big")
        _, rcpt, data = lmtp_transaction(c, "sender@example.org", ["carol@example.test"], small)
        assert [d[0] for d in data] == [250], data
    finally:
        c.quit()
    assert limited.inbox_count("carol@example.test") == before["carol"] + 1
    assert limited.inbox_count("dave@example.test") == before["dave"]
    assert [header_value(m, "Message-ID") for m in limited.export("carol@example.test")][-1:] == [mid2]


def test_size_parameter_over_limit_refused_at_mail(limited):
    c = limited.lmtp()
    try:
        code, text = c.mail("sender@example.org", [f"SIZE={MAX_SIZE + 1}"])
        assert code == 552 and text.decode().startswith("5.3.4"), (code, text)
        code, text = c.mail("sender@example.org", [f"SIZE={MAX_SIZE // 2}"])
        assert code == 250, (code, text)
        assert c.rset()[0] == 250
    finally:
        c.quit()


def test_message_just_under_limit_is_accepted(limited):
    mid, body = message("just-fits", MAX_SIZE - 4096)
    assert len(body) <= MAX_SIZE
    _, data = limited.deliver(["erin@example.test"], body)
    assert [d[0] for d in data] == [250], data
    (got,) = [m for m in limited.export("erin@example.test") if header_value(m, "Message-ID") == mid]
    assert strip_trace_headers(got)[2] == body


def test_too_many_recipients_452(limited):
    before = {u: limited.inbox_count(f"{u}@example.test") for u in ("alice", "bob", "carol", "dave")}
    mid, body = message("many-rcpts")
    c = limited.lmtp()
    try:
        rcpts = ["alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"]
        mail, rcpt, data = lmtp_transaction(c, "sender@example.org", rcpts, body)
        assert [r[0] for r in rcpt[:MAX_RCPTS]] == [250] * MAX_RCPTS
        code, text = rcpt[MAX_RCPTS]
        assert code == 452 and text.decode().startswith("4.5.3"), (code, text)
        assert [d[0] for d in data] == [250] * MAX_RCPTS, data
    finally:
        c.quit()
    after = {u: limited.inbox_count(f"{u}@example.test") for u in before}
    assert after == {"alice": before["alice"] + 1, "bob": before["bob"] + 1, "carol": before["carol"] + 1,
                     "dave": before["dave"]}


def test_helo_and_ehlo_refused_in_lmtp(limited):
    c = smtplib.LMTP(limited.lmtp_socket, timeout=30)     # reads the 220 greeting
    try:
        for cmd in ("HELO client.example.org", "EHLO client.example.org"):
            code, text = c.docmd(cmd)
            assert 500 <= code < 600, (cmd, code, text)
        code, _ = c.docmd("MAIL FROM:<sender@example.org>")
        assert code == 503                                  # still no LHLO
        code, text = c.docmd("LHLO client.example.org")
        assert code == 250, text
        assert c.docmd("MAIL FROM:<sender@example.org>")[0] == 250
        assert c.rset()[0] == 250
    finally:
        c.quit()


def test_dot_stuffing_is_undone_exactly(limited):
    mid = f"<dots.{uuid.uuid4().hex}@test.example.org>"
    header = b"Subject: dots\r\nMessage-ID: " + mid.encode() + b"\r\n\r\n"
    wire = header + b"..one dot\r\n...two dots\r\n..\r\n.x\r\nmid.dle\r\n. \r\nend\r\n.\r\n"
    want = header + b".one dot\r\n..two dots\r\n.\r\nx\r\nmid.dle\r\n \r\nend\r\n"
    c = raw_lmtp(limited)
    try:
        assert c.mail("sender@example.org")[0] == 250
        assert c.rcpt("dots@example.test")[0] == 250
        assert c.docmd("DATA")[0] == 354
        c.send(wire)
        code, text = c.getreply()
        assert code == 250, text
    finally:
        c.quit()
    (got,) = [m for m in limited.export("dots@example.test") if header_value(m, "Message-ID") == mid]
    assert strip_trace_headers(got)[2] == want


SMUGGLE_SEQUENCES = [b"\n.\n", b"\r.\r\n", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"]


def test_smuggling_never_ends_data_early(limited):
    bob_before = limited.inbox_count("bob@example.test")
    target_before = limited.inbox_count("smuggle@example.test")
    c = raw_lmtp(limited)
    try:
        for seq in SMUGGLE_SEQUENCES:
            assert c.mail("sender@example.org")[0] == 250
            assert c.rcpt("smuggle@example.test")[0] == 250
            assert c.docmd("DATA")[0] == 354
            # If the server took `seq` for the end of DATA, what follows would be a second
            # transaction delivering a forged message to bob.
            c.send(b"Subject: carrier " + repr(seq).encode() + b"\r\n\r\nhello" + seq
                   + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                   + b"Subject: smuggled\r\n\r\nforged\r\n.\r\n")
            code, text = c.getreply()
            assert code == 550 and text.decode().startswith("5.5.2"), (seq, code, text)
            # Exactly one reply came back: the next command is answered in order.
            code, text = c.docmd("NOOP")
            assert code == 250, (seq, code, text)
        # The session still works for a clean message.
        mid, body = message("after-smuggling")
        _, rcpt, data = lmtp_transaction(c, "sender@example.org", ["smuggle@example.test"], body)
        assert [d[0] for d in data] == [250], data
    finally:
        c.quit()
    assert limited.inbox_count("bob@example.test") == bob_before
    assert limited.inbox_count("smuggle@example.test") == target_before + 1
    msgs = limited.export("smuggle@example.test")
    assert [header_value(m, "Message-ID") for m in msgs][-1:] == [mid]
    for m in msgs + limited.export("bob@example.test"):
        assert b"forged" not in m and b"carrier" not in m
