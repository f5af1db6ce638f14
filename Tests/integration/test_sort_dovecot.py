"""SORT, THREAD and ESORT compared with a live Dovecot 2.3 on one generated corpus: replies with
full, truncated, missing and broken References, In-Reply-To only, forwards in every RFC 5256
§2.1 spelling, list tags, encoded words, one subject in unrelated threads, missing and duplicate
Message-IDs, identical and missing dates, many zones, addresses with and without display names.
Both servers get the same bytes with the same internal dates in a fresh mailbox, so sequence
numbers agree; every SORT key (and REVERSE, and several keys at once), UID SORT, SORT with
search criteria, ESORT's RETURN options and both THREAD algorithms must answer alike. A
difference fails unless DOVECOT_DEVIATIONS explains it with the RFC text that Dovecot departs
from, or POSTERN_CHOICES with the text that leaves the choice open; a rule that explains
nothing fails too.

    POSTERN_BIN=$(swift build --show-bin-path) python3 -m pytest -q Tests/integration/test_sort_dovecot.py
"""
import imaplib
import random
import re

import pytest

from conftest import DEFAULT_PASSWORD
from dovecot_fixture import dovecot  # noqa: F401 - the fixture is used by name
from imap_support import imap_instance

POSTERN_USER = "sortcmp@example.test"
MAILBOX = "SortCmp"
SEED = 5256
THREADS = 14

KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO")
MULTI = ("SUBJECT REVERSE DATE", "FROM SIZE", "REVERSE CC ARRIVAL", "DISPLAYFROM REVERSE SUBJECT", "TO REVERSE SIZE DATE")
# (SUBJECT "re" is left out: Dovecot's SEARCH finds "re" in "Ré" by its decomposed form,
# Postern's does not — a SEARCH matter, not SORT's.)
CRITERIA = ("ALL", 'SUBJECT "notes"', "NOT SEEN", "OR FROM alice LARGER 900", "2:40")

NAMES = [("Alice Example", "alice"), (None, "bob"), ("=?utf-8?q?=C3=89mile_Zola?=", "emile"), ("\"Zed, Z.\"", "zed"),
         ("carol", "carol"), (None, "Dave"), ("=?iso-8859-1?q?J=F6rg?=", "jorg"), ("  ", "blank")]
BASES = ["Meeting notes", "meeting notes", "Budget 2024", "=?utf-8?b?w4ludml0YXRpb24=?=", "", "Lunch?", "[fwd: Old news]",
         "Release plan", "release PLAN", "Café"]
ZONES = ["+0000", "+0200", "-0500", "+0930", "-0000"]

# Dovecot is the one deviating: (why, with the RFC text; predicate(command, postern, dovecot)).
DOVECOT_DEVIATIONS = {}


def _without(answer, positions):
    return " ".join(w for w in answer.split() if w not in positions)


def _unknown_charset_positions():
    return {str(i + 1) for i, (msg, _) in enumerate(CORPUS) if b"=?bogus?" in msg.split(b"\r\n\r\n", 1)[0]}


def _only_unknown_charset_moved(pa, da):
    """The answers are the same but for where the unknown-charset messages stand: a SORT list
    equal without them, or ESEARCH MIN/MAX naming one of them on one side."""
    odd = _unknown_charset_positions()
    if _without(pa, odd) == _without(da, odd) and not re.search(r"[A-Z]", pa):
        return True
    a, b = pa.split(), da.split()
    return len(a) == len(b) and all(x == y or x in odd or y in odd for x, y in zip(a, b))


# The RFCs leave it open; Postern's choice, with the text that allows both.
POSTERN_CHOICES = {
    "unknown-charset-word": (
        "RFC 2047 §6.2: 'If the mail reader does not support the character set used, it may (a) "
        "display the encoded-word as ordinary text (i.e., as it appears in the header), (b) make a "
        "best effort to display using such characters as are available, or (c) substitute an "
        "appropriate message'. Postern keeps '=?bogus?q?x?=' as written (a), so it sorts among "
        "'='; Dovecot substitutes a replacement character that sorts after every letter. Only the "
        "place of that message differs.",
        lambda cmd, pa, da: "SUBJECT" in " ".join(cmd) and pa != da and _only_unknown_charset_moved(pa, da)),
}


def address(rng):
    name, local = rng.choice(NAMES)
    host = rng.choice(["example.test", "Example.ORG", "x.test"])
    return f"{name} <{local}@{host}>" if name else f"{local}@{host}"


def date_header(rng, day):
    """A Date: value, sometimes missing or broken (RFC 5256 §2.2: the internal date is used)."""
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.14:
        return "yesterday-ish"
    hour = rng.choice([9, 10, 10, 11])   # many identical dates on purpose
    return f"{['Mon', 'Tue', 'Wed'][day % 3]}, {1 + day % 27} Jan 2024 {hour:02d}:00:00 {rng.choice(ZONES)}"


def build_corpus():
    """[(bytes, internal date string)] in APPEND order."""
    rng = random.Random(SEED)
    out = []
    ids = []     # message ids handed out, in order

    def add(subject, refs=None, in_reply_to=None, msgid="new", day=0, extra=b""):
        lines = []
        if subject is not None:
            lines.append(f"Subject: {subject}")
        lines.append(f"From: {address(rng)}")
        if rng.random() < 0.85:
            lines.append(f"To: {address(rng)}" + (f", {address(rng)}" if rng.random() < 0.3 else ""))
        if rng.random() < 0.4:
            lines.append(f"Cc: {address(rng)}")
        d = date_header(rng, day)
        if d is not None:
            lines.append(f"Date: {d}")
        if msgid == "new":
            msgid = f"<m{len(out)}.{rng.randrange(10**6)}@corpus.test>"
        if msgid:
            lines.append(f"Message-ID: {msgid}")
            ids.append(msgid)
        if refs:
            lines.append("References: " + "\r\n ".join(refs))
        if in_reply_to:
            lines.append(f"In-Reply-To: {in_reply_to}")
        body = ("x" * rng.choice([10, 10, 200, 700, 1200])) + "\r\n"
        msg = ("\r\n".join(lines) + "\r\n\r\n" + body).encode() + extra
        internal = f'"{1 + (day % 27):02d}-Jan-2024 {rng.choice([8, 12, 12]):02d}:00:00 +0000"'
        out.append((msg, internal))
        return msgid

    for t in range(THREADS):
        base = BASES[t % len(BASES)]
        root = add(base, day=t)
        chain = [root]
        for k in range(rng.randrange(1, 6)):
            day = t + k + 1
            kind = rng.random()
            parent = rng.choice(chain)
            full = chain[:chain.index(parent) + 1]
            subj = rng.choice(["Re: ", "RE: Re: ", "Fwd: ", "Re [list]: ", "[list] Re: ", "", "FW: "]) + base
            if rng.random() < 0.1:
                subj = f"{base} (fwd)"
            if kind < 0.4:                                    # full References
                chain.append(add(subj, refs=full, day=day))
            elif kind < 0.55:                                 # truncated: the parent only
                chain.append(add(subj, refs=[parent], day=day))
            elif kind < 0.7:                                  # In-Reply-To only
                chain.append(add(subj, in_reply_to=parent, day=day))
            elif kind < 0.8:                                  # broken References, valid In-Reply-To
                chain.append(add(subj, refs=["<not-an-id", "garbage"], in_reply_to=parent, day=day))
            elif kind < 0.88:                                 # a parent never delivered
                chain.append(add(subj, refs=[f"<missing{t}@corpus.test>", parent], day=day))
            else:                                             # no Message-ID of its own
                add(subj, refs=full, msgid=None, day=day)
    # the same subject in unrelated threads, no references at all
    for k in range(4):
        add("Weekly report", day=3 + k % 2)
        add("Re: Weekly report", day=4)
    # duplicate Message-IDs, a reference to itself, a loop
    dup = ids[3]
    add("Duplicate id", msgid=dup, day=5)
    add("Self reference", msgid="<self@corpus.test>", refs=["<self@corpus.test>"], day=6)
    add("Loop a", msgid="<loopa@corpus.test>", refs=["<loopb@corpus.test>"], day=7)
    add("Loop b", msgid="<loopb@corpus.test>", refs=["<loopa@corpus.test>"], day=7)
    # children of one missing parent only: a dummy at the root
    add("Orphan one", refs=["<ghost@corpus.test>"], day=8)
    add("Orphan two", refs=["<ghost@corpus.test>"], day=9)
    # subjects that are only leaders, blobs or trailers; no Subject: at all
    for s in ["Re:", "[list]", "(fwd)", "Re: [list]", None, "   ", "Fwd: Fwd: [fwd: Re: nested]", "[a][b] Re: blobs"]:
        add(s, day=10)
    # message ids of unusual forms: without "@", with comments around, several in In-Reply-To,
    # In-Reply-To with text around the id
    add("No at sign", msgid="<noat>", day=11)
    add("Re: No at sign", refs=["<noat>"], day=12)
    add("Re: No at sign", refs=["<noat>"], day=12)
    first = add("Commented", msgid="<c1@corpus.test> (the first)", day=13)
    add("Re: Commented", refs=["(see) <c1@corpus.test> (this)"], day=14)
    add("Two parents", in_reply_to="<c1@corpus.test> <m5.x@corpus.test>", day=14)
    add("Wordy reply", in_reply_to=f"Your message of Monday {first}", day=15)
    # subjects at the edges of RFC 5256 §2.1
    for subj in ["Re: Re[2]: edges", "RE : edges", "Re:\tedges", "Ré: élan", "=?utf-8?q?Fwd=3A?= edges",
                 "Fwd: edges (fwd) (FWD)", "[fwd: edges] (fwd)", "=?utf-8?q?=5Blist=5D?= Re: edges",
                 "=?bogus?q?x?= edges", "Re: [fwd: [x] edges]"]:
        add(subj, day=16)
    return out


def group_headers(corpus):
    """A few messages whose To:, Cc: or From: start with RFC 5322 §3.4 group syntax."""
    extra = [b"To: undisclosed-recipients:;\r\n", b"To: Team: zoe@x.test, adam@x.test;, kim@x.test\r\n",
             b"Cc: Empty:;, \"Quoted\" <q@x.test>\r\n", b"From: Crew: amy@x.test;\r\n"]
    out = list(corpus)
    for i, h in enumerate(extra):
        msg, internal = out[5 + 7 * i]
        out[5 + 7 * i] = (b"\r\n".join(l for l in msg.split(b"\r\n")[:1]) + b"\r\n" + h
                          + b"\r\n".join(msg.split(b"\r\n")[1:]), internal)
    return out


CORPUS = group_headers(build_corpus())


class Side:
    """One server, logged in, with the corpus APPENDed to a fresh MAILBOX, selected."""

    def __init__(self, port, user, password):
        self.m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        self.m.login(user, password)
        typ, data = self.m.create(MAILBOX)
        assert typ == "OK", data
        for i, (msg, internal) in enumerate(CORPUS):
            flags = "(\\Seen)" if i % 3 == 0 else "()"
            typ, data = self.m.append(MAILBOX, flags, internal, msg)
            assert typ == "OK", data
        typ, data = self.m.select(MAILBOX)
        assert typ == "OK" and int(data[0]) == len(CORPUS), data
        self.uids = self.search_uids()

    def search_uids(self):
        typ, data = self.m.uid("SEARCH", "ALL")
        assert typ == "OK", data
        return [int(x) for x in data[0].split()]

    def run(self, *args, response):
        """The untagged `response` data of one command (joined), or the refusal."""
        try:
            typ, data = self.m._simple_command(*args)
        except imaplib.IMAP4.error as e:
            return f"error {e}"
        if typ != "OK":
            return f"{typ} {data}"
        _, got = self.m._untagged_response(typ, data, response)
        return b" ".join(x for x in got if x).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def sides(dovecot):  # noqa: F811 - pytest fixture by name
    cm, ports = imap_instance("sort-cmp", users=[POSTERN_USER])
    with cm:
        p = Side(ports["imap"], POSTERN_USER, DEFAULT_PASSWORD)
        d = Side(dovecot.port, dovecot.user, dovecot.password)
        assert len(p.uids) == len(d.uids) == len(CORPUS)
        yield p, d
        for s in (p, d):
            try:
                s.m.logout()
            except (OSError, imaplib.IMAP4.error):
                pass


USED = set()


def explain(command, pa, da):
    for name, (why, pred) in {**DOVECOT_DEVIATIONS, **POSTERN_CHOICES}.items():
        if pred(command, pa, da):
            USED.add(name)
            return name
    return None


def to_positions(answer, uids):
    """A UID answer as positions in APPEND order (UIDs differ between the servers)."""
    index = {u: i + 1 for i, u in enumerate(uids)}
    return re.sub(r"\d+", lambda m: str(index.get(int(m.group(0)), "?" + m.group(0))), answer)


def compare(sides, commands):
    p, d = sides
    unexplained = []
    for args, response, uid in commands:
        pa, da = p.run(*args, response=response), d.run(*args, response=response)
        if response == "ESEARCH":
            pa, da = (re.sub(r'^\(TAG "[^"]*"\) ?', "", x) for x in (pa, da))
        if uid:
            pa, da = to_positions(pa, p.uids), to_positions(da, d.uids)
        if pa != da and not explain(args, pa, da):
            unexplained.append(f"{' '.join(args)}\n  postern: {pa}\n  dovecot: {da}")
    assert not unexplained, f"{len(unexplained)} differences:\n" + "\n".join(unexplained)


def test_capabilities(sides):
    p, _ = sides
    typ, data = p.m.capability()   # after LOGIN (imaplib keeps the greeting's list)
    caps = set(data[0].decode().split())
    assert {"SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "ESORT"} <= caps


def test_sort_each_key_and_reverse(sides):
    cmds = []
    for key in KEYS:
        for crit in (f"({key})", f"(REVERSE {key})"):
            cmds.append((("SORT", crit, "UTF-8", "ALL"), "SORT", False))
    compare(sides, cmds)


def test_sort_multiple_keys_and_criteria(sides):
    cmds = [(("SORT", f"({m})", "UTF-8", "ALL"), "SORT", False) for m in MULTI]
    for c in CRITERIA:
        cmds.append((("SORT", "(SUBJECT DATE)", "US-ASCII", c), "SORT", False))
        cmds.append((("UID", "SORT", "(REVERSE ARRIVAL)", "UTF-8", c), "SORT", True))
    compare(sides, cmds)


def test_esort(sides):
    cmds = [(("SORT", "RETURN (MIN MAX COUNT)", f"({k})", "UTF-8", "ALL"), "ESEARCH", False) for k in ("SUBJECT", "REVERSE DATE")]
    cmds.append((("UID", "SORT", "RETURN (ALL COUNT)", "(FROM)", "UTF-8", "NOT SEEN"), "ESEARCH", True))
    cmds.append((("SORT", "RETURN ()", "(SIZE)", "UTF-8", "ALL"), "ESEARCH", False))
    compare(sides, cmds)


def test_thread(sides):
    cmds = []
    for alg in ("REFERENCES", "ORDEREDSUBJECT"):
        cmds.append((("THREAD", alg, "UTF-8", "ALL"), "THREAD", False))
        cmds.append((("UID", "THREAD", alg, "UTF-8", "NOT SEEN"), "THREAD", True))
    compare(sides, cmds)


def test_errors_answer_alike(sides):
    p, d = sides
    for args in (("SORT", "(SUBJECT)", "X-BOGUS-CS", "ALL"), ("THREAD", "REFERENCES", "X-BOGUS-CS", "ALL")):
        pa, da = p.run(*args, response="SORT"), d.run(*args, response="SORT")
        assert pa.startswith("NO") and da.startswith("NO"), (args, pa, da)
        assert "BADCHARSET" in pa


def test_every_rule_is_needed():
    unused = (set(DOVECOT_DEVIATIONS) | set(POSTERN_CHOICES)) - USED
    assert not unused, f"rules that explained nothing: {unused}"
