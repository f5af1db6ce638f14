// Session state machine tests: transcripts (pipelined and byte by byte), limits, errors,
// sequencing, parameters and the LMTP per-recipient replies (RFC 2033 §4.2).
import Foundation
import SMTPProtocol
import MailSyntax
import XCTest

final class SMTPSessionTests: XCTestCase {
    let alice = MailPath(localPart: "alice", domain: "example.org")
    let bob = MailPath(localPart: "bob", domain: "example.org")
    let carol = MailPath(localPart: "carol", domain: "example.org")
    let sender = MailPath(localPart: "sender", domain: "remote.example")

    static let pipelinedLMTP =
        "LHLO client.example\r\n" +
        "MAIL FROM:<sender@remote.example> SIZE=40 BODY=8BITMIME\r\n" +
        "RCPT TO:<alice@example.org>\r\n" +
        "RCPT TO:<nobody@example.org>\r\n" +
        "RCPT TO:<bob@example.org>\r\n" +
        "DATA\r\n" +
        "Subject: hi\r\n" +
        "\r\n" +
        "..dotted\r\n" +
        "body\r\n" +
        ".\r\n" +
        "QUIT\r\n"

    func pipelinedGlue() -> ScriptedGlue {
        var glue = ScriptedGlue(lmtpConfig(), greet: true)
        glue.verdicts["nobody@example.org"] = .unknown
        glue.deliveries["bob@example.org"] = .failed(.mailboxFull)
        return glue
    }

    func expectedPipelinedActions() -> [SMTPAction] {
        let envelopeAtData = SMTPEnvelope(helo: "client.example", sender: sender, recipients: [alice, bob],
                                          bodyType: .eightBitMIME, smtpUTF8: false, declaredSize: 40)
        return [
            .reply(SMTPReply(220, nil, "mx.example.org Postern LMTP")),
            .reply(SMTPReply(code: 250, enhanced: nil, lines: [
                "mx.example.org", "PIPELINING", "8BITMIME", "SIZE 52428800", "ENHANCEDSTATUSCODES", "SMTPUTF8",
            ])),
            .reply(.okSender),
            .checkRecipient(alice),
            .reply(.okRecipient),
            .checkRecipient(MailPath(localPart: "nobody", domain: "example.org")),
            .reply(.mailboxUnknown),
            .checkRecipient(bob),
            .reply(.okRecipient),
            .reply(.startMailInput),
            .beginMessage(envelopeAtData),
            .messageChunk(Array(ascii: "Subject: hi\r\n\r\n.dotted\r\nbody\r\n")),
            .endMessage,
            .reply(.delivered(to: alice)),
            .reply(.mailboxFull),
            .reply(.closing),
            .close,
        ]
    }

    func testPipelinedLMTPTranscriptInOneReceive() {
        var glue = pipelinedGlue()
        glue.feed(Self.pipelinedLMTP)
        XCTAssertEqual(glue.actions, expectedPipelinedActions())
        XCTAssertEqual(glue.replies.map { String(decoding: $0.encoded(), as: UTF8.self) }.joined(), """
            220 mx.example.org Postern LMTP\r
            250-mx.example.org\r
            250-PIPELINING\r
            250-8BITMIME\r
            250-SIZE 52428800\r
            250-ENHANCEDSTATUSCODES\r
            250 SMTPUTF8\r
            250 2.1.0 Sender OK\r
            250 2.1.5 Recipient OK\r
            550 5.1.1 User unknown\r
            250 2.1.5 Recipient OK\r
            354 End data with <CR><LF>.<CR><LF>\r
            250 2.0.0 <alice@example.org> Delivered\r
            552 5.2.2 Mailbox full\r
            221 2.0.0 Bye\r\n
            """)
        XCTAssertTrue(glue.session.isClosed)
    }

    func testPipelinedLMTPTranscriptByteAtATimeIsIdentical() {
        var glue = pipelinedGlue()
        glue.feedBytewise(Self.pipelinedLMTP)
        XCTAssertEqual(glue.actions, expectedPipelinedActions())
    }

    func testSegmentationNeverChangesActions() {
        var rng = SplitMix(seed: 42)
        let input = Array(ascii: Self.pipelinedLMTP)
        for _ in 0..<200 {
            var pieces: [[UInt8]] = []
            var i = 0
            while i < input.count {
                let n = Int.random(in: 1...17, using: &rng)
                pieces.append(Array(input[i..<min(i + n, input.count)]))
                i += n
            }
            var glue = pipelinedGlue()
            glue.feed(pieces)
            XCTAssertEqual(glue.actions, expectedPipelinedActions())
        }
    }

    func testReceiveOnlyBuffersWhileAwaitingExternal() {
        var session = SMTPSession(config: lmtpConfig(), clientAddress: "unix")
        var actions = session.receive(Array(ascii: "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nNOOP\r\n"))
        XCTAssertEqual(actions.last, .checkRecipient(alice))
        XCTAssertTrue(session.isAwaitingExternal)
        XCTAssertEqual(session.receive(Array(ascii: "RSET\r\n")), [])
        XCTAssertEqual(session.deliveryFinished([.delivered]), [], "no delivery pending: ignored")
        actions = session.recipientChecked(.tempFail)
        XCTAssertEqual(actions, [.reply(.localError), .reply(.ok), .reply(.ok)])
        XCTAssertFalse(session.isAwaitingExternal)
        XCTAssertNil(session.envelope, "RSET cleared the transaction")
    }

    func testHeloAndEhloRefusedInLMTP() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed("HELO client\r\nEHLO client\r\nMAIL FROM:<>\r\nLHLO client\r\nMAIL FROM:<>\r\n")
        XCTAssertEqual(glue.replies, [.heloNotAllowedInLMTP, .heloNotAllowedInLMTP, .needLHLO,
                                      .hello("mx.example.org", keywords: ["PIPELINING", "8BITMIME", "SIZE 52428800", "ENHANCEDSTATUSCODES", "SMTPUTF8"]),
                                      .okSender])
        XCTAssertEqual(glue.replies[0].code, 500)

        var smtp = ScriptedGlue(smtpConfig())
        smtp.feed("LHLO client\r\nHELO client\r\nMAIL FROM:<a@b.example> BODY=8BITMIME\r\nMAIL FROM:<a@b.example>\r\n")
        XCTAssertEqual(smtp.replies, [.syntaxError, .helo("mx.example.org"), .parameterNotRecognized, .okSender],
                       "no ESMTP parameters after HELO")
    }

    func testSMTPTranscript() {
        var glue = ScriptedGlue(smtpConfig(), greet: true)
        glue.verdicts["x@elsewhere.example"] = .relayDenied
        glue.feed("ehlo client.example\r\nmail from:<>\r\nrcpt to:<x@elsewhere.example>\r\nrcpt to:<alice@example.org>\r\n" +
                  "data\r\nhello\r\n.\r\nquit\r\n")
        XCTAssertEqual(glue.codes, ["220", "250", "250 2.1.0", "554 5.7.1", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0"])
        XCTAssertEqual(glue.replies[0], SMTPReply(220, nil, "mx.example.org ESMTP Postern"))
        XCTAssertEqual(glue.replies[6], .delivered(to: nil))
        XCTAssertEqual(glue.bodies, [Array(ascii: "hello\r\n")])
        XCTAssertEqual(glue.session.receivedProtocol(), "ESMTP")
    }

    func testSMTPDeliveryFailureGivesOneReply() {
        var glue = ScriptedGlue(smtpConfig())
        glue.deliveries["bob@example.org"] = .failed(.localError)
        glue.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\n")
        XCTAssertEqual(glue.replies.last, .localError)
        XCTAssertEqual(glue.replies.filter { $0.code == 451 }.count, 1)
        XCTAssertNil(glue.session.envelope, "transaction reset after delivery")
    }

    func testLMTPMissingDeliveryResultsAreTempFailures() {
        var session = SMTPSession(config: lmtpConfig(), clientAddress: "unix")
        _ = session.receive(Array(ascii: "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\n"))
        _ = session.recipientChecked(.accept)
        _ = session.receive(Array(ascii: "RCPT TO:<bob@example.org>\r\n"))
        _ = session.recipientChecked(.accept)
        let actions = session.receive(Array(ascii: "DATA\r\nx\r\n.\r\n"))
        XCTAssertEqual(actions.last, .endMessage)
        XCTAssertEqual(session.envelope?.recipients, [alice, bob])
        XCTAssertEqual(session.deliveryFinished([.delivered]), [.reply(.delivered(to: alice)), .reply(.localError)])
        XCTAssertNil(session.envelope)
    }

    func testSizeLimitAtMAIL() {
        var limits = SMTPLimits()
        limits.maxMessageSize = 1000
        var glue = ScriptedGlue(lmtpConfig(limits: limits))
        glue.feed("LHLO c\r\nMAIL FROM:<> SIZE=1001\r\nMAIL FROM:<> SIZE=99999999999999999999\r\nMAIL FROM:<> SIZE=1000\r\n")
        XCTAssertEqual(glue.replies.dropFirst().map { $0 }, [.messageTooBig, .messageTooBig, .okSender])
        XCTAssertEqual(glue.session.envelope?.declaredSize, 1000)
        glue.feed("RSET\r\nMAIL FROM:<> SIZE=abc\r\nMAIL FROM:<> SIZE=\r\nMAIL FROM:<> SIZE\r\n")
        XCTAssertEqual(glue.codes.suffix(4), ["250 2.0.0", "501 5.5.4", "501 5.5.4", "501 5.5.4"])
    }

    func testSizeLimitDuringDATA() {
        for (dialect, declared) in [(SMTPDialect.lmtp, " SIZE=100"), (.lmtp, ""), (.smtp, ""), (.smtp, " SIZE=10")] {
            var limits = SMTPLimits()
            limits.maxMessageSize = 100
            let config = SMTPSessionConfig(dialect: dialect, hostname: "h", limits: limits)
            var glue = ScriptedGlue(config)
            let hello = dialect == .lmtp ? "LHLO" : "EHLO"
            let line = String(repeating: "x", count: 38) + "\r\n"   // 40 bytes
            glue.feed("\(hello) c\r\nMAIL FROM:<>\(declared)\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n" +
                      "DATA\r\n" + line + line + "\r\n" + ".\r\n")    // exactly 82: fits
            glue.feed("MAIL FROM:<>\(declared)\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n" +
                      "DATA\r\n" + line + line + line + ".\r\nNOOP\r\n")
            XCTAssertEqual(glue.bodies.count, 2)
            XCTAssertEqual(glue.bodies[0], Array(ascii: line + line + "\r\n"))
            XCTAssertNil(glue.bodies[1])
            let expected = dialect == .lmtp ? 2 : 1
            XCTAssertEqual(glue.replies.filter { $0 == .messageTooBig }.count, expected, "\(dialect) \(declared)")
            XCTAssertEqual(glue.replies.last, .ok, "session continues after the final dot")
            XCTAssertNil(glue.session.envelope)
            // Nothing is delivered past the limit: at most 100 body bytes were handed out.
            let handedOut = glue.actions.reduce(0) { if case .messageChunk(let c) = $1 { return $0 + c.count }; return $0 }
            XCTAssertLessThanOrEqual(handedOut - 82, 100)
        }
    }

    func testRecipientLimit() {
        var limits = SMTPLimits()
        limits.maxRecipients = 2
        var glue = ScriptedGlue(lmtpConfig(limits: limits))
        glue.verdicts["bad@example.org"] = .unknown
        glue.feed("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bad@example.org>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" +
                  "RCPT TO:<c@example.org>\r\nDATA\r\n.\r\n")
        let checks = glue.actions.filter { if case .checkRecipient = $0 { return true }; return false }
        XCTAssertEqual(checks.count, 3, "only accepted recipients count; the 4th is refused without a lookup")
        XCTAssertEqual(glue.codes, ["250", "250 2.1.0", "550 5.1.1", "250 2.1.5", "250 2.1.5", "452 4.5.3", "354",
                                    "250 2.0.0", "250 2.0.0"])
    }

    func testLongCommandLine() {
        for feedBytewise in [false, true] {
            var glue = ScriptedGlue(lmtpConfig())
            let long = "NOOP " + String(repeating: "a", count: 5000) + "\r\n"
            let exact = "NOOP " + String(repeating: "b", count: 505) + "\r\n"      // 512 with CRLF: allowed
            let over = "NOOP " + String(repeating: "c", count: 506) + "\r\n"       // 513: too long
            let text = long + exact + over + "NOOP\r\n"
            if feedBytewise { glue.feedBytewise(text) } else { glue.feed(text) }
            XCTAssertEqual(glue.replies, [.lineTooLong, .ok, .lineTooLong, .ok])
            XCTAssertEqual(glue.replies[0].code, 500)
            XCTAssertEqual(glue.replies[0].enhanced, "5.5.2")
        }
    }

    func testMaxErrorsDropsTheSession() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed(String(repeating: "BOGUS\r\n", count: 12) + "NOOP\r\n")
        XCTAssertEqual(glue.replies.count, 11)
        XCTAssertEqual(Array(glue.replies.prefix(10)), Array(repeating: .syntaxError, count: 10))
        XCTAssertEqual(glue.replies.last, .tooManyErrors)
        XCTAssertEqual(glue.replies.last?.code, 421)
        XCTAssertEqual(glue.replies.last?.enhanced, "4.7.0")
        XCTAssertEqual(glue.actions.last, .close)
        XCTAssertTrue(glue.session.isClosed)
        var session = glue.session
        XCTAssertEqual(session.receive(Array(ascii: "NOOP\r\n")), [])
        XCTAssertEqual(session.timedOut(), [])
    }

    func testErrorKinds() {
        // (input after LHLO, expected replies)
        let table: [(String, [SMTPReply])] = [
            ("\r\n", [.syntaxError]),
            ("RCPT TO:<a@example.org>\r\n", [.needMail]),
            ("DATA\r\n", [.needMail]),
            ("MAIL FROM:<>\r\nMAIL FROM:<>\r\n", [.okSender, .nestedMail]),
            ("MAIL FROM:<>\r\nDATA\r\n", [.okSender, .noValidRecipientsLMTP]),
            ("MAIL TO:<>\r\n", [.parameterError]),
            ("MAIL FROM <>\r\n", [.parameterError]),
            ("MAIL FROM:<> FOO=BAR\r\n", [.parameterNotRecognized]),
            ("MAIL FROM:<> BODY=BINARYMIME\r\n", [.parameterError]),
            ("MAIL FROM:<> BODY=9BIT\r\n", [.parameterError]),
            ("MAIL FROM:<> SMTPUTF8=yes\r\n", [.parameterError]),
            ("MAIL FROM:<> SIZE=1 SIZE=2\r\n", [.parameterError]),
            ("MAIL FROM:<>\r\nRCPT TO:<a@example.org> NOTIFY=NEVER\r\n", [.okSender, .parameterNotRecognized]),
            ("DATA x\r\n", [.parameterError]),
            ("RSET x\r\n", [.parameterError]),
            ("QUIT now\r\n", [.parameterError]),
            ("VRFY\r\n", [.parameterError]),
            ("VRFY alice\r\n", [.cannotVerify]),
            ("EXPN list\r\n", [.notImplemented]),
            ("STARTTLS\r\n", [.notImplemented]),
            ("BDAT 10 LAST\r\n", [.notImplemented]),
            ("HELP\r\nhelp me\r\nNOOP anything\r\n", [.help, .help, .ok]),
            ("LHLO\r\n", [.parameterError]),
            ("LHLO bad\u{1}name\r\n", [.parameterError]),
            ("MAIL FROM:<a@b.example>\r\nRSET\r\nRCPT TO:<a@example.org>\r\n", [.okSender, .ok, .needMail]),
        ]
        for (input, expected) in table {
            var glue = ScriptedGlue(lmtpConfig())
            glue.feed("LHLO c\r\n" + input)
            XCTAssertEqual(Array(glue.replies.dropFirst()), expected, input.debugDescription)
        }
        var glue = ScriptedGlue(smtpConfig())
        glue.feed("EHLO c\r\nMAIL FROM:<>\r\nDATA\r\nRCPT TO:<a@example.org>\r\n")
        XCTAssertEqual(Array(glue.replies.dropFirst()), [.okSender, .noValidRecipients, .okRecipient])
        XCTAssertEqual(SMTPReply.noValidRecipients.code, 554)
    }

    func testRSETMidTransaction() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed("LHLO c\r\nMAIL FROM:<sender@remote.example>\r\nRCPT TO:<alice@example.org>\r\n")
        XCTAssertEqual(glue.session.envelope?.recipients, [alice])
        glue.feed("RSET\r\n")
        XCTAssertNil(glue.session.envelope)
        glue.feed("DATA\r\n")
        XCTAssertEqual(glue.replies.last, .needMail)
        glue.feed("MAIL FROM:<>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\nhi\r\n.\r\n")
        XCTAssertEqual(glue.actions.filter { if case .beginMessage = $0 { return true }; return false },
                       [.beginMessage(SMTPEnvelope(helo: "c", sender: nil, recipients: [carol]))])
        XCTAssertEqual(glue.replies.last, .delivered(to: carol))
        // LHLO again also resets (RFC 5321 §4.1.4).
        glue.feed("MAIL FROM:<>\r\nLHLO again\r\nRCPT TO:<carol@example.org>\r\n")
        XCTAssertEqual(glue.replies.last, .needMail)
    }

    func testBareLinefeedInCommands() {
        var reject = ScriptedGlue(lmtpConfig())
        reject.feed("LHLO c\nNOOP\r\n")
        XCTAssertEqual(reject.replies, [.bareLinefeedCommand, .ok])
        XCTAssertEqual(reject.replies[0].code, 500)

        var normalize = ScriptedGlue(lmtpConfig(bareLinefeed: .normalize))
        normalize.feed("LHLO c\nMAIL FROM:<>\nRCPT TO:<alice@example.org>\nDATA\nhi\r\n.\r\n")
        XCTAssertEqual(normalize.codes, ["250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0"])
    }

    func testPostmasterAndCase() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed("lhlo c\r\nmAiL fRoM:<Sender@Remote.Example>\r\nRcpt To:<PostMaster>\r\nRCPT TO:<Alice@EXAMPLE.org>\r\n")
        XCTAssertEqual(glue.session.envelope?.sender, MailPath(localPart: "Sender", domain: "Remote.Example"))
        XCTAssertEqual(glue.session.envelope?.recipients, [
            MailPath(localPart: "PostMaster", domain: "mx.example.org"),
            MailPath(localPart: "Alice", domain: "EXAMPLE.org"),
        ])
    }

    func testSMTPUTF8() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed("LHLO c\r\nMAIL FROM:<jöran@exämple.org>\r\nMAIL FROM:<>\r\nRCPT TO:<jöran@example.org>\r\nRSET\r\n" +
                  "MAIL FROM:<jöran@exämple.org> SMTPUTF8\r\nRCPT TO:<ünï@example.org>\r\n")
        XCTAssertEqual(Array(glue.replies.dropFirst()), [.nonASCIIAddress, .okSender, .nonASCIIAddress, .ok, .okSender, .okRecipient])
        XCTAssertEqual(glue.session.envelope?.smtpUTF8, true)
        XCTAssertEqual(glue.session.envelope?.sender?.address, "jöran@exämple.org")
        XCTAssertEqual(glue.session.receivedProtocol(), "UTF8LMTP")
    }

    func testCapabilitiesAreConfigurable() {
        var config = smtpConfig()
        config.extensions = [.pipelining, .size, .custom("STARTTLS"), .custom("AUTH PLAIN LOGIN"), .enhancedStatusCodes]
        config.limits.maxMessageSize = 1234
        var glue = ScriptedGlue(config)
        glue.feed("EHLO c\r\nMAIL FROM:<> BODY=8BITMIME\r\nMAIL FROM:<> SMTPUTF8\r\nMAIL FROM:<> SIZE=12\r\n")
        XCTAssertEqual(glue.replies[0].lines, ["mx.example.org", "PIPELINING", "SIZE 1234", "STARTTLS", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"])
        XCTAssertEqual(Array(glue.replies.dropFirst()), [.parameterNotRecognized, .parameterNotRecognized, .okSender])
    }

    func testBinaryMIMEOnlyWhenAdvertisedAndNeverWithDATA() {
        var config = smtpConfig()
        config.extensions.append(.binaryMIME)
        var glue = ScriptedGlue(config)
        glue.feed("EHLO c\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        XCTAssertEqual(glue.session.envelope?.bodyType, .binaryMIME)
        XCTAssertEqual(glue.replies.last, .badSequence, "RFC 3030 §3: BINARYMIME needs BDAT")
        XCTAssertFalse(glue.session.isReadingData)
    }

    func testTimeoutMidData() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\npartial")
        XCTAssertTrue(glue.session.isReadingData)
        var session = glue.session
        XCTAssertEqual(session.timedOut(), [.abortMessage, .reply(.timeout), .close])
        XCTAssertEqual(SMTPReply.timeout.code, 421)
        XCTAssertEqual(SMTPReply.timeout.enhanced, "4.4.2")
        XCTAssertEqual(session.receive(Array(ascii: "\r\n.\r\n")), [])

        var idle = SMTPSession(config: lmtpConfig(), clientAddress: "unix")
        XCTAssertEqual(idle.timedOut(), [.reply(.timeout), .close])
    }

    func testQuitDiscardsTheRest() {
        var glue = ScriptedGlue(lmtpConfig())
        glue.feed("NOOP\r\nQUIT\r\nNOOP\r\n")
        XCTAssertEqual(glue.actions, [.reply(.ok), .reply(.closing), .close])
    }

    func testReceivedProtocolNames() {
        var glue = ScriptedGlue(smtpConfig())
        glue.feed("HELO c\r\n")
        XCTAssertEqual(glue.session.receivedProtocol(), "SMTP")
        glue.feed("EHLO c\r\n")
        XCTAssertEqual(glue.session.receivedProtocol(tls: true), "ESMTPS")
        XCTAssertEqual(glue.session.receivedProtocol(tls: true, authenticated: true), "ESMTPSA")
        glue.feed("MAIL FROM:<> SMTPUTF8\r\n")
        XCTAssertEqual(glue.session.receivedProtocol(tls: true), "UTF8SMTPS")
    }

    /// Thousands of small messages over one connection, pipelined, with correct bodies.
    func testManySmallMessages() {
        let count = 2000
        var body = ""
        for i in 0..<60 { body += "Line \(i) " + String(repeating: "z", count: 75) + "\r\n" }   // ~5 KB
        let message = "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n" + body + ".\r\n"
        let input = Array(ascii: "LHLO c\r\n" + String(repeating: message, count: count))
        var glue = ScriptedGlue(lmtpConfig())
        let start = Date()
        var i = 0
        var pieces: [[UInt8]] = []
        while i < input.count { pieces.append(Array(input[i..<min(i + 16384, input.count)])); i += 16384 }
        glue.feed(pieces)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(glue.bodies.count, count)
        XCTAssertTrue(glue.bodies.allSatisfy { $0 == Array(ascii: body) })
        XCTAssertEqual(glue.replies.filter { $0 == .delivered(to: alice) }.count, count)
        print("manySmallMessages: \(count) messages of \(body.utf8.count) bytes in \(String(format: "%.3f", elapsed)) s")
    }
}
