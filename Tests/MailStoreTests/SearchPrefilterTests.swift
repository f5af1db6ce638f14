// The bytes-level prefilter of TEXT/BODY (SearchPrefilter): it may only ever say "surely not",
// so every case here where the decoded, folded text has the word must still match, and the
// plain 7-bit case it exists for must be decided without decoding.
import XCTest
import MIME
@testable import MailStore

final class SearchPrefilterTests: XCTestCase {
    static func lines(_ l: [String]) -> [UInt8] { Array(l.joined(separator: "\r\n").utf8) }

    func message(_ raw: [UInt8]) -> SearchableMessage {
        SearchableMessage(uid: 1, modSeq: 1, flags: [], keywords: [], internalDate: 0, size: UInt64(raw.count),
                          info: MessageParser.parse(raw), body: { raw })
    }

    func text(_ needle: String, _ raw: [UInt8]) throws -> Bool { try SearchEvaluator.matches(.text(needle), message(raw)) }
    func body(_ needle: String, _ raw: [UInt8]) throws -> Bool { try SearchEvaluator.matches(.body(needle), message(raw)) }

    static let plain = lines(["From: A <a@example.com>", "Subject: Quarterly Zebracorn report", "X-Folded: first",
                              " second", "", "Body mentions the BUDGET.", ""])

    func testPlainMessageIsPrefiltered() throws {
        XCTAssertNotNil(SearchPrefilter.plainText(Self.plain, MessageParser.parse(Self.plain).body))
        XCTAssertTrue(try text("zebracorn", Self.plain))
        XCTAssertTrue(try text("budget", Self.plain))
        XCTAssertTrue(try body("BuDgEt", Self.plain))
        XCTAssertFalse(try body("zebracorn", Self.plain))     // in the header only
        XCTAssertFalse(try text("unicorn", Self.plain))
    }

    func testNeedlesAcrossSeparatorsAreNotPrefiltered() throws {
        // "first second" exists only once the header is unfolded; "subject: quarterly" only as a
        // "name: value" line.
        XCTAssertTrue(try text("first second", Self.plain))
        XCTAssertTrue(try text("subject: quarterly", Self.plain))
        XCTAssertFalse(SearchPrefilter.canPrefilter(UInt8(ascii: ":")))
        XCTAssertFalse(SearchPrefilter.canPrefilter(UInt8(ascii: " ")))
    }

    func testEncodedContentIsDecodedNotPrefiltered() throws {
        let b64 = Self.lines(["Subject: x", "Content-Type: text/plain", "Content-Transfer-Encoding: base64", "",
                              Data("a zebracorn here".utf8).base64EncodedString(), ""])
        XCTAssertNil(SearchPrefilter.plainText(b64, MessageParser.parse(b64).body))
        XCTAssertTrue(try text("zebracorn", b64))
        let qp = Self.lines(["Subject: x", "Content-Transfer-Encoding: quoted-printable", "", "zebra=", "corn", ""])
        XCTAssertTrue(try body("zebracorn", qp))
        let word = Self.lines(["Subject: =?us-ascii?B?emVicmFjb3Ju?=", "", "body", ""])
        XCTAssertNil(SearchPrefilter.plainText(word, MessageParser.parse(word).body))
        XCTAssertTrue(try text("zebracorn", word))
    }

    func testCharsetsThatAreNotASCIISupersetsAreDecoded() throws {
        // UTF-7 "+AGE-" is "a": 7-bit bytes that are not their own text.
        let utf7 = Self.lines(["Content-Type: text/plain; charset=utf-7", "", "zebr+AGE-corn", ""])
        XCTAssertNil(SearchPrefilter.plainText(utf7, MessageParser.parse(utf7).body))
        XCTAssertTrue(try body("zebracorn", utf7))
        let latin1 = Self.lines(["Content-Type: text/plain; charset=\"ISO-8859-1\"", "", "zebracorn", ""])
        XCTAssertNotNil(SearchPrefilter.plainText(latin1, MessageParser.parse(latin1).body))
    }

    func testEightBitAndBareCRAreDecoded() throws {
        // Full case folding: "ß" is found by "ss"; 8-bit text is never prefiltered.
        let eight = Array("Subject: x\r\n\r\nStra\u{DF}e\r\n".utf8)
        XCTAssertNil(SearchPrefilter.plainText(eight, MessageParser.parse(eight).body))
        XCTAssertTrue(try body("strasse", eight))
        // A CR without LF inside a header value is dropped when the value is read.
        let cr = Array("Subject: zebra\rcorn\r\n\r\nbody\r\n".utf8)
        XCTAssertNil(SearchPrefilter.plainText(cr, MessageParser.parse(cr).body))
    }

    func testMultipartWithBinaryAttachmentStaysPlainWhenTextPartsAre() throws {
        let mixed = Self.lines(["Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Type: text/plain", "",
                                "see the zebracorn", "--b", "Content-Type: application/octet-stream",
                                "Content-Transfer-Encoding: base64", "", "AAEC", "--b--", ""])
        XCTAssertNil(SearchPrefilter.plainText(mixed, MessageParser.parse(mixed).body))   // one leaf base64
        let alt = Self.lines(["Content-Type: multipart/alternative; boundary=b", "", "--b", "Content-Type: text/plain", "",
                              "see the zebracorn", "--b", "Content-Type: text/html; charset=us-ascii", "", "<p>hi</p>", "--b--", ""])
        XCTAssertNotNil(SearchPrefilter.plainText(alt, MessageParser.parse(alt).body))
        XCTAssertTrue(try body("zebracorn", alt))
        XCTAssertFalse(try body("unicorn", alt))
    }
}
