// The SMTP/LMTP glue on an EmbeddedChannel with FakeSMTPServices: transcripts of what the
// client reads, byte for byte, and what the glue asked the services. No sockets, no store.
import Logging
import NIOCore
import NIOEmbedded
import SMTPProtocol
import XCTest
import MailWorker
import MailTLS
import MailTesting
@testable import SMTPServer

/// One session: the handler on an EmbeddedChannel, already connected and greeted.
final class GlueHarness {
    let channel: EmbeddedChannel
    let services: FakeSMTPServices
    /// The greeting the client read on connect.
    private(set) var greeting = ""

    /// `client`: the peer's IP address (nil: EmbeddedChannel's own connect address).
    /// `stressTimeout`: the command timeout under stress; `front`: handlers before the glue
    /// (the worker's OutboundBackPressure); `submission`: authenticated mail gets
    /// Date/Message-ID if missing (RFC 6409 §8).
    init(_ config: SMTPSessionConfig, client: String? = "192.0.2.7", stressTimeout: TimeAmount? = nil,
         front: [ChannelHandler] = [], submission: Bool = false, tls: TLSServerContext? = nil,
         maxSessionTime: TimeAmount = .hours(1)) throws {
        let loop = EmbeddedEventLoop()
        services = FakeSMTPServices(loop: loop)
        var settings = SessionSettings(config: config, commandTimeout: .seconds(300), dataTimeout: .seconds(600),
                                       maxSessionTime: maxSessionTime, tls: tls)
        settings.stressCommandTimeout = stressTimeout
        settings.submission = submission
        let handler = SMTPSessionHandler(settings: settings, services: services,
                                         logger: Logger(label: "SMTPServerTests", factory: { _ in SwiftLogNoOpLogHandler() }))
        channel = EmbeddedChannel(handlers: front + [handler], loop: loop)
        // EmbeddedChannel's connect makes the address connected to the remote address.
        try channel.connect(to: SocketAddress(ipAddress: client ?? "127.0.0.1", port: client == nil ? 25 : 40000)).wait()
        greeting = try output()
    }

    /// Sends `text` as one segment; returns everything the server wrote in answer.
    func send(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        return try output()
    }

    /// Fires a user inbound event (as the worker does); returns what the server wrote.
    func fire(_ event: Any) throws -> String {
        channel.pipeline.fireUserInboundEventTriggered(event)
        return try output()
    }

    func output() throws -> String {
        var text = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: b) }
        return text
    }

    deinit { _ = try? channel.finish() }
}

final class SMTPSessionHandlerTests: XCTestCase {
    let lmtp = SMTPSessionConfig(dialect: .lmtp, hostname: "mx.example.org", limits: SMTPLimits(), bareLinefeed: .reject,
                                 serviceName: "Postern LMTP")
    let mta = SMTPSessionConfig.smtpd(role: .mta, hostname: "mx.example.org")
    let submission = SMTPSessionConfig.smtpd(role: .submission, hostname: "mx.example.org")
    let message = "Subject: hi\r\n\r\nHello\r\n.\r\n"

    /// Starts an SMTP session on the MTA port and gives the envelope sender.
    func mtaSession(_ sender: String = "x@client.example") throws -> GlueHarness {
        let h = try GlueHarness(mta)
        XCTAssertEqual(h.greeting, "220 mx.example.org ESMTP Postern\r\n")
        XCTAssertTrue(try h.send("EHLO client.example\r\n").hasPrefix("250-mx.example.org\r\n"))
        XCTAssertEqual(try h.send("MAIL FROM:<\(sender)>\r\n"), "250 2.1.0 Sender OK\r\n")
        return h
    }

    /// RFC 2033 §4.2: one reply per recipient after the dot, from the store's statuses; the
    /// whole exchange pipelined in one segment, as Postfix's LMTP client sends it.
    func testLMTPDeliveryWithPerRecipientReplies() throws {
        let h = try GlueHarness(lmtp, client: nil)
        XCTAssertEqual(h.greeting, "220 mx.example.org Postern LMTP\r\n")
        h.services.deliveryStatuses = ["bob@example.org": .overQuota, "carol@example.org": .tempFail]
        let out = try h.send("LHLO postfix.example\r\nMAIL FROM:<x@client.example>\r\nRCPT TO:<alice@example.org>\r\n"
                             + "RCPT TO:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n" + message)
        let afterLHLO = String(out[out.range(of: "250 SMTPUTF8\r\n")!.upperBound...])
        XCTAssertEqual(afterLHLO, """
            250 2.1.0 Sender OK\r
            250 2.1.5 Recipient OK\r
            250 2.1.5 Recipient OK\r
            250 2.1.5 Recipient OK\r
            354 End data with <CR><LF>.<CR><LF>\r
            250 2.0.0 <alice@example.org> Delivered\r
            552 5.2.2 Mailbox full\r
            451 4.3.0 Local error in processing, try again later\r

            """)
        XCTAssertEqual(h.services.deliveries.count, 1)
        let d = h.services.deliveries[0]
        XCTAssertEqual(d.sender, "x@client.example")
        XCTAssertEqual(d.recipients, ["alice@example.org", "bob@example.org", "carol@example.org"])
        XCTAssertEqual(d.storeSession, 0)
        XCTAssertTrue(d.body.hasPrefix("Return-Path: <x@client.example>\r\nReceived: from postfix.example ("), d.body)
        XCTAssertTrue(d.body.hasSuffix("\r\nSubject: hi\r\n\r\nHello\r\n"), d.body)
    }

    func testUnknownUserIsRefusedAtRCPT() throws {
        let h = try mtaSession()
        XCTAssertEqual(try h.send("RCPT TO:<nobody@example.org>\r\n"), "550 5.1.1 User unknown\r\n")
        XCTAssertEqual(h.services.lookups, ["nobody@example.org"])
        XCTAssertEqual(try h.send("DATA\r\n"), "554 5.5.1 No valid recipients\r\n")
    }

    /// DESIGN §4: never an open relay — a remote recipient without AUTH is 554 5.7.1.
    func testRelayDeniedForAnUnauthenticatedClient() throws {
        let h = try mtaSession("spammer@evil.example")
        XCTAssertEqual(try h.send("RCPT TO:<victim@third.example>\r\n"), "554 5.7.1 Relay access denied\r\n")
        XCTAssertTrue(h.services.deliveries.isEmpty)
    }

    /// RFC 5321 §4.5.1: <Postmaster> is accepted although mx.example.org is no mail domain,
    /// and delivered to the canonical address of the bare "postmaster".
    func testPostmasterFallbackToTheCanonicalAddress() throws {
        let h = try mtaSession()
        XCTAssertEqual(try h.send("RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Recipient OK\r\n")
        XCTAssertEqual(h.services.lookups, ["Postmaster@mx.example.org", "postmaster"])
        XCTAssertEqual(try h.send("DATA\r\n" + message),
                       "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Message accepted for delivery\r\n")
        XCTAssertEqual(h.services.deliveries.map(\.recipients), [["admin@example.org"]])
    }

    /// AUTH, then a sender the user does not own (553 5.7.1), then one it owns; the store
    /// session from AUTH goes with the delivery and is ended at the close.
    func testAuthThenSenderNotOwned() throws {
        let h = try GlueHarness(submission, client: "127.0.0.1")
        _ = try h.send("EHLO client.example\r\n")
        let plain = Data("\0alice\0secret".utf8).base64EncodedString()
        XCTAssertEqual(try h.send("AUTH PLAIN \(plain)\r\n"), "235 2.7.0 Authentication successful\r\n")
        XCTAssertEqual(try h.send("MAIL FROM:<bob@example.org>\r\n"), "553 5.7.1 Sender address rejected: not owned by user\r\n")
        XCTAssertEqual(try h.send("MAIL FROM:<alice@example.org>\r\n"), "250 2.1.0 Sender OK\r\n")
        XCTAssertEqual(try h.send("RCPT TO:<friend@remote.example>\r\n"), "250 2.1.5 Recipient OK\r\n", "queued after AUTH")
        XCTAssertEqual(try h.send("DATA\r\n" + message),
                       "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Message accepted for delivery\r\n")
        XCTAssertEqual(h.services.deliveries.map(\.storeSession), [42])
        XCTAssertEqual(try h.send("QUIT\r\n"), "221 2.0.0 Bye\r\n")
        XCTAssertFalse(h.channel.isActive)
        XCTAssertEqual(h.services.endedSessions, [42])
    }

    /// RFC 5321: SMTP answers a message once — the first failure at the store wins.
    func testOneSMTPReplyWhenOneOfTwoRecipientsFailsAtTheStore() throws {
        let h = try mtaSession()
        h.services.deliveryStatuses = ["bob@example.org": .unknownUser]
        XCTAssertEqual(try h.send("RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"),
                       "250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n")
        XCTAssertEqual(try h.send("DATA\r\n" + message), "354 End data with <CR><LF>.<CR><LF>\r\n550 5.1.1 User unknown\r\n")
        XCTAssertEqual(h.services.deliveries.map(\.recipients), [["alice@example.org", "bob@example.org"]])
    }

    func testStoreTemporaryFailuresAre451() throws {
        struct Lost: Error {}
        let h = try mtaSession()
        h.services.lookupsFail = true
        XCTAssertEqual(try h.send("RCPT TO:<alice@example.org>\r\n"), "451 4.3.0 Local error in processing, try again later\r\n")
        h.services.lookupsFail = false
        h.services.deliveryError = Lost()
        _ = try h.send("RCPT TO:<alice@example.org>\r\n")
        XCTAssertEqual(try h.send("DATA\r\n" + message),
                       "354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Local error in processing, try again later\r\n")
        // The store refusing the sender outright is 553, not a temporary failure.
        h.services.deliveryError = SMTPServiceError.senderDenied("not hers")
        _ = try h.send("MAIL FROM:<x@client.example>\r\nRCPT TO:<alice@example.org>\r\n")
        XCTAssertEqual(try h.send("DATA\r\n" + message),
                       "354 End data with <CR><LF>.<CR><LF>\r\n553 5.7.1 Sender address rejected: not owned by user\r\n")
    }

    /// The worker drains: between messages the client reads 421 4.3.2 and the connection closes.
    func testShutdownEventBetweenMessages() throws {
        let h = try mtaSession()
        XCTAssertEqual(try h.fire(WorkerSessionEvent.shuttingDown), "421 4.3.2 Service shutting down, closing connection\r\n")
        XCTAssertFalse(h.channel.isActive)
    }

    /// While the store holds a delivery, the message is finished and answered first.
    func testShutdownEventWhileTheStoreDelivers() throws {
        let h = try mtaSession()
        h.services.holdDeliveries = true
        _ = try h.send("RCPT TO:<alice@example.org>\r\n")
        XCTAssertEqual(try h.send("DATA\r\n" + "Subject: hi\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n")
        XCTAssertEqual(try h.fire(WorkerSessionEvent.shuttingDown), "", "in DATA: nothing yet")
        XCTAssertEqual(try h.send("\r\nHello\r\n.\r\nNOOP\r\n"), "")
        XCTAssertTrue(h.channel.isActive)
        h.services.pendingDelivery!.succeed([.delivered])
        XCTAssertEqual(try h.output(), "250 2.0.0 Message accepted for delivery\r\n421 4.3.2 Service shutting down, closing connection\r\n")
        XCTAssertFalse(h.channel.isActive)
    }

    // MARK: bodies streamed to the services (issue 9)

    /// A body of `lines` 80-byte lines (un-dot-stuffed, CRLF).
    func bodyLines(_ lines: Int) -> String {
        (0..<lines).map { String(format: "%06d ", $0) + String(repeating: "y", count: 71) + "\r\n" }.joined()
    }

    /// The body reaches the services chunk by chunk while the client is still sending it: the
    /// glue holds about one chunk, never the message.
    func testBodyChunksReachTheServicesAsTheyArrive() throws {
        let h = try mtaSession()
        _ = try h.send("RCPT TO:<alice@example.org>\r\n")
        XCTAssertEqual(try h.send("DATA\r\nSubject: big\r\n\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n")
        let body = bodyLines(8192)                          // 640 KiB
        let half = body.index(body.startIndex, offsetBy: 320 * 1024)
        XCTAssertEqual(try h.send(String(body[..<half])), "")
        let sends = try XCTUnwrap(h.services.inTransfer).sends
        XCTAssertEqual(sends.count, 1, "one chunk handed on while the rest is still coming")
        XCTAssertGreaterThanOrEqual(sends[0], SMTPSessionHandler.deliveryChunkSize)
        XCTAssertTrue(h.services.received.hasPrefix("Return-Path: <x@client.example>\r\nReceived: "))
        XCTAssertEqual(try h.send(String(body[half...])), "")
        XCTAssertEqual(h.services.inTransfer?.sends.count, 2)
        XCTAssertTrue(h.services.deliveries.isEmpty)
        XCTAssertEqual(try h.send(".\r\n"), "250 2.0.0 Message accepted for delivery\r\n")
        XCTAssertNil(h.services.inTransfer)
        XCTAssertEqual(h.services.deliveries.count, 1)
        XCTAssertTrue(h.services.deliveries[0].body.hasSuffix("\r\nSubject: big\r\n\r\n" + body), "byte-exact, in order")
        XCTAssertTrue(h.services.abortedDeliveries.isEmpty)
    }

    /// RFC 3030 §4.1: RSET between BDAT chunks ends the transaction: the store is told to discard.
    func testRSETBetweenBDATChunksAbortsTheDelivery() throws {
        let h = try mtaSession()
        _ = try h.send("RCPT TO:<alice@example.org>\r\n")
        XCTAssertTrue(try h.send("BDAT 12\r\nSubject: x\r\n").hasPrefix("250 "))
        XCTAssertNotNil(h.services.inTransfer)
        XCTAssertEqual(try h.send("RSET\r\n"), "250 2.0.0 OK\r\n")
        XCTAssertNil(h.services.inTransfer)
        XCTAssertEqual(h.services.abortedDeliveries.map(\.recipients), [["alice@example.org"]])
        XCTAssertTrue(h.services.deliveries.isEmpty)
    }

    /// RFC 1870: a body over the size limit is refused with 552 and the store discards it.
    func testTooLargeMessageAbortsTheDelivery() throws {
        var config = mta
        config.limits.maxMessageSize = 4096
        let h = try GlueHarness(config)
        _ = try h.send("EHLO client.example\r\nMAIL FROM:<x@client.example>\r\nRCPT TO:<alice@example.org>\r\n")
        XCTAssertEqual(try h.send("DATA\r\n" + bodyLines(100) + ".\r\n"),
                       "354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 Message size exceeds fixed maximum message size\r\n")
        XCTAssertEqual(h.services.abortedDeliveries.count, 1)
        XCTAssertTrue(h.services.deliveries.isEmpty)
    }

    /// A client gone mid-body: the store discards what it received.
    func testDisconnectMidBodyAbortsTheDelivery() throws {
        let h = try mtaSession()
        _ = try h.send("RCPT TO:<alice@example.org>\r\nDATA\r\nSubject: gone\r\n\r\npartial\r\n")
        XCTAssertNotNil(h.services.inTransfer)
        try h.channel.close().wait()
        XCTAssertEqual(h.services.abortedDeliveries.count, 1)
        XCTAssertTrue(h.services.deliveries.isEmpty)
    }

    /// RFC 6409 §8: on submission the header section is held until scanned; the missing
    /// Message-ID and Date go after the trace fields, before the message, and the rest streams.
    func testSubmissionFixUpsGoAfterTheTraceFields() throws {
        let h = try GlueHarness(submission, client: "127.0.0.1", submission: true)
        _ = try h.send("EHLO client.example\r\n")
        let plain = Data("\0alice\0secret".utf8).base64EncodedString()
        XCTAssertEqual(try h.send("AUTH PLAIN \(plain)\r\n"), "235 2.7.0 Authentication successful\r\n")
        _ = try h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<friend@remote.example>\r\n")
        XCTAssertEqual(try h.send("DATA\r\nSubject: hi\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n")
        XCTAssertEqual(h.services.inTransfer?.sends, [], "the header section is held until its end")
        let body = bodyLines(4096)
        XCTAssertEqual(try h.send("\r\n" + body), "")
        XCTAssertEqual(h.services.inTransfer?.sends.isEmpty, false, "after the header, the body streams")
        XCTAssertEqual(try h.send(".\r\n"), "250 2.0.0 Message accepted for delivery\r\n")
        let d = h.services.deliveries[0].body
        let received = try XCTUnwrap(d.range(of: "\r\nReceived: ")), mid = try XCTUnwrap(d.range(of: "\r\nMessage-ID: <"))
        let date = try XCTUnwrap(d.range(of: "\r\nDate: ")), subject = try XCTUnwrap(d.range(of: "\r\nSubject: hi\r\n\r\n"))
        XCTAssertTrue(received.lowerBound < mid.lowerBound && mid.lowerBound < date.lowerBound && date.lowerBound < subject.lowerBound, d)
        XCTAssertTrue(d.hasSuffix("\r\nSubject: hi\r\n\r\n" + body))
        // A message with both fields gets neither.
        _ = try h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<friend@remote.example>\r\n")
        _ = try h.send("DATA\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nx\r\n.\r\n")
        XCTAssertEqual(h.services.deliveries[1].body.components(separatedBy: "Message-ID:").count, 2)
        XCTAssertEqual(h.services.deliveries[1].body.components(separatedBy: "\r\nDate:").count, 2)
    }

    /// RFC 3207 §4.2: STARTTLS discards the session state, AUTH included; the store session
    /// of that AUTH is ended when the handshake completes, not left until the close.
    func testSTARTTLSEndsTheStoreSessionOfAnEarlierAUTH() throws {
        let fixture = TLSFixture()
        let h = try GlueHarness(submission, client: "127.0.0.1", tls: try fixture.context(host: "mx.example.org"))
        _ = try h.send("EHLO client.example\r\n")
        let plain = Data("\0alice\0secret".utf8).base64EncodedString()
        XCTAssertEqual(try h.send("AUTH PLAIN \(plain)\r\n"), "235 2.7.0 Authentication successful\r\n")
        XCTAssertEqual(try h.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n")
        XCTAssertEqual(h.services.endedSessions, [])
        // The TLS handler announces the finished handshake to the session handler.
        let pipeline = h.channel.pipeline.syncOperations
        let handler = try pipeline.handler(type: SMTPSessionHandler.self)
        let info = TLSSessionInfo(protocolVersion: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", cipherStandardName: "TLS_AES_128_GCM_SHA256",
                                  cipherBits: 128, serverName: nil, resumed: false, keyExchangeGroup: nil,
                                  peerCertificateSubject: nil, peerVerified: false)
        handler.userInboundEventTriggered(context: try pipeline.context(handlerType: SMTPSessionHandler.self),
                                          event: TLSEvent.handshakeCompleted(info))
        XCTAssertNil(handler.session.authenticatedUser)
        XCTAssertEqual(h.services.endedSessions, [42])
        XCTAssertEqual(handler.storeSession, 0, "not ended a second time at the close")
    }

    /// The session timer (max_session_time): 421 4.7.0 and close, logged by the glue.
    func testSessionTimerClosesTheSession() throws {
        let h = try GlueHarness(mta, maxSessionTime: .seconds(60))
        _ = try h.send("EHLO client.example\r\n")
        (h.channel.eventLoop as! EmbeddedEventLoop).advanceTime(by: .seconds(30))
        XCTAssertEqual(try h.send("NOOP\r\n"), "250 2.0.0 OK\r\n")
        (h.channel.eventLoop as! EmbeddedEventLoop).advanceTime(by: .seconds(31))
        XCTAssertEqual(try h.output(), "421 4.7.0 Session too long, closing connection\r\n")
        XCTAssertFalse(h.channel.isActive)
    }

    /// Port 25: one of our domains as sender, without AUTH, from outside trusted_networks is
    /// 553 5.7.1 (the store says which domains are ours); loopback is trusted by default.
    func testLocalSenderFromAnUntrustedClient() throws {
        var config = mta
        config.localSenderRequiresAuth = true
        let h = try GlueHarness(config)
        _ = try h.send("EHLO client.example\r\n")
        XCTAssertEqual(try h.send("MAIL FROM:<alice@example.org>\r\n"),
                       "553 5.7.1 Sender address rejected: authentication required for a local domain\r\n")
        XCTAssertEqual(try h.send("MAIL FROM:<x@client.example>\r\n"), "250 2.1.0 Sender OK\r\n")
        XCTAssertEqual(h.services.lookups, ["domain example.org", "domain client.example"])
        let local = try GlueHarness(config, client: "127.0.0.1")
        _ = try local.send("EHLO client.example\r\n")
        XCTAssertEqual(try local.send("MAIL FROM:<alice@example.org>\r\n"), "250 2.1.0 Sender OK\r\n")
        XCTAssertEqual(local.services.lookups, [])
    }
}
