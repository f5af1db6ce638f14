import XCTest
@testable import IMAPProtocol

final class ModifiedUTF7Tests: XCTestCase {
    // RFC 3501 §5.1.3's example and the usual suspects.
    func testKnownForms() {
        XCTAssertEqual(ModifiedUTF7.encode("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        XCTAssertEqual(ModifiedUTF7.encode("A&B"), "A&-B")
        XCTAssertEqual(ModifiedUTF7.encode("Entwürfe"), "Entw&APw-rfe")
        XCTAssertEqual(ModifiedUTF7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-"), "~peter/mail/台北/日本語")
        XCTAssertEqual(ModifiedUTF7.decode("A&-B"), "A&B")
        XCTAssertEqual(ModifiedUTF7.decode("Entw&APw-rfe"), "Entwürfe")
    }

    func testRoundTripsAstralAndMixed() {
        for s in ["😀 smile", "Ünïcödé/Ordner", "a&b&c", "日本語", "", "plain", "tab\tin"] {
            XCTAssertEqual(ModifiedUTF7.decode(ModifiedUTF7.encode(s)), s, s)
        }
    }

    func testRejectsWhatNoEncoderWrites() {
        XCTAssertNil(ModifiedUTF7.decode("&AGE-"))          // "a" encoded
        XCTAssertNil(ModifiedUTF7.decode("&U,BTFw"))        // unterminated
        XCTAssertNil(ModifiedUTF7.decode("&U,BTFw-&ZeVnLIqe-")) // two runs in a row
        XCTAssertNil(ModifiedUTF7.decode("&2D3-"))          // lone surrogate
        XCTAssertNil(ModifiedUTF7.decode("&*-"))            // not base64
        XCTAssertNil(ModifiedUTF7.decode("caf\u{e9}"))      // 8-bit
    }
}
