"""ENVELOPE, BODYSTRUCTURE, BODY[section], BINARY compared with a live Dovecot 2.3: each corpus
message (corpus/: Python's email test data and generated hostile MIME) is APPENDed with the same
bytes to both servers, FETCHed item by item and part by part, and both answers are parsed and
compared value by value (case-insensitive MIME tokens case-folded). A difference fails the test
unless a rule of DOVECOT_DEVIATIONS (Dovecot is the one deviating, with the RFC text) or
POSTERN_CHOICES (the RFCs leave it open, or a documented limit of Postern's) explains it; a rule
that explains nothing fails too. POSTERN_DOVECOT_SUMMARY=file writes the totals and every
explained difference there.

    POSTERN_BIN=$(swift build --show-bin-path) python3 -m pytest -q Tests/integration/test_imap_dovecot.py
"""
import json
import os
import re
import socket

import pytest

import corpus
from conftest import DEFAULT_PASSWORD
from dovecot_fixture import dovecot  # noqa: F401 - the fixture is used by name
from imap_support import imap_instance

POSTERN_USER = "cmp@example.test"
IO_TIMEOUT = 30
MESSAGES = corpus.all_messages()
SUMMARY_PATH = os.environ.get("POSTERN_DOVECOT_SUMMARY", "")

# Every difference must be explained by one rule of these two tables, or the test fails. A rule is
# (why, predicate(message name, Diff)); `Diff.key()` is the FETCH item as the response names it
# (or "<items> (status)" for the tagged status), then "/" and the index path inside the value.

def _in(*names):
    return lambda name, d: name in names


_STRUCT = ("BODYSTRUCTURE/", "BODY/")

# Dovecot is the one deviating: the RFC text that says so.
DOVECOT_DEVIATIONS = {
    "missing-domain": (
        "RFC 9051 §9 addr-host: 'NIL indicates [RFC5322] group syntax. Otherwise, holds [RFC5322] "
        "domain name' (likewise addr-mailbox: the local-part). Dovecot invents MISSING_DOMAIN / "
        "MISSING_MAILBOX for an address without one; Postern writes the empty string it found.",
        lambda name, d: d.key().startswith("ENVELOPE/") and d.postern == b""
        and d.dovecot in (b"MISSING_DOMAIN", b"MISSING_MAILBOX")),
    "unfolding": (
        "RFC 5322 §2.2.3: 'Unfolding is accomplished by simply removing any CRLF that is immediately "
        "followed by WSP.' Dovecot also turns the WSP after the fold into one space.",
        lambda name, d: d.key().startswith("ENVELOPE/") and isinstance(d.postern, bytes)
        and isinstance(d.dovecot, bytes) and d.postern != d.dovecot
        and re.sub(rb"[ \t]+", b" ", d.postern) == d.dovecot),
    "close-delimiter-crlf": (
        "RFC 2046 §5.1.1: 'The CRLF preceding the boundary delimiter line is conceptually attached "
        "to the boundary'. After a nested multipart's close delimiter, and at the end of a "
        "message/rfc822 part, Dovecot counts that CRLF into the part (2 octets and 1 line more "
        "than Postern, whose part ends before it).",
        lambda name, d: (isinstance(d.postern, bytes) and isinstance(d.dovecot, bytes)
                         and d.dovecot == d.postern + b"\r\n" and re.match(r"(BODY|BINARY)\[\d", d.key()))
        or (d.key().startswith(_STRUCT + ("BINARY.SIZE[",)) and isinstance(d.postern, str)
            and isinstance(d.dovecot, str) and d.postern.isdigit() and d.dovecot.isdigit()
            and int(d.dovecot) - int(d.postern) in (1, 2)
            and name in ("rfc822_in_multipart", "rfc822_base64", "digest", "boundary_prefix"))),
    "message-global": (
        "RFC 9051 §9: media-message = DQUOTE \"MESSAGE\" DQUOTE SP DQUOTE (\"RFC822\" / \"GLOBAL\") "
        "DQUOTE, and body-type-msg = media-message SP body-fields SP envelope SP body SP "
        "body-fld-lines. Dovecot 2.3 writes message/global as a basic body (no envelope, no "
        "encapsulated body), so its part 1 has no parts or header sections of its own.",
        lambda name, d: name == "message_global_and_partial"
        and d.key().startswith(("BODYSTRUCTURE/0", "BODY/0", "BODY[1.", "BINARY[1.", "BINARY.SIZE[1.",
                                "BINARY.PEEK[1.", "BODY.PEEK[1."))),
    "append-rewrites-message": (
        "RFC 9051 §6.3.12: 'The APPEND command appends the literal argument as a new message'; "
        "RFC 3516 §4.4: 'If the destination mailbox does not support the storage of binary content, "
        "the server MUST fail the request and issue a NO response that contains the UNKNOWN-CTE "
        "extended response code.' Dovecot stores other bytes than it was given: bare CR / bare LF "
        "line ends rewritten, binary content re-encoded as base64, NUL replaced by 0x80. Every "
        "answer about these messages then differs.",
        lambda name, d: name in REWRITTEN_BY_DOVECOT),
    "binary-disconnect": (
        "RFC 9051 §2.2.2: 'The server completes a command and indicates success or failure with a "
        "tagged status response'. Dovecot closes the connection on BINARY of a base64 part whose "
        "data is corrupt ('Base64 data ends prematurely').",
        lambda name, d: d.key().endswith(" (status)") and d.dovecot == CONNECTION_CLOSED
        or (d.key().endswith("#present") and name == "msg_39" and d.key().startswith("BINARY"))),
    "binary-size-refused": (
        "RFC 9051 §6.4.5 / RFC 3516 §4.2: BINARY.SIZE[part] is 'the size of the section after "
        "removing any Content-Transfer-Encoding'; UNKNOWN-CTE is for an encoding the server does "
        "not know. Dovecot 2.3.19 answers NO [UNKNOWN-CTE] or NO [PARSE] to BINARY.SIZE of parts "
        "whose BINARY it serves; Postern's size is checked against Dovecot's BINARY instead.",
        lambda name, d: d.binary_size_checked == "dovecot"),
    "invalid-content-type": (
        "RFC 2045 §5.2: the default text/plain; charset=us-ascii 'is also recommended ... when a "
        "syntactically invalid Content-Type header field is encountered'; RFC 2046 §5.1.1: 'The "
        "only mandatory global parameter for the \"multipart\" media type is the boundary "
        "parameter'. Dovecot echoes an empty or subtype-less type (\"\" \"\", \"garbage\" \"\") "
        "and keeps a multipart without a boundary as a multipart with one empty part; it also "
        "writes an unparsable Content-Disposition (a quoted type, RFC 2183 §2 says token) as (\"\" NIL).",
        lambda name, d: (name in ("msg_14", "msg_25", "msg_33", "msg_41")
                         and d.key().startswith(_STRUCT + ("BODY[1", "BINARY[1", "BINARY.SIZE[1")))
        or (name == "empty_fields" and d.key() in [f"{k}{i}" for k in _STRUCT for i in ("#len", 0, 1, 2, 7)])
        or (name == "extension_fields" and d.key().startswith(tuple(
            f"{k}{i}" for i in (3, 4, 5) for k in ("BODYSTRUCTURE/", "BODY/"))))),
    "header-fields-blank-line": (
        "RFC 3501 §6.4.5: 'the blank line is included in all header fetches, except in the case of "
        "a message which has no body and no blank line.' Dovecot's HEADER.FIELDS adds a blank line "
        "to a header that has none (its HEADER.FIELDS.NOT of the same header does not).",
        lambda name, d: d.key().startswith("BODY[HEADER.FIELDS (") and isinstance(d.postern, bytes)
        and isinstance(d.dovecot, bytes) and d.dovecot == d.postern + b"\r\n"),
    "header-fields-not-overrun": (
        "RFC 9051 §6.4.5: HEADER.FIELDS.NOT after a part number is the header of the message "
        "encapsulated in that MESSAGE/RFC822 part, a subset of it. For a (transfer-encoded) message "
        "part Dovecot also returns the multipart's close delimiter line that follows the part.",
        lambda name, d: ".HEADER.FIELDS.NOT" in d.key() and isinstance(d.postern, bytes)
        and isinstance(d.dovecot, bytes) and d.dovecot.startswith(d.postern)
        and re.fullmatch(rb"--[^\r\n]*--\r\n", d.dovecot[len(d.postern):]) is not None),
    "header-fields-not-unterminated": (
        "RFC 5322 §2.2: header fields are lines '... terminated by CRLF'. For HEADER.FIELDS.NOT of "
        "a header without a final line end Dovecot returns the last field unterminated (its "
        "HEADER.FIELDS of the same header ends it with CRLF, as Postern does for both).",
        lambda name, d: d.key().startswith("BODY[HEADER.FIELDS.NOT")
        and isinstance(d.postern, bytes) and isinstance(d.dovecot, bytes) and d.postern == d.dovecot + b"\r\n"
        and not d.dovecot.endswith(b"\n")),
}

# Where the RFCs leave the answer open, or a documented limit of Postern's: both are allowed.
POSTERN_CHOICES = {
    "nesting-limit": (
        "MIMELimits.maxDepth = 32 (Sources/MIME/Limits.swift): deeper containers become opaque "
        "application/octet-stream leaves, so hostile nesting costs bounded stack and time. Dovecot "
        "allows 100 levels.",
        _in("nest40", "nestmsg40")),
    "8bit-header-bytes": (
        "RFC 6532 allows only UTF-8 in header fields; ENVELOPE and BODYSTRUCTURE strings are kept "
        "as Swift Strings, so invalid UTF-8 (raw latin-1) becomes U+FFFD where Dovecot passes the bytes.",
        lambda name, d: name == "latin1_headers" and isinstance(d.postern, bytes) and b"\xef\xbf\xbd" in d.postern),
    "junk-header-lines": (
        "RFC 5322 §2.1/§3.5: a header is a sequence of fields. A part whose first line is no field "
        "and is not followed by one has no header (MessageParser.parseHeader); Dovecot reads such "
        "lines as a broken header up to the first empty line.",
        lambda name, d: name in ("msg_19", "msg_38", "header_continuation_first")),
    "duplicate-fields": (
        "RFC 5322 §3.6 allows one Subject; for a message with several Postern uses the first, "
        "Dovecot the last (repeated address fields both join).",
        lambda name, d: name == "duplicate_fields" and d.key() == "ENVELOPE/1"),
    "empty-field-values": (
        "RFC 9051 §9 body-fld-id / -desc / -md5 / -loc and envelope strings are nstrings: Postern "
        "treats an empty header field as absent (NIL), Dovecot writes \"\"; an empty "
        "Content-Transfer-Encoding is 7bit (RFC 2045 §6.1 default) where Dovecot answers UNKNOWN-CTE.",
        lambda name, d: name == "empty_fields"),
    "lenient-decoding": (
        "RFC 3516 and RFC 9051 §6.4.5 do not say what BINARY returns for corrupt base64 / "
        "quoted-printable; Postern decodes what it can (TransferDecoder), Dovecot answers NO [PARSE] "
        "(then Postern's BINARY.SIZE is checked against its own BINARY).",
        lambda name, d: d.key().startswith("BINARY") and (d.dovecot_status == "NO [PARSE]"
                                                         or d.binary_size_checked == "postern")),
    "garbled-address-lists": (
        "RFC 5322 §3.4 gives no reading of invalid address lists: Postern keeps parsing after "
        "'a@b@c' and '<>' (and after the junk of a header whose lines end in bare CR, RFC 5322 §2.2, "
        "so one field), and trims the Message-ID value; Dovecot stops at the first error and keeps "
        "trailing blanks.",
        lambda name, d: name in ("address_oddities", "cr_only" + AS_STORED) and d.key().startswith("ENVELOPE/")),
}

CONNECTION_CLOSED = "(connection closed)"


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
        """(status, {ITEM NAME: value}) of `UID FETCH uid (items)`: the status word with the
        response code ("NO [UNKNOWN-CTE]"), the FETCH responses of the message merged, UID left out."""
        status, line, untagged = self.command(f"UID FETCH {uid} ({items})")
        out = {}
        for resp in parse_responses(untagged):
            if len(resp) >= 4 and resp[0] == "*" and str(resp[2]).upper() == "FETCH":
                kv = resp[3]
                for i in range(0, len(kv) - 1, 2):
                    name = str(kv[i]).upper()
                    if name != "UID":
                        out[name] = kv[i + 1]
        code = re.match(rb"\S+ \S+ (\[[^\]]*\])", line)
        return status + (" " + code.group(1).decode("latin-1") if code and status != "OK" else ""), out

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
        # Dovecot's tagged status for the FETCH that showed the difference.
        self.dovecot_status = None
        # Whose BINARY[p] length Postern's BINARY.SIZE[p] was checked against, when Dovecot refused it.
        self.binary_size_checked = None

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


def explain(name, d):
    """The name of the rule that allows difference `d` of message `name`, or None."""
    for table in (DOVECOT_DEVIATIONS, POSTERN_CHOICES):
        for rule, (_why, applies) in table.items():
            if applies(name, d):
                return rule
    return None


# ---------------------------------------------------------------------------------------------
# The servers

NEEDS_BINARY_APPEND = {"nul_bytes", "nul_in_part"}
# Messages Dovecot stores with other bytes (rule append-rewrites-message). Each is compared a
# second time as "<name>@dovecot-bytes": the bytes Dovecot kept, APPENDed to Postern too.
REWRITTEN_BY_DOVECOT = ("nul_bytes", "lf_only", "cr_only", "mixed_line_ends")
AS_STORED = "@dovecot-bytes"


class Servers:
    """Both servers, a logged-in client for each (re-connected when a server drops one), the
    UIDs of the corpus messages on each, and the running totals."""

    def __init__(self, postern_port, dovecot):
        self.postern_port, self.dovecot = postern_port, dovecot
        self.pc = Client(postern_port, POSTERN_USER, DEFAULT_PASSWORD)
        self.dc = self.dovecot_client()
        self.uids = {}
        self.stats = {"messages": 0, "fetches": 0, "fields": 0, "case_folded": 0,
                      "allowed": {}, "differences": []}

    def dovecot_client(self):
        return Client(self.dovecot.port, self.dovecot.user, self.dovecot.password)

    def fetch_dovecot(self, uid, items):
        try:
            return self.dc.fetch(uid, items)
        except (EOFError, OSError):
            self.dc = self.dovecot_client()
            return CONNECTION_CLOSED, {}


@pytest.fixture(scope="module")
def servers(dovecot):  # noqa: F811 - pytest fixture by name
    cm, ports = imap_instance("dovecot-cmp", users=[POSTERN_USER])
    with cm as p:
        sv = Servers(ports["imap"], dovecot)
        for name, msg in MESSAGES:
            binary = name in NEEDS_BINARY_APPEND
            sv.uids[name] = (sv.pc.append(msg, binary), sv.dc.append(msg, binary))
        for name in REWRITTEN_BY_DOVECOT:
            du = sv.uids[name][1]
            _, v = sv.dc.fetch(du, "BODY.PEEK[]")
            stored = v.get("BODY[]")
            assert stored is not None and stored != dict(MESSAGES)[name], f"Dovecot keeps {name} as it is now"
            sv.uids[name + AS_STORED] = (sv.pc.append(stored, b"\0" in stored), du)
        yield sv
        sv.pc.close()
        sv.dc.close()
        st = sv.stats
        if SUMMARY_PATH:
            with open(SUMMARY_PATH, "w") as f:
                json.dump(st, f, indent=1)
        print(f"\ncompared {st['messages']} messages: {st['fetches']} FETCH commands, {st['fields']} fields "
              f"({st['case_folded']} case-folded tokens); allowed differences by rule: {len(st['allowed'])} rules "
              f"{ {k: len(v) for k, v in st['allowed'].items()} }; unexplained: {len(st['differences'])}")


TOP_ITEMS = ("ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
             "BODY.PEEK[HEADER.FIELDS (From Subject Date)] BODY.PEEK[HEADER.FIELDS.NOT (Received)] "
             "BODY.PEEK[]<10.50>")


def fetch_both(sv, uids, items, diffs):
    """FETCHes `items` from both servers and adds the differences to `diffs`; returns both answers."""
    (pu, du) = uids
    ps, pv = sv.pc.fetch(pu, items)
    ds, dv = sv.fetch_dovecot(du, items)
    sv.stats["fetches"] += 1
    mine = []
    n = compare(f"{items} (status)", ps, ds, "", mine)
    for key in sorted(set(pv) | set(dv)):
        if key not in pv or key not in dv:
            mine.append(Diff(key, "#present", key in pv, key in dv))
            n += 1
            continue
        a, b = pv[key], dv[key]
        if key in ("BODY", "BODYSTRUCTURE"):
            folded = [0]
            a, b = fold_case_insensitive(a, folded), fold_case_insensitive(b, folded)
            sv.stats["case_folded"] += folded[0]
        n += compare(key, a, b, "", mine)
    for d in mine:
        d.dovecot_status = ds
    diffs += mine
    sv.stats["fields"] += n
    return (ps, pv), (ds, dv)


def binary_size_both(sv, uids, p, binary_answers, diffs):
    """BINARY.SIZE[p] on both. Where Dovecot refuses it, Postern's size is checked against the
    length of Dovecot's BINARY[p] (rule binary-size-refused), or of Postern's own where Dovecot
    refused that too as unparsable (rule lenient-decoding)."""
    mine = []
    (ps, pv), (ds, dv) = fetch_both(sv, uids, f"BINARY.SIZE[{p}]", mine)
    (pbs, pbv), (dbs, dbv) = binary_answers
    whose = None
    if ds.startswith("NO") and dbs == "OK" and f"BINARY[{p}]" in dbv:
        whose, want = "dovecot", str(len(dbv[f"BINARY[{p}]"]))
    elif ds.startswith("NO") and dbs == "NO [PARSE]" and pbs == "OK" and f"BINARY[{p}]" in pbv:
        whose, want = "postern", str(len(pbv[f"BINARY[{p}]"]))
    if whose:
        got = pv.get(f"BINARY.SIZE[{p}]")
        sv.stats["fields"] += 1
        if ps == "OK" and got == want:
            for d in mine:
                d.binary_size_checked = whose
        else:
            mine.append(Diff(f"BINARY.SIZE[{p}]", f"vs len({whose} BINARY)", got, want))
    diffs += mine


def test_corpus_has_the_python_email_messages():
    """The corpus must hold Python's email test messages (Debian libpython3.11-testsuite, in the
    Makefile's TEST_PKGS), not only the generated ones."""
    n = len(corpus.python_testsuite_messages())
    assert n >= 40, f"{n} msg_*.txt in {corpus.PYTHON_EMAIL_DATA}: install libpython3.11-testsuite"


@pytest.mark.parametrize("name", [n for n, _ in MESSAGES] + [n + AS_STORED for n in REWRITTEN_BY_DOVECOT])
def test_fetch_matches_dovecot(servers, name):
    sv = servers
    pu, du = sv.uids[name]
    if isinstance(du, str):
        assert isinstance(pu, str), f"Dovecot refused the APPEND ({du}), Postern took it as UID {pu}"
        pytest.skip(f"both servers refuse the message: postern {pu!r}, dovecot {du!r}")
    assert not isinstance(pu, str), f"Postern refused the APPEND Dovecot accepted: {pu}"
    diffs = []
    (_, pv), (_, dv) = fetch_both(sv, (pu, du), TOP_ITEMS, diffs)
    # Every part either server's BODYSTRUCTURE names, and one past the last top-level part.
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
            items += (f" BODY.PEEK[{p}.HEADER] BODY.PEEK[{p}.TEXT] BODY.PEEK[{p}.HEADER.FIELDS (From Subject Date)]"
                      f" BODY.PEEK[{p}.HEADER.FIELDS.NOT (Received)]")
        fetch_both(sv, (pu, du), items, diffs)
        if node is not None and not is_multipart(node) and not is_message(node):
            binary_answers = fetch_both(sv, (pu, du), f"BINARY.PEEK[{p}]", diffs)
            binary_size_both(sv, (pu, du), p, binary_answers, diffs)
    sv.stats["messages"] += 1
    unexplained = []
    for d in diffs:
        rule = explain(name, d)
        if rule:
            sv.stats["allowed"].setdefault(rule, []).append(f"{name}: {d!r}")
        else:
            unexplained.append(d)
    sv.stats["differences"] += [f"{name}: {d!r}" for d in unexplained]
    assert not unexplained, (f"{name}: {len(unexplained)} differences from Dovecot:\n"
                             + "\n".join(map(repr, unexplained)))


def test_every_rule_is_needed(servers):
    """Runs last (pytest keeps file order): a rule no difference needed any more is stale."""
    if servers.stats["messages"] < len(MESSAGES) + len(REWRITTEN_BY_DOVECOT):
        pytest.skip("not every message was compared in this run")
    used = set(servers.stats["allowed"])
    stale = [r for r in list(DOVECOT_DEVIATIONS) + list(POSTERN_CHOICES) if r not in used]
    assert not stale, f"rules that explain no difference any more: {stale}"
