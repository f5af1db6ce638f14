# Spam filtering with a real rspamd (issue 14): the daemon set scans mail arriving on port 25
# through a private rspamd (spam_support.py) before the final reply of DATA; rspamd's action
# decides 550 / 451 / delivery with X-Spam-* fields; rspamd stopped follows [spam] on_failure.
# No worker gains a role, and the controller password reaches no log line.
import contextlib
import imaplib
import os
import smtplib
import ssl
import uuid

import pytest

from conftest import DEFAULT_PASSWORD, assert_all_unprivileged, free_port, running_instance, wait_for
from spam_support import (ADD_HEADER_MARKER, CONTROLLER_PASSWORD, GREYLIST_MARKER, GTUBE, REWRITE_MARKER, Rspamd,
                          rspamd_binary, redis_binary)

pytestmark = pytest.mark.skipif(not (rspamd_binary() and redis_binary()),
                                reason="rspamd / redis-server not installed (make test installs them)")


@pytest.fixture(scope="module")
def rspamd():
    r = Rspamd()
    try:
        r.start()
        yield r
    finally:
        r.cleanup()


def spam_section(r, root, on_failure="accept", url=None, extra=""):
    pw = os.path.join(root, "rspamd.pass")
    with open(pw, "w") as f:
        f.write(CONTROLLER_PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return ("[spam]\nenabled = true\n"
            f'url = "{url or r.url}"\ncontroller_url = "{r.controller_url}"\n'
            f'controller_password_file = "{pw}"\ntimeout = 5\non_failure = "{on_failure}"\n{extra}')


def smtp_section(port, submission_port=None):
    sub = f'["127.0.0.1:{submission_port}"]' if submission_port else "[]"
    return f'[smtp]\nmta = ["127.0.0.1:{port}"]\nsubmission = {sub}\nsmtps = []\n'


def instance(name, r, tmp_path, imap_port=None, submission_port=None, **kw):
    port = free_port()
    imap = f'[imap]\nlisten = ["imap@127.0.0.1:{imap_port}"]\n' if imap_port else None
    p = running_instance(name, smtp_section=smtp_section(port, submission_port), imap_section=imap,
                         top_extra=spam_section(r, str(tmp_path), **kw))
    return p, port


@pytest.fixture(scope="module")
def mta(rspamd, tmp_path_factory):
    imap_port, submission_port = free_port(), free_port()
    cm, port = instance("spam", rspamd, tmp_path_factory.mktemp("spam"), imap_port=imap_port, submission_port=submission_port,
                        extra='learn_spam_address = "spam@"\nlearn_ham_address = "ham@"\n')
    with cm as p:
        p.mta_port = port
        p.imap_port = imap_port
        p.submission_port = submission_port
        yield p


def submit(p, msg, rcpts, user="alice@example.test"):
    with smtplib.SMTP("127.0.0.1", p.submission_port, timeout=60) as s:
        s.ehlo("client.example.org")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        s.login(user, DEFAULT_PASSWORD)
        return s.sendmail(user, rcpts, msg)


def stored_count(p):
    (n,), = p.db_query("SELECT COUNT(*) FROM mailbox_messages")
    return n


def imap_login(p, user="bob@example.test"):
    c = imaplib.IMAP4("127.0.0.1", p.imap_port, timeout=30)
    c.login(user, DEFAULT_PASSWORD)
    return c


def uid_of(c, mid):
    typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", mid)
    assert typ == "OK", data
    uids = data[0].split()
    assert len(uids) == 1, (mid, data)
    return uids[0].decode()


def message(subject, body="Shall we meet for lunch on Thursday at noon?\r\n"):
    mid = f"<{uuid.uuid4().hex}@client.example.org>"
    return mid, (f"From: <sender@example.org>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n"
                 f"Message-ID: {mid}\r\nDate: Sun, 6 Dec 2026 05:00:00 +0000\r\n\r\n{body}").encode()


def send(port, msg, rcpt="alice@example.test"):
    """(code, text) of the reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("client.example.org")
        code, _ = s.mail("sender@example.org")
        assert code == 250
        code, _ = s.rcpt(rcpt)
        assert code == 250
        return s.data(msg)


def stored(p, user, mid, mailbox=None):
    return [m for m in p.export(user, mailbox) if mid.encode() in m]


def head(msg):
    return msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def test_gtube_is_rejected_with_550_and_not_stored(mta):
    mid, msg = message("GTUBE", body=GTUBE + "\r\n")
    code, text = send(mta.mta_port, msg)
    assert code == 550 and text.startswith(b"5.7.1"), (code, text)
    assert stored(mta, "alice@example.test", mid) == []
    assert "refused by the spam filter" in mta.log()


def test_clean_message_lands_in_inbox_marked_no(mta):
    mid, msg = message("Lunch on Thursday")
    code, text = send(mta.mta_port, msg)
    assert code == 250, (code, text)
    (m,) = stored(mta, "alice@example.test", mid, "INBOX")
    assert "X-Spam-Status: No, score=" in head(m)
    assert "action=no action" in mta.log()


def test_add_header_message_lands_in_junk_with_headers(mta):
    mid, msg = message(f"{ADD_HEADER_MARKER} cheap watches")
    code, text = send(mta.mta_port, msg)
    assert code == 250, (code, text)
    found = stored(mta, "alice@example.test", mid, "Junk")
    assert len(found) == 1, mta.mailbox_counts("alice@example.test")
    h = head(found[0])
    assert h.startswith("X-Spam-Status: Yes, score="), h
    assert "X-Spam-Score: " in h
    assert "POSTERN_TEST_ADD_HEADER" in h.replace("\r\n ", " ")
    assert stored(mta, "alice@example.test", mid, "INBOX") == []


def test_user_setting_keeps_marked_mail_in_inbox(mta):
    """`postern user spam-junk USER off`: marked mail stays in INBOX with its X-Spam-* fields."""
    mta.cli("user", "spam-junk", "alice@example.test", "off")
    try:
        mid, msg = message(f"{ADD_HEADER_MARKER} cheap pens")
        assert send(mta.mta_port, msg)[0] == 250
        (m,) = stored(mta, "alice@example.test", mid, "INBOX")
        assert head(m).startswith("X-Spam-Status: Yes, score="), head(m)
        assert stored(mta, "alice@example.test", mid, "Junk") == []
    finally:
        mta.cli("user", "spam-junk", "alice@example.test", "on")
    assert mta.cli("user", "spam-junk", "alice@example.test", "maybe", check=False).returncode != 0


def test_rewrite_subject_lands_in_junk_with_the_new_subject(mta):
    mid, msg = message(f"{REWRITE_MARKER} hello")
    assert send(mta.mta_port, msg)[0] == 250
    (m,) = stored(mta, "alice@example.test", mid, "Junk")
    h = head(m)
    assert f"\r\nSubject: ***SPAM*** {REWRITE_MARKER} hello\r\n" in h, h
    assert h.count("Subject:") == 1 and h.startswith("X-Spam-Status: Yes")


def test_greylist_score_gets_451_and_is_not_stored(mta):
    mid, msg = message(f"{GREYLIST_MARKER} hello")
    code, text = send(mta.mta_port, msg)
    assert code == 451 and text.startswith(b"4.7.1"), (code, text)
    assert stored(mta, "alice@example.test", mid) == []


def test_a_sender_cannot_forge_the_verdict(mta):
    mid, msg = message("Lunch again")
    msg = b"X-Spam-Status: No, score=-100\r\nX-Spam-Score: -100\r\n" + msg
    assert send(mta.mta_port, msg)[0] == 250
    (m,) = stored(mta, "alice@example.test", mid, "INBOX")
    assert "score=-100" not in head(m)
    assert head(m).count("X-Spam-Status:") == 1


def prose(seed):
    return "\r\n".join(f"{seed}{i} the quarterly report and the minutes of the meeting" for i in range(40)) + "\r\n"


@contextlib.contextmanager
def bob_in_inbox(p, subject, seed):
    """A new message in bob's INBOX, his IMAP session with INBOX selected: (conn, Message-ID)."""
    mid, msg = message(subject, body=prose(seed))
    assert send(p.mta_port, msg, rcpt="bob@example.test")[0] == 250
    c = imap_login(p)
    try:
        assert c.select("INBOX")[0] == "OK"
        yield c, mid
    finally:
        c.logout()


def test_imap_move_to_junk_learns_spam_and_back_learns_ham(mta, rspamd):
    with bob_in_inbox(mta, "Report for the quarter", "move") as (c, mid):
        before = rspamd.learned()
        typ, data = c.uid("MOVE", uid_of(c, mid), "Junk")
        assert typ == "OK", data
        wait_for(lambda: rspamd.learned() >= before + 1, 30, interval=0.2, what="rspamd learned the move to Junk")
        assert "spam learn: learned spam imap MOVE INBOX to Junk user=bob@example.test" in mta.log()
        # And back out of Junk (not into Trash): ham.
        assert c.select("Junk")[0] == "OK"
        typ, data = c.uid("MOVE", uid_of(c, mid), "INBOX")
        assert typ == "OK", data
        wait_for(lambda: rspamd.learned() >= before + 2, 30, interval=0.2, what="rspamd learned the move out of Junk")
        assert "spam learn: learned ham imap MOVE Junk to INBOX" in mta.log()
        # Into Trash from Junk teaches nothing.
        assert c.select("INBOX")[0] == "OK"
        assert c.uid("MOVE", uid_of(c, mid), "Junk")[0] == "OK"
        wait_for(lambda: rspamd.learned() >= before + 3, 30, interval=0.2, what="the second move to Junk")
        assert c.select("Junk")[0] == "OK"
        assert c.uid("MOVE", uid_of(c, mid), "Trash")[0] == "OK"
        assert c.select("Trash")[0] == "OK"
        uid_of(c, mid)
        assert mta.log().count("imap MOVE Junk to Trash") == 0


def test_imap_junk_keyword_learns_spam(mta, rspamd):
    with bob_in_inbox(mta, "Minutes of Tuesday", "keyword") as (c, mid):
        before = rspamd.learned()
        assert c.uid("STORE", uid_of(c, mid), "+FLAGS", "($Junk)")[0] == "OK"
        wait_for(lambda: rspamd.learned() >= before + 1, 30, interval=0.2, what="rspamd learned $Junk")
        assert "spam learn: learned spam imap STORE $Junk" in mta.log()


def test_imap_append_and_copy_into_junk_learn_spam(mta, rspamd):
    mid, msg = message("Appended by a client's filter", body=prose("append"))
    c = imap_login(mta)
    try:
        before = rspamd.learned()
        assert c.append("Junk", None, None, msg)[0] == "OK"
        wait_for(lambda: rspamd.learned() >= before + 1, 30, interval=0.2, what="rspamd learned the APPEND")
        assert "learned spam imap APPEND to Junk user=bob@example.test" in mta.log()
    finally:
        c.logout()
    with bob_in_inbox(mta, "Copied into Junk", "copy") as (c, mid):
        before = rspamd.learned()
        assert c.uid("COPY", uid_of(c, mid), "Junk")[0] == "OK"
        wait_for(lambda: rspamd.learned() >= before + 1, 30, interval=0.2, what="rspamd learned the COPY")
        assert "learned spam imap COPY INBOX to Junk user=bob@example.test" in mta.log()


def test_learning_addresses_learn_and_store_nothing(mta, rspamd):
    before_learned, before_stored = rspamd.learned(), stored_count(mta)
    _, msg = message("Forwarded spam", body=prose("spamaddr"))
    assert submit(mta, msg, ["spam@example.test"]) == {}
    wait_for(lambda: rspamd.learned() >= before_learned + 1, 30, interval=0.2, what="rspamd learned spam@")
    _, msg = message("Forwarded ham", body=prose("hamaddr"))
    assert submit(mta, msg, ["ham@example.test"]) == {}
    wait_for(lambda: rspamd.learned() >= before_learned + 2, 30, interval=0.2, what="rspamd learned ham@")
    assert stored_count(mta) == before_stored
    log = mta.log()
    assert "learned spam smtp to spam@example.test user=alice@example.test" in log
    assert "learned ham smtp to ham@example.test user=alice@example.test" in log
    # With another recipient: that one gets the message, the address still learns.
    mid, msg = message("Spam, and a copy for bob", body=prose("both"))
    assert submit(mta, msg, ["spam@example.test", "bob@example.test"]) == {}
    wait_for(lambda: rspamd.learned() >= before_learned + 3, 30, interval=0.2, what="rspamd learned spam@ beside bob")
    assert len(stored(mta, "bob@example.test", mid)) == 1
    assert stored_count(mta) == before_stored + 1


def test_learning_addresses_need_authentication(mta):
    with smtplib.SMTP("127.0.0.1", mta.mta_port, timeout=60) as s:
        s.ehlo("client.example.org")
        assert s.mail("sender@example.org")[0] == 250
        code, text = s.rcpt("spam@example.test")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)


def test_spam_status_shows_reachability_and_counts(mta, rspamd):
    r = mta.cli("spam", "status")
    assert "scanner" in r.stdout and "controller" in r.stdout, r.stdout
    assert r.stdout.count("unreachable") == 0, r.stdout
    assert "learned" in r.stdout and "scanned" in r.stdout, r.stdout


def test_no_new_role_and_password_in_no_log_line(mta):
    rows = assert_all_unprivileged(mta)
    assert {r["SERVICE"] for r in rows} == {"store", "lmtp", "smtp", "imap"}, rows
    assert CONTROLLER_PASSWORD not in mta.log()


def test_lmtp_scans_only_when_scan_lmtp(mta, rspamd, tmp_path_factory):
    mid, msg = message("GTUBE over LMTP", body=GTUBE + "\r\n")
    # The module's instance has scan_lmtp = false: a Postfix in front filtered already.
    _, data = mta.deliver(["alice@example.test"], msg)
    assert [c for c, _ in data] == [250], data
    cm, _ = instance("spam-lmtp", rspamd, tmp_path_factory.mktemp("l"), extra="scan_lmtp = true\n")
    with cm as p:
        mid, msg = message("GTUBE over LMTP", body=GTUBE + "\r\n")
        _, data = p.deliver(["alice@example.test", "bob@example.test"], msg)
        assert [(c, t[:5]) for c, t in data] == [(550, b"5.7.1")] * 2, data
        assert stored(p, "alice@example.test", mid) == [] and stored(p, "bob@example.test", mid) == []
        mid, msg = message("Lunch over LMTP")
        _, data = p.deliver(["alice@example.test"], msg)
        assert [c for c, _ in data] == [250], data
        (m,) = stored(p, "alice@example.test", mid, "INBOX")
        assert "X-Spam-Status: No" in head(m)


def test_max_size_delivers_larger_mail_unscanned(rspamd, tmp_path_factory):
    """[spam] max_size: GTUBE padded past it is delivered unscanned (logged), never held whole."""
    cm, port = instance("spam-max", rspamd, tmp_path_factory.mktemp("m"), extra="max_size = 65536\n")
    with cm as p:
        mid, msg = message("Big GTUBE", body=GTUBE + "\r\n" + ("x" * 76 + "\r\n") * 1000)
        code, text = send(port, msg)
        assert code == 250, (code, text)
        (m,) = stored(p, "alice@example.test", mid, "INBOX")
        assert "X-Spam-Status" not in head(m)
        assert "delivered unscanned" in p.log()
        mid, msg = message("Small GTUBE", body=GTUBE + "\r\n")
        assert send(port, msg)[0] == 550


def test_rspamd_stopped_accepts_or_tempfails_as_configured(rspamd, tmp_path_factory):
    """Runs last in this module: it stops the module's rspamd."""
    rspamd.stop_rspamd()
    cm_a, port_a = instance("spam-accept", rspamd, tmp_path_factory.mktemp("a"))
    cm_t, port_t = instance("spam-tempfail", rspamd, tmp_path_factory.mktemp("t"), on_failure="tempfail")
    with cm_a as a, cm_t as t:
        mid, msg = message("While rspamd is down")
        code, text = send(port_a, msg)
        assert code == 250, (code, text)
        (m,) = stored(a, "alice@example.test", mid, "INBOX")
        assert "X-Spam-" not in head(m)                       # nobody scanned it; nothing claims so
        assert "unscanned" in a.log()
        mid, msg = message("While rspamd is down, deferred")
        code, text = send(port_t, msg)
        assert code == 451 and text.startswith(b"4.7.1"), (code, text)
        assert stored(t, "alice@example.test", mid) == []     # the sender keeps it: nothing lost
        r = t.cli("spam", "status", check=False)
        assert r.returncode == 1 and "unreachable" in r.stdout, (r.returncode, r.stdout)
        assert CONTROLLER_PASSWORD not in a.log() + t.log()
