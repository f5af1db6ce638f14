"""The MIME corpus test_imap_dovecot.py APPENDs to Postern and Dovecot: every msg_*.txt of
Python's email test data (Debian libpython3.11-testsuite) with CRLF line ends, and generated
hostile messages. Deterministic: the same names and bytes on every run."""
import base64
import glob
import os

PYTHON_EMAIL_DATA = "/usr/lib/python3.11/test/test_email/data"
# Beyond MessageParser's MIMELimits.maxDepth (32): the deeper containers become opaque leaves.
NEST_DEPTH = 40
LONG_LINE = 20_000
MANY_RECIPIENTS = 400


def crlf(data):
    """Every line end (CRLF, bare LF) as CRLF; a bare CR stays."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def python_testsuite_messages():
    """[(name, bytes)] of the Python email test messages, CRLF; [] when the package is absent."""
    out = []
    for path in sorted(glob.glob(os.path.join(PYTHON_EMAIL_DATA, "msg_*.txt"))):
        with open(path, "rb") as f:
            out.append((os.path.basename(path)[:-4], crlf(f.read())))
    return out


def _msg(head, body):
    """A message from header lines and body text (str, \\n line ends) as CRLF bytes."""
    text = head.rstrip("\n") + "\n\n" + body
    return crlf(text.encode("utf-8"))


BASIC = ("From: Alice Example <alice@example.test>\nTo: bob@example.test\nDate: Sun, 06 Dec 2026 03:00:00 +0000\n"
         "Message-ID: <{name}@corpus.test>\nMIME-Version: 1.0\n")


def _basic(name, extra=""):
    return BASIC.format(name=name) + extra


def _mime(name, subject, content_type, body):
    """A message with the basic header, `subject` and `content_type`, and `body`."""
    return _msg(_basic(name, f"Subject: {subject}\nContent-Type: {content_type}\n"), body)


def _nested(depth):
    head = _basic("nest40", "Subject: nested {0} deep\nContent-Type: multipart/mixed; boundary=\"b0\"\n".format(depth))
    body = ""
    for i in range(1, depth):
        body += f"--b{i - 1}\nContent-Type: multipart/mixed; boundary=\"b{i}\"\n\n"
    body += f"--b{depth - 1}\nContent-Type: text/plain\n\ninnermost\n--b{depth - 1}--\n"
    for i in range(depth - 2, -1, -1):
        body += f"--b{i}--\n"
    return _msg(head, body)


def _nested_messages(depth):
    """message/rfc822 inside message/rfc822, `depth` times."""
    inner = "From: leaf@example.test\nSubject: leaf\n\nleaf body\n"
    for i in range(depth):
        inner = (f"From: level{i}@example.test\nSubject: level {i}\nContent-Type: message/rfc822\n\n" + inner)
    return _msg(_basic("nestmsg", "Subject: nested messages\nContent-Type: message/rfc822\n"), inner)


def hostile_messages():
    """[(name, bytes)] of generated hostile MIME messages."""
    m = []
    m.append(("nest40", _nested(NEST_DEPTH)))
    m.append(("nestmsg40", _nested_messages(NEST_DEPTH)))
    m.append(("boundary_never_appears", _mime(
        "nb", "boundary never appears", "multipart/mixed; boundary=\"nowhere\"",
        "This is a preamble that never ends.\n--elsewhere\nContent-Type: text/plain\n\nnot a part\n")))
    m.append(("missing_close_boundary", _mime(
        "mc", "missing close", "multipart/mixed; boundary=\"xx\"",
        "preamble\n--xx\nContent-Type: text/plain\n\nfirst\n--xx\nContent-Type: text/html\n\n<p>second, never closed</p>\n")))
    m.append(("boundary_param_twice", _mime(
        "bt", "boundary twice", "multipart/mixed; boundary=\"one\"; boundary=\"two\"",
        "--one\n\npart in one\n--two\n\npart in two\n--two--\n--one--\n")))
    m.append(("boundary_reused_inside", _mime(
        "br", "inner boundary equals outer", "multipart/mixed; boundary=\"same\"",
        "--same\nContent-Type: multipart/alternative; boundary=\"same\"\n\n--same\n\ninner a\n--same\n\ninner b\n"
        "--same--\nafter\n--same--\n")))
    m.append(("boundary_prefix", _mime(
        "bp", "boundary prefix of inner", "multipart/mixed; boundary=\"ab\"",
        "--ab\nContent-Type: multipart/alternative; boundary=\"abc\"\n\n--abc\n\nx\n--abc--\n--ab\n\ny\n--ab--\n")))
    m.append(("two_content_types", _msg(
        _basic("tc", "Subject: two content types\nContent-Type: multipart/mixed; boundary=\"first\"\n"
               "Content-Type: text/html; charset=utf-8\n"),
        "--first\n\npart\n--first--\n")))
    m.append(("empty_parts", _mime(
        "ep", "empty parts", "multipart/mixed; boundary=\"e\"",
        "--e\n--e\n\n--e\nContent-Type: text/plain\n\n--e\nContent-Type: application/octet-stream\n"
        "Content-Transfer-Encoding: base64\n\n\n--e--\n")))
    m.append(("empty_multipart", _msg(
        _basic("em", "Subject: empty multipart\nContent-Type: multipart/mixed; boundary=\"e\"\n"), "--e--\n")))
    m.append(("empty_body", crlf(_basic("eb", "Subject: empty body\n").encode()) + b"\r\n"))
    m.append(("header_only_no_blank", crlf(b"Subject: header only\nFrom: a@example.test")))
    m.append(("utf8_headers", crlf((
        "From: Jöran Ünicode <joran@example.test>\nTo: Ñandú <nandu@example.test>, plain@example.test\n"
        "Subject: Grüße aus Köln – ✓ 日本語\nDate: Sun, 06 Dec 2026 03:00:00 +0000\n"
        "Message-ID: <utf8@corpus.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\nKörper mit Umlauten.\n").encode("utf-8"))))
    m.append(("latin1_headers", crlf((
        "From: J\xf6ran L\xe4tin <joran@example.test>\nTo: bob@example.test\nSubject: Gr\xfc\xdfe \xe0 tous\n"
        "Date: Sun, 06 Dec 2026 03:00:00 +0000\nContent-Type: text/plain; charset=iso-8859-1\n"
        "Content-Description: Beschreibung \xe4\xf6\xfc\nContent-Transfer-Encoding: 8bit\n\nK\xf6rper.\n"
    ).encode("latin-1"))))
    m.append(("rfc2047_words", _msg(
        "From: =?UTF-8?B?SsO2cmFu?= <joran@example.test>\nTo: =?ISO-8859-1?Q?Andr=E9?= Pirard <pirard@example.test>\n"
        "Cc: \"=?utf-8?q?quoted_word?=\" <q@example.test>\n"
        "Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?b?IOKckw==?= plain =?bogus?x?zz?=\n"
        "Date: Sun, 06 Dec 2026 03:00:00 +0000\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"w\"\n",
        "--w\nContent-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\"\n"
        "Content-Disposition: attachment; filename=\"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\"\n"
        "Content-Description: =?utf-8?q?Lebenslauf_f=C3=BCr?= Bob\nContent-Transfer-Encoding: base64\n\n"
        "JVBERi0xLjQK\n--w--\n")))
    m.append(("rfc2231_params", _mime(
        "r2231", "RFC 2231", "multipart/mixed; boundary=\"p\"",
        "--p\nContent-Type: application/x-stuff;\n title*0*=us-ascii'en'This%20is%20even%20more%20;\n"
        " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\n title*2=\"isn't it!\"\n\nstuff\n"
        "--p\nContent-Type: text/plain; charset*=utf-8''%E2%9C%93\n"
        "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve%20file.txt\n\nnaive\n"
        "--p\nContent-Type: application/octet-stream; name*1=\"second\"; name*0=\"first-\"\n"
        "Content-Disposition: inline; filename*0=\"a\"; filename*2=\"c\"\n\ngap\n"
        "--p\nContent-Type: text/plain; format=flowed; CHARSET=\"UTF-8\"; DelSp=Yes; empty=\"\"\n\nparams\n"
        "--p--\n")))
    inner = ("From: Inner Sender <inner@example.test>\nTo: \"Group\": a@example.test, b@example.test;\n"
             "Subject: the inner message\nDate: Sat, 05 Dec 2026 10:00:00 -0800\nMessage-ID: <inner@corpus.test>\n"
             "In-Reply-To: <parent@corpus.test>\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"in\"\n\n"
             "--in\nContent-Type: text/plain; charset=us-ascii\n\nplain inner\n--in\nContent-Type: text/html\n\n"
             "<b>html inner</b>\n--in--\n")
    m.append(("rfc822_in_multipart", _mime(
        "rim", "forward", "multipart/mixed; boundary=\"outer\"",
        "--outer\nContent-Type: text/plain\n\nsee attached\n--outer\nContent-Type: message/rfc822\n"
        "Content-Disposition: attachment; filename=\"fwd.eml\"\nContent-Description: forwarded\n\n"
        + inner + "--outer--\n")))
    m.append(("rfc822_base64", _mime(
        "r64", "base64 message", "multipart/mixed; boundary=\"o\"",
        "--o\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(crlf(inner.encode())).decode() + "--o--\n")))
    m.append(("rfc822_top_level", _msg(_basic("rtl", "Subject: top-level rfc822\nContent-Type: message/RFC822\n"),
                                        inner)))
    m.append(("rfc822_inner_base64", _mime(
        "rib", "message with a base64 body", "multipart/mixed; boundary=\"o\"",
        "--o\nContent-Type: message/rfc822\n\nFrom: inner@example.test\nSubject: inner base64\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nSGVsbG8sIHfDtnJsZCE=\n"
        "--o--\n")))
    m.append(("rfc822_empty", _mime(
        "re", "empty rfc822", "multipart/mixed; boundary=\"o\"",
        "--o\nContent-Type: message/rfc822\n\n--o--\n")))
    m.append(("message_global_and_partial", _mime(
        "mg", "other message types", "multipart/mixed; boundary=\"o\"",
        "--o\nContent-Type: message/global\n\nSubject: global\n\nbody\n"
        "--o\nContent-Type: message/partial; id=\"x@y\"; number=1; total=2\n\nSubject: part\n\nbody\n"
        "--o\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\n"
        "Final-Recipient: rfc822; x@example.test\nAction: failed\n--o--\n")))
    m.append(("no_content_type_parts", _mime(
        "nct", "parts without Content-Type", "multipart/mixed; boundary=\"n\"",
        "--n\n\nno header at all\n--n\nContent-Transfer-Encoding: quoted-printable\n\nqp =3D text\n"
        "--n\nContent-Disposition: inline\n\ndisposition only\n--n--\n")))
    m.append(("no_mime_version", _msg(
        "From: old@example.test\nSubject: no MIME-Version\n", "just text\n")))
    m.append(("digest", _mime(
        "dg", "digest", "multipart/digest; boundary=\"d\"",
        "--d\n\nFrom: one@example.test\nSubject: first in digest\n\nbody one\n"
        "--d\nContent-Type: text/plain\n\nexplicit text in digest\n"
        "--d\nContent-Type: message/rfc822\n\nFrom: three@example.test\nSubject: third\n\nbody three\n"
        "--d\nContent-Type: multipart/mixed; boundary=\"dd\"\n\n--dd\n\ninner default is text\n--dd--\n"
        "--d--\n")))
    m.append(("groups", _msg(
        "From: Alice <alice@example.test>\nTo: undisclosed-recipients:;\n"
        "Cc: Team: a@example.test, \"Bee, B\" <b@example.test>;, solo@example.test\n"
        "Bcc: Empty Group:;, Other: x@example.test;\nReply-To: \"List\": ;\n"
        "Sender: Weird <@route.test,@other.test:weird@example.test>\n"
        "Subject: groups\nDate: Sun, 06 Dec 2026 03:00:00 +0000\n", "groups\n")))
    m.append(("address_oddities", _msg(
        "From: \"Quoted \\\"Name\\\"\" <\"odd local\"@example.test>\n"
        "To: nodomain, <also-no-domain>, (comment only) c@example.test (Comment Name), d@[192.0.2.1]\n"
        "Cc: a@b@c, <>, \"\" <empty-name@example.test>, ,, trailing@example.test,\n"
        "Reply-To: =?utf-8?q?Enc?= <enc@example.test>\n"
        "Subject: address oddities\nDate: Sun, 06 Dec 2026 03:00:00 +0000\n"
        "In-Reply-To: <a@b> (comment) <c@d>\nMessage-ID:   <spaced@corpus.test>   \n", "odd\n")))
    m.append(("missing_date_from", _msg("To: bob@example.test\nSubject: no date, no from\n", "body\n")))
    m.append(("empty_fields", _msg(
        "From:\nTo: \nSubject:\nDate: \nMessage-ID:\nIn-Reply-To:\nContent-Type:\nContent-Transfer-Encoding:\n"
        "Content-ID:\nContent-Description:\nContent-Disposition:\nContent-Language:\nContent-Location:\n"
        "Content-MD5:\n", "empty header values\n")))
    m.append(("duplicate_fields", _msg(
        "From: first@example.test\nFrom: second@example.test\nSubject: first subject\nSubject: second subject\n"
        "Date: Sun, 06 Dec 2026 03:00:00 +0000\n", "dupes\n")))
    m.append(("long_header_lines", _msg(
        "From: long@example.test\nSubject: " + "x" * LONG_LINE + "\nTo: "
        + ", ".join(f"user{i}@example.test" for i in range(MANY_RECIPIENTS)) + "\nX-Long: " + "y " * LONG_LINE
        + "\nSubject-Folded: a\n" + "".join(f"  fold {i}\n" for i in range(200))
        + "Date: Sun, 06 Dec 2026 03:00:00 +0000\n", "long\n")))
    m.append(("folded_headers", _msg(
        "From: Folded\n Name <folded@example.test>\nSubject: folded\n\tsubject\n  line\n"
        "Date: Sun, 06 Dec 2026\n 03:00:00 +0000\nContent-Type: text/plain;\n charset=\"us-ascii\";\n"
        "\tformat=flowed\n", "folded\n")))
    m.append(("extension_fields", _msg(
        _basic("ext", "Subject: extension fields\nContent-Type: multipart/Mixed; boundary=\"x\"; Extra=\"Yes\"\n"
               "Content-Disposition: inline\nContent-Language: en, de-CH\nContent-Location: http://example.test/m\n"),
        "--x\nContent-Type: TEXT/HTML; CHARSET=UTF-8\nContent-ID: <part1@example.test>\n"
        "Content-Description: a description\nContent-Transfer-Encoding: Quoted-Printable\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\nContent-Disposition: Attachment; FileName=\"A.HTML\"; size=12\n"
        "Content-Language: fr\nContent-Location: a.html\n\n<p>caf=C3=A9</p>\n"
        "--x\nContent-Type: Image/PNG\nContent-Transfer-Encoding: BASE64\nContent-Disposition: inline; ;\n\n"
        "iVBORw0KGgo=\n--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\n\n"
        "begin 644 f\n#86)C\n`\nend\n--x\nContent-Type: garbage\nContent-Disposition: \"quoted\"\n\ngarbage type\n"
        "--x\nContent-Type: text/\n\nempty subtype\n--x\nContent-Type: /plain\n\nempty type\n"
        "--x\nContent-Type: text/plain; charset\n\nparameter without value\n--x--\n")))
    m.append(("encodings", _mime(
        "enc", "transfer encodings", "multipart/mixed; boundary=\"z\"",
        "--z\nContent-Transfer-Encoding: base64\n\nSGVsbG8s\nIHdvcmxk\nIQ==\n"
        "--z\nContent-Transfer-Encoding: base64\n\nbad base64 !!!\n***=\n"
        "--z\nContent-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak =C3=A9 =ZZ bad=\n"
        "--z\nContent-Transfer-Encoding: 8bit\n\n8bit \xc3\xa9\n"
        "--z\nContent-Transfer-Encoding: binary\n\nbinary\n"
        "--z\nContent-Transfer-Encoding: x-unknown\n\nunknown\n--z--\n")))
    nul_body = b"before NUL\x00after NUL\r\nsecond line \x00\x00\r\n"
    m.append(("nul_bytes", crlf(_basic("nul", "Subject: NUL in body\nContent-Type: application/octet-stream\n"
                                       "Content-Transfer-Encoding: binary\n").encode()) + b"\r\n" + nul_body))
    m.append(("nul_in_part", crlf(_basic("nulp", "Subject: NUL in part\nContent-Type: multipart/mixed; boundary=\"q\"\n")
                                  .encode()) + b"\r\n--q\r\nContent-Type: text/plain\r\n\r\n" + nul_body + b"--q--\r\n"))
    cr_text = (_basic("cr", "Subject: CR only\nContent-Type: multipart/mixed; boundary=\"c\"\n")
               + "\n--c\n\nline one\nline two\n--c--\n").encode()
    m.append(("cr_only", cr_text.replace(b"\n", b"\r")))
    m.append(("lf_only", (_basic("lf", "Subject: LF only\nContent-Type: multipart/mixed; boundary=\"l\"\n")
                          + "\n--l\n\nline one\nline two\n--l\nContent-Type: message/rfc822\n\nSubject: inner\n\nx\n"
                          "--l--\n").encode()))
    m.append(("mixed_line_ends", _basic("mx", "Subject: mixed line ends\n").encode().replace(b"\n", b"\r\n")
              + b"\nline lf\r\nline crlf\rline cr\n\r\n"))
    m.append(("no_final_newline", crlf(_basic("nf", "Subject: no final newline\n").encode()) + b"\r\nlast line"))
    m.append(("whitespace_boundary", _mime(
        "wb", "boundary with spaces", "multipart/mixed; boundary=\"with space \"",
        "--with space \nContent-Type: text/plain\n\none\n--with space  \t\n\ntwo\n--with space --  trailing\n")))
    m.append(("preamble_epilogue", _mime(
        "pe", "preamble and epilogue", "multipart/alternative; boundary=\"pe\"",
        "preamble line\n\n--pe\nContent-Type: text/plain\n\nA\n\n--pe\nContent-Type: text/html\n\nB\n--pe--\n"
        "epilogue\nmore epilogue\n")))
    m.append(("junk_first_header_line", crlf(
        b"From someone@example.test Sun Dec  6 03:00:00 2026\nFrom: a@example.test\nSubject: mbox from line\n\nbody\n")))
    m.append(("header_continuation_first", crlf(b" folded first line\nSubject: s\n\nbody\n")))
    m.append(("header_garbage_lines", crlf(
        b"Subject: garbage lines\nthis line has no colon\nFrom: g@example.test\n: empty name\nX Bad: space in name\n"
        b"\nbody\n")))
    return m


def all_messages():
    return python_testsuite_messages() + hostile_messages()
