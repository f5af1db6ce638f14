// The engine's decisions on the store's answers (recipientLookedUp, deliveryAnswered: relay
// policy, the <Postmaster> fallback, store statuses to replies, the SMTP one-reply collapse),
// the command table's guards, and the worker-shutdown rule (shutdownRequested).
import Foundation
@testable import SMTPProtocol
import XCTest

final class SMTPSessionStoreAnswersTests: XCTestCase {
    let alice = MailPath(localPart: "alice", domain: "example.org")
    let bob = MailPath(localPart: "bob", domain: "example.org")
    let remote = MailPath(localPart: "friend", domain: "remote.example")

    /// A session after EHLO and MAIL, waiting for nothing.
    func inTransaction(_ config: SMTPSessionConfig, ehlo: String = "EHLO c\r\n") -> SMTPSession {
        var session = SMTPSession(config: config, clientAddress: "192.0.2.7")
        _ = session.receive(Array(ascii: ehlo + "MAIL FROM:<x@client.example>\r\n"))
        return session
    }

    // MARK: - Recipients

    func testRecipientLookupVerdicts() {
        let table: [(RecipientLookup, SMTPReply)] = [
            (.ok(canonical: "alice@example.org"), .okRecipient),
            (.unknownUser, .mailboxUnknown),
            (.notLocal, .relayDenied),            // unauthenticated: never relay (DESIGN §4)
            (.tempFail, .localError),
        ]
        for (lookup, reply) in table {
            var session = inTransaction(smtpConfig())
            XCTAssertEqual(session.receive(Array(ascii: "RCPT TO:<alice@example.org>\r\n")), [.checkRecipient(alice)])
            XCTAssertEqual(session.recipientLookedUp(lookup), [.reply(reply)], "\(lookup)")
            XCTAssertFalse(session.isAwaitingExternal)
        }
    }

    /// Authenticated: a remote recipient is accepted for the outbound queue.
    func testNotLocalAfterAuthIsQueued() {
        var glue = ScriptedGlue(smtpdConfig(.submission), loopback: true)
        glue.feed("EHLO c\r\nAUTH PLAIN \(base64("\0alice\0secret"))\r\nMAIL FROM:<alice@example.org>\r\n")
        XCTAssertEqual(glue.session.receive(Array(ascii: "RCPT TO:<friend@remote.example>\r\n")), [.checkRecipient(remote)])
        XCTAssertEqual(glue.session.recipientLookedUp(.notLocal), [.reply(.okRecipient)])
        XCTAssertEqual(glue.session.envelope?.remoteIndices, [0])
    }

    /// RFC 5321 §4.5.1: <Postmaster> is postmaster@hostname; when the host name is no mail
    /// domain the bare "postmaster" is asked, and the message goes to its canonical address.
    func testPostmasterFallback() {
        var session = inTransaction(lmtpConfig(), ehlo: "LHLO c\r\n")
        let hostPostmaster = MailPath(localPart: "Postmaster", domain: "mx.example.org")
        XCTAssertEqual(session.receive(Array(ascii: "RCPT TO:<Postmaster>\r\n")), [.checkRecipient(hostPostmaster)])
        XCTAssertEqual(session.recipientLookedUp(.notLocal), [.checkPostmaster])
        XCTAssertTrue(session.isAwaitingExternal)
        XCTAssertEqual(session.recipientLookedUp(.ok(canonical: "admin@example.org")), [.reply(.okRecipient)])
        _ = session.receive(Array(ascii: "RCPT TO:<bob@example.org>\r\n"))
        _ = session.recipientLookedUp(.ok(canonical: "bob@example.org"))
        XCTAssertEqual(session.envelope?.recipients, [hostPostmaster, bob], "replies still name what the client sent")
        XCTAssertEqual(session.envelope?.deliveryAddresses, ["admin@example.org", "bob@example.org"])
    }

    /// The fallback is asked once: a second notLocal is the relay verdict.
    func testPostmasterFallbackNotLocalEither() {
        var session = inTransaction(smtpConfig())
        _ = session.receive(Array(ascii: "RCPT TO:<postmaster@MX.example.org>\r\n"))
        XCTAssertEqual(session.recipientLookedUp(.notLocal), [.checkPostmaster])
        XCTAssertEqual(session.recipientLookedUp(.notLocal), [.reply(.relayDenied)])
        XCTAssertEqual(session.envelope?.recipients, [])
    }

    // MARK: - Deliveries

    func lmtpWaitingForDelivery(_ recipients: [String]) -> SMTPSession {
        var session = inTransaction(lmtpConfig(), ehlo: "LHLO c\r\n")
        for r in recipients {
            _ = session.receive(Array(ascii: "RCPT TO:<\(r)>\r\n"))
            _ = session.recipientLookedUp(.ok(canonical: r))
        }
        _ = session.receive(Array(ascii: "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"))
        XCTAssertTrue(session.isAwaitingExternal)
        return session
    }

    func testStoreStatusesToLMTPReplies() {
        var session = lmtpWaitingForDelivery(["a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org", "f@example.org"])
        let actions = session.deliveryAnswered(.statuses([.delivered, .unknownUser, .notLocal, .overQuota, .tempFail, .rejected]))
        XCTAssertEqual(actions, [.reply(.delivered(to: MailPath(localPart: "a", domain: "example.org"))), .reply(.mailboxUnknown),
                                 .reply(.relayDenied), .reply(.mailboxFull), .reply(.localError), .reply(.localError)])
        XCTAssertNil(session.envelope)
    }

    func testStoreRefusalsAnswerEveryLMTPRecipient() {
        for (answer, reply) in [(DeliveryAnswer.senderDenied, SMTPReply.senderNotOwned), (.failed, .localError)] {
            var session = lmtpWaitingForDelivery(["a@example.org", "b@example.org"])
            XCTAssertEqual(session.deliveryAnswered(answer), [.reply(reply), .reply(reply)])
        }
    }

    /// SMTP: one reply for the message — the first failure, else 250.
    func testSMTPCollapsesToOneReply() {
        let table: [(DeliveryAnswer, SMTPReply)] = [
            (.statuses([.delivered, .delivered]), .delivered(to: nil)),
            (.statuses([.delivered, .overQuota]), .mailboxFull),
            (.statuses([.tempFail, .unknownUser]), .localError),
            (.senderDenied, .senderNotOwned),
            (.failed, .localError),
        ]
        for (answer, reply) in table {
            var session = inTransaction(smtpConfig())
            for r in ["a@example.org", "b@example.org"] {
                _ = session.receive(Array(ascii: "RCPT TO:<\(r)>\r\n"))
                _ = session.recipientLookedUp(.ok(canonical: r))
            }
            _ = session.receive(Array(ascii: "DATA\r\nhi\r\n.\r\n"))
            XCTAssertEqual(session.deliveryAnswered(answer), [.reply(reply)], "\(answer)")
        }
    }

    // MARK: - The command table drives the guards

    /// Each state guard of the table, with the reply it gives; the table's flags are what the
    /// session consults (`tableRefusal`), so these hold for every verb carrying the flag.
    func testTableGuards() {
        var fresh = SMTPSession(config: smtpdConfig(.submission), clientAddress: "127.0.0.1")
        XCTAssertEqual(fresh.tableRefusal(.mail), .needHello)
        XCTAssertEqual(fresh.tableRefusal(.auth), .needHello, "needsEHLO implies needsHello")
        XCTAssertNil(fresh.tableRefusal(.starttls), "STARTTLS needs no EHLO (like Postfix)")
        XCTAssertNil(fresh.tableRefusal(.noop))
        _ = fresh.receive(Array(ascii: "HELO c\r\n"))
        XCTAssertEqual(fresh.tableRefusal(.auth), .ehloRequired)
        XCTAssertEqual(fresh.tableRefusal(.bdat), .ehloRequired)
        XCTAssertEqual(fresh.tableRefusal(.rcpt), .needMail)
        XCTAssertEqual(fresh.tableRefusal(.data), .needMail)

        var glue = ScriptedGlue(smtpdConfig(.submission), loopback: true)
        glue.feed("EHLO c\r\nAUTH PLAIN \(base64("\0alice\0secret"))\r\nMAIL FROM:<alice@example.org>\r\n")
        XCTAssertNotNil(glue.session.envelope)
        XCTAssertEqual(glue.session.tableRefusal(.auth), .alreadyAuthenticated, "notAuthenticated before outsideTransaction")
        XCTAssertEqual(glue.session.tableRefusal(.mail), .nestedMail)
        XCTAssertEqual(glue.session.tableRefusal(.starttls), .transactionInProgress)
        XCTAssertNil(glue.session.tableRefusal(.rcpt))
        // Every verb with a guard flag is refused before HELO where the flag says so.
        for verb in SMTPVerb.allCases {
            let flags = SMTPCommandTable.flags(verb)
            let session = SMTPSession(config: smtpConfig(), clientAddress: "192.0.2.7")
            let needs = !flags.isDisjoint(with: [.needsHello, .needsEHLO])
            XCTAssertEqual(session.tableRefusal(verb) == .needHello, needs, "\(verb)")
        }
    }

    // MARK: - Worker shutdown

    func testShutdownBetweenMessagesClosesNow() {
        var session = inTransaction(smtpConfig())
        XCTAssertEqual(session.shutdownRequested(), [.reply(.shuttingDown), .close])
        XCTAssertTrue(session.isClosed)
        XCTAssertEqual(SMTPReply.shuttingDown.encoded(), Array(ascii: "421 4.3.2 Service shutting down, closing connection\r\n"))
    }

    /// In DATA: the message is read, delivered and answered; then 421 and close, and what the
    /// client pipelined after it is not acted on.
    func testShutdownDuringDataFinishesTheMessage() {
        var session = inTransaction(smtpConfig())
        _ = session.receive(Array(ascii: "RCPT TO:<alice@example.org>\r\n"))
        _ = session.recipientLookedUp(.ok(canonical: "alice@example.org"))
        _ = session.receive(Array(ascii: "DATA\r\nSubject: x\r\n"))
        XCTAssertTrue(session.isReadingData)
        XCTAssertEqual(session.shutdownRequested(), [])
        let end = session.receive(Array(ascii: "\r\nhi\r\n.\r\nNOOP\r\n"))
        XCTAssertEqual(end.last, .endMessage)
        XCTAssertEqual(session.deliveryAnswered(.statuses([.delivered])),
                       [.reply(.delivered(to: nil)), .reply(.shuttingDown), .close])
    }

    /// Waiting for the store (here a recipient check): its answer first, then 421.
    func testShutdownWhileWaitingForTheStore() {
        var session = inTransaction(smtpConfig())
        _ = session.receive(Array(ascii: "RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"))
        XCTAssertEqual(session.shutdownRequested(), [])
        XCTAssertEqual(session.recipientLookedUp(.ok(canonical: "alice@example.org")),
                       [.reply(.okRecipient), .reply(.shuttingDown), .close])
    }

    /// Between BDAT chunks the message is still in progress: 421 only after LAST is answered.
    func testShutdownBetweenBDATChunks() {
        var session = inTransaction(smtpdConfig(.mta))
        _ = session.receive(Array(ascii: "RCPT TO:<alice@example.org>\r\n"))
        _ = session.recipientLookedUp(.ok(canonical: "alice@example.org"))
        _ = session.receive(Array(ascii: "BDAT 3\r\nabc"))
        XCTAssertEqual(session.shutdownRequested(), [])
        let last = session.receive(Array(ascii: "BDAT 2 LAST\r\nde"))
        XCTAssertEqual(last.last, .endMessage)
        XCTAssertEqual(session.deliveryAnswered(.statuses([.delivered])),
                       [.reply(.delivered(to: nil)), .reply(.shuttingDown), .close])
    }
}
