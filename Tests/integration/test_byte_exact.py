# Bodies come back from `postern export` exactly as delivered: a 20 MB message full of lines
# that need dot-stuffing or mbox escaping, and an 8-bit message declared BODY=8BITMIME.
import base64
import os
import random
import uuid

from conftest import header_value, lmtp_transaction, strip_trace_headers


def big_body(size, seed):
    rnd = random.Random(seed)
    mid = f"<big.{uuid.uuid4().hex}@test.example.org>"
    head = (b"From: Big <big@example.org>\r\nSubject: twenty megabytes\r\nMessage-ID: " + mid.encode()
            + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    pool = base64.b64encode(os.urandom(size)).replace(b"+", b" ")    # printable, with spaces
    prefixes = [b".", b"..", b"From ", b">From ", b">>From ", b". ", b"From", b""]
    lines = [head]
    total, off = len(head), 0
    while total < size:
        n = rnd.randint(0, 300)
        p = prefixes[rnd.randrange(len(prefixes))] if rnd.random() < 0.2 else b""
        if off + n > len(pool):
            off = 0
        line = p + pool[off:off + n] + b"\r\n"
        off += n
        lines.append(line)
        total += len(line)
    lines.append(b".\r\nlast line\r\n")          # a lone "." line (sent as ".."), then text
    return mid, b"".join(lines)


def exported(postern, user, mid):
    found = [m for m in postern.export(user) if header_value(m, "Message-ID") == mid]
    assert len(found) == 1, f"{mid}: found {len(found)} copies"
    return strip_trace_headers(found[0])[2]


def test_twenty_megabytes_byte_exact(postern):
    postern.add_user("big@example.test")
    mid, body = big_body(20 * 1024 * 1024, seed=20)
    assert body.count(b"\r\nFrom ") > 1000 and body.count(b"\r\n.") > 1000 and b"\r\n.\r\n" in body
    c = postern.lmtp(timeout=180)
    try:
        mail, rcpt, data = lmtp_transaction(c, "big@example.org", ["big@example.test"], body)
        assert rcpt[0][0] == 250 and data == [(250, data[0][1])], (rcpt, data)
    finally:
        c.quit()
    got = exported(postern, "big@example.test", mid)
    assert len(got) == len(body)
    assert got == body


def test_eight_bit_byte_exact(postern):
    postern.add_user("eight@example.test")
    mid = f"<8bit.{uuid.uuid4().hex}@test.example.org>"
    body = (b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\n"
            b"Subject: 8bit\r\nMessage-ID: " + mid.encode() + b"\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + "Grüße aus Köln — ünïcödé ✓ 日本語 😀\r\n".encode("utf-8")
            + b"\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + "Déjà vu, señor, Øresund, ÿ\r\n".encode("latin-1")
            + bytes(range(0x80, 0x100)) + b"\r\n"
            + bytes(b for b in range(1, 0x80) if b not in (10, 13)) + b"\r\n"
            + b"--b--\r\n")
    c = postern.lmtp()
    try:
        ehlo = c.ehlo_resp.decode().upper()
        assert "8BITMIME" in ehlo
        mail, rcpt, data = lmtp_transaction(c, "j@example.org", ["eight@example.test"], body,
                                            mail_options=["BODY=8BITMIME"])
        assert mail[0] == 250 and rcpt[0][0] == 250 and data[0][0] == 250, (mail, rcpt, data)
    finally:
        c.quit()
    assert exported(postern, "eight@example.test", mid) == body
