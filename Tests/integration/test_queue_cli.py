"""`postern queue` against the real daemon set (DESIGN §6, issue 13): mail submitted on the
submission port to remote recipients is queued; `queue list` shows it with human-readable
age and next attempt, `queue show` the message and each recipient, and hold / release /
flush / bounce / delete change exactly the rows of that message (checked in the database);
an unknown id exits 2.
"""
import re
import uuid

import pytest

from conftest import free_port, running_instance
from test_smtpd import message, queue_rows, smtp_section, submission_login


@pytest.fixture(scope="module")
def q():
    ports = {"mta": free_port(), "submission": free_port()}
    with running_instance("queue-cli", smtp_section=smtp_section(ports)) as p:
        p.ports = ports
        yield p


def submit(p, rcpts, tag="queue-cli"):
    mid, body = message(tag)
    s = submission_login(p)
    try:
        assert s.sendmail("alice@example.test", rcpts, body) == {}
    finally:
        s.quit()
    return mid, body


def rows_for(p, rcpt):
    return [r for r in queue_rows(p) if r[2] == f"<{rcpt}>"]


def queue_id(p, rcpt):
    (row,) = rows_for(p, rcpt)
    return row[0]


def db_rows(p, qid):
    return p.db_query(f"SELECT recipient, held, bounce_requested, next_attempt FROM queue WHERE message_id = {int(qid)} ORDER BY id")


def test_list_and_show(q):
    r1, r2 = (f"r{i}-{uuid.uuid4().hex[:6]}@far.example" for i in (1, 2))
    _, body = submit(q, [r1, r2, "bob@example.test"])
    header = q.cli("queue", "list").stdout.splitlines()[0].split("\t")
    assert header == ["ID", "SENDER", "RECIPIENT", "AGE", "NEXT-ATTEMPT", "ATTEMPTS", "STATE", "LAST-REPLY"]
    a, b = rows_for(q, r1)[0], rows_for(q, r2)[0]
    assert a[0] == b[0], "one queue id per message"
    for row in (a, b):
        assert row[1] == "<alice@example.test>"
        assert re.fullmatch(r"\d+s|\d+m", row[3]), row
        assert row[4] == "now" and row[5] == "0" and row[6] == "queued" and row[7] == "-", row
    assert rows_for(q, "bob@example.test") == [], "the local recipient was delivered, not queued"

    out = q.cli("queue", "show", a[0]).stdout
    assert f"message:  {a[0]}" in out
    assert "sender:   <alice@example.test>" in out
    size = int(re.search(r"size:\s+(\d+) bytes", out).group(1))
    assert size >= len(body)
    assert re.search(r"queued:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \(\d+[sm] ago\)", out), out
    assert "origin:   submission" in out
    assert f"recipient <{r1}>: next attempt now, 0 attempts, queued, last reply: -" in out
    assert f"recipient <{r2}>:" in out


def test_hold_release_flush_bounce_delete(q):
    r1, r2 = (f"h{i}-{uuid.uuid4().hex[:6]}@far.example" for i in (1, 2))
    other = f"o-{uuid.uuid4().hex[:6]}@far.example"
    submit(q, [r1, r2], tag="queue-hold")
    submit(q, [other], tag="queue-other")
    qid, other_id = queue_id(q, r1), queue_id(q, other)
    assert qid != other_id

    assert q.cli("queue", "hold", qid).stdout.strip() == f"message {qid}: 2 recipients held"
    assert [(r[0], r[1]) for r in db_rows(q, qid)] == [(r1, 1), (r2, 1)]
    assert [r[1] for r in db_rows(q, other_id)] == [0], "only that message"
    row = rows_for(q, r1)[0]
    assert row[4] == "held" and "held" in row[6].split(","), row

    assert q.cli("queue", "release", qid).stdout.strip() == f"message {qid}: 2 recipients released"
    assert [r[1] for r in db_rows(q, qid)] == [0, 0]
    assert rows_for(q, r1)[0][6] == "queued"

    assert re.fullmatch(r"message \d+: 2 recipients flushed", q.cli("queue", "flush", qid).stdout.strip())
    assert re.fullmatch(r"\d+ recipients? flushed", q.cli("queue", "flush").stdout.strip())

    assert q.cli("queue", "bounce", other_id).stdout.strip() == f"message {other_id}: 1 recipient marked for bounce"
    assert [r[2] for r in db_rows(q, other_id)] == [1]
    assert "bounce" in rows_for(q, other)[0][6].split(",")

    assert q.cli("queue", "delete", qid).stdout.strip() == f"message {qid}: 2 recipients deleted"
    assert rows_for(q, r1) == [] and rows_for(q, r2) == []
    assert db_rows(q, qid) == []
    assert q.db_query(f"SELECT COUNT(*) FROM messages WHERE id = {int(qid)}") == [(0,)], "the body went with its last row"
    assert len(rows_for(q, other)) == 1


def test_unknown_id_exits_2(q):
    for args in (["show", "999999"], ["hold", "999999"], ["release", "999999"], ["delete", "999999"], ["bounce", "999999"]):
        r = q.cli("queue", *args, check=False)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert "no queued message 999999" in r.stderr
