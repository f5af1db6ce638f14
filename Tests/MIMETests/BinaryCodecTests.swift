// Round trips of MessageInfo through the binary storage format and the strict decoder's
// rejections (truncation at every length, trailing bytes, version, overlong integers, bad UTF-8).

import Foundation
import MIME
import MailSyntax
import XCTest

final class BinaryCodecTests: XCTestCase {
    private var samples: [MessageInfo] {
        MessageParserTests.cases.map { MessageParser.parse($0.bytes) } + [handMade]
    }

    /// Exercises every field, including negative integers and RFC 2231-style parameter lists.
    private var handMade: MessageInfo {
        let inner = BodyPart(type: "text", subtype: "plain", parameters: [], id: "<i@d>", description: "d",
                             encoding: "8bit", disposition: "inline", dispositionParameters: [["a"], ["b", "c", "d"]],
                             language: [], location: "", md5: "m", headerStart: -5, bodyStart: Int.max,
                             bodyEnd: Int.min, lines: 0)
        let env = Envelope(date: "", subject: "Süße ✓", from: [Address(name: nil, adl: "@a", mailbox: "x", host: nil)],
                           to: [Address(mailbox: nil, host: nil)], inReplyTo: nil, messageID: "<m>")
        let msg = BodyPart(type: "message", subtype: "rfc822", language: ["en"],
                           message: EncapsulatedMessage(envelope: env, body: inner))
        let body = BodyPart(type: "multipart", subtype: "mixed", parameters: [["boundary", "x"]], parts: [inner, msg])
        return MessageInfo(size: 1 << 40, headerSize: 0, lines: 7, envelope: env, body: body)
    }

    func testRoundTrip() throws {
        for info in samples {
            let enc = info.encoded()
            XCTAssertEqual(enc.first, MessageInfo.encodingVersion)
            XCTAssertEqual(try MessageInfo(encoded: enc), info)
            XCTAssertEqual(try MessageInfo(encoded: enc).encoded(), enc)
        }
    }

    /// Without the envelope: the same info with an empty envelope (the encoding stepped over,
    /// its embedded messages' envelopes kept), every proper prefix still rejected, and a
    /// non-ASCII string (the hand-made subject) read the same by the ASCII fast path's fallback.
    func testDecodingWithoutTheEnvelope() throws {
        for info in samples {
            let enc = info.encoded()
            var bare = info
            bare.envelope = Envelope()
            XCTAssertEqual(try MessageInfo(encoded: enc, envelope: false), bare)
            for n in 0..<enc.count {
                XCTAssertThrowsError(try MessageInfo(encoded: Array(enc[..<n]), envelope: false), "prefix \(n)/\(enc.count)")
            }
        }
        XCTAssertEqual(try MessageInfo(encoded: handMade.encoded()).envelope.subject, "Süße ✓")
    }

    func testCodableRoundTrip() throws {
        for info in samples {
            let json = try JSONEncoder().encode(info)
            XCTAssertEqual(try JSONDecoder().decode(MessageInfo.self, from: json), info)
        }
    }

    /// Every proper prefix is rejected (the decoder fed one more byte at a time).
    func testTruncationRejectedAtEveryLength() {
        for info in samples {
            let enc = info.encoded()
            for n in 0..<enc.count {
                XCTAssertThrowsError(try MessageInfo(encoded: Array(enc[..<n])), "prefix \(n)/\(enc.count)")
            }
        }
    }

    func testMalformedInputRejected() {
        let enc = MessageParser.parse(MessageParserTests.simple).encoded()
        XCTAssertThrowsError(try MessageInfo(encoded: enc + [0])) { error in
            XCTAssertEqual(error as? MessageInfoDecodingError, .trailingBytes(offset: enc.count))
        }
        var v = enc
        v[0] = 2
        XCTAssertThrowsError(try MessageInfo(encoded: v)) { error in
            XCTAssertEqual(error as? MessageInfoDecodingError, .unsupportedVersion(2))
        }
        // size encoded as an overlong varint (0x80 0x00 means 0 in two bytes)
        XCTAssertThrowsError(try MessageInfo(encoded: [1, 0x80, 0x00])) { error in
            XCTAssertEqual(error as? MessageInfoDecodingError, .malformedInteger(offset: 1))
        }
        XCTAssertThrowsError(try MessageInfo(encoded: [1] + [UInt8](repeating: 0xFF, count: 11)))
        // date = 1-byte string 0xFF: invalid UTF-8
        XCTAssertThrowsError(try MessageInfo(encoded: [1, 0, 0, 0, 2, 0xFF])) { error in
            XCTAssertEqual(error as? MessageInfoDecodingError, .invalidUTF8(offset: 5))
        }
        // a huge declared count must fail fast, not allocate
        XCTAssertThrowsError(try MessageInfo(encoded: [1, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]))
    }

    func testFlippedBytesNeverCrash() {
        var rng = SplitMix(seed: 42)
        let enc = MessageParser.parse(MessageParserTests.rfc822Inside).encoded()
        for _ in 0..<3_000 {
            var e = enc
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                e[Int.random(in: 0..<e.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if let d = try? MessageInfo(encoded: e) {
                XCTAssertEqual(d.encoded(), e) // canonical: anything accepted re-encodes identically
            }
        }
    }

    func testDeepEncodingRejectedBeyondCap() {
        var p = BodyPart()
        for _ in 0..<300 { p = BodyPart(type: "multipart", subtype: "mixed", parts: [p]) }
        let info = MessageInfo(size: 0, headerSize: 0, lines: 0, envelope: Envelope(), body: p)
        XCTAssertThrowsError(try MessageInfo(encoded: info.encoded()))
    }
}
