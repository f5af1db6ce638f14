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
}
