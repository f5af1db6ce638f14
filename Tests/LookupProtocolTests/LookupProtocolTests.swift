// tcp_table and socketmap codecs: table-driven, hostile input, byte-at-a-time and many-in-one.
import XCTest
@testable import LookupProtocol

final class LookupProtocolTests: XCTestCase {
    let limits = LookupLimits(maxKeyLength: 64, maxRequestLength: 256)

    func tcp(_ s: String) -> DecodeResult<TCPTable.Request> { var b = Array(s.utf8); return TCPTable.decode(&b, limits: limits) }

    func testTCPTableRequests() {
        let cases: [(String, DecodeResult<TCPTable.Request>)] = [
            ("get alice@example.org\n", .request(.get("alice@example.org"))),
            ("GET alice@example.org\r\n", .request(.get("alice@example.org"))),
            ("get a%20b%25c@example.org\n", .request(.get("a b%c@example.org"))),
            ("get j%C3%BCrgen@example.org\n", .request(.get("jürgen@example.org"))),
            ("get %c3%bc@x\n", .request(.get("ü@x"))),
            ("put k v\n", .request(.put("k", "v"))),
            ("get alice@example.org", .needMoreBytes),
            ("get\n", .invalid("unknown request")),
            ("get a b\n", .invalid("unknown request")),
            ("get %zz\n", .invalid("bad %-encoding")),
            ("get abc%4\n", .invalid("bad %-encoding")),
            ("get %FF%FE\n", .invalid("bad %-encoding")),
            ("get %\n", .invalid("bad %-encoding")),
            ("delete x\n", .invalid("unknown request")),
            ("get \n", .invalid("empty key")),
            ("get \(String(repeating: "a", count: 65))\n", .invalid("key too long")),
            (String(repeating: "a", count: 300), .invalid("request too long")),
            ("get \(String(repeating: "a", count: 300))\n", .invalid("request too long")),
        ]
        for (input, expected) in cases { XCTAssertEqual(tcp(input), expected, input) }
    }

    func testTCPTableStreamByteAtATimeAndPipelined() {
        let stream = Array("get a@b\nget %20\nget c@d\r\n".utf8)
        var whole = stream, a: [DecodeResult<TCPTable.Request>] = []
        while true { let r = TCPTable.decode(&whole, limits: limits); if r == .needMoreBytes { break }; a.append(r) }
        var drip: [UInt8] = [], b: [DecodeResult<TCPTable.Request>] = []
        for byte in stream {
            drip.append(byte)
            while true { let r = TCPTable.decode(&drip, limits: limits); if r == .needMoreBytes { break }; b.append(r) }
        }
        XCTAssertEqual(a, [.request(.get("a@b")), .request(.get(" ")), .request(.get("c@d"))])
        XCTAssertEqual(a, b)
    }

    func testAnOverlongLineIsAnsweredOnceAndTheNextLineWorks() {
        var discarding = false
        var b = Array(String(repeating: "a", count: 300).utf8)
        XCTAssertEqual(TCPTable.decode(&b, discarding: &discarding, limits: limits), .invalid("request too long"))
        b += Array(String(repeating: "b", count: 300).utf8)
        XCTAssertEqual(TCPTable.decode(&b, discarding: &discarding, limits: limits), .needMoreBytes)
        b += Array("ccc\nget x@y\n".utf8)
        XCTAssertEqual(TCPTable.decode(&b, discarding: &discarding, limits: limits), .request(.get("x@y")))
        XCTAssertFalse(discarding)
    }

    func testTCPTableReplies() {
        XCTAssertEqual(String(decoding: TCPTable.encode(.found("OK")), as: UTF8.self), "200 OK\n")
        XCTAssertEqual(String(decoding: TCPTable.encode(.found("a@b, c d%")), as: UTF8.self), "200 a@b,%20c%20d%25\n")
        XCTAssertEqual(String(decoding: TCPTable.encode(.notFound), as: UTF8.self), "500 not found\n")
        XCTAssertEqual(String(decoding: TCPTable.encode(.temporary("store unavailable")), as: UTF8.self), "400 store%20unavailable\n")
        XCTAssertEqual(String(decoding: TCPTable.encode(.found("ü")), as: UTF8.self), "200 %C3%BC\n")
        for s in ["plain", "with space", "100%", "tab\there", "ünïcode", "new\nline"] {
            XCTAssertEqual(TCPTable.percentDecode(TCPTable.percentEncode(s)), s)
        }
    }

    func sm(_ s: String) -> DecodeResult<SocketMap.Request> { var b = Array(s.utf8); return SocketMap.decode(&b, limits: limits) }

    func testSocketMapRequests() {
        let cases: [(String, DecodeResult<SocketMap.Request>)] = [
            ("28:recipients alice@example.org,", .request(.init(map: "recipients", key: "alice@example.org"))),
            ("15:domains a b c d,", .request(.init(map: "domains", key: "a b c d"))),
            ("28:recipients alice@example.org", .needMoreBytes),
            ("28", .needMoreBytes),
            ("", .needMoreBytes),
            ("28:recipients alice@example.orgX", .invalid("netstring not terminated by ','")),
            ("x:abc,", .invalid("bad netstring length")),
            ("03:abc,", .invalid("bad netstring length")),
            ("9999999999999:", .invalid("netstring too long")),
            ("5:nokey,", .invalid("no map name")),
            ("8:domains ,", .invalid("empty key")),
            ("6: x@y.z,", .invalid("invalid UTF-8")),
        ]
        for (input, expected) in cases {
            let got = sm(input)
            if case .invalid = expected, case .invalid = got { continue }   // reasons may differ in wording
            XCTAssertEqual(got, expected, input)
        }
        if case .request = sm("6: x@y.z,") { XCTFail("an empty map name must be refused") }
    }

    /// A NUL in a key (tcp_table %00, or a raw NUL in a socketmap netstring) is refused with a
    /// permanent error, never handed on to be cut to a shorter key that matches.
    func testNULInAKeyIsRefused() {
        XCTAssertEqual(tcp("get alice@example.org%00.evil\n"), .invalid("NUL in key"))
        XCTAssertEqual(tcp("get %00\n"), .invalid("NUL in key"))
        XCTAssertEqual(sm("29:recipients alice@example.org\0,"), .invalid("NUL in key"))
        XCTAssertEqual(sm("13:domains a\0b.c,"), .invalid("NUL in key"))
    }

    func testSocketMapReplies() {
        XCTAssertEqual(String(decoding: SocketMap.encode(.found("OK")), as: UTF8.self), "5:OK OK,")
        XCTAssertEqual(String(decoding: SocketMap.encode(.notFound), as: UTF8.self), "9:NOTFOUND ,")
        XCTAssertEqual(String(decoding: SocketMap.encode(.temporary("store down")), as: UTF8.self), "15:TEMP store down,")
        XCTAssertEqual(String(decoding: SocketMap.encode(.permanent("no such map")), as: UTF8.self), "16:PERM no such map,")
        XCTAssertEqual(SocketMap.encode(.found("ü")).count, "6:OK ü,".utf8.count)
    }

    func testRandomInputNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            var a = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var b = a
            for _ in 0..<100 { if TCPTable.decode(&a, limits: limits) == .needMoreBytes { break } }
            for _ in 0..<100 { if SocketMap.decode(&b, limits: limits) == .needMoreBytes { break } }
        }
    }
}

/// The front-of-buffer decoders say how much they used, on any collection (a ByteBuffer's view
/// starts at its reader index, not at 0).
final class LookupPrefixDecodeTests: XCTestCase {
    let limits = LookupLimits(maxKeyLength: 64, maxRequestLength: 128)

    func testTCPTableConsumedCounts() {
        let bytes = Array("xxget a\r\nget b\n".utf8)[2...]        // a slice starting at 2
        var d = false
        let (r, n) = TCPTable.decode(prefixOf: bytes, discarding: &d, limits: limits)
        XCTAssertEqual(r, .request(.get("a")))
        XCTAssertEqual(n, 7)
        let (r2, n2) = TCPTable.decode(prefixOf: bytes.dropFirst(n), discarding: &d, limits: limits)
        XCTAssertEqual(r2, .request(.get("b")))
        XCTAssertEqual(n2, 6)
        XCTAssertEqual(TCPTable.decode(prefixOf: Array("get c".utf8), discarding: &d, limits: limits).consumed, 0)
    }

    func testTCPTableDiscardingConsumesWhatItSwallows() {
        var d = false
        let long = Array(repeating: UInt8(ascii: "x"), count: 200)
        let (r, n) = TCPTable.decode(prefixOf: long, discarding: &d, limits: limits)
        XCTAssertEqual(r, .invalid("request too long")); XCTAssertEqual(n, 200); XCTAssertTrue(d)
        let (r2, n2) = TCPTable.decode(prefixOf: Array("xx\nget a\n".utf8), discarding: &d, limits: limits)
        XCTAssertEqual(r2, .request(.get("a"))); XCTAssertEqual(n2, 9); XCTAssertFalse(d)
    }

    func testSocketMapConsumedCounts() {
        let bytes = Array("12:recipients a,4:ab".utf8)
        let (r, n) = SocketMap.decode(prefixOf: bytes, limits: limits)
        XCTAssertEqual(r, .request(.init(map: "recipients", key: "a")))
        XCTAssertEqual(n, 16)
        XCTAssertEqual(SocketMap.decode(prefixOf: bytes[16...], limits: limits).consumed, 0)
        XCTAssertEqual(SocketMap.decode(prefixOf: Array("2:ab,".utf8), limits: limits).0, .invalid("no map name"))
        XCTAssertEqual(SocketMap.decode(prefixOf: Array("2:ab,".utf8), limits: limits).consumed, 5)
    }

    func testMaxBufferedRequest() {
        XCTAssertEqual(LookupLimits(maxKeyLength: 1, maxRequestLength: 4096).maxBufferedRequest, 4096 + 12)
    }
}
