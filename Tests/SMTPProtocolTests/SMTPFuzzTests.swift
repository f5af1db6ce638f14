// Runs the SMTPFuzz entry point over 2,000 generated inputs (SMTP-shaped fragments mixed
// with random bytes) and a few hand-picked edge cases; a broken invariant traps.
import SMTPProtocol
import XCTest

final class SMTPFuzzTests: XCTestCase {
    static let commands: [String] = [
        "LHLO c\r\n", "EHLO c\r\n", "HELO c\r\n", "MAIL FROM:<>\r\n", "RCPT TO:<abc@example.org>\r\n", "DATA\r\n",
        "RSET\r\n", "NOOP\r\n", "VRFY a\r\n", "BOGUS\r\n", "MAIL FROM:<x@y.example> FOO\r\n", "RCPT TO:<bad@>\r\n",
        "MAIL FROM:<s@x.example> SIZE=99999\r\n", "\r\n", "\n", "QUIT\r\n", String(repeating: "N", count: 50) + "\r\n",
    ]
    static let senders: [String] = [
        "MAIL FROM:<>\r\n", "MAIL FROM:<s@x.example> SIZE=100\r\n", "MAIL FROM:<s@x.example> BODY=8BITMIME SMTPUTF8\r\n",
        "MAIL FROM:<@hop.example:s@x.example>\r\n", "mail from:<s@x.example> size=1000000\r\n",
    ]
    // Verdicts depend on the address length (SMTPFuzz.recipientVerdict): a mix of outcomes.
    static let recipients: [String] = [
        "RCPT TO:<abc@example.org>\r\n", "RCPT TO:<abcd@example.org>\r\n", "RCPT TO:<a@example.org>\r\n",
        "RCPT TO:<abcde@example.org>\r\n", "RCPT TO:<Postmaster>\r\n", "RCPT TO:<\"q x\"@[1.2.3.4]>\r\n",
        "RCPT TO:<ab@example.org>\r\n",
    ]
    static let bodyPieces: [String] = [
        "Subject: x\r\n", "\r\n", "line of text\r\n", "..stuffed\r\n", ".x\r\n", ".\r\n", "..\r\n",
        "\n.\n", "\r.\r\n", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r", "\n", "\r\r\n", ".", "..", "\r\n.",
        String(repeating: "x", count: 60) + "\r\n", String(repeating: "y", count: 150), "MAIL FROM:<evil@x.example>\r\n",
    ]

    /// Byte 0: configuration, byte 1: segmentation seed (see SMTPFuzz.run), then mostly
    /// well-formed transactions with hostile bodies, some command noise and random bytes.
    static func generate(_ rng: inout SplitMix64) -> [UInt8] {
        let config = UInt8(truncatingIfNeeded: rng.next())
        var data: [UInt8] = [config, UInt8(truncatingIfNeeded: rng.next())]
        func pick(_ list: [String]) -> [UInt8] { Array(list[Int(rng.next() % UInt64(list.count))].utf8) }
        func noise() { for _ in 0..<Int(rng.next() % 12) { data.append(UInt8(truncatingIfNeeded: rng.next())) } }
        if rng.next() % 8 != 0 { data += Array((config & 1 != 0 ? "LHLO c\r\n" : "EHLO c\r\n").utf8) }
        for _ in 0..<Int(rng.next() % 4) {
            switch rng.next() % 10 {
            case 0:
                noise()
            case 1:
                for _ in 0..<Int(rng.next() % 5) { data += pick(commands) }
            default:
                data += pick(senders)
                for _ in 0...Int(rng.next() % 3) { data += pick(recipients) }
                data += Array("DATA\r\n".utf8)
                for _ in 0..<Int(rng.next() % 12) {
                    if rng.next() % 6 == 0 { noise() } else { data += pick(bodyPieces) }
                }
                if rng.next() % 10 != 0 { data += Array("\r\n.\r\n".utf8) }
            }
        }
        if rng.next() % 3 == 0 { data += Array("QUIT\r\n".utf8) }
        return data
    }

    func testTwoThousandRandomInputs() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<2000 {
            SMTPFuzz.run(Self.generate(&rng))
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
