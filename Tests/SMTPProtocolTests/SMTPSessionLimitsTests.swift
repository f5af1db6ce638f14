// Probing and junk limits of SMTPSession without sockets: 5xx RCPTs count as errors
// (smtpd_hard_error_limit), NOOP/RSET/VRFY/HELP/repeated EHLO as junk (smtpd_junk_command_limit),
// both reset by a delivery; the session's maximum length as reported by the glue.
import SMTPProtocol
import XCTest

final class SMTPSessionLimitsTests: XCTestCase {
    func limits(errors: Int = 10, junk: Int = 100) -> SMTPLimits {
        var l = SMTPLimits()
        l.maxErrors = errors
        l.maxJunkCommands = junk
        return l
    }

    /// Unknown users and relay attempts at RCPT count towards maxErrors: a dictionary
    /// attack ends with 421 4.7.0 and close.
    func testUnknownRecipientsCountAsErrors() {
        let glue = transcriptBothWays(smtpConfig(limits: limits(errors: 3)),
                                      ["EHLO c\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<a@example.org>\r\n"
                                       + "RCPT TO:<b@remote.example>\r\nRCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\n"]) {
            $0.verdicts = ["a@example.org": .unknown, "b@remote.example": .acceptRemote, "c@example.org": .unknown]
        }
        XCTAssertEqual(Array(glue.replies.suffix(4)), [.mailboxUnknown, .relayDenied, .mailboxUnknown, .tooManyErrors])
        XCTAssertEqual(glue.actions.last, .close)
        XCTAssertTrue(glue.session.isClosed)
    }

    /// A temporary failure at RCPT is not the client's error.
    func testTemporaryRecipientFailuresDoNotCount() {
        let glue = transcript(smtpConfig(limits: limits(errors: 2)),
                              ["EHLO c\r\nMAIL FROM:<x@c.example>\r\n"
                               + String(repeating: "RCPT TO:<a@example.org>\r\n", count: 3)]) {
            $0.verdicts = ["a@example.org": .tempFail]
        }
        XCTAssertEqual(Array(glue.replies.suffix(3)), Array(repeating: .localError, count: 3))
        XCTAssertFalse(glue.session.isClosed)
    }

    /// A delivered message resets the error count ("without delivering mail").
    func testDeliveryResetsTheErrorCount() {
        let glue = transcript(smtpConfig(limits: limits(errors: 2)),
                              ["EHLO c\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<bad@example.org>\r\nRCPT TO:<a@example.org>\r\n"
                               + "DATA\r\nhi\r\n.\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<bad@example.org>\r\n"]) {
            $0.verdicts = ["bad@example.org": .unknown]
        }
        XCTAssertEqual(glue.replies.last, .mailboxUnknown)
        XCTAssertFalse(glue.session.isClosed)
    }

    /// NOOP, RSET, VRFY, HELP and a second EHLO count as junk; the command over the limit is
    /// not run but answered 421 4.7.0, and the session closes.
    func testJunkCommandsCloseTheSession() {
        let glue = transcriptBothWays(smtpConfig(limits: limits(junk: 5)),
                                      ["EHLO c\r\nNOOP\r\nRSET\r\nVRFY a\r\nHELP\r\nEHLO c\r\nNOOP\r\nNOOP\r\n"])
        XCTAssertEqual(glue.replies.count, 7)
        XCTAssertEqual(Array(glue.replies[1...4]), [.ok, .ok, .cannotVerify, .help])
        XCTAssertEqual(glue.replies[5].code, 250, "the fifth junk command still runs")
        XCTAssertEqual(glue.replies.last, .tooManyJunkCommands)
        XCTAssertEqual(glue.replies.last?.code, 421)
        XCTAssertEqual(glue.replies.last?.enhanced, "4.7.0")
        XCTAssertEqual(glue.actions.last, .close)
    }

    /// The first HELO/EHLO/LHLO and the EHLO that must follow STARTTLS are not junk; MAIL,
    /// RCPT and QUIT never are.
    func testRequiredCommandsAreNotJunk() {
        var config = smtpConfig(limits: limits(junk: 1))
        config.tlsAvailable = true
        let glue = transcript(config, ["EHLO c\r\nSTARTTLS\r\n", "EHLO c\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<a@example.org>\r\nNOOP\r\nQUIT\r\n"])
        XCTAssertEqual(glue.replies.last, .closing)
        let lmtp = transcript(lmtpConfig(limits: limits(junk: 1)), ["LHLO c\r\nLHLO c\r\nLHLO c\r\n"])
        XCTAssertEqual(lmtp.replies.last, .tooManyJunkCommands)
        XCTAssertEqual(lmtp.replies.count, 3)
    }

    /// A delivered message resets the junk count (postconf(5) smtpd_junk_command_limit).
    func testDeliveryResetsTheJunkCount() {
        let glue = transcript(lmtpConfig(limits: limits(junk: 2)),
                              ["LHLO c\r\nNOOP\r\nNOOP\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<a@example.org>\r\nDATA\r\nhi\r\n.\r\n"
                               + "NOOP\r\nNOOP\r\n"])
        XCTAssertEqual(Array(glue.replies.suffix(2)), [.ok, .ok])
        XCTAssertFalse(glue.session.isClosed)
        let failed = transcript(lmtpConfig(limits: limits(junk: 2)),
                                ["LHLO c\r\nNOOP\r\nNOOP\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<a@example.org>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\n"]) {
            $0.deliveries = ["a@example.org": .failed(.mailboxFull)]
        }
        XCTAssertEqual(failed.replies.last, .tooManyJunkCommands, "a failed delivery resets nothing")
    }

    /// The session's maximum length: between commands 421 4.7.0 and close now.
    func testSessionTimeExceededBetweenCommands() {
        var glue = transcript(smtpConfig(), ["EHLO c\r\n"])
        var session = glue.session
        XCTAssertEqual(session.sessionTimeExceeded(), [.reply(.sessionTooLong), .close])
        XCTAssertEqual(session.receive(Array(ascii: "NOOP\r\n")), [])
        XCTAssertEqual(session.sessionTimeExceeded(), [])
        glue.feed("")
    }

    /// While a message is read it is aborted (it was never acknowledged).
    func testSessionTimeExceededInData() {
        var session = transcript(smtpConfig(), ["EHLO c\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<a@example.org>\r\nDATA\r\nSubject: x\r\n"]).session
        XCTAssertTrue(session.isReadingData)
        let actions = session.sessionTimeExceeded()
        XCTAssertEqual(Array(actions.suffix(3)), [.abortMessage, .reply(.sessionTooLong), .close])
        XCTAssertTrue(session.isClosed)
    }

    /// While the store delivers, the close waits for its answer so the message is acknowledged.
    func testSessionTimeExceededWhileTheStoreDelivers() {
        var session = transcript(smtpConfig(), []).session
        _ = session.receive(Array(ascii: "EHLO c\r\nMAIL FROM:<x@c.example>\r\n"))
        _ = session.receive(Array(ascii: "RCPT TO:<a@example.org>\r\n"))
        _ = session.recipientChecked(.accept)
        let data = session.receive(Array(ascii: "DATA\r\nhi\r\n.\r\nNOOP\r\n"))
        XCTAssertEqual(data.last, .endMessage)
        XCTAssertEqual(session.sessionTimeExceeded(), [])
        XCTAssertEqual(session.deliveryFinished([.delivered]), [.reply(.delivered(to: nil)), .reply(.sessionTooLong), .close])
    }

    /// A NUL byte in an address is refused by the grammar (501), never passed on truncated.
    func testNULInAnAddressIsRefused() {
        let glue = transcript(smtpConfig(), ["EHLO c\r\nMAIL FROM:<x\0y@c.example>\r\nMAIL FROM:<\"x\\\0\"@c.example>\r\n"
                                             + "MAIL FROM:<x@c.example>\r\nRCPT TO:<a\0@example.org>\r\nRCPT TO:<a@exam\0ple.org>\r\n"])
        XCTAssertEqual(Array(glue.replies.suffix(5)), [.badSenderAddress, .badSenderAddress, .okSender, .badAddress, .badAddress])
        XCTAssertFalse(glue.actions.contains { if case .checkRecipient = $0 { return true } else { return false } })
        let lmtp = transcript(lmtpConfig(), ["LHLO c\r\nMAIL FROM:<x@c.example>\r\nRCPT TO:<a\0b@example.org>\r\n"])
        XCTAssertEqual(lmtp.replies.last?.code, 501)
    }
}
