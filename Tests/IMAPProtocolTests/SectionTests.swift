// SectionLocator: every plan kind on a nested message, checked against byte positions found by
// searching the message text (not by the parser), plus header filtering and partial ranges.
import XCTest
@testable import IMAPProtocol
import MIME

final class SectionTests: XCTestCase {
    let bytes = crlfMessage(nestedMessage)
    lazy var info = MessageParser.parse(bytes)

    /// Offset of the first occurrence of `s` in the nested message.
    func at(_ s: String) -> Int {
        let needle = Array(s.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        for i in 0...(bytes.count - needle.count) where Array(bytes[i..<i + needle.count]) == needle { return i }
        XCTFail("not found: \(s)")
        return -1
    }

    func plan(_ part: [Int], _ text: Section.Text? = nil) -> SectionPlan? {
        SectionLocator.locate(Section(part: part, text: text), in: info)
    }

    /// The bytes a plan stands for, filtered when it is a header-fields plan.
    func content(_ p: SectionPlan?) -> String? {
        switch p {
        case .range(let s, let e)?: return String(decoding: bytes[s..<e], as: UTF8.self)
        case .headerFields(let s, let e, let names, let not)?:
            return String(decoding: SectionLocator.filterHeader(Array(bytes[s..<e]), names: names, not: not), as: UTF8.self)
        case .empty?: return ""
        case nil: return nil
        }
    }

    // MARK: Top level

    func testWholeMessageHeaderAndText() {
        let body = at("--outer\n")
        XCTAssertEqual(plan([]), .range(0, bytes.count))
        XCTAssertEqual(plan([], .header), .range(0, body))
        XCTAssertEqual(plan([], .text), .range(body, bytes.count))
        XCTAssertTrue(content(plan([], .header))!.hasSuffix("outer\"\r\n\r\n"))
    }

    func testTopLevelHeaderFields() {
        XCTAssertEqual(plan([], .headerFields(["subject", "FROM"])), .headerFields(0, at("--outer\n"), names: ["subject", "FROM"], not: false))
        XCTAssertEqual(content(plan([], .headerFields(["subject", "FROM"]))), "From: a@example.org\r\nSubject: fwd\r\n\r\n")
        XCTAssertEqual(content(plan([], .headerFieldsNot(["Content-Type", "mime-version"]))), "From: a@example.org\r\nSubject: fwd\r\n\r\n")
    }

    func testMIMEWithoutPartIsInvalid() {
        XCTAssertNil(plan([], .mime))
    }

    func testPartNumberZeroIsInvalid() {
        XCTAssertNil(plan([0]))
        XCTAssertNil(plan([2, 0, 1], .header))
    }

    // MARK: Parts

    func testFirstPartBodyAndMIMEHeader() {
        let mimeStart = at("Content-Type: text/plain; charset=us-ascii")
        let bodyStart = at("See below.")
        XCTAssertEqual(plan([1]), .range(bodyStart, bodyStart + "See below.".utf8.count))
        XCTAssertEqual(plan([1], .mime), .range(mimeStart, bodyStart))
        XCTAssertEqual(content(plan([1], .mime)), "Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    }

    func testMessagePartBodyIsTheWholeEncapsulatedMessage() {
        let start = at("From: c@")
        let end = at("\n--outer--")               // the CRLF belongs to the delimiter
        XCTAssertEqual(plan([2]), .range(start, end))
        XCTAssertEqual(content(plan([2], .mime)), "Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n")
    }

    func testHeaderAndTextOfEncapsulatedMessage() {
        let start = at("From: c@")
        let innerBody = at("--inner\n")
        XCTAssertEqual(plan([2], .header), .range(start, innerBody))
        XCTAssertEqual(plan([2], .text), .range(innerBody, at("\n--outer--")))
        XCTAssertTrue(content(plan([2], .text))!.hasSuffix("--inner--"))
    }

    func testHeaderFieldsOfEncapsulatedMessage() {
        XCTAssertEqual(content(plan([2], .headerFields(["to", "subject"]))), "To: d@example.net\r\nSubject: inner\r\n\r\n")
        XCTAssertEqual(content(plan([2], .headerFieldsNot(["content-type"]))),
                       "From: c@example.net\r\nTo: d@example.net\r\nSubject: inner\r\n\r\n")
        if case .headerFields(let s, let e, _, let not)? = plan([2], .headerFieldsNot(["x"])) {
            XCTAssertEqual(s, at("From: c@"))
            XCTAssertEqual(e, at("--inner\n"))
            XCTAssertTrue(not)
        } else {
            XCTFail("not a header-fields plan")
        }
    }

    func testPartsInsideTheEncapsulatedMultipart() {
        let plain = at("plain\n--inner")
        XCTAssertEqual(plan([2, 1]), .range(plain, plain + 5))
        XCTAssertEqual(content(plan([2, 2])), "<b>html</b>")
        XCTAssertEqual(content(plan([2, 1], .mime)), "Content-Type: text/plain\r\n\r\n")
        XCTAssertEqual(content(plan([2, 2], .mime)), "Content-Type: text/html\r\n\r\n")
    }

    func testLeafHasOnlyItselfAsPartOne() {
        // As Dovecot: a number 1 below a non-multipart names the same part; anything deeper does not exist.
        XCTAssertEqual(plan([1, 1]), plan([1]))
        XCTAssertEqual(plan([2, 1, 1]), plan([2, 1]))
        XCTAssertEqual(plan([1, 1, 1]), .empty)
        XCTAssertEqual(plan([1, 2]), .empty)
    }

    func testMissingPartsAreEmpty() {
        XCTAssertEqual(plan([3]), .empty)
        XCTAssertEqual(plan([3], .mime), .empty)
        XCTAssertEqual(plan([2, 3]), .empty)
        XCTAssertEqual(plan([2, 3], .header), .empty)
        XCTAssertEqual(plan([9, 9, 9]), .empty)
    }

    func testHeaderOfANonMessagePartIsEmpty() {
        // RFC 9051 §6.4.5: HEADER/TEXT after a part number need a MESSAGE/RFC822 part.
        XCTAssertEqual(plan([1], .header), .empty)
        XCTAssertEqual(plan([1], .text), .empty)
        XCTAssertEqual(plan([2, 1], .headerFields(["to"])), .empty)
    }

    func testSinglePartMessageHasPartOne() {
        let m = crlfMessage("Subject: x\n\nline one\nline two\n")
        let i = MessageParser.parse(m)
        XCTAssertEqual(SectionLocator.locate(Section(part: [1]), in: i), .range(i.headerSize, m.count))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1], text: .mime), in: i), .range(0, i.headerSize))
        XCTAssertEqual(SectionLocator.locate(Section(part: [2]), in: i), .empty)
        XCTAssertEqual(SectionLocator.locate(Section(part: [1, 1]), in: i), .empty)
    }

    func testTopLevelMessageRFC822() {
        // A whole message that is message/rfc822: 1 is its body, 1.HEADER the inner header.
        let m = crlfMessage("Content-Type: message/rfc822\n\nSubject: inner\n\nhello\n")
        let i = MessageParser.parse(m)
        let inner = i.headerSize
        let innerBody = inner + "Subject: inner\r\n\r\n".utf8.count
        XCTAssertEqual(SectionLocator.locate(Section(part: [1]), in: i), .range(inner, m.count))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1], text: .header), in: i), .range(inner, innerBody))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1, 1]), in: i), .range(innerBody, m.count))
    }

    func testPartLookupForBinary() {
        XCTAssertEqual(SectionLocator.part([], in: info)?.subtype, "mixed")
        XCTAssertEqual(SectionLocator.part([2, 2], in: info)?.subtype, "html")
        XCTAssertEqual(SectionLocator.part([2], in: info)?.subtype, "rfc822")
        XCTAssertNil(SectionLocator.part([3], in: info))
        XCTAssertNil(SectionLocator.part([0], in: info))
    }

    // MARK: filterHeader

    func testFilterKeepsFoldedLinesAndOrder() {
        let h = Array("Received: from a\r\n\tby b\r\nSubject: one\r\n two\r\nX-Spam: yes\r\nsubject: again\r\n\r\n".utf8)
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["SUBJECT"], not: false), as: UTF8.self),
                       "Subject: one\r\n two\r\nsubject: again\r\n\r\n")
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["subject", "x-spam"], not: true), as: UTF8.self),
                       "Received: from a\r\n\tby b\r\n\r\n")
    }

    func testFilterNoMatchIsJustTheBlankLine() {
        let h = Array("From: a@b\r\n\r\n".utf8)
        XCTAssertEqual(SectionLocator.filterHeader(h, names: ["References"], not: false), [13, 10])
        XCTAssertEqual(SectionLocator.filterHeader(Array("\r\n".utf8), names: ["From"], not: false), [13, 10])
    }

    func testFilterNormalisesLineEnds() {
        let h = Array("From: a@b\nTo: c@d\n folded\n\n".utf8)
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["to"], not: false), as: UTF8.self),
                       "To: c@d\r\n folded\r\n\r\n")
        let noEnd = Array("From: a@b\r\nTo: c@d".utf8)
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(noEnd, names: ["to"], not: false), as: UTF8.self),
                       "To: c@d\r\n")
    }

    func testFilterAddsNoBlankLineTheHeaderDoesNotHave() {
        // RFC 3501 §6.4.5: "the blank line is included in all header fetches, except in the case
        // of a message which has no body and no blank line" (Python's email msg_35; Dovecot 2.3).
        let h = Array("From: a@b\r\nSubject: s\r\nno colon, no blank line\r\n".utf8)
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["received"], not: true), as: UTF8.self),
                       "From: a@b\r\nSubject: s\r\nno colon, no blank line\r\n")
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["subject"], not: false), as: UTF8.self),
                       "Subject: s\r\n")
        XCTAssertEqual(SectionLocator.filterHeader([], names: ["From"], not: false), [])
        XCTAssertTrue(SectionLocator.endsWithBlankLine(Array("a: b\n\n".utf8)))
        XCTAssertTrue(SectionLocator.endsWithBlankLine(Array("\n".utf8)))
        XCTAssertFalse(SectionLocator.endsWithBlankLine(Array("a: b\r\n".utf8)))
    }

    func testEncodedMessageReadsAsAllHeader() {
        // An unparsed (base64) message/rfc822: [1.HEADER] and [1.1.MIME] are its whole body,
        // [1.TEXT] and [1.1] empty, as its BODYSTRUCTURE (empty envelope and body) and Dovecot say.
        let m = crlfMessage("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n"
                            + "Content-Transfer-Encoding: base64\n\nRnJvbTogYUBiCgp4Cg==\n--o--\n")
        let info = MessageParser.parse(m)
        let part = info.body.parts[0]
        let b64 = part.bodyStart..<part.bodyEnd
        XCTAssertEqual(String(decoding: m[b64], as: UTF8.self), "RnJvbTogYUBiCgp4Cg==")
        XCTAssertEqual(SectionLocator.locate(Section(part: [1], text: .header), in: info), .range(b64.lowerBound, b64.upperBound))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1], text: .text), in: info), .range(b64.upperBound, b64.upperBound))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1, 1], text: .mime), in: info), .range(b64.lowerBound, b64.upperBound))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1, 1]), in: info), .range(b64.upperBound, b64.upperBound))
        XCTAssertEqual(SectionLocator.locate(Section(part: [1]), in: info), .range(b64.lowerBound, b64.upperBound))
    }

    func testPartInsideAMessageWithASinglePartBody() {
        // BINARY[1.1] (IMAPSession.binaryPart) decodes by the encoding of the entity
        // SectionLocator.part names: the base64 body of the encapsulated message, not the
        // message/rfc822 part itself (test_imap_dovecot.py, rfc822_inner_base64).
        let m = crlfMessage("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\n"
                            + "Subject: inner\nContent-Transfer-Encoding: base64\n\nSGk=\n--o--\n")
        let info = MessageParser.parse(m)
        XCTAssertEqual(SectionLocator.part([1], in: info)?.subtype, "rfc822")
        let inner = SectionLocator.part([1, 1], in: info)
        XCTAssertEqual(inner?.encoding, "base64")
        XCTAssertEqual(inner.map { String(decoding: m[$0.bodyStart..<$0.bodyEnd], as: UTF8.self) }, "SGk=")
    }

    func testFilterNameMustMatchWholly() {
        let h = Array("X-Subject: no\r\nSubject : spaced\r\nSubjectX: no\r\n\r\n".utf8)
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["subject"], not: false), as: UTF8.self),
                       "Subject : spaced\r\n\r\n")
    }

    func testFilterMalformedLinesOnlyInNot() {
        let h = Array("From: a@b\r\ngarbage line\r\nTo: c@d\r\n\r\n".utf8)
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["from", "to"], not: false), as: UTF8.self),
                       "From: a@b\r\nTo: c@d\r\n\r\n")
        XCTAssertEqual(String(decoding: SectionLocator.filterHeader(h, names: ["from"], not: true), as: UTF8.self),
                       "garbage line\r\nTo: c@d\r\n\r\n")
    }

    // MARK: applyPartial

    func testPartialRanges() {
        XCTAssertTrue(SectionLocator.applyPartial(nil, toLength: 100) == (0, 100))
        XCTAssertTrue(SectionLocator.applyPartial(Partial(offset: 0, length: 10), toLength: 100) == (0, 10))
        XCTAssertTrue(SectionLocator.applyPartial(Partial(offset: 95, length: 10), toLength: 100) == (95, 5))
        XCTAssertTrue(SectionLocator.applyPartial(Partial(offset: 100, length: 10), toLength: 100) == (100, 0))
        XCTAssertTrue(SectionLocator.applyPartial(Partial(offset: 4_000_000_000, length: UInt32.max), toLength: 100) == (100, 0))
        XCTAssertTrue(SectionLocator.applyPartial(Partial(offset: 10, length: 0), toLength: 100) == (10, 0))
        XCTAssertTrue(SectionLocator.applyPartial(Partial(offset: 0, length: UInt32.max), toLength: 0) == (0, 0))
    }

    func testPartialOfAFilteredHeader() {
        let filtered = SectionLocator.filterHeader(Array(bytes[0..<info.headerSize]), names: ["subject"], not: false)
        let (o, n) = SectionLocator.applyPartial(Partial(offset: 9, length: 100), toLength: filtered.count)
        XCTAssertEqual(String(decoding: filtered[o..<o + n], as: UTF8.self), "fwd\r\n\r\n")
    }
}

final class SectionNameTests: XCTestCase {
    func testBodySectionNames() {
        XCTAssertEqual(written { $0.bodySectionName(Section(), origin: nil) }, "BODY[]")
        XCTAssertEqual(written { $0.bodySectionName(Section(), origin: 0) }, "BODY[]<0>")
        XCTAssertEqual(written { $0.bodySectionName(Section(part: [1, 2]), origin: 1024) }, "BODY[1.2]<1024>")
        XCTAssertEqual(written { $0.bodySectionName(Section(text: .header), origin: nil) }, "BODY[HEADER]")
        XCTAssertEqual(written { $0.bodySectionName(Section(part: [2], text: .text), origin: nil) }, "BODY[2.TEXT]")
        XCTAssertEqual(written { $0.bodySectionName(Section(part: [1, 3], text: .mime), origin: nil) }, "BODY[1.3.MIME]")
    }

    func testHeaderFieldNamesAreUppercasedAstrings() {
        XCTAssertEqual(written { $0.bodySectionName(Section(text: .headerFields(["From", "to", "X-Spam-Flag"])), origin: nil) },
                       "BODY[HEADER.FIELDS (FROM TO X-SPAM-FLAG)]")
        XCTAssertEqual(written { $0.bodySectionName(Section(part: [2], text: .headerFieldsNot(["Odd Name"])), origin: 5) },
                       "BODY[2.HEADER.FIELDS.NOT (\"ODD NAME\")]<5>")
    }

    func testBinarySectionNames() {
        XCTAssertEqual(written { $0.binarySectionName(part: [1, 2], origin: nil, size: false) }, "BINARY[1.2]")
        XCTAssertEqual(written { $0.binarySectionName(part: [], origin: 10, size: false) }, "BINARY[]<10>")
        XCTAssertEqual(written { $0.binarySectionName(part: [3], origin: 10, size: true) }, "BINARY.SIZE[3]")
    }
}
