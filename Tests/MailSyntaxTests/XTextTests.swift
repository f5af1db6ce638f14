// xtext (RFC 3461 §4): table-driven encode/decode, strict refusals of what is not xtext, and a
// round trip of every byte value; SRS's day arithmetic before and after the epoch.
import MailSyntax
import XCTest

final class XTextTests: XCTestCase {
    func testDecode() {
        let table: [(String, [UInt8]?)] = [
            ("", []),
            ("abc", Array("abc".utf8)),
            ("a+2Bb", Array("a+b".utf8)),
            ("+3D+2B+20", Array("=+ ".utf8)),
            ("rfc822;x@y.example", Array("rfc822;x@y.example".utf8)),
            ("+00", [0]),
            ("+FF", [0xFF]),
            ("a+2b", nil),            // hex digits are upper case
            ("a+2", nil), ("a+", nil), ("+G0", nil),
            ("a=b", nil),             // "=" is not an xchar
            ("a b", nil), ("a\u{7F}", nil), ("é", nil),
        ]
        for (text, expected) in table {
            XCTAssertEqual(XText.decode(Array(text.utf8)), expected, text)
        }
    }

    func testEncodeRoundTripsEveryByte() {
        XCTAssertEqual(XText.encode("a+b=c d"), "a+2Bb+3Dc+20d")
        let all = String(decoding: (1...127).map { UInt8($0) }, as: UTF8.self)
        let encoded = XText.encode(all)
        XCTAssertTrue(encoded.utf8.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: "=") })
        XCTAssertEqual(XText.decode(Array(encoded.utf8)), Array(all.utf8))
        XCTAssertEqual(XText.decode(Array(XText.encode("grüße").utf8)), Array("grüße".utf8))
    }

    func testSRSAddressesAcrossTheEpoch() {
        let srs = SRS(secretKeys: [[1, 2, 3]], domain: "fwd.example", hmac: { _, m in Array(m.prefix(20)) + Array(repeating: 0, count: max(0, 20 - m.count)) })
        for seconds: Int64 in [-86_401, -1, 0, 86_399, 1_800_000_000] {
            let f = srs.forward(SRS.Address(localPart: "joe", domain: "example.com"), at: seconds)
            XCTAssertTrue(f.localPart.hasPrefix("SRS0="), f.localPart)
            XCTAssertEqual(try srs.reverse(f, at: seconds + 86_400), SRS.Address(localPart: "joe", domain: "example.com"), "\(seconds)")
        }
    }
}
