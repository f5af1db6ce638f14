# `postern export USER [MAILBOX]`: every message of the user (or of one mailbox), in UID
# order, as mboxrd on stdout — a "From " line, the body bytes as stored, ">From " escaping,
# one "\n" after each message.
import re
import uuid

from conftest import header_value, strip_trace_headers

FROM_LINE = re.compile(rb"^From (\S+) (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
                       rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9]\d \d\d:\d\d:\d\d \d{4}$")


def test_export_writes_every_message_in_order(postern):
    user = f"exp{uuid.uuid4().hex[:8]}@example.test"
    postern.add_user(user)
    sent = []
    for i, sender in enumerate(["one@example.org", "", "three@example.org"]):
        mid = f"<export-{i}.{uuid.uuid4().hex}@test.example.org>"
        body = (b"Subject: export " + str(i).encode() + b"\r\nMessage-ID: " + mid.encode() + b"\r\n\r\n"
                b"From the start of a line\r\n>From quoted\r\n>>From twice\r\nFrom\r\n")
        c = postern.lmtp()
        try:
            assert c.mail(sender)[0] == 250 and c.rcpt(user)[0] == 250
            assert c.data(body)[0] == 250
        finally:
            c.quit()
        sent.append((mid, sender, body))

    raw = postern.cli("export", user, binary=True).stdout
    from_lines = [l for l in raw.split(b"\n") if l.startswith(b"From ")]
    assert len(from_lines) == len(sent), f"{len(from_lines)} messages exported, {len(sent)} delivered:\n{raw[:2000]!r}"
    for line, (_, sender, _) in zip(from_lines, sent):
        m = FROM_LINE.match(line)
        assert m, line
        assert m.group(1) == (sender.encode() or b"MAILER-DAEMON")
    # Escaping of the body lines, exactly one ">" more.
    assert raw.count(b"\n>From the start of a line\r\n") == 3
    assert raw.count(b"\n>>From quoted\r\n") == 3
    assert raw.count(b"\n>>>From twice\r\n") == 3
    assert raw.count(b"\nFrom\r\n") == 3                  # "From" without the space is not escaped

    msgs = postern.export(user)
    assert [header_value(m, "Message-ID") for m in msgs] == [mid for mid, _, _ in sent]
    for m, (_, sender, body) in zip(msgs, sent):
        return_path, _, rest = strip_trace_headers(m)
        assert return_path == b"Return-Path: <" + sender.encode() + b">\r\n"
        assert rest == body
    # One mailbox: the same messages in INBOX, none in Junk.
    assert postern.export(user, "INBOX") == msgs
    assert postern.export(user, "Junk") == []
    assert postern.inbox_count(user) == len(sent)


def test_export_of_unknown_user_or_mailbox_fails(postern):
    r = postern.cli("export", "nobody@example.test", check=False, binary=True)
    assert r.returncode != 0 and r.stdout == b""
    r = postern.cli("export", "alice@example.test", "No Such Mailbox", check=False, binary=True)
    assert r.returncode != 0 and r.stdout == b""
