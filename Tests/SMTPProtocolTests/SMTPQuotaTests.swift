// Over-quota recipients (RFC 9208 limits, issue 11) in the engine: refused at RCPT when the
// store says the user has no room left, and per recipient after DATA in LMTP (RFC 2033 §4.2),
// with 552 5.2.2 or, under `[quota] full_tempfail`, 452 4.2.2 (RFC 3463 X.2.2).
@testable import SMTPProtocol
import XCTest

final class SMTPQuotaTests: XCTestCase {
    let alice = MailPath(localPart: "alice", domain: "example.org")

    func configs(_ base: SMTPSessionConfig) -> [(SMTPSessionConfig, SMTPReply)] {
        var temp = base
        temp.overQuotaReply = .mailboxFull(temporary: true)
        return [(base, .mailboxFull), (temp, .mailboxFullTemporary)]
    }

    func testFullRecipientIsRefusedAtRCPTAndOthersGoOn() {
        for (config, reply) in configs(smtpConfig()) {
            var session = SMTPSession(config: config, clientAddress: "192.0.2.7")
            _ = session.receive(Array(ascii: "EHLO c\r\nMAIL FROM:<x@client.example>\r\n"))
            XCTAssertEqual(session.receive(Array(ascii: "RCPT TO:<alice@example.org>\r\n")), [.checkRecipient(alice)])
            XCTAssertEqual(session.recipientLookedUp(.overQuota), [.reply(reply)])
            _ = session.receive(Array(ascii: "RCPT TO:<bob@example.org>\r\n"))
            XCTAssertEqual(session.recipientLookedUp(.ok(canonical: "bob@example.org")), [.reply(.okRecipient)])
            XCTAssertEqual(session.envelope?.recipients.map(\.address), ["bob@example.org"])
        }
        XCTAssertEqual(SMTPReply.mailboxFull.code, 552)
        XCTAssertEqual(SMTPReply.mailboxFullTemporary.code, 452)
    }

    func testLMTPAnswersEachRecipientAfterData() {
        for (config, reply) in configs(lmtpConfig()) {
            var session = SMTPSession(config: config, clientAddress: "192.0.2.7")
            _ = session.receive(Array(ascii: "LHLO c\r\nMAIL FROM:<x@client.example>\r\n"))
            for r in ["alice@example.org", "bob@example.org"] {
                _ = session.receive(Array(ascii: "RCPT TO:<\(r)>\r\n"))
                _ = session.recipientLookedUp(.ok(canonical: r))
            }
            _ = session.receive(Array(ascii: "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"))
            XCTAssertEqual(session.deliveryAnswered(.statuses([.overQuota, .delivered])),
                           [.reply(reply), .reply(.delivered(to: MailPath(localPart: "bob", domain: "example.org")))])
        }
    }
}
