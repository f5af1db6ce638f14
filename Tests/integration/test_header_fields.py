"""HEADER.FIELDS answered from the fields the store keeps per message (header_fields, FETCH of one
HEADER.FIELDS item) equals imapd's filtering of the whole header (the same item FETCHed beside
BODY.PEEK[HEADER], which makes imapd read the header) and the store's filtering of it (a field
list the kept fields do not cover), byte for byte, over the whole corpus (Python's email test
messages and the hostile MIME of test_imap_dovecot): RFC 9051 §6.4.5."""
import re

import pytest

import corpus
from conftest import DEFAULT_PASSWORD, wait_for
from imap_support import RawIMAP, imap_instance

USER = "hf@example.test"
KEPT = "FROM TO CC SUBJECT DATE MESSAGE-ID REFERENCES IN-REPLY-TO"   # HeaderFieldFilter.keptFields covers these
NOT_KEPT = KEPT + " X-MAILER RECEIVED"                                # these are not kept
LITERAL = re.compile(rb"(BODY\[[^\]]*\]) \{(\d+)\}\r\n$")


@pytest.fixture(scope="module")
def imap():
    cm, ports = imap_instance("header-fields", users=[USER])
    with cm as p:
        wait_for(lambda: "imapd ready" in p.log(), 20, what="imapd ready")
        c = RawIMAP("127.0.0.1", ports["imap"])
        c.login(USER, DEFAULT_PASSWORD)
        n = 0
        for _, msg in corpus.all_messages():
            if b"\0" in msg:
                continue
            c.send(f"t-a{n} APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
            r = c.until_tag(f"t-a{n}")
            assert r[-1].split()[1] == b"OK", r[-1]
            n += 1
        assert c.cmd("SELECT INBOX")[-1].split()[1] == b"OK"
        c.count = n
        yield c
        c.close()


def sections(lines):
    """{uid: {section label: literal bytes}} from the lines and literals of a UID FETCH."""
    out, uid, pending = {}, None, None
    for part in lines:
        if pending is not None:
            out.setdefault(uid, {})[pending] = part
            pending = None
            continue
        m = re.match(rb"\* \d+ FETCH \(UID (\d+) ", part)
        if m:
            uid = int(m.group(1))
        lit = LITERAL.search(part)
        if lit:
            pending = lit.group(1)
    return out


def test_kept_fields_answer_as_the_whole_header(imap):
    label = f"BODY[HEADER.FIELDS ({KEPT})]".encode()
    kept = sections(imap.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({KEPT})])"))
    whole = sections(imap.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({KEPT})] BODY.PEEK[HEADER])"))
    assert len(kept) == imap.count and set(kept) == set(whole)
    differ = [uid for uid in kept if kept[uid][label] != whole[uid][label]]
    assert not differ, f"UIDs {differ[:10]}: {kept[differ[0]][label]!r} != {whole[differ[0]][label]!r}"
    # repeated: the same bytes (no state between FETCHes)
    assert sections(imap.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({KEPT})])")) == kept


def test_a_field_list_not_kept_is_filtered_from_the_header(imap):
    label = f"BODY[HEADER.FIELDS ({NOT_KEPT})]".encode()
    stored = sections(imap.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({NOT_KEPT})])"))
    whole = sections(imap.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({NOT_KEPT})] BODY.PEEK[HEADER])"))
    assert len(stored) == imap.count
    assert all(stored[uid][label] == whole[uid][label] for uid in stored)
    # the kept list's answer is the longer list's without the fields not kept
    kept = sections(imap.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({KEPT})])"))
    some = [uid for uid in stored if re.search(rb"(?im)^(x-mailer|received)\s*:", stored[uid][label])]
    assert some, "the corpus has messages with Received or X-Mailer"
    for uid in some:
        assert kept[uid][f"BODY[HEADER.FIELDS ({KEPT})]".encode()] != stored[uid][label]
