// ASCII classes, ByteCursor, Base64 and SplitMix: table-driven cases, and the base64 decoder fed
// hostile input (every byte value, random strings, round trips).
import MailSyntax
import XCTest

final class SyntaxTests: XCTestCase {
    func testASCIIClasses() {
        let table: [(UInt8, wsp: Bool, alpha: Bool, digit: Bool, hex: Bool, atext: Bool, ftext: Bool)] = [
            (0x20, true, false, false, false, false, false),
            (0x09, true, false, false, false, false, false),
            (UInt8(ascii: "a"), false, true, false, true, true, true),
            (UInt8(ascii: "G"), false, true, false, false, true, true),
            (UInt8(ascii: "7"), false, false, true, true, true, true),
            (UInt8(ascii: ":"), false, false, false, false, false, false),
            (UInt8(ascii: "@"), false, false, false, false, false, true),
            (UInt8(ascii: "~"), false, false, false, false, true, true),
            (0x7F, false, false, false, false, false, false),
            (0xC3, false, false, false, false, false, false),
        ]
        for t in table {
            XCTAssertEqual(ASCII.isWSP(t.0), t.wsp, "\(t.0)")
            XCTAssertEqual(ASCII.isAlpha(t.0), t.alpha, "\(t.0)")
            XCTAssertEqual(ASCII.isDigit(t.0), t.digit, "\(t.0)")
            XCTAssertEqual(ASCII.isHex(t.0), t.hex, "\(t.0)")
            XCTAssertEqual(ASCII.isAtext(t.0), t.atext, "\(t.0)")
            XCTAssertEqual(ASCII.isFtext(t.0), t.ftext, "\(t.0)")
        }
        XCTAssertEqual(ASCII.lower(UInt8(ascii: "Q")), UInt8(ascii: "q"))
        XCTAssertEqual(ASCII.lower(0xC4), 0xC4)
    }

    func testUTF8Validation() {
        let table: [([UInt8], Bool)] = [
            (Array("plain".utf8), true), (Array("grüße 𝄞".utf8), true),
            ([0xC0, 0xAF], false),               // overlong
            ([0xED, 0xA0, 0x80], false),         // surrogate
            ([0xF4, 0x90, 0x80, 0x80], false),   // above U+10FFFF
            ([0xE2, 0x82], false),               // truncated
            ([0x80], false), ([0xFF], false),
        ]
        for (bytes, valid) in table { XCTAssertEqual(ASCII.isValidUTF8(bytes[...]), valid, "\(bytes)") }
    }

    func testByteCursor() {
        var c = ByteCursor(Array("MAIL  From:<x>".utf8))
        XCTAssertTrue(c.takeCaseInsensitive("mail"))
        XCTAssertFalse(c.takeCaseInsensitive("from"))
        c.skipSpaces()
        XCTAssertTrue(c.takeCaseInsensitive("FROM:"))
        XCTAssertEqual(c.peek(), UInt8(ascii: "<"))
        XCTAssertFalse(c.take(UInt8(ascii: ">")))
        XCTAssertTrue(c.take(UInt8(ascii: "<")))
        XCTAssertEqual(c.string(c.pos..<c.end), "x>")
        XCTAssertFalse(c.takeCaseInsensitive("x>y"))          // longer than what is left
        var bounded = ByteCursor(Array("abc".utf8), from: 1, to: 2)
        XCTAssertEqual(bounded.remaining, 1)
        XCTAssertNil(bounded.peek(1))
        XCTAssertTrue(bounded.take(UInt8(ascii: "b")))
        XCTAssertTrue(bounded.atEnd)
        XCTAssertFalse(bounded.take(UInt8(ascii: "c")))       // never past `end`
    }

    func testBase64Table() {
        let table: [(String, String?)] = [
            ("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg", "foob"), ("Zm9vYmE", "fooba"),
            ("AGpvZQBzZWNyZXQ=", "\0joe\0secret"),
            ("Zg=", nil), ("Z===", nil), ("Z", nil), ("Zm9v YmFy", nil), ("Zm9v\r\n", nil), ("Zm#v", nil), ("=", nil),
            ("Zg==Zg==", nil),
        ]
        for (input, expected) in table {
            XCTAssertEqual(Base64.decode(Array(input.utf8)).map { String(decoding: $0, as: UTF8.self) }, expected, input)
            if let expected, input.count % 4 == 0 { XCTAssertEqual(Base64.encode(Array(expected.utf8)), input) }
        }
    }

    func testBase64Hostile() {
        for b in 0...255 {
            let ok = Base64.decode([UInt8(b), UInt8(b), UInt8(b), UInt8(b)]) != nil
            let inAlphabet = ASCII.isLetDig(UInt8(b)) || b == 0x2B || b == 0x2F
            XCTAssertEqual(ok, inAlphabet, "byte \(b)")
        }
        var rng = SplitMix(seed: 64)
        for _ in 0..<2000 {
            let data = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            XCTAssertEqual(Base64.decode(Array(Base64.encode(data).utf8)), data)
            _ = Base64.decode(data)                            // anything: a value or nil, never a trap
        }
    }

    func testSplitMixIsTheReferenceSequence() {
        var rng = SplitMix(seed: 0)
        // SplitMix64 reference outputs for seed 0.
        XCTAssertEqual(rng.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(rng.next(), 0x6E78_9E6A_A1B9_65F4)
        var a = SplitMix(seed: 7), b = SplitMix(seed: 7)
        XCTAssertEqual((0..<5).map { _ in a.next() }, (0..<5).map { _ in b.next() })
    }
}
