"""ENVELOPE, BODYSTRUCTURE, BODY[section], BINARY compared with a live Dovecot 2.3: each corpus
message (corpus/: Python's email test data and generated hostile MIME) is APPENDed with the same
bytes to both servers, FETCHed item by item and part by part, and both answers are parsed and
compared value by value. A difference fails the test unless DOVECOT_DEVIATIONS (Dovecot is the
one deviating, with the RFC text) or POSTERN_LIMITS (a documented limit of Postern's) names it.
"""
import fnmatch
import json
import os
import re
import socket

import pytest

import corpus
from conftest import DEFAULT_PASSWORD
from dovecot_fixture import dovecot, dovecot_binary  # noqa: F401 - the fixture is used by name
from imap_support import imap_instance

POSTERN_USER = "cmp@example.test"
IO_TIMEOUT = 30
MESSAGES = corpus.all_messages()
SUMMARY_PATH = os.environ.get("POSTERN_DOVECOT_SUMMARY", "")

# (message glob, item glob) -> why Dovecot, not Postern, is the one that deviates. Item names are
# as the FETCH response names them, then "/" and the path inside the value (see `compare`).
DOVECOT_DEVIATIONS = {
}

# (message glob, item glob) -> a deliberate limit of Postern's, where both answers are allowed.
POSTERN_LIMITS = {
}


# ---------------------------------------------------------------------------------------------
# A small IMAP response parser: atoms, quoted strings, literals (and literal8), NIL, lists.

class Atom(str):
    """An IMAP atom (numbers and NIL's relatives included); strings are bytes, NIL is None."""


class ParseError(Exception):
    pass


_ATOM_END = b" ()\r\n\"{"


def parse_responses(data):
    """The responses in `data`, each a list of top-level values: Atom, bytes (quoted or literal),
    None (NIL), list. An item name with a section (`BODY[1.HEADER.FIELDS (FROM)]<10>`) is one Atom."""
    pos = 0
    out = []
    while pos < len(data):
        values, pos = _parse_values(data, pos, top=True)
        out.append(values)
    return out


def _parse_values(data, pos, top):
    values = []
    while True:
        if pos >= len(data):
            if top:
                return values, pos
            raise ParseError("unterminated list")
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"\r" and data[pos:pos + 2] == b"\r\n":
            if not top:
                raise ParseError(f"line end inside a list at {pos}")
            return values, pos + 2
        elif c == b"(":
            v, pos = _parse_values(data, pos + 1, top=False)
            values.append(v)
        elif c == b")":
            if top:
                raise ParseError(f"unbalanced ) at {pos}")
            return values, pos + 1
        elif c == b'"':
            v, pos = _quoted(data, pos + 1)
            values.append(v)
        elif c == b"{" or data[pos:pos + 2] == b"~{":
            v, pos = _literal(data, pos)
            values.append(v)
        else:
            v, pos = _atom(data, pos)
            values.append(None if v.upper() == "NIL" else v)


def _quoted(data, pos):
    buf = bytearray()
    while pos < len(data):
        c = data[pos]
        if c == 0x5C:  # backslash
            buf.append(data[pos + 1])
            pos += 2
        elif c == 0x22:
            return bytes(buf), pos + 1
        else:
            buf.append(c)
            pos += 1
    raise ParseError("unterminated quoted string")


def _literal(data, pos):
    m = re.compile(rb"~?\{(\d+)\+?\}\r\n").match(data, pos)
    if not m:
        raise ParseError(f"bad literal at {pos}: {data[pos:pos + 20]!r}")
    n = int(m.group(1))
    start = m.end()
    if start + n > len(data):
        raise ParseError("literal runs past the data")
    return data[start:start + n], start + n


def _atom(data, pos):
    start = pos
    depth = 0
    while pos < len(data):
        c = data[pos:pos + 1]
        if c == b"[":
            depth += 1
        elif c == b"]":
            depth -= 1
        elif depth == 0 and c in (b" ", b"(", b")", b"\r", b"\n", b'"', b"{"):
            break
        pos += 1
    if pos == start:
        raise ParseError(f"empty atom at {pos}: {data[pos:pos + 20]!r}")
    return Atom(data[start:pos].decode("latin-1")), pos


# ---------------------------------------------------------------------------------------------
# A client that keeps the raw bytes of every response

class Client:
    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.f = self.sock.makefile("rb")
        self.n = 0
        self.f.readline()
        status, _, data = self.command(f'LOGIN "{user}" "{password}"')
        assert status == "OK", data
        status, _, data = self.command("SELECT INBOX")
        assert status == "OK", data

    def _read_response(self):
        """One response line, with its literals inlined, as the raw bytes."""
        buf = b""
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("connection closed")
            buf += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if not m:
                return buf
            buf += self.f.read(int(m.group(1)))

    def _until_tag(self, tag):
        untagged = b""
        while True:
            r = self._read_response()
            if r.startswith(tag.encode() + b" "):
                words = r.split(b" ", 2)
                return words[1].decode(), r, untagged
            untagged += r

    def command(self, text):
        """(status word, tagged line, untagged bytes)."""
        self.n += 1
        tag = f"c{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        return self._until_tag(tag)

    def append(self, message, binary):
        """UID of the APPENDed message, or the refusal (a str)."""
        self.n += 1
        tag = f"c{self.n}"
        lit = ("~" if binary else "") + "{%d}" % len(message)
        self.sock.sendall(f"{tag} APPEND INBOX {lit}\r\n".encode())
        r = self._read_response()
        if not r.startswith(b"+"):
            return r.decode("latin-1").strip()
        self.sock.sendall(message + b"\r\n")
        status, line, _ = self._until_tag(tag)
        m = re.search(rb"APPENDUID \d+ (\d+)", line)
        if status != "OK" or not m:
            return line.decode("latin-1").strip()
        return int(m.group(1))

    def fetch(self, uid, items):
        """(status word, {ITEM NAME: value}) of `UID FETCH uid (items)`; the FETCH responses for
        the message are merged; UID itself is left out."""
        status, line, untagged = self.command(f"UID FETCH {uid} ({items})")
        out = {}
        for resp in parse_responses(untagged):
            if len(resp) >= 4 and resp[0] == "*" and str(resp[2]).upper() == "FETCH":
                kv = resp[3]
                for i in range(0, len(kv) - 1, 2):
                    name = str(kv[i]).upper()
                    if name != "UID":
                        out[name] = kv[i + 1]
        if status != "OK":
            out["(status)"] = line.split(b" ", 2)[2].split(b"]")[0].decode("latin-1") if b"[" in line else status
        return status, out

    def close(self):
        try:
            self.command("LOGOUT")
        except (OSError, EOFError):
            pass
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# Walking BODYSTRUCTURE

def is_multipart(node):
    return isinstance(node, list) and bool(node) and isinstance(node[0], list)


def children(node):
    """The bodies of a multipart: the lists before its subtype (RFC 9051 §9 body-type-mpart)."""
    out = []
    for c in node:
        if not isinstance(c, list):
            break
        out.append(c)
    return out


def is_message(node):
    return (isinstance(node, list) and len(node) >= 10 and isinstance(node[0], bytes)
            and node[0].lower() == b"message" and isinstance(node[1], bytes)
            and node[1].lower() in (b"rfc822", b"global") and isinstance(node[8], list))


def part_paths(body):
    """[(path, node)] for every part a BODY[path] can name (RFC 9051 §6.4.5)."""
    out = []

    def walk(node, path):
        if is_multipart(node):
            for i, child in enumerate(children(node), 1):
                out.append((path + [i], child))
                walk(child, path + [i])
        elif is_message(node) and path:
            inner = node[8]
            if is_multipart(inner):
                walk(inner, path)
            else:
                out.append((path + [1], inner))
                walk(inner, path + [1])

    if is_multipart(body):
        walk(body, [])
    elif isinstance(body, list):
        out.append(([1], body))
        walk(body, [1])
    return out


def dotted(path):
    return ".".join(map(str, path))


# ---------------------------------------------------------------------------------------------
# Comparing

class Diff:
    def __init__(self, item, where, postern, dovecot_value):
        self.item, self.where, self.postern, self.dovecot = item, where, postern, dovecot_value

    def key(self):
        return f"{self.item}/{self.where}" if self.where else self.item

    def __repr__(self):
        return f"{self.key()}: postern={_short(self.postern)} dovecot={_short(self.dovecot)}"


def _short(v, n=160):
    r = repr(v)
    return r if len(r) <= n else r[:n] + f"...({len(r)} chars)"


def compare(item, a, b, where, diffs):
    """Value-by-value comparison; returns the number of leaf values compared."""
    if isinstance(a, list) and isinstance(b, list):
        n = 0
        if len(a) != len(b):
            diffs.append(Diff(item, f"{where}#len", len(a), len(b)))
            n += 1
        for i, (x, y) in enumerate(zip(a, b)):
            n += compare(item, x, y, f"{where}/{i}" if where else str(i), diffs)
        return n
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        diffs.append(Diff(item, where, a, b))
    elif a != b:
        diffs.append(Diff(item, where, a, b))
    return 1


# RFC 2045 §5.1: "The type, subtype, and parameter names are not case sensitive."; RFC 2045 §6.1
# (transfer encoding: "case-insensitive"); RFC 2183 §2 (disposition type and parameter names).
# Dovecot keeps these as written, Postern writes them lowercased: both are right, so they are
# compared case-insensitively (each such case difference is counted in the summary).
def fold_case_insensitive(node, counter):
    """A copy of a `body` value with the case-insensitive tokens lowercased."""
    def low(v):
        if isinstance(v, bytes) and v.lower() != v:
            counter[0] += 1
            return v.lower()
        return v

    def params(p):
        if not isinstance(p, list):
            return p
        return [low(v) if i % 2 == 0 else v for i, v in enumerate(p)]

    def disposition(d):
        if not isinstance(d, list) or len(d) < 2:
            return d
        return [low(d[0]), params(d[1])] + d[2:]

    if not isinstance(node, list) or not node:
        return node
    node = list(node)
    if is_multipart(node):
        n = len(children(node))
        for i in range(n):
            node[i] = fold_case_insensitive(node[i], counter)
        if len(node) > n:
            node[n] = low(node[n])
        if len(node) > n + 1:
            node[n + 1] = params(node[n + 1])
        if len(node) > n + 2:
            node[n + 2] = disposition(node[n + 2])
        return node
    message = is_message(node)
    text = isinstance(node[0], bytes) and node[0].lower() == b"text"
    node[0], node[1] = low(node[0]), low(node[1])
    if len(node) > 2:
        node[2] = params(node[2])
    if len(node) > 5:
        node[5] = low(node[5])
    if message:
        node[8] = fold_case_insensitive(node[8], counter)
    ext = 10 if message else 8 if text else 7   # body-ext-1part: md5, then disposition
    if len(node) > ext + 1:
        node[ext + 1] = disposition(node[ext + 1])
    return node


def allowed(name, key):
    for table in (DOVECOT_DEVIATIONS, POSTERN_LIMITS):
        for (mpat, ipat), _why in table.items():
            if fnmatch.fnmatchcase(name, mpat) and fnmatch.fnmatchcase(key, ipat):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# The servers

NEEDS_BINARY_APPEND = {"nul_bytes", "nul_in_part"}


@pytest.fixture(scope="module")
def servers(dovecot):  # noqa: F811 - pytest fixture by name
    cm, ports = imap_instance("dovecot-cmp", users=[POSTERN_USER])
    with cm as p:
        pc = Client(ports["imap"], POSTERN_USER, DEFAULT_PASSWORD)
        dc = Client(dovecot.port, dovecot.user, dovecot.password)
        uids = {}
        for name, msg in MESSAGES:
            binary = name in NEEDS_BINARY_APPEND
            uids[name] = (pc.append(msg, binary), dc.append(msg, binary))
        stats = {"messages": 0, "fields": 0, "fetches": 0, "case_folded": 0, "differences": [], "allowed": []}
        yield pc, dc, uids, stats
        pc.close()
        dc.close()
        if SUMMARY_PATH:
            with open(SUMMARY_PATH, "w") as f:
                json.dump(stats, f, indent=1)
        print(f"\ncompared {stats['messages']} messages, {stats['fetches']} FETCH commands, "
              f"{stats['fields']} fields; {len(stats['allowed'])} allowed differences")


TOP_ITEMS = ("ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
             "BODY.PEEK[HEADER.FIELDS (From Subject Date)] BODY.PEEK[HEADER.FIELDS.NOT (Received)] "
             "BODY.PEEK[]<10.50>")


def fetch_both(pc, dc, uids, items, stats, name, diffs):
    (pu, du) = uids
    ps, pv = pc.fetch(pu, items)
    ds, dv = dc.fetch(du, items)
    stats["fetches"] += 1
    n = compare(f"[{items}]status", ps, ds, "", diffs)
    for key in sorted(set(pv) | set(dv)):
        if key not in pv or key not in dv:
            diffs.append(Diff(key, "#present", key in pv, key in dv))
            n += 1
        else:
            a, b = pv[key], dv[key]
            if key in ("BODY", "BODYSTRUCTURE"):
                folded = [0]
                a, b = fold_case_insensitive(a, folded), fold_case_insensitive(b, folded)
                stats["case_folded"] += folded[0]
            n += compare(key, a, b, "", diffs)
    stats["fields"] += n
    return pv, dv


@pytest.mark.parametrize("name", [n for n, _ in MESSAGES])
def test_fetch_matches_dovecot(servers, name):
    pc, dc, uids, stats = servers
    pu, du = uids[name]
    if isinstance(du, str):
        assert isinstance(pu, str), f"Dovecot refused the APPEND ({du}), Postern took it as UID {pu}"
        pytest.skip(f"both servers refuse the message: postern {pu!r}, dovecot {du!r}")
    assert not isinstance(pu, str), f"Postern refused the APPEND Dovecot accepted: {pu}"
    diffs = []
    pv, dv = fetch_both(pc, dc, (pu, du), TOP_ITEMS, stats, name, diffs)
    paths = {}
    for body in (dv.get("BODYSTRUCTURE"), pv.get("BODYSTRUCTURE")):
        for path, node in part_paths(body or []):
            paths.setdefault(tuple(path), node)
    top = dv.get("BODYSTRUCTURE") or []
    nonexistent = (len(children(top)) if is_multipart(top) else 1) + 1
    paths.setdefault((nonexistent,), None)
    for path in sorted(paths):
        node = paths[path]
        p = dotted(path)
        items = f"BODY.PEEK[{p}] BODY.PEEK[{p}.MIME]"
        if node is not None and is_message(node):
            items += f" BODY.PEEK[{p}.HEADER] BODY.PEEK[{p}.TEXT]"
        fetch_both(pc, dc, (pu, du), items, stats, name, diffs)
        if node is not None and not is_multipart(node) and not is_message(node):
            fetch_both(pc, dc, (pu, du), f"BINARY.PEEK[{p}]", stats, name, diffs)
            fetch_both(pc, dc, (pu, du), f"BINARY.SIZE[{p}]", stats, name, diffs)
    stats["messages"] += 1
    unexpected = [d for d in diffs if not allowed(name, d.key())]
    stats["allowed"] += [f"{name}: {d!r}" for d in diffs if allowed(name, d.key())]
    stats["differences"] += [f"{name}: {d!r}" for d in unexpected]
    assert not unexpected, f"{name}: {len(unexpected)} differences from Dovecot:\n" + "\n".join(map(repr, unexpected))
