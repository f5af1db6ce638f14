// Table-driven structure tests for MessageParser: shapes, offsets checked by slicing the input,
// header/body boundaries, defaults, and the multipart edge cases of RFC 2046 §5.1.

import MIME
import XCTest

final class MessageParserTests: XCTestCase {

    /// One case: message bytes, expected shape, and per-section expectations (body text, lines).
    struct Case {
        var name: String
        var bytes: [UInt8]
        var shape: String
        /// section path → expected body bytes (as text)
        var bodies: [String: String] = [:]
        /// section path → expected body line count
        var lines: [String: Int] = [:]
        /// section path → expected MIME header text ([headerStart, bodyStart))
        var headers: [String: String] = [:]
        var headerSize: Int?
    }

    static let simple = message([
        "From: Alice <alice@example.com>",
        "To: bob@example.org",
        "Subject: Hi",
        "Date: Mon, 1 Jan 2024 00:00:00 +0000",
        "Message-ID: <1@example.com>",
        "",
        "Hello",
        "World",
        "",
    ])

    static let alternative = message([
        "Subject: alt",
        "Content-Type: multipart/alternative; boundary=\"b1\"",
        "",
        "This is the preamble.",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "plain",
        "--b1  ",
        "Content-Type: text/html",
        "",
        "<p>html</p>",
        "--b1--",
        "epilogue",
        "",
    ])

    static let mixedNested = message([
        "Content-Type: multipart/mixed; boundary=outer",
        "",
        "--outer",
        "Content-Type: multipart/alternative; boundary=inner",
        "",
        "--inner",
        "Content-Type: text/plain",
        "",
        "text",
        "--inner",
        "Content-Type: text/html",
        "",
        "<b>x</b>",
        "--inner--",
        "",
        "--outer",
        "Content-Type: application/pdf; name=\"a b.pdf\"",
        "Content-Disposition: attachment; filename=\"a b.pdf\"; size=3",
        "Content-Transfer-Encoding: BASE64",
        "Content-ID: <c1@example.com>",
        "Content-Description: the file",
        "Content-Language: en, de",
        "Content-Location: http://example.com/a.pdf",
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        "",
        "QUJD",
        "--outer--",
        "",
    ])

    static let rfc822Inside = message([
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=X",
        "",
        "--X",
        "Content-Type: text/plain",
        "",
        "see attached",
        "--X",
        "Content-Type: message/rfc822",
        "",
        "From: Carol <carol@example.net>",
        "Subject: inner",
        "Content-Type: multipart/alternative; boundary=Y",
        "",
        "--Y",
        "",
        "inner plain",
        "--Y",
        "Content-Type: text/html",
        "",
        "inner html",
        "--Y--",
        "--X--",
        "",
    ])

    static let cases: [Case] = [
        Case(name: "simple text", bytes: simple, shape: "text/plain",
             bodies: ["1": "Hello\r\nWorld\r\n"], lines: ["1": 2]),
        Case(name: "multipart/alternative", bytes: alternative, shape: "multipart/alternative(text/plain text/html)",
             bodies: ["1": "plain", "2": "<p>html</p>"], lines: ["1": 0, "2": 0],
             headers: ["1": "Content-Type: text/plain; charset=utf-8\r\n\r\n", "2": "Content-Type: text/html\r\n\r\n"]),
        Case(name: "multipart/mixed nested", bytes: mixedNested,
             shape: "multipart/mixed(multipart/alternative(text/plain text/html) application/pdf)",
             bodies: ["1.1": "text", "1.2": "<b>x</b>", "2": "QUJD",
                      "1": "--inner\r\nContent-Type: text/plain\r\n\r\ntext\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--inner--\r\n"]),
        Case(name: "message/rfc822 inside multipart", bytes: rfc822Inside,
             shape: "multipart/mixed(text/plain message/rfc822[multipart/alternative(text/plain text/html)])",
             bodies: ["1": "see attached", "2.1": "inner plain", "2.2": "inner html"],
             lines: ["1": 0, "2": 11, "2.1": 0],
             headers: ["2.1": "\r\n"]),
        Case(name: "LF-only line ends",
             bytes: message(["Content-Type: multipart/mixed; boundary=z", "", "--z", "Content-Type: text/plain", "",
                             "one", "two", "--z", "", "three", "--z--", ""], lf: true),
             shape: "multipart/mixed(text/plain text/plain)",
             bodies: ["1": "one\ntwo", "2": "three"], lines: ["1": 1, "2": 0],
             headers: ["1": "Content-Type: text/plain\n\n", "2": "\n"]),
        Case(name: "headers only, no separator", bytes: Array("Subject: x\r\nFrom: a@b".utf8), shape: "text/plain",
             bodies: ["1": ""], lines: ["1": 0], headerSize: 21),
        Case(name: "headers and separator, empty body", bytes: Array("Subject: x\r\n\r\n".utf8), shape: "text/plain",
             bodies: ["1": ""], lines: ["1": 0], headerSize: 14),
        Case(name: "empty header section", bytes: Array("\r\nbody\r\n".utf8), shape: "text/plain",
             bodies: ["1": "body\r\n"], lines: ["1": 1], headerSize: 2),
        Case(name: "no header at all", bytes: Array("just text, no header\r\nsecond line".utf8), shape: "text/plain",
             bodies: ["1": "just text, no header\r\nsecond line"], lines: ["1": 1], headerSize: 0),
        Case(name: "junk first line followed by fields stays in the header",
             bytes: Array("From sender@example.com Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\nbody".utf8),
             shape: "text/plain", bodies: ["1": "body"], headerSize: 64),
        Case(name: "empty message", bytes: [], shape: "text/plain", bodies: ["1": ""], lines: ["1": 0], headerSize: 0),
        Case(name: "inner boundary is a prefix of the outer one",
             bytes: message(["Content-Type: multipart/mixed; boundary=\"abcdef\"", "",
                             "--abcdef", "Content-Type: multipart/alternative; boundary=\"abc\"", "",
                             "--abc", "Content-Type: text/plain", "", "one",
                             "--abcdef", "Content-Type: text/plain", "", "two", "--abcdef--", ""]),
             shape: "multipart/mixed(multipart/alternative(text/plain) text/plain)",
             bodies: ["1.1": "one", "2": "two", "1": "--abc\r\nContent-Type: text/plain\r\n\r\none"]),
        Case(name: "outer boundary is a prefix of the inner one",
             bytes: message(["Content-Type: multipart/mixed; boundary=\"abc\"", "",
                             "--abc", "Content-Type: multipart/alternative; boundary=\"abcdef\"", "",
                             "--abcdef", "", "one", "--abcdef", "", "two", "--abcdef--",
                             "--abc", "", "three", "--abc--"]),
             shape: "multipart/mixed(multipart/alternative(text/plain text/plain) text/plain)",
             bodies: ["1.1": "one", "1.2": "two", "2": "three"]),
        // Python's email test msg_15 (Outlook Express); live Dovecot 2.3 parses it the same way.
        Case(name: "nested multipart reusing its parent's boundary: the innermost wins",
             bytes: message(["Content-Type: multipart/mixed; boundary=\"same\"", "",
                             "--same", "Content-Type: multipart/alternative; boundary=\"same\"", "",
                             "--same", "Content-Type: text/plain", "", "plain",
                             "--same", "Content-Type: text/html", "", "html", "--same--", "",
                             "--same", "Content-Type: image/gif", "", "GIF", "--same--", ""]),
             shape: "multipart/mixed(multipart/alternative(text/plain text/html) image/gif)",
             bodies: ["1.1": "plain", "1.2": "html", "2": "GIF"], lines: ["1.1": 0, "1": 9]),
        Case(name: "missing close delimiter",
             bytes: message(["Content-Type: multipart/mixed; boundary=q", "", "--q", "", "first", "--q", "", "last", ""]),
             shape: "multipart/mixed(text/plain text/plain)",
             bodies: ["1": "first", "2": "last\r\n"], lines: ["2": 1]),
        Case(name: "no delimiter at all gives one empty child",
             bytes: message(["Content-Type: multipart/mixed; boundary=q", "", "only a preamble", ""]),
             shape: "multipart/mixed(text/plain)", bodies: ["1": ""]),
        Case(name: "multipart without boundary is text/plain (RFC 2045 §5.2)",
             bytes: message(["Content-Type: multipart/mixed", "", "--q", "", "x", "--q--"]),
             shape: "text/plain"),
        Case(name: "multipart/digest children default to message/rfc822",
             bytes: message(["Content-Type: multipart/digest; boundary=d", "", "--d", "", "Subject: one", "", "1",
                             "--d", "Content-Type: text/plain", "", "2", "--d--"]),
             shape: "multipart/digest(message/rfc822[text/plain] text/plain)",
             bodies: ["1.1": "1", "2": "2"]),
        Case(name: "part without headers directly followed by a delimiter",
             bytes: message(["Content-Type: multipart/mixed; boundary=e", "", "--e", "--e", "", "x", "--e--"]),
             shape: "multipart/mixed(text/plain text/plain)", bodies: ["1": "", "2": "x"]),
        Case(name: "part whose header runs into the delimiter",
             bytes: message(["Content-Type: multipart/mixed; boundary=e", "", "--e", "Content-Type: text/html", "--e--"]),
             shape: "multipart/mixed(text/html)", bodies: ["1": ""], headers: ["1": "Content-Type: text/html"]),
        Case(name: "delimiter with trailing junk is not a delimiter",
             bytes: message(["Content-Type: multipart/mixed; boundary=e", "", "--e", "", "a", "--e junk", "b", "--e--"]),
             shape: "multipart/mixed(text/plain)", bodies: ["1": "a\r\n--e junk\r\nb"]),
        Case(name: "close delimiter with trailing text",
             bytes: message(["Content-Type: multipart/mixed; boundary=e", "", "--e", "", "a", "--e--junk", "--e", "", "ignored"]),
             shape: "multipart/mixed(text/plain)", bodies: ["1": "a"]),
        Case(name: "encoded message/rfc822 is not parsed",
             bytes: message(["Content-Type: message/rfc822", "Content-Transfer-Encoding: base64", "", "U3ViamVjdDogeA0KDQp4", ""]),
             shape: "message/rfc822", bodies: ["1": "U3ViamVjdDogeA0KDQp4\r\n"]),
        Case(name: "top-level message/rfc822",
             bytes: message(["Content-Type: message/rfc822", "", "Subject: in", "", "body"]),
             shape: "message/rfc822[text/plain]", bodies: ["1": "body"], headers: ["1": "Subject: in\r\n\r\n"]),
    ]

    func testTable() {
        for c in Self.cases {
            let info = MessageParser.parse(c.bytes)
            XCTAssertNil(info.invariantViolation(), c.name)
            XCTAssertEqual(info.size, c.bytes.count, c.name)
            XCTAssertEqual(shape(info.body), c.shape, c.name)
            if let hs = c.headerSize { XCTAssertEqual(info.headerSize, hs, c.name) }
            for (path, text) in c.bodies {
                guard let p = part(info, path) else {
                    XCTFail("\(c.name): no part \(path)")
                    continue
                }
                XCTAssertEqual(bodyText(c.bytes, p), text, "\(c.name) body \(path)")
            }
            for (path, n) in c.lines {
                XCTAssertEqual(part(info, path)?.lines, n, "\(c.name) lines \(path)")
            }
            for (path, text) in c.headers {
                guard let p = part(info, path) else { continue }
                XCTAssertEqual(headerText(c.bytes, p), text, "\(c.name) header \(path)")
            }
            // The UnsafeRawBufferPointer entry point agrees with the array one.
            let viaPointer = c.bytes.withUnsafeBytes { MessageParser.parse($0) }
            XCTAssertEqual(viaPointer, info, c.name)
        }
    }

    func testRepeatedAddressFieldsAreJoined() {
        // Python's email msg_20 has three Cc fields; Dovecot 2.3 lists all their addresses, and
        // so do we. Other repeated fields: the first counts.
        let m = message(["From: a@x.org", "Cc: ccc@zzz.org", "CC: ddd@zzz.org, Group: g@zzz.org;", "cc: eee@zzz.org",
                         "Subject: first", "Subject: second", "From: b@x.org", "", "body", ""])
        let e = MessageParser.parse(m).envelope
        XCTAssertEqual(e.cc.map { $0.mailbox }, ["ccc", "ddd", "Group", "g", nil, "eee"])
        XCTAssertEqual(e.from.map { $0.mailbox }, ["a", "b"])
        XCTAssertEqual(e.sender, e.from)
        XCTAssertEqual(e.subject, "first")
    }

    func testSimpleEnvelopeAndSizes() {
        let m = Self.simple
        let info = MessageParser.parse(m)
        XCTAssertEqual(info.headerSize, m.count - "Hello\r\nWorld\r\n".utf8.count)
        XCTAssertEqual(info.lines, 8)
        XCTAssertEqual(info.body.parameters, [["charset", "us-ascii"]])
        XCTAssertEqual(info.body.encoding, "7bit")
        let e = info.envelope
        XCTAssertEqual(e.subject, "Hi")
        XCTAssertEqual(e.date, "Mon, 1 Jan 2024 00:00:00 +0000")
        XCTAssertEqual(e.messageID, "<1@example.com>")
        XCTAssertNil(e.inReplyTo)
        XCTAssertEqual(e.from, [Address(name: "Alice", mailbox: "alice", host: "example.com")])
        XCTAssertEqual(e.sender, e.from)
        XCTAssertEqual(e.replyTo, e.from)
        XCTAssertEqual(e.to, [Address(mailbox: "bob", host: "example.org")])
        XCTAssertEqual(e.cc, [])
        XCTAssertEqual(e.bcc, [])
    }

    func testAttachmentFields() {
        let info = MessageParser.parse(Self.mixedNested)
        guard let pdf = part(info, "2") else { return XCTFail("no part 2") }
        XCTAssertEqual(pdf.type, "application")
        XCTAssertEqual(pdf.subtype, "pdf")
        XCTAssertEqual(pdf.parameters, [["name", "a b.pdf"]])
        XCTAssertEqual(pdf.disposition, "attachment")
        XCTAssertEqual(pdf.dispositionParameters, [["filename", "a b.pdf"], ["size", "3"]])
        XCTAssertEqual(pdf.dispositionParameter("FILENAME"), "a b.pdf")
        XCTAssertEqual(pdf.encoding, "base64")
        XCTAssertEqual(pdf.id, "<c1@example.com>")
        XCTAssertEqual(pdf.description, "the file")
        XCTAssertEqual(pdf.language, ["en", "de"])
        XCTAssertEqual(pdf.location, "http://example.com/a.pdf")
        XCTAssertEqual(pdf.md5, "Q2hlY2sgSW50ZWdyaXR5IQ==")
        XCTAssertEqual(info.body.parameter("Boundary"), "outer")
        XCTAssertNil(part(info, "1.1")?.disposition)
    }

    func testEncapsulatedMessage() {
        let m = Self.rfc822Inside
        let info = MessageParser.parse(m)
        guard let p = part(info, "2"), let inner = p.message else { return XCTFail("no message part") }
        XCTAssertEqual(inner.envelope.subject, "inner")
        XCTAssertEqual(inner.envelope.from, [Address(name: "Carol", mailbox: "carol", host: "example.net")])
        XCTAssertEqual(inner.body.headerStart, p.bodyStart)
        XCTAssertEqual(inner.body.bodyEnd, p.bodyEnd)
        XCTAssertTrue(headerText(m, inner.body).hasPrefix("From: Carol"))
        XCTAssertTrue(headerText(m, inner.body).hasSuffix("boundary=Y\r\n\r\n"))
        XCTAssertTrue(bodyText(m, p).hasSuffix("--Y--"))
        // Part 2.1 has no header lines: its MIME header is just the blank line.
        XCTAssertEqual(part(info, "2.1")?.parameters, [["charset", "us-ascii"]])
    }

    /// RFC 2045 §5.1 Content-Type grammar: input value → (type, subtype, parameters).
    func testContentTypeTable() {
        let table: [(String, String, [[String]])] = [
            ("text/plain", "text/plain", []),
            ("TEXT/HTML; CHARSET=UTF-8", "text/html", [["charset", "UTF-8"]]),
            ("(comment) Text/HTML (x) ; Charset=\"utf\\\"-8\" ; (c) name*0*=us-ascii'en'abc; format=flowed;",
             "text/html", [["charset", "utf\"-8"], ["name*0*", "us-ascii'en'abc"], ["format", "flowed"]]),
            ("multipart/mixed;\r\n boundary=\"----=_Part_1\"", "multipart/mixed", [["boundary", "----=_Part_1"]]),
            ("multipart/mixed; boundary==_NextPart_000", "multipart/mixed", [["boundary", "=_NextPart_000"]]),
            ("application/octet-stream; name=a b.pdf", "application/octet-stream", [["name", "a b.pdf"]]),
            ("text/plain; junk; charset=iso-8859-1", "text/plain", [["charset", "iso-8859-1"]]),
            ("text/plain; charset=\"unterminated", "text/plain", [["charset", "unterminated"]]),
            ("text/plain; a=1; a=2", "text/plain", [["a", "1"], ["a", "2"]]),
            ("garbage", "text/plain", [["charset", "us-ascii"]]),
            ("text/", "text/plain", [["charset", "us-ascii"]]),
            ("/plain", "text/plain", [["charset", "us-ascii"]]),
            ("", "text/plain", [["charset", "us-ascii"]]),
            ("(unterminated comment text/html", "text/plain", [["charset", "us-ascii"]]),
        ]
        for (value, type, params) in table {
            let m = Array("Content-Type: \(value)\r\n\r\nx".utf8)
            let info = MessageParser.parse(m)
            XCTAssertEqual("\(info.body.type)/\(info.body.subtype)", type, value)
            XCTAssertEqual(info.body.parameters, params, value)
        }
    }

    func testTransferEncodingAndDispositionEdgeCases() {
        let table: [(String, String, String?, [String]?)] = [
            ("Content-Transfer-Encoding: (c) Quoted-Printable", "quoted-printable", nil, nil),
            ("Content-Transfer-Encoding:", "7bit", nil, nil),
            ("Content-Disposition: INLINE", "7bit", "inline", nil),
            ("Content-Disposition: ;filename=x", "7bit", nil, nil),
            ("Content-Language: (c) en-US ,, fr (x)", "7bit", nil, ["en-US", "fr"]),
            ("Content-Language: ", "7bit", nil, nil),
        ]
        for (header, enc, disp, lang) in table {
            let info = MessageParser.parse(Array("\(header)\r\n\r\nx".utf8))
            XCTAssertEqual(info.body.encoding, enc, header)
            XCTAssertEqual(info.body.disposition, disp, header)
            XCTAssertEqual(info.body.language, lang, header)
        }
    }

    func testHeaderUnfoldingAndCaseInsensitiveNames() {
        let m = message([
            "SUBJECT:  \thello",
            " \tworld  ",
            "from:a@b",
            "X-Other: y",
            "Subject: second subject is ignored",
            "In-Reply-To:",
            "  <p@x>",
            "content-type: TEXT/Plain; charset=utf-8",
            "",
            "b",
        ])
        let info = MessageParser.parse(m)
        XCTAssertEqual(info.envelope.subject, "hello \tworld")
        XCTAssertEqual(info.envelope.inReplyTo, "<p@x>")
        XCTAssertEqual(info.envelope.from, [Address(mailbox: "a", host: "b")])
        XCTAssertEqual(info.body.parameters, [["charset", "utf-8"]])
        XCTAssertNil(info.envelope.date)

        let lf = MessageParser.parse(Array("Subject: a\n b\n\nbody".utf8))
        XCTAssertEqual(lf.envelope.subject, "a b")
        XCTAssertEqual(lf.headerSize, 15)
    }

    func testEmptySenderFallsBackToFrom() {
        let info = MessageParser.parse(message(["From: a@b", "Sender:", "Reply-To: r@s", "", ""]))
        XCTAssertEqual(info.envelope.sender, [Address(mailbox: "a", host: "b")])
        XCTAssertEqual(info.envelope.replyTo, [Address(mailbox: "r", host: "s")])
    }

    func testHugeHeaderLine() {
        let long = [UInt8]("X-Long: ".utf8) + [UInt8](repeating: 0x61, count: 2_000_000) + Array("\r\nSubject: late\r\n\r\nbody".utf8)
        let info = MessageParser.parse(long)
        assertValid(info)
        XCTAssertEqual(info.headerSize, long.count - 4)
        XCTAssertNil(info.envelope.subject) // beyond maxHeaderBytes (1 MiB): not interpreted
        let wide = MessageParser.parse(long, limits: MIMELimits(maxHeaderBytes: 4 << 20))
        XCTAssertEqual(wide.envelope.subject, "late")
        XCTAssertEqual(wide.headerSize, info.headerSize)

        let hugeSubject = [UInt8]("Subject: ".utf8) + [UInt8](repeating: 0x62, count: 3_000_000) + Array("\r\n\r\nx".utf8)
        let s = MessageParser.parse(hugeSubject)
        XCTAssertEqual(s.envelope.subject?.utf8.count, (1 << 20) - 9) // cut at the interpretation window
        XCTAssertEqual(bodyText(hugeSubject, s.body), "x")
    }
}
