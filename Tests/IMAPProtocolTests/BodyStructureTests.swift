// ENVELOPE, BODY and BODYSTRUCTURE of real messages parsed by MIME.MessageParser, against the
// strings Dovecot 2.3 writes. Vectors marked "Dovecot test vector" are the messages and answers
// of Dovecot's own src/lib-imap/test-imap-bodystructure.c (there LF-only with CRLF-counted
// sizes; here CRLF, so the numbers are the same). The others are written from Dovecot's format;
// places where we are not sure Dovecot agrees carry an "UNSURE" comment.
import XCTest
@testable import IMAPProtocol
import MIME

private func bodyStructure(_ message: String, extensible: Bool = true, utf8: Bool = false) -> String {
    let info = MessageParser.parse(crlfMessage(message))
    return written(utf8: utf8) { $0.bodyStructure(info.body, extensible: extensible) }
}

private func envelope(_ message: String, utf8: Bool = false) -> String {
    let info = MessageParser.parse(crlfMessage(message))
    return written(utf8: utf8) { $0.envelope(info.envelope) }
}

// MARK: Messages

let plainMessage = """
From: Alice Example <alice@example.org>
To: bob@example.com
Subject: Hello
Date: Sat, 05 Dec 2026 10:00:00 +0000
Message-ID: <1@example.org>

Hi Bob,
bye

"""

let alternativeMessage = """
Date: Sun, 06 Dec 2026 01:02:03 +0100
From: Ann <ann@example.org>
Subject: alt
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9
--b1
Content-Type: text/html; charset=utf-8

<p>caf&eacute;</p>
--b1--

"""

let attachmentMessage = """
From: a@example.org
To: b@example.org
Subject: report
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

preamble
--XX
Content-Type: text/plain

See attached.
--XX
Content-Type: application/pdf; name="r.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="r.pdf"

JVBERi0xLjQK
--XX--

"""

/// multipart/mixed: 1 text/plain, 2 message/rfc822 holding multipart/alternative (2.1, 2.2).
let nestedMessage = """
From: a@example.org
Subject: fwd
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=us-ascii

See below.
--outer
Content-Type: message/rfc822
Content-Description: forwarded

From: c@example.net
To: d@example.net
Subject: inner
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

plain
--inner
Content-Type: text/html

<b>html</b>
--inner--
--outer--

"""

final class BodyStructureTests: XCTestCase {
    // MARK: Dovecot's own vectors

    struct Vector { var message: String, body: String, bodyStructure: String }

    static let dovecotVectors: [Vector] = [
        Vector(message: """
            From: user@domain.org
            Date: Sat, 24 Mar 2017 23:00:00 +0200
            Mime-Version: 1.0
            Content-Type: text/plain; charset=us-ascii

            body

            """,
            body: #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)"#,
            bodyStructure: #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)"#),
        Vector(message: """
            From: user@domain.org
            Date: Sat, 24 Mar 2017 23:00:00 +0200
            Mime-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            body


            """,
            body: #"("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 8 2)"#,
            bodyStructure: #"("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 8 2 NIL NIL NIL NIL)"#),
        Vector(message: """
            From: user@domain.org
            Date: Sat, 24 Mar 2007 23:00:00 +0200
            Mime-Version: 1.0
            Content-Type: multipart/mixed; boundary="foo
             bar"

            --foo bar
            Content-Type: text/x-myown; charset=us-ascii

            hello

            --foo bar--


            """,
            body: #"(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1) "mixed")"#,
            bodyStructure: #"(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL)"#),
        Vector(message: """
            From: user@domain.org
            Date: Sat, 24 Mar 2017 23:00:00 +0200
            Mime-Version: 1.0
            Content-Type: multipart/mixed; boundary="foo bar"

            --foo bar
            Content-Type: text/plain; charset=us-ascii
            Content-ID: <A.frop.example.com>
            Content-Description: Container message

            See attached...

            --foo bar
            Content-Type: message/rfc822
            Content-ID: <B.frop.example.com>
            Content-Description: Forwarded

            From: user@domain.org
            Date: Sat, 24 Mar 2017 23:00:00 +0200
            Mime-Version: 1.0
            Content-Type: text/plain; charset=us-ascii

            body

            --foo bar--

            """,
            body: #"(("text" "plain" ("charset" "us-ascii") "<A.frop.example.com>" "Container message" "7bit" 17 1)("message" "rfc822" NIL "<B.frop.example.com>" "Forwarded" "7bit" 133 ("Sat, 24 Mar 2017 23:00:00 +0200" NIL ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) 6) "mixed")"#,
            bodyStructure: #"(("text" "plain" ("charset" "us-ascii") "<A.frop.example.com>" "Container message" "7bit" 17 1 NIL NIL NIL NIL)("message" "rfc822" NIL "<B.frop.example.com>" "Forwarded" "7bit" 133 ("Sat, 24 Mar 2017 23:00:00 +0200" NIL ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL) 6 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL)"#),
        Vector(message: """
            From: user@domain.org
            Date: Sat, 24 Mar 2007 23:00:00 +0200
            Mime-Version: 1.0
            Content-Type: multipart/mixed; boundary="foo
             bar"

            Root MIME prologue

            --foo bar
            Content-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"
            Content-ID: <foo@example.com>
            Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
            Content-Disposition: inline; foo=bar
            Content-Description: hellodescription
            Content-Language: en, fi, se
            Content-Location: http://example.com/test.txt

            hello

            --foo bar
            Content-Type: message/rfc822

            From: sub@domain.org
            To: sub-to1@domain.org, sub-to2@domain.org
            Date: Sun, 12 Aug 2012 12:34:56 +0300
            Subject: submsg
            Content-Type: multipart/alternative; boundary="sub1"

            Sub MIME prologue
            --sub1
            Content-Type: text/html
            Content-Transfer-Encoding: 8bit

            <p>Hello world</p>

            --sub1
            Content-Type: text/plain
            Content-Transfer-Encoding: ?invalid

            Hello another world

            --sub1--
            Sub MIME epilogue

            --foo bar--
            Root MIME epilogue

            """,
            body: #"(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\"string") "<foo@example.com>" "hellodescription" "7bit" 7 1)("message" "rfc822" NIL NIL NIL "7bit" 412 ("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL) (("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 21) "mixed")"#,
            bodyStructure: #"(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\"string") "<foo@example.com>" "hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar")) ("en" "fi" "se") "http://example.com/test.txt")("message" "rfc822" NIL NIL NIL "7bit" 412 ("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL) (("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "alternative" ("boundary" "sub1") NIL NIL NIL) 21 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL)"#),
        Vector(message: """
            Content-Type: multipart/mixed; boundary="foo"


            """,
            body: #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")"#,
            bodyStructure: #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "foo") NIL NIL NIL)"#),
    ]

    func testDovecotVectors() {
        for (i, v) in Self.dovecotVectors.enumerated() {
            XCTAssertEqual(bodyStructure(v.message, extensible: true), v.bodyStructure, "vector \(i) BODYSTRUCTURE")
            XCTAssertEqual(bodyStructure(v.message, extensible: false), v.body, "vector \(i) BODY")
        }
    }

    // MARK: Our messages

    func testPlainTextMessage() {
        XCTAssertEqual(bodyStructure(plainMessage), #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2 NIL NIL NIL NIL)"#)
        XCTAssertEqual(bodyStructure(plainMessage, extensible: false), #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2)"#)
        XCTAssertEqual(envelope(plainMessage),
                       #"("Sat, 05 Dec 2026 10:00:00 +0000" "Hello" (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) ((NIL NIL "bob" "example.com")) NIL NIL NIL "<1@example.org>")"#)
    }

    func testMultipartAlternative() {
        XCTAssertEqual(bodyStructure(alternativeMessage),
                       #"(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 18 0 NIL NIL NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL)"#)
        XCTAssertEqual(bodyStructure(alternativeMessage, extensible: false),
                       #"(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 18 0) "alternative")"#)
    }

    func testMixedWithAttachment() {
        // The text part names no charset: Dovecot adds charset us-ascii (RFC 2045 §5.2 default).
        XCTAssertEqual(bodyStructure(attachmentMessage),
                       #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 NIL NIL NIL NIL)("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 12 NIL ("attachment" ("filename" "r.pdf")) NIL NIL) "mixed" ("boundary" "XX") NIL NIL NIL)"#)
        XCTAssertEqual(bodyStructure(attachmentMessage, extensible: false),
                       #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0)("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 12) "mixed")"#)
    }

    func testMessageRFC822Inside() {
        let inner = #"(NIL "inner" ((NIL NIL "c" "example.net")) ((NIL NIL "c" "example.net")) ((NIL NIL "c" "example.net")) ((NIL NIL "d" "example.net")) NIL NIL NIL NIL)"#
        let innerBody = #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)"#
        let bytes = crlfMessage(nestedMessage)
        let info = MessageParser.parse(bytes)
        let rfc822 = info.body.parts[1]
        let octets = rfc822.bodyEnd - rfc822.bodyStart
        // Independent of the parser: the encapsulated message runs from its first header line
        // to just before the CRLF of "--outer--".
        let text = String(decoding: bytes, as: UTF8.self)
        let start = text.utf8.distance(from: text.startIndex, to: text.range(of: "From: c@")!.lowerBound)
        let end = text.utf8.distance(from: text.startIndex, to: text.range(of: "\r\n--outer--")!.lowerBound)
        XCTAssertEqual(octets, end - start)
        XCTAssertEqual(rfc822.lines, 13)   // LFs only: the last line's CRLF belongs to "--outer--"
        XCTAssertEqual(written { $0.bodyStructure(info.body, extensible: true) },
                       #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL "forwarded" "7bit" \#(octets) \#(inner) \#(innerBody) 13 NIL NIL NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)"#)
    }

    func testGroupAddressesAndMissingHeaders() {
        let m = """
            Subject: groups
            To: undisclosed-recipients:;
            Cc: Friends: a@x.org, "B B" <b@y.org>;, c@z.org

            x

            """
        // No From, Date, Message-ID: NIL, and From's absence leaves Sender and Reply-To NIL too.
        XCTAssertEqual(envelope(m),
                       #"(NIL "groups" NIL NIL NIL ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Friends" NIL)(NIL NIL "a" "x.org")("B B" NIL "b" "y.org")(NIL NIL NIL NIL)(NIL NIL "c" "z.org")) NIL NIL NIL)"#)
    }

    func testEmptyHeaderGivesAllNIL() {
        XCTAssertEqual(written { $0.envelope(Envelope()) }, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
    }

    func testSenderAndReplyToFallBackToFrom() {
        let m = """
            From: a@example.org
            Sender: s@example.org
            Reply-To: r@example.org
            In-Reply-To: <0@example.org>

            x
            """
        XCTAssertEqual(envelope(m),
                       #"(NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "s" "example.org")) ((NIL NIL "r" "example.org")) NIL NIL NIL "<0@example.org>" NIL)"#)
        let handBuilt = Envelope(from: [Address(mailbox: "a", host: "example.org")])
        XCTAssertEqual(written { $0.envelope(handBuilt) },
                       #"(NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)"#)
    }

    func testEightBitSubjectIsLiteralWithoutUTF8() {
        let m = "From: a@example.org\nSubject: Grüße\n\nx\n"
        XCTAssertEqual(envelope(m),
                       "(NIL {7}\r\nGrüße ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)")
        XCTAssertEqual(envelope(m, utf8: true),
                       #"(NIL "Grüße" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)"#)
    }

    func testEncodedWordsStayRaw() {
        // RFC 9051 §7.5.2: ENVELOPE strings are the raw header values; RFC 2047 is the client's.
        let m = "From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\nSubject: =?utf-8?q?caf=C3=A9?= \"now\"\n\nx\n"
        XCTAssertEqual(envelope(m),
                       #"(NIL "=?utf-8?q?caf=C3=A9?= \"now\"" (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.org")) (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.org")) (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.org")) NIL NIL NIL NIL NIL)"#)
    }

    func testEightBitParameterIsLiteralWithoutUTF8() {
        let m = "Content-Type: text/plain; charset=utf-8; name=\"ü.txt\"\n\nx\n"
        XCTAssertEqual(bodyStructure(m), "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"name\" {6}\r\nü.txt) NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)")
        XCTAssertEqual(bodyStructure(m, utf8: true), #"("text" "plain" ("charset" "utf-8" "name" "ü.txt") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)"#)
    }

    func testHTMLWithoutCharsetGetsDefault() {
        XCTAssertEqual(bodyStructure("Content-Type: text/html\n\n<p>\n"),
                       #"("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 5 1 NIL NIL NIL NIL)"#)
    }

    func testDefaultCharsetGoesAfterOtherParameters() {
        XCTAssertEqual(bodyStructure("Content-Type: text/plain; format=flowed\n\nhi\n", extensible: false),
                       #"("text" "plain" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 4 1)"#)
    }

    func testNonTextWithoutParametersIsNIL() {
        XCTAssertEqual(bodyStructure("Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n"),
                       #"("application" "octet-stream" NIL NIL NIL "base64" 6 NIL NIL NIL NIL)"#)
    }

    func testTransferEncodedMessageHasAnEmptyEnvelopeAndBody() {
        // An encoded message/rfc822 is not parsed (Model.swift), but RFC 9051 §9 media-message is
        // always a body-type-msg: an empty envelope, an empty text/plain body, the lines — as the
        // live Dovecot 2.3 comparison (test_imap_dovecot.py, rfc822_base64) writes it.
        let m = "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbTogYUBiCgp4Cg==\n"
        let empty = #"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"#
        XCTAssertEqual(bodyStructure(m), #"("message" "rfc822" NIL NIL NIL "base64" 22 "# + empty
                       + #" ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL NIL)"#)
        XCTAssertEqual(bodyStructure(m, extensible: false), #"("message" "rfc822" NIL NIL NIL "base64" 22 "# + empty
                       + #" ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 1)"#)
    }

    func testSingleLanguageIsStillAList() {
        XCTAssertEqual(bodyStructure("Content-Language: de\nContent-Disposition: inline\n\nHallo\n"),
                       #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL ("inline" NIL) ("de") NIL)"#)
    }

    func testExtensionFieldsFromModel() {
        let part = BodyPart(type: "image", subtype: "png", parameters: [], id: "<i@x>", description: "logo",
                            encoding: "base64", disposition: "attachment", dispositionParameters: [["filename", "logo.png"], ["size", "3"]],
                            language: ["en", "de"], location: "http://x/logo.png", md5: "abc=",
                            headerStart: 0, bodyStart: 10, bodyEnd: 14)
        XCTAssertEqual(written { $0.bodyStructure(part, extensible: true) },
                       #"("image" "png" NIL "<i@x>" "logo" "base64" 4 "abc=" ("attachment" ("filename" "logo.png" "size" "3")) ("en" "de") "http://x/logo.png")"#)
        XCTAssertEqual(written { $0.bodyStructure(part, extensible: false) }, #"("image" "png" NIL "<i@x>" "logo" "base64" 4)"#)
    }

    func testMultipartExtensionFields() {
        let child = BodyPart(headerStart: 0, bodyStart: 0, bodyEnd: 0)
        let mp = BodyPart(type: "multipart", subtype: "related", parameters: [["boundary", "z"], ["type", "text/html"]],
                          disposition: "inline", language: ["fr"], location: "cid:root", parts: [child])
        XCTAssertEqual(written { $0.bodyStructure(mp, extensible: true) },
                       #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "related" ("boundary" "z" "type" "text/html") ("inline" NIL) ("fr") "cid:root")"#)
    }

    func testHandBuiltEmptyMultipartGetsOneEmptyPart() {
        let mp = BodyPart(type: "multipart", subtype: "mixed", parameters: [], bodyStart: 5, bodyEnd: 5)
        XCTAssertEqual(written { $0.bodyStructure(mp, extensible: false) }, #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")"#)
    }

    func testNestedMultipartDepth() {
        let m = """
            Content-Type: multipart/mixed; boundary=a

            --a
            Content-Type: multipart/related; boundary=b

            --b
            Content-Type: text/html

            <img>
            --b
            Content-Type: image/gif
            Content-ID: <g>

            GIF
            --b--
            --a--

            """
        XCTAssertEqual(bodyStructure(m, extensible: false),
                       #"((("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 5 0)("image" "gif" NIL "<g>" NIL "7bit" 3) "related") "mixed")"#)
    }

    func testDigestDefaultsToMessageRFC822() {
        // RFC 2046 §5.1.5: in multipart/digest a part without Content-Type is message/rfc822.
        let m = """
            Content-Type: multipart/digest; boundary=d

            --d

            From: x@y
            Subject: one

            hi
            --d--

            """
        XCTAssertEqual(bodyStructure(m, extensible: false),
                       #"(("message" "rfc822" NIL NIL NIL "7bit" 29 (NIL "one" ((NIL NIL "x" "y")) ((NIL NIL "x" "y")) ((NIL NIL "x" "y")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0) 3) "digest")"#)
    }
}

/// RFC 2231 continuations as Dovecot's rfc2231_parse joins them.
final class RFC2231ParameterTests: XCTestCase {
    func testPlainContinuationsAreJoined() {
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["name*1", "port.pdf"], ["charset", "x"], ["name*0", "re"]]),
                       [["charset", "x"], ["name", "report.pdf"]])
    }

    func testExtendedSegmentsMakeAStarName() {
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["filename*0*", "utf-8''%E2%82%AC"], ["filename*1", "1%.txt"]]),
                       [["filename*", "utf-8''%E2%82%AC1%25.txt"]])
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["filename*0", "a%"], ["filename*1*", "%41"]]),
                       [["filename*", "''a%25%41"]])
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["title*", "us-ascii'en'x"]]), [["title*", "us-ascii'en'x"]])
    }

    func testGapsKeepTheRawSegments() {
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["name*0", "a"], ["name*2", "c"]]), [["name*0", "a"], ["name*2", "c"]])
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["name*x", "a"]]), [["name*x", "a"]])
    }

    func testInBodyStructure() {
        let m = "Content-Type: application/pdf; name*0=\"big \"; name*1=\"report.pdf\"\nContent-Disposition: attachment;\n filename*0*=utf-8''r%C3%A9; filename*1*=sum%C3%A9.pdf\n\nx\n"
        let info = MessageParser.parse(crlfMessage(m))
        XCTAssertEqual(written { $0.bodyStructure(info.body, extensible: true) },
                       #"("application" "pdf" ("name" "big report.pdf") NIL NIL "7bit" 3 NIL ("attachment" ("filename*" "utf-8''r%C3%A9sum%C3%A9.pdf")) NIL NIL)"#)
    }
}

/// Hostile input: mutated messages through the parser, then through the writer and the section
/// locator. Whatever the message, the output must be well-formed IMAP and every plan in bounds.
final class MutatedMessageTests: XCTestCase {
    /// xorshift64*: deterministic, so a failure names its seed.
    struct Rng {
        var s: UInt64
        mutating func next(_ n: Int) -> Int {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            return Int((s &* 2_685_821_657_736_338_717) >> 33) % max(1, n)
        }
    }

    static let pieces: [[UInt8]] = ["\r\n", "\n", "--", "outer", "inner", "XX", ":", ";", "\"", "\\", "=", "*0*",
                                    "(", ")", "{5}", " ", "\t", "Content-Type: multipart/mixed; boundary=XX\r\n",
                                    "Content-Type: message/rfc822\r\n\r\n", "\r\n--XX\r\n", "\r\n--XX--\r\n",
                                    "To: g: a@b, <c@d>;\r\n", "Subject: \u{FC}\u{DF} \"q\" \\\r\n"].map { Array($0.utf8) }
        + [[0xFF, 0xFE], [0xC3], [0x00], [0x80]]

    func mutate(_ base: [UInt8], _ rng: inout Rng) -> [UInt8] {
        var m = base
        for _ in 0..<(1 + rng.next(6)) {
            let at = rng.next(m.count + 1)
            switch rng.next(3) {
            case 0: m.insert(contentsOf: Self.pieces[rng.next(Self.pieces.count)], at: at)
            case 1: m.removeSubrange(at..<min(m.count, at + rng.next(40)))
            default: if at < m.count { m[at] = UInt8(truncatingIfNeeded: rng.next(256)) }
            }
        }
        return m
    }

    /// Walks IMAP output: balanced parentheses, atoms/numbers/NIL, quoted strings without CR, LF
    /// or NUL (8-bit only with `utf8`), literals with exactly their announced byte count.
    func wellFormed(_ b: [UInt8], utf8: Bool) -> String? {
        var i = 0, depth = 0
        while i < b.count {
            let c = b[i]
            switch c {
            case UInt8(ascii: "("): depth += 1; i += 1
            case UInt8(ascii: ")"): depth -= 1; i += 1; if depth < 0 { return "unbalanced ) at \(i)" }
            case UInt8(ascii: " "): i += 1
            case UInt8(ascii: "\""):
                i += 1
                while i < b.count && b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") { i += 1; guard i < b.count, b[i] == 0x22 || b[i] == 0x5C else { return "bad escape at \(i)" } }
                    if b[i] == 0 || b[i] == 13 || b[i] == 10 { return "CTL in quoted at \(i)" }
                    if b[i] >= 0x80 && !utf8 { return "8-bit in quoted at \(i)" }
                    i += 1
                }
                guard i < b.count else { return "unterminated quoted" }
                i += 1
            case UInt8(ascii: "{"):
                var n = 0
                i += 1
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { n = n * 10 + Int(b[i] - 0x30); i += 1 }
                guard i + 2 < b.count, b[i] == UInt8(ascii: "}"), b[i + 1] == 13, b[i + 2] == 10 else { return "bad literal at \(i)" }
                i += 3 + n
                if i > b.count { return "short literal" }
            default:
                let start = i
                while i < b.count, IMAPWriter.isAtomChar(b[i]) { i += 1 }
                if i == start { return "stray byte \(c) at \(i)" }
            }
        }
        return depth == 0 ? nil : "unbalanced ( (depth \(depth))"
    }

    func testTheCheckerRejects() {
        for bad in ["(\"a)", "(NIL", "NIL)", "\"a\rb\"", "{5}\r\nabc", "{2}x", "(a%)", "\"\\x\""] {
            XCTAssertNotNil(wellFormed(Array(bad.utf8), utf8: false), bad)
        }
        XCTAssertNotNil(wellFormed(Array("\"ü\"".utf8), utf8: false))
        XCTAssertNil(wellFormed(Array("\"ü\"".utf8), utf8: true))
        XCTAssertNil(wellFormed(Array("((NIL \"a\\\"\" {3}\r\nabc)(x 12)) x".utf8), utf8: false))
    }

    func testMutatedMessagesWriteWellFormedIMAP() {
        let bases = [plainMessage, alternativeMessage, attachmentMessage, nestedMessage].map(crlfMessage)
        var rng = Rng(s: 0x9E37_79B9_7F4A_7C15)
        for round in 0..<600 {
            let m = mutate(bases[round % bases.count], &rng)
            let info = MessageParser.parse(m)
            for utf8 in [false, true] {
                for ext in [false, true] {
                    var w = IMAPWriter(utf8: utf8)
                    w.bodyStructure(info.body, extensible: ext)
                    if let e = wellFormed(w.bytes, utf8: utf8) { return XCTFail("round \(round) body: \(e)") }
                }
                var w = IMAPWriter(utf8: utf8)
                w.envelope(info.envelope)
                if let e = wellFormed(w.bytes, utf8: utf8) { return XCTFail("round \(round) envelope: \(e)") }
            }
            for _ in 0..<8 {
                let path = (0..<rng.next(4)).map { _ in 1 + rng.next(3) }
                let texts: [Section.Text?] = [nil, .header, .text, .mime, .headerFields(["to"]), .headerFieldsNot(["to"])]
                let plan = SectionLocator.locate(Section(part: path, text: texts[rng.next(texts.count)]), in: info)
                switch plan {
                case .range(let s, let e)?, .headerFields(let s, let e, _, _)?:
                    XCTAssert(0 <= s && s <= e && e <= m.count, "round \(round): \(path) → \(s)..<\(e) of \(m.count)")
                    if case .headerFields(_, _, let names, let not)? = plan {
                        let f = SectionLocator.filterHeader(Array(m[s..<e]), names: names, not: not)
                        XCTAssert(f.isEmpty || f.suffix(2) == [13, 10], "round \(round): header lines end CRLF")
                    }
                case .empty?, nil: break
                }
            }
        }
    }

    /// The default charset is added only when no parameter is named charset, in any case; a
    /// list without RFC 2231 segments is written as it is.
    func testCharsetNameAndPlainParameterLists() {
        XCTAssertTrue(IMAPWriter.isCharset("charset")); XCTAssertTrue(IMAPWriter.isCharset("CharSet"))
        XCTAssertFalse(IMAPWriter.isCharset("charsets")); XCTAssertFalse(IMAPWriter.isCharset("chars3t")); XCTAssertFalse(IMAPWriter.isCharset(""))
        let plain = [["format", "flowed"], ["CHARSET", "utf-8"]]
        XCTAssertEqual(IMAPWriter.rfc2231Merged(plain), plain)
        XCTAssertEqual(IMAPWriter.rfc2231Merged([["name*0", "a"], ["name*1", "b"], ["x", "y"]]), [["x", "y"], ["name", "ab"]])
    }
}
