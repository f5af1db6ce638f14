// The runner end to end against real receivers on loopback (smtp-sink, the Python server of
// TestReceivers.swift) and an in-memory queue: delivery through a relay host, 4xx → deferred with
// its next attempt, one of three recipients refused → one DSN naming it, timeouts, STARTTLS
// (opportunistic with a self-signed certificate, refused under verify), DKIM that dkimpy
// verifies, 8-bit to a 7-bit server, the null sender never bounced, the administrator's bounce.
import DKIM
import Foundation
import Logging
import MailCore
import MailDNS
import MailModel
import MailTesting
import NIOPosix
import OutboundProtocol
@testable import OutboundServer
import XCTest

final class OutboundRunnerTests: XCTestCase {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    static let now = Date(timeIntervalSince1970: 1_800_000_100)

    /// A runner for `[outbound]` keys (`relayhost` etc.), with `dkim` keys and a loopback resolver.
    func runner(_ queue: MemoryQueue, _ keys: String, dkim: DKIMKeys = DKIMKeys([:]), resolver: (any MailDNS.Resolver)? = nil) throws -> OutboundRunner {
        try Self.runner(queue, keys, dkim: dkim, resolver: resolver)
    }

    static func runner(_ queue: MemoryQueue, _ keys: String, dkim: DKIMKeys = DKIMKeys([:]), resolver: (any MailDNS.Resolver)? = nil,
                       logger: Logger = Logger(label: "outbound-test")) throws -> OutboundRunner {
        var config = try PosternConfig.parse("hostname = \"mx.example.org\"\n[outbound]\n" + keys, path: "/tmp/p.toml")
        config.outbound.enabled = true
        let settings = OutboundSettings(config)
        let dns = try resolver ?? UnboundResolver(forwarder: "127.0.0.1@9", timeout: 1)
        let router = Router(resolver: dns, relayhost: config.outbound.relayhost, smtpPort: config.outbound.smtpPort)
        return OutboundRunner(queue: queue, settings: settings, router: router, tls: try TLSClientContexts(caFile: config.outbound.caFile),
                              dkim: dkim, group: group, logger: logger, now: { now })
    }

    func relay(_ r: Receiver, _ extra: String = "") -> String {
        "relayhost = \"127.0.0.1:\(r.port)\"\nrelay_tls = \"none\"\ncommand_timeout = 10\n" + extra
    }

    // MARK: relay host

    func testRelayHostDeliveryThroughSmtpSink() async throws {
        let sink = try Receiver.smtpSink()
        let q = MemoryQueue([job(1, recipients: ["bob@remote.example", "carol@other.example"], body: message(subject: "first")),
                             job(2, recipients: ["dave@remote.example"], body: message(subject: "second"))])
        try await runner(q, relay(sink)).runOnce()
        XCTAssertEqual(q.outcomes.count, 3)
        for (id, o) in q.outcomes {
            guard case .delivered(let reply) = o else { return XCTFail("\(id): \(o)") }
            XCTAssertTrue(reply.hasPrefix("250"), reply)
        }
        XCTAssertEqual(q.notices, [])
        let dumps = sink.messages()
        XCTAssertEqual(dumps.count, 2, "one transaction per message to the relay host, all its recipients in it")
        let first = try XCTUnwrap(dumps.first { $0.contains("Subject: first") })
        XCTAssertTrue(first.contains("bob@remote.example") && first.contains("carol@other.example"), first)
    }

    func testTemporaryRefusalIsDeferredToTheScheduledAttempt() async throws {
        let sink = try Receiver.smtpSink(["-r", "RCPT"])
        let q = MemoryQueue([job(1, recipients: ["bob@remote.example"], body: message())])
        try await runner(q, relay(sink, "retry_initial = 600\n")).runOnce()
        guard case .deferred(let reply, let next, let warned)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("450"), reply)
        XCTAssertEqual(next, Int64(Self.now.timeIntervalSince1970) + 600, "first retry after retry_initial")
        XCTAssertFalse(warned)
        XCTAssertEqual(q.notices, [], "no delay warning before delay_warning")
    }

    func testDelayWarningOnceWhenDue() async throws {
        let sink = try Receiver.smtpSink(["-r", "RCPT"])
        var j = job(1, recipients: ["bob@remote.example"], body: message())
        j.job.recipients[0].attempts = 3
        j.job.recipients[0].firstAttempt = Int64(Self.now.timeIntervalSince1970) - 5000
        let q = MemoryQueue([j])
        try await runner(q, relay(sink, "delay_warning = 3600\n")).runOnce()
        guard case .deferred(_, _, let warned)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(warned)
        let dsn = try XCTUnwrap(q.notices.first)
        XCTAssertEqual(dsn.recipient, "alice@example.org")
        XCTAssertTrue(String(decoding: dsn.body, as: UTF8.self).contains("Action: delayed"))
    }

    func testOneOfThreeRecipientsRefusedGetsOneDSNNamingIt() async throws {
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, recipients: ["a@remote.example", "reject-b@remote.example", "c@remote.example"], body: message())])
        try await runner(q, relay(server)).runOnce()
        guard case .delivered? = q.outcomes[100], case .delivered? = q.outcomes[102] else { return XCTFail("\(q.outcomes)") }
        guard case .failed(let reply)? = q.outcomes[101] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("550 5.1.1"), reply)
        XCTAssertEqual(server.envelopes().count, 1)
        XCTAssertEqual((server.envelopes().first?["rcpts"] as? [String])?.count, 2)
        XCTAssertEqual(q.notices.count, 1)
        let dsn = try XCTUnwrap(q.notices.first)
        XCTAssertEqual(dsn.recipient, "alice@example.org")
        // Python's email package reads it as RFC 3464 says.
        let dir = TempDir()
        try Data(dsn.body).write(to: URL(fileURLWithPath: dir.file("dsn.eml")))
        let r = try runPeer(["/usr/bin/python3", "-c", """
            import email, sys
            m = email.message_from_binary_file(open(sys.argv[1], "rb"))
            assert m.get_content_type() == "multipart/report", m.get_content_type()
            assert m.get_param("report-type") == "delivery-status"
            ds = [p for p in m.walk() if p.get_content_type() == "message/delivery-status"][0]
            blocks = ds.get_payload()
            recips = [b for b in blocks if b.get("Final-Recipient")]
            assert len(recips) == 1, [str(b) for b in blocks]
            b = recips[0]
            print(b["Final-Recipient"], "|", b["Action"], "|", b["Status"], "|", b["Diagnostic-Code"], "|", b["Remote-MTA"])
            """, dir.file("dsn.eml")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("rfc822; reject-b@remote.example | failed | 5.1.1 | smtp; 550 5.1.1"), r.stdout)
    }

    func testNullSenderIsNeverBounced() async throws {
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, sender: "", recipients: ["reject-x@remote.example"], body: message(), origin: .bounce)])
        try await runner(q, relay(server)).runOnce()
        guard case .failed? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertEqual(q.notices, [], "RFC 3464 §2: no DSN about a DSN")
        XCTAssertTrue(server.envelopes().isEmpty)
    }

    func testNotifyNeverFailureGetsNoDSN() async throws {
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, recipients: ["reject-x@remote.example"], body: message(), notify: 0)])
        try await runner(q, relay(server)).runOnce()
        guard case .failed? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertEqual(q.notices, [])
    }

    func testAdministratorBounceFailsEveryRecipientWithoutConnecting() async throws {
        let q = MemoryQueue([job(1, recipients: ["x@remote.example", "y@remote.example"], body: message(), bounce: true)])
        // A relay host nobody listens on: nothing may try it.
        try await runner(q, "relayhost = \"127.0.0.1:\(try freePort())\"\nrelay_tls = \"none\"\n").runOnce()
        for id: Int64 in [100, 101] {
            guard case .failed(let reply)? = q.outcomes[id] else { return XCTFail("\(q.outcomes)") }
            XCTAssertTrue(reply.hasPrefix("550 5.0.0"), reply)
        }
        let dsn = String(decoding: try XCTUnwrap(q.notices.first).body, as: UTF8.self)
        XCTAssertTrue(dsn.contains("Final-Recipient: rfc822; x@remote.example") && dsn.contains("Final-Recipient: rfc822; y@remote.example"), dsn)
        XCTAssertEqual(q.notices.count, 1, "one DSN for the message")
    }

    func testNotifySuccessToAServerWithoutDSNIsRelayed() async throws {
        let server = try Receiver.python(extensions: ["PIPELINING", "8BITMIME"])
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: message(), notify: 1 | 2)])
        try await runner(q, relay(server)).runOnce()
        guard case .delivered? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        let dsn = String(decoding: try XCTUnwrap(q.notices.first).body, as: UTF8.self)
        XCTAssertTrue(dsn.contains("Action: relayed"), dsn)
    }

    // MARK: connection cache

    /// Polls `done` (the agent's own tasks run meanwhile) until it holds or `seconds` passed.
    func eventually(_ seconds: Double = 10, _ done: () async -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if await done() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await done()
    }

    /// A receiver and a runner with `connection_cache_time_ms = ms` that delivered one message.
    func deliveredOne(cacheMs ms: Int) async throws -> (Receiver, MemoryQueue, OutboundRunner) {
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, recipients: ["bob@remote.example"], body: message(subject: "first"))])
        let r = try runner(q, relay(server, "connection_cache_time_ms = \(ms)\n"))
        await r.runOnce()
        return (server, q, r)
    }

    /// A second message, claimed after the first was delivered: whether both came over one
    /// connection (the server numbers them; the listener probe of TestReceivers is one too).
    func deliverSecond(_ server: Receiver, _ q: MemoryQueue, _ r: OutboundRunner) async -> Bool? {
        q.add([job(2, recipients: ["carol@remote.example"], body: message(subject: "second"))])
        await r.runOnce()
        XCTAssertEqual(q.outcomes.count, 2)
        let conns = server.envelopes().compactMap { $0["conn"] as? Int }
        return conns.count == 2 ? conns[0] == conns[1] : nil
    }

    func testAnIdleConnectionCarriesTheNextClaimsMessage() async throws {
        let (server, q, r) = try await deliveredOne(cacheMs: 60_000)
        let idle = await eventually { await r.dispatcher.idleWorkers == 1 }
        XCTAssertTrue(idle, "the connection is kept once its destination has nothing waiting")
        let same = await deliverSecond(server, q, r)
        XCTAssertEqual(same, true, "both messages over the first connection")
    }

    /// 100 ms: the idle connection expires; 0: it closes at once.
    func testAnIdleConnectionClosesAfterTheCacheTime() async throws {
        for ms in [100, 0] {
            let (server, q, r) = try await deliveredOne(cacheMs: ms)
            let gone = await eventually { await r.dispatcher.idleWorkers == 0 }
            XCTAssertTrue(gone, "\(ms) ms: the idle connection expires")
            let same = await deliverSecond(server, q, r)
            XCTAssertEqual(same, false, "\(ms) ms: a new connection for the second message")
        }
    }

    // MARK: failures of the connection

    func testServerThatNeverAnswersTimesOutAndIsDeferred() async throws {
        let silent = try Receiver.python(mode: "silent")
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: message())])
        try await runner(q, "relayhost = \"127.0.0.1:\(silent.port)\"\nrelay_tls = \"none\"\ncommand_timeout = 1\n").runOnce()
        guard case .deferred(let reply, _, _)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("421 4.4.2"), reply)
    }

    /// A delivery that outlives its lease: the store hands the message out again, and the
    /// runner, which is still delivering it, must not start a second delivery of it.
    func testAMessageStillBeingDeliveredIsNotDeliveredAgainWhenItsLeaseEnds() async throws {
        let silent = try Receiver.python(mode: "silent")
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: message())])
        q.leasesExpire = true
        let r = try runner(q, "relayhost = \"127.0.0.1:\(silent.port)\"\nrelay_tls = \"none\"\ncommand_timeout = 2\n")
        _ = await r.claimAndDispatch()
        _ = await r.claimAndDispatch()      // while the first attempt waits for the silent server
        await r.drained()
        XCTAssertEqual(q.reportCounts, [100: 1], "one attempt, one report")
    }

    func testConnectionRefusedIsDeferred() async throws {
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: message())])
        try await runner(q, "relayhost = \"127.0.0.1:\(try freePort())\"\nrelay_tls = \"none\"\n").runOnce()
        guard case .deferred(let reply, _, _)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("451 4.4.1"), reply)
    }

    // MARK: TLS

    /// MX-less routing to nomx.t.example (127.0.0.1) on the server's port: the domain's policy.
    func domainRoute(_ server: Receiver, _ extra: String = "") -> String {
        "smtp_port = \(server.port)\ncommand_timeout = 10\n" + extra
    }

    func testOpportunisticSTARTTLSWithASelfSignedCertificateEncrypts() async throws {
        let dir = TempDir()
        let server = try Receiver.python(tls: try dir.pair("server", host: "mx.remote.example"))
        let q = MemoryQueue([job(1, recipients: ["a@nomx.t.example"], body: message())])
        try await runner(q, domainRoute(server), resolver: try LoopbackDNS.shared().resolver()).runOnce()
        guard case .delivered? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertEqual(server.envelopes().first?["tls"] as? Bool, true)
    }

    func testVerifyPolicyRefusesAnUnverifiableCertificate() async throws {
        let dir = TempDir()
        let server = try Receiver.python(tls: try dir.pair("server", host: "mx.remote.example"))
        let q = MemoryQueue([job(1, recipients: ["a@nomx.t.example"], body: message())])
        let keys = domainRoute(server) + "[outbound.tls_policy_domains]\n\"nomx.t.example\" = \"verify\"\n"
        try await runner(q, keys, resolver: try LoopbackDNS.shared().resolver()).runOnce()
        guard case .deferred(let reply, _, _)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("451 4.7.5"), reply)
        XCTAssertTrue(server.envelopes().isEmpty, "nothing sent over an unverified connection")
    }

    func testPolicyNoneStaysInPlaintext() async throws {
        let dir = TempDir()
        let server = try Receiver.python(tls: try dir.pair("server", host: "mx.remote.example"))
        let q = MemoryQueue([job(1, recipients: ["a@nomx.t.example"], body: message())])
        try await runner(q, domainRoute(server, "tls_policy = \"none\"\n"), resolver: try LoopbackDNS.shared().resolver()).runOnce()
        guard case .delivered? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertEqual(server.envelopes().first?["tls"] as? Bool, false)
    }

    /// The relay host: relay_tls = "starttls" requires it (a self-signed certificate is fine, it is not verified).
    func testRequiredSTARTTLSNotOfferedIsDeferred() async throws {
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: message())])
        try await runner(q, "relayhost = \"[127.0.0.1]:\(server.port)\"\nrelay_tls = \"starttls\"\ncommand_timeout = 10\n").runOnce()
        guard case .deferred(let reply, _, _)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("451 4.7.4"), reply)
    }

    // MARK: body

    func testEightBitBodyToASevenBitServerIsConverted() async throws {
        let sink = try Receiver.smtpSink(["-8"])
        let body = Array("From: <alice@example.org>\r\nTo: <b@remote.example>\r\nSubject: x\r\n\r\nGrüße aus Köln\r\n".utf8)
        let q = MemoryQueue([job(1, recipients: ["b@remote.example"], body: body)])
        try await runner(q, relay(sink)).runOnce()
        guard case .delivered? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        let got = try XCTUnwrap(sink.messages().first)
        XCTAssertTrue(got.contains("Content-Transfer-Encoding: quoted-printable"), got)
        XCTAssertTrue(got.contains("Gr=C3=BC=C3=9Fe"), got)
        XCTAssertFalse(got.utf8.contains { $0 >= 0x80 }, "never 8-bit to a server without 8BITMIME")
    }

    /// RFC 6531 §3.2 / RFC 6532: UTF-8 in the header section needs SMTPUTF8 — sent with it to a
    /// server that offers it, bounced (5.6.7) by one that does not; 8-bit header bytes that are
    /// not UTF-8 (a legacy charset) are sent as they are, as Postfix does.
    func testUTF8HeadersNeedSMTPUTF8() async throws {
        let utf8 = Array("From: <alice@example.org>\r\nTo: <b@remote.example>\r\nSubject: Grüße\r\n\r\nHallo\r\n".utf8)
        let latin1 = Array("From: <alice@example.org>\r\nTo: <b@remote.example>\r\nSubject: Gr".utf8) + [0xFC, 0xDF, 0x65]
            + Array("\r\n\r\nHallo\r\n".utf8)
        let without = try Receiver.python(extensions: ["PIPELINING", "8BITMIME"])
        let q = MemoryQueue([job(1, recipients: ["b@remote.example"], body: utf8), job(2, recipients: ["c@remote.example"], body: latin1)])
        try await runner(q, relay(without)).runOnce()
        guard case .failed(let reply)? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.contains("5.6.7"), reply)
        guard case .delivered? = q.outcomes[200] else { return XCTFail("legacy 8-bit header: \(q.outcomes)") }
        XCTAssertEqual(without.envelopes().count, 1, "only the legacy one reached the server")

        let with = try Receiver.python(extensions: ["PIPELINING", "8BITMIME", "SMTPUTF8"])
        let q2 = MemoryQueue([job(3, recipients: ["b@remote.example"], body: utf8)])
        try await runner(q2, relay(with)).runOnce()
        guard case .delivered? = q2.outcomes[300] else { return XCTFail("\(q2.outcomes)") }
        let mail = try XCTUnwrap(with.envelopes().first?["mail"] as? String)
        XCTAssertTrue(mail.contains("SMTPUTF8"), mail)
    }

    func testLargeBodyIsReadByRangeAndArrivesWhole() async throws {
        let server = try Receiver.python()
        var text = ""
        for i in 0..<40_000 { text += "line \(i) .with a dot\r\n.leading dot \(i)\r\n" }
        let body = message(body: text)
        XCTAssertGreaterThan(body.count, OutboundSettings.inMemoryBodyLimit)
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: body)])
        try await runner(q, relay(server)).runOnce()
        guard case .delivered? = q.outcomes[100] else { return XCTFail("\(q.outcomes)") }
        XCTAssertEqual(server.rawMessages().first.map { Array($0) }, body, "dot-stuffing undone by the server: the same bytes")
        XCTAssertTrue(q.reads.allSatisfy { $0.length <= OutboundSettings.readChunk })
    }

    // MARK: DKIM

    func testDKIMSignaturesOfBothAlgorithmsVerifyWithDkimpy() async throws {
        let rsa = try DKIMKey.generate(.rsa2048), ed = try DKIMKey.generate(.ed25519)
        let keys = DKIMKeys(["example.org": [("rsa1", rsa), ("ed1", ed)]])
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, recipients: ["a@remote.example"], body: message(body: "Signed.\r\n.dot line\r\n")),
                             job(2, recipients: ["a@remote.example"], body: message(), origin: .forward)])
        try await runner(q, relay(server), dkim: keys).runOnce()
        let raw = server.rawMessages()
        XCTAssertEqual(raw.count, 2)
        let signed = try XCTUnwrap(raw.first { String(decoding: $0, as: UTF8.self).contains("Signed.") })
        let forwarded = try XCTUnwrap(raw.first { !String(decoding: $0, as: UTF8.self).contains("Signed.") })
        XCTAssertFalse(String(decoding: forwarded, as: UTF8.self).contains("DKIM-Signature"), "only submitted mail is signed")
        let text = String(decoding: signed, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("DKIM-Signature:"), text)
        let dir = TempDir()
        try signed.write(to: URL(fileURLWithPath: dir.file("m.eml")))
        let r = try runPeer(["/usr/bin/python3", "-c", """
            import dkim, sys
            msg = open(sys.argv[1], "rb").read()
            records = {b"rsa1._domainkey.example.org": sys.argv[2].encode(), b"ed1._domainkey.example.org": sys.argv[3].encode()}
            dns = lambda name, timeout=5: records.get(name.rstrip(b"."))
            d = dkim.DKIM(msg)
            results = [d.verify(idx=i, dnsfunc=dns) for i in range(2)]
            print(results)
            sys.exit(0 if all(results) else 1)
            """, dir.file("m.eml"), try rsa.txtRecord(), try ed.txtRecord()])
        XCTAssertEqual(r.status, 0, r.output)
    }
}
