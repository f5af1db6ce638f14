# LMTP (RFC 2033) with Python's smtplib over the unix socket and the loopback TCP listener:
# per-recipient RCPT replies, one reply per accepted recipient after DATA, routing through
# aliases, the catch-all and sub-addresses, and the trace headers the store prepends.
import uuid

from conftest import HOSTNAME, header_value, lmtp_transaction, strip_trace_headers


def make_message(tag, extra=b""):
    mid = f"<{tag}.{uuid.uuid4().hex}@test.example.org>"
    body = (b"From: Sender <sender@example.org>\r\n"
            b"To: undisclosed-recipients:;\r\n"
            b"Subject: " + tag.encode() + b"\r\n"
            b"Message-ID: " + mid.encode() + b"\r\n"
            b"\r\n"
            b"Hello,\r\n"
            b"this is " + tag.encode() + b".\r\n" + extra)
    return mid, body


def find(messages, mid):
    return [m for m in messages if header_value(m, "Message-ID") == mid]


def check_delivered(msg, body, sender):
    return_path, received, rest = strip_trace_headers(msg)
    assert return_path == b"Return-Path: <" + sender.encode() + b">\r\n"
    assert received.startswith(b"Received: from ")
    unfolded = received.replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")
    assert b" by " + HOSTNAME.encode() in unfolded, received
    assert b"LMTP" in unfolded, received
    assert received.endswith(b"\r\n") and b";" in received
    assert rest == body


def test_multi_recipient_per_recipient_replies(postern):
    mid, body = make_message("multi")
    recipients = [
        ("alice@example.test", 250, None),
        ("bob@example.test", 250, None),
        ("nobody@example.test", 550, "5.1.1"),      # unknown user in a local domain
        ("someone@elsewhere.test", 554, "5.7.1"),   # not ours: never relay
        ("postmaster@example.test", 250, None),     # alias -> alice
        ("whoever@catch.test", 250, None),          # catch-all -> alice
        ("alice+tag@example.test", 250, None),      # sub-address -> alice
    ]
    c = postern.lmtp()
    try:
        mail, rcpt, data = lmtp_transaction(c, "sender@example.org", [r for r, _, _ in recipients], body)
        assert mail[0] == 250
        for (addr, code, enhanced), (got, text) in zip(recipients, rcpt):
            assert got == code, f"RCPT {addr}: {got} {text!r}"
            if enhanced:
                assert text.decode().startswith(enhanced), f"RCPT {addr}: {got} {text!r}"
        accepted = [r for r, code, _ in recipients if code == 250]
        assert len(data) == len(accepted)
        for addr, (code, text) in zip(accepted, data):
            assert code == 250, f"DATA reply for {addr}: {code} {text!r}"
            assert text.decode().startswith("2."), text
        # The session is still in order afterwards: nothing left unread, NOOP answers 250.
        assert c.noop()[0] == 250
    finally:
        c.quit()

    bob = find(postern.export("bob@example.test"), mid)
    assert len(bob) == 1
    check_delivered(bob[0], body, "sender@example.org")
    alice = find(postern.export("alice@example.test"), mid)
    assert len(alice) >= 1, "alice (directly and through alias, catch-all, sub-address) got nothing"
    for m in alice:
        check_delivered(m, body, "sender@example.org")


def test_routing_alias_catchall_subaddress(postern):
    before = postern.inbox_count("alice@example.test")
    sent = {}
    for rcpt in ["postmaster@example.test", "Anything.At.All@catch.test", "alice+lists@example.test",
                 "ALICE@EXAMPLE.TEST"]:
        mid, body = make_message("route")
        r, data = postern.deliver([rcpt], body)
        assert r == [(250, r[0][1])], (rcpt, r)
        assert [d[0] for d in data] == [250], (rcpt, data)
        sent[mid] = body
    assert postern.inbox_count("alice@example.test") == before + len(sent)
    alice = postern.export("alice@example.test")
    for mid, body in sent.items():
        got = find(alice, mid)
        assert len(got) == 1, mid
        check_delivered(got[0], body, "sender@example.org")
    # Nothing leaked to bob.
    bob = postern.export("bob@example.test")
    assert not any(find(bob, mid) for mid in sent)


def test_single_recipient_received_names_it(postern):
    mid, body = make_message("for-clause")
    _, data = postern.deliver(["bob@example.test"], body)
    assert data[0][0] == 250
    (msg,) = find(postern.export("bob@example.test"), mid)
    _, received, _ = strip_trace_headers(msg)
    assert b"<bob@example.test>" in received.replace(b"\r\n\t", b" ")


def test_null_sender_and_tcp_listener(postern):
    mid, body = make_message("bounce")
    c = postern.lmtp(tcp=True)
    try:
        mail, rcpt, data = lmtp_transaction(c, "", ["bob@example.test"], body)
        assert mail[0] == 250 and rcpt[0][0] == 250 and data[0][0] == 250, (mail, rcpt, data)
    finally:
        c.quit()
    (msg,) = find(postern.export("bob@example.test"), mid)
    return_path, received, rest = strip_trace_headers(msg)
    assert return_path == b"Return-Path: <>\r\n"
    assert b"[127.0.0.1]" in received
    assert rest == body


def test_several_transactions_one_session_and_rset(postern):
    c = postern.lmtp()
    sent = []
    try:
        for i in range(5):
            mid, body = make_message(f"session-{i}")
            if i == 2:
                assert c.mail("sender@example.org")[0] == 250
                assert c.rcpt("bob@example.test")[0] == 250
                assert c.rset()[0] == 250          # abandoned: must not be delivered
                continue
            _, rcpt, data = lmtp_transaction(c, "sender@example.org", ["bob@example.test"], body)
            assert data and data[0][0] == 250
            sent.append(mid)
        # DATA without any accepted recipient: 503 in LMTP, and no message.
        assert c.mail("sender@example.org")[0] == 250
        assert c.rcpt("nobody@example.test")[0] == 550
        code, _ = c.docmd("DATA")
        assert code == 503
        assert c.rset()[0] == 250
    finally:
        c.quit()
    bob = postern.export("bob@example.test")
    for mid in sent:
        assert len(find(bob, mid)) == 1
    assert not [m for m in bob if b"session-2" in m.split(b"\r\n\r\n", 1)[0]]
