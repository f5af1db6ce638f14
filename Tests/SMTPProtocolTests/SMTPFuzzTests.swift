// Runs the SMTPFuzz entry point over 2,000 generated inputs (SMTP-shaped fragments mixed
// with random bytes), 3,000 smtpd-shaped ones (STARTTLS with handshake markers, AUTH, BDAT)
// and a few hand-picked edge cases; a broken invariant traps.
import Foundation
import SMTPProtocol
import MailSyntax
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
    static func generate(_ rng: inout SplitMix) -> [UInt8] {
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

    // smtpd fragments: TLS, AUTH and BDAT. 0x16 marks a TLS handshake (see SMTPFuzz).
    static let plain = Data("\0alice\0secret".utf8).base64EncodedString()
    static let smtpdCommands: [String] = [
        "STARTTLS\r\n\u{16}", "STARTTLS\r\nNOOP\r\nMAIL FROM:<evil@x.example>\r\n\u{16}", "STARTTLS\r\nRSET\r\n",
        "STARTTLS x\r\n", "\u{16}", "EHLO c\r\n", "HELO c\r\n",
        "AUTH PLAIN \(plain)\r\n", "AUTH PLAIN\r\n\(plain)\r\n", "AUTH PLAIN \(Data("\0alice\0wrong".utf8).base64EncodedString())\r\n",
        "AUTH PLAIN \(Data("\0alice\0temp".utf8).base64EncodedString())\r\n",
        "AUTH PLAIN \(Data("bob\0alice\0secret".utf8).base64EncodedString())\r\n", "AUTH PLAIN =\r\n", "AUTH PLAIN #\r\n",
        "AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n", "AUTH LOGIN YWxpY2U=\r\nd3Jvbmc=\r\n", "AUTH LOGIN\r\n*\r\n", "AUTH PLAIN\r\n",
        "*\r\n", "AUTH CRAM-MD5\r\n", "AUTH PLAIN " + String(repeating: "QUFB", count: 60) + "\r\n",
        "MAIL FROM:<alice@example.org>\r\n", "MAIL FROM:<abc@example.org> BODY=BINARYMIME\r\n", "MAIL FROM:<>\r\n",
        "RCPT TO:<abcde@remote.example>\r\n", "RCPT TO:<abc@example.org>\r\n", "RCPT TO:<ab@example.org>\r\n",
        "BDAT 5\r\nab\r\nc", "BDAT 3 LAST\r\n\n.\r", "BDAT 0 LAST\r\n", "BDAT 0\r\n", "BDAT 400\r\n", "BDAT 12 LAST\r\nRSET\r\nQUIT\r\n",
        "BDAT x\r\n", "DATA\r\nbody\r\n.\r\n", "RSET\r\n", "NOOP\r\n", "QUIT\r\n",
    ]

    static let smtpdSenders: [String] = [
        "MAIL FROM:<alice@example.org>\r\n", "MAIL FROM:<abc@example.org> BODY=BINARYMIME\r\n", "MAIL FROM:<>\r\n",
        "MAIL FROM:<ab@example.org> SIZE=100\r\n", "MAIL FROM:<alice@example.org> BODY=8BITMIME\r\n",
    ]
    static let smtpdRecipients: [String] = [
        "RCPT TO:<abcde@remote.example>\r\n", "RCPT TO:<abc@example.org>\r\n", "RCPT TO:<ab@example.org>\r\n",
        "RCPT TO:<a@remote.example>\r\n", "RCPT TO:<Postmaster>\r\n", "RCPT TO:<abcd@example.org>\r\n",
        "RCPT TO:<ab@remote.example>\r\n",   // 17 characters: .notLocal, queued after AUTH (SMTPFuzz.recipientVerdict)
    ]

    /// Byte 0: SMTP configuration; byte 1: features with TLS/AUTH/CHUNKING on. Then EHLO,
    /// STARTTLS handshakes (with injected plaintext before the 0x16 marker), AUTH exchanges,
    /// whole transactions with BDAT chunks or DATA, and command noise.
    static func generateSMTPD(_ rng: inout SplitMix) -> [UInt8] {
        let config = UInt8(truncatingIfNeeded: rng.next()) & ~0x01        // SMTP dialect
        let features = UInt8(truncatingIfNeeded: rng.next()) | 0x10        // TLS + AUTH + CHUNKING on
        var data: [UInt8] = [config, features]
        func pick(_ list: [String]) -> [UInt8] { Array(list[Int(rng.next() % UInt64(list.count))].utf8) }
        func randomBytes(_ max: UInt64) -> [UInt8] { (0..<Int(rng.next() % max)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        if rng.next() % 6 != 0 { data += Array("EHLO c\r\n".utf8) }
        for _ in 0..<Int(rng.next() % 7) {
            switch rng.next() % 10 {
            case 0:
                data += randomBytes(8)
            case 1, 2:
                for _ in 0..<Int(rng.next() % 3) + 1 { data += pick(smtpdCommands) }
            case 3:
                data += Array("STARTTLS\r\n".utf8)
                if rng.next() % 2 == 0 { data += pick(smtpdCommands) }
                data += [0x16] + Array("EHLO c\r\n".utf8)
            case 4:
                data += pick(["AUTH PLAIN \(plain)\r\n", "AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n", "AUTH PLAIN\r\n\(plain)\r\n"])
            default:
                data += pick(smtpdSenders)
                for _ in 0...Int(rng.next() % 3) { data += pick(smtpdRecipients) }
                if rng.next() % 4 == 0 {
                    data += Array("DATA\r\n".utf8)
                    for _ in 0..<Int(rng.next() % 5) { data += pick(bodyPieces) }
                    data += Array("\r\n.\r\n".utf8)
                } else {
                    let chunks = Int(rng.next() % 3) + 1
                    for k in 0..<chunks {
                        var payload = randomBytes(40)
                        if rng.next() % 3 == 0 { payload += pick(bodyPieces) }
                        let last = k == chunks - 1 && rng.next() % 8 != 0
                        // Mostly the right count; sometimes one off, to desynchronize.
                        let skew = rng.next() % 10 == 0 ? Int(rng.next() % 3) - 1 : 0
                        data += Array("BDAT \(max(payload.count + skew, 0))\(last ? " LAST" : "")\r\n".utf8) + payload
                    }
                }
            }
        }
        if rng.next() % 3 == 0 { data += Array("QUIT\r\n".utf8) }
        return data
    }

    func testSMTPDRandomInputs() {
        var rng = SplitMix(seed: 0x5A17)
        for _ in 0..<3000 {
            SMTPFuzz.run(Self.generateSMTPD(&rng))
        }
    }

    func testSMTPDEdgeCases() {
        let plain = Array(Self.plain.utf8)
        let cases: [[UInt8]] = [
            [0x00, 0x10] + Array("EHLO c\r\nSTARTTLS\r\nNOOP\r\n\u{16}EHLO c\r\nAUTH PLAIN ".utf8) + plain + Array("\r\n".utf8),
            [0x00, 0x90] + Array("EHLO c\r\nAUTH PLAIN ".utf8) + plain + Array("\r\nSTARTTLS\r\nQUIT\r\n\u{16}NOOP\r\n".utf8),
            [0x00, 0x70] + Array("EHLO c\r\nAUTH PLAIN ".utf8) + plain + Array("\r\nMAIL FROM:<alice@example.org>\r\n".utf8) +
                Array("RCPT TO:<abcde@remote.example>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\n".utf8),
            [0x04, 0x10] + Array("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nBDAT 1000 LAST\r\n".utf8)
                + Array(repeating: 0x2E, count: 1000) + Array("NOOP\r\n".utf8),
            [0x80, 0x30] + Array(repeating: Array("AUTH PLAIN #\r\n".utf8), count: 5).flatMap { $0 },
            [0x10, 0x30] + Array("EHLO c\r\nAUTH PLAIN ".utf8) + Array(repeating: 0x41, count: 300) + Array("\r\nNOOP\r\n".utf8),
            [0x00, 0x10] + Array(repeating: Array("STARTTLS\r\n\u{16}".utf8), count: 3).flatMap { $0 },
        ]
        for data in cases { SMTPFuzz.run(data) }
    }

    func testTwoThousandRandomInputs() {
        var rng = SplitMix(seed: 0x5EED)
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
