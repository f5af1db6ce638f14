// Runs the SMTPFuzz entry point over 2,000 generated inputs (SMTP-shaped fragments mixed
// with random bytes) and a few hand-picked edge cases; a broken invariant traps.
import SMTPProtocol
import XCTest

final class SMTPFuzzTests: XCTestCase {
    static let fragments: [String] = [
        "LHLO c\r\n", "EHLO c\r\n", "HELO c\r\n", "MAIL FROM:<>\r\n", "MAIL FROM:<s@x.example> SIZE=100\r\n",
        "MAIL FROM:<s@x.example> BODY=8BITMIME SMTPUTF8\r\n", "RCPT TO:<a@example.org>\r\n", "RCPT TO:<bb@example.org>\r\n",
        "RCPT TO:<ccc@example.org>\r\n", "RCPT TO:<Postmaster>\r\n", "RCPT TO:<\"q x\"@[1.2.3.4]>\r\n", "DATA\r\n",
        "DATA\r\n", "DATA\r\n", ".\r\n", "..\r\n", "\r\n.\r\n", "\n.\n", "\r.\r\n", "\n.\r\n", "\r\n", "\n", "\r",
        "line of text\r\n", String(repeating: "x", count: 60) + "\r\n", "RSET\r\n", "NOOP\r\n", "QUIT\r\n",
        "VRFY a\r\n", "BOGUS\r\n", "<>", ":", "@", "\"", ".",
    ]

    func generate(_ rng: inout SplitMix64) -> [UInt8] {
        var data: [UInt8] = [UInt8(truncatingIfNeeded: rng.next()), UInt8(truncatingIfNeeded: rng.next())]
        let pieces = Int(rng.next() % 40)
        for _ in 0..<pieces {
            if rng.next() % 4 == 0 {
                for _ in 0..<Int(rng.next() % 12) { data.append(UInt8(truncatingIfNeeded: rng.next())) }
            } else {
                data += Array(Self.fragments[Int(rng.next() % UInt64(Self.fragments.count))].utf8)
            }
        }
        return data
    }

    func testTwoThousandRandomInputs() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<2000 {
            SMTPFuzz.run(generate(&rng))
        }
    }

    func testEdgeCases() {
        let cases: [[UInt8]] = [
            [], [0], [0, 0], [0xFF, 0xFF] + Array(repeating: 0x0A, count: 100),
            [0x01, 0x00] + Array("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n".utf8) + Array(repeating: 0x2E, count: 5000),
            [0x25, 0x03] + Array("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n".utf8)
                + Array(repeating: 0x41, count: 1000) + Array("\r\n.\r\n".utf8),
            [0x10, 0x01] + Array(repeating: 0x41, count: 10_000),
        ]
        for data in cases { SMTPFuzz.run(data) }
    }
}
