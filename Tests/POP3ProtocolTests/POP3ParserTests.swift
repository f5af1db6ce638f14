// The POP3 grammar, table-driven: every command, and hostile input refused without a crash.
import XCTest
@testable import POP3Protocol

final class POP3ParserTests: XCTestCase {
    func parse(_ s: String) -> Result<POP3Command, POP3ParseError> { POP3Parser.parse(Array(s.utf8)) }

    func testCommands() {
        let cases: [(String, POP3Command)] = [
            ("USER alice@example.org", .user("alice@example.org")), ("pass  two  spaces ", .pass(" two  spaces ")),
            ("STAT", .stat), ("list", .list(nil)), ("LIST 3", .list(3)), ("RETR 1", .retr(1)), ("DELE 12", .dele(12)),
            ("NOOP", .noop), ("RSET", .rset), ("QUIT", .quit), ("TOP 2 0", .top(2, lines: 0)), ("UIDL", .uidl(nil)),
            ("UIDL 7", .uidl(7)), ("CAPA", .capa), ("STLS", .stls), ("AUTH", .auth(mechanism: nil, initial: nil)),
            ("AUTH plain", .auth(mechanism: "PLAIN", initial: nil)), ("AUTH PLAIN AGFsaWNlAHB3", .auth(mechanism: "PLAIN", initial: "AGFsaWNlAHB3")),
            ("AUTH LOGIN =", .auth(mechanism: "LOGIN", initial: "=")), ("APOP a b", .apop),
        ]
        for (line, cmd) in cases { XCTAssertEqual(parse(line), .success(cmd), line) }
    }

    func testHostile() {
        let bad = ["", "STAT 1", "RETR", "RETR -1", "RETR 1 2", "RETR 99999999999999999999", "TOP 1", "TOP a b", "LIST 1 2",
                   "XYZZY", "RETR\u{0}1", "USER", "QUIT now", "ÄÖÜ", "RETR +1", "LIST  1", "AUTH PLAIN a b"]
        for line in bad {
            if case .success(let c) = parse(line) { XCTFail("\(line) parsed as \(c)") }
        }
        XCTAssertEqual(parse("XYZZY"), .failure(.unknownCommand("XYZZY")))
        // Random bytes never crash the parser.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0...40, using: &rng)
            _ = POP3Parser.parse((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    /// Keywords are matched byte by byte, ASCII case-insensitively; anything else is unknown.
    func testKeywordBytes() {
        XCTAssertEqual(parse("rEtR 1"), .success(.retr(1)))
        XCTAssertEqual(parse("tOp 1 0"), .success(.top(1, lines: 0)))
        XCTAssertEqual(parse("R3TR 1"), .failure(.unknownCommand("R3TR")))
        XCTAssertEqual(parse(" RETR 1"), .failure(.unknownCommand("")))
        XCTAssertEqual(parse("RETRY 1"), .failure(.unknownCommand("RETRY")))
        XCTAssertEqual(parse("retrieve"), .failure(.unknownCommand("RETRIEVE")))
        // RFC 4422 §3.1: mechanism names are ASCII; a dotless ı does not make "PLAIN".
        XCTAssertEqual(parse("AUTH pla\u{131}n"), .success(.auth(mechanism: "PLA\u{131}N", initial: nil)))
        XCTAssertEqual(parse("RETR 000000001"), .success(.retr(1)))
        XCTAssertEqual(parse("RETR 1234567890"), .failure(.badArguments("RETR msg")))
    }

    /// The RETR status line formatted without a String is the one `.ok` gives.
    func testOctetsLine() {
        for n in [0, 7, 9, 10, 99, 100, 5120, 20_971_520, Int(Int32.max), Int.max] {
            var line: [UInt8] = []
            POP3Response.octets(n) { line += $0 }
            XCTAssertEqual(line, POP3Response.ok("\(n) octets").bytes, "\(n)")
        }
    }

    /// CR and LF never reach the client inside a status line, even as one "\r\n" Character.
    func testStatusLineDropsLineBreaks() {
        XCTAssertEqual(POP3Response.ok("a\r\nb\rc\nd").bytes, Array("+OK abcd\r\n".utf8))
        XCTAssertEqual(POP3Response.ok("").bytes, Array("+OK\r\n".utf8))
        XCTAssertEqual(POP3Response.ok("\r\n").bytes, Array("+OK\r\n".utf8))
        XCTAssertEqual(POP3Reply.inUse.bytes, Array("-ERR [IN-USE] Maildrop is locked by another session\r\n".utf8))
    }
}
