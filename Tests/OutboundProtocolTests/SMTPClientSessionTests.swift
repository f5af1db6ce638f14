// SMTPClientSession as transcripts: what the client writes for each server reply, the
// decisions (HELO fallback, STARTTLS policy, AUTH, SIZE, 8BITMIME, SMTPUTF8, DSN parameters),
// pipelining with refused recipients, the RFC 5321 §4.5.3.2 timer of each state, and failures.
import MailSyntax
import OutboundProtocol
import SMTPProtocol
import XCTest

final class SMTPClientSessionTests: XCTestCase {
    let plain = SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .disabled)

    /// Greeting and EHLO with `keywords`; returns the actions of the EHLO reply.
    @discardableResult
    func hello(_ h: inout ClientHarness, _ keywords: [String] = ehloFull) -> [SMTPClientAction] {
        XCTAssertEqual(h.server("220 mx.example.org ESMTP").sentText, "EHLO out.example.net\r\n")
        var lines = keywords
        lines[lines.count - 1] = lines[lines.count - 1].replacingOccurrences(of: "250-", with: "250 ")
        let joined = lines.map { $0 + "\r\n" }.joined()
        let actions = h.session.receive(Array(joined.utf8))
        h.all += actions
        return actions
    }

    func testPipelinedDeliveryToTwoRecipients() {
        var h = ClientHarness(plain, envelope(["bob@example.org", "carol@example.org"]))
        let group = hello(&h)
        XCTAssertEqual(group.sentText, "MAIL FROM:<alice@example.net> SIZE=1000\r\nRCPT TO:<bob@example.org>\r\n"
                       + "RCPT TO:<carol@example.org>\r\nDATA\r\n")
        XCTAssertEqual(group.filter { if case .send = $0 { return true } else { return false } }.count, 1, "one write: RFC 2920 group")
        let go = h.server("250 2.1.0 ok", "250 2.1.5 ok", "250 2.1.5 ok", "354 go ahead")
        XCTAssertTrue(go.contains(.sendBody))
        XCTAssertEqual(h.run { $0.bodyChunk(Array("Subject: hi\r\n\r\n.hidden\r\nlast".utf8)) }.sentText,
                       "Subject: hi\r\n\r\n..hidden\r\nlast")
        XCTAssertEqual(h.run { $0.bodyFinished() }.sentText, "\r\n.\r\n")
        let done = h.server("250 2.0.0 Ok: queued as ABC")
        let outcome = try! XCTUnwrap(done.outcome)
        XCTAssertEqual(outcome.results.map(\.status), [.accepted, .accepted])
        XCTAssertEqual(outcome.results[0].reply, SMTPReply(250, "2.0.0", "Ok: queued as ABC"))
        XCTAssertFalse(outcome.tryNextHost)
        XCTAssertEqual(done.sentText, "QUIT\r\n")
        XCTAssertTrue(h.server("221 2.0.0 Bye").closes)
        XCTAssertTrue(h.session.isClosed)
    }

    func testPipeliningWithA5xxOnOneOfThreeRecipients() {
        var h = ClientHarness(plain, envelope(["a@example.org", "b@example.org", "c@example.org"]))
        hello(&h)
        XCTAssertTrue(h.server("250 2.1.0 ok", "250 2.1.5 ok", "550 5.1.1 <b@example.org>: User unknown", "250 2.1.5 ok",
                               "354 go").contains(.sendBody))
        h.run { $0.bodyChunk(Array("x\r\n".utf8)) }
        h.run { $0.bodyFinished() }
        let outcome = try! XCTUnwrap(h.server("250 2.0.0 queued").outcome)
        XCTAssertEqual(outcome.results.map(\.status), [.accepted, .permanent, .accepted])
        XCTAssertEqual(outcome.results[1].recipient, path("b@example.org"))
        XCTAssertEqual(outcome.results[1].reply, SMTPReply(550, "5.1.1", "<b@example.org>: User unknown"))
        XCTAssertTrue(outcome.results[1].remote)
    }

    func testPipelinedAllRecipientsRefused() {
        var h = ClientHarness(plain, envelope(["a@example.org", "b@example.org"]))
        hello(&h)
        let actions = h.server("250 2.1.0 ok", "450 4.2.0 greylisted", "550 5.1.1 unknown", "554 5.5.1 No valid recipients")
        XCTAssertFalse(actions.contains(.sendBody))
        XCTAssertEqual(actions.outcome?.results.map(\.status), [.temporary, .permanent])
        XCTAssertEqual(actions.sentText, "QUIT\r\n")
    }

    func testPipelinedNoRecipientButServerSays354() {
        // RFC 2920 §3.1: the server accepted DATA anyway; end the empty message at once.
        var h = ClientHarness(plain, envelope(["a@example.org"]))
        hello(&h)
        let actions = h.server("250 ok", "550 5.1.1 unknown", "354 go")
        XCTAssertFalse(actions.contains(.sendBody))
        XCTAssertEqual(actions.sentText, ".\r\n")
        let end = h.server("250 2.0.0 queued nothing")
        XCTAssertEqual(end.outcome?.results.map(\.status), [.permanent])
        XCTAssertEqual(end.sentText, "QUIT\r\n")
    }

    func testMailRefusedFailsEveryRecipient() {
        var h = ClientHarness(plain, envelope(["a@example.org", "b@example.org"]))
        hello(&h)
        let actions = h.server("553 5.7.1 sender rejected", "503 5.5.1 need MAIL", "503 5.5.1 need MAIL", "503 5.5.1 need MAIL")
        let outcome = try! XCTUnwrap(actions.outcome)
        XCTAssertEqual(outcome.results.map(\.status), [.permanent, .permanent])
        XCTAssertEqual(outcome.results[0].reply.code, 553)
    }

    func testWithoutPipeliningOneCommandAtATime() {
        var h = ClientHarness(plain, envelope(["a@example.org", "b@example.org"]))
        let mail = hello(&h, ["250-mx", "250-SIZE", "250-8BITMIME"])
        XCTAssertEqual(mail.sentText, "MAIL FROM:<alice@example.net> SIZE=1000\r\n")
        XCTAssertEqual(mail.timers, [.mail])
        let rcpt1 = h.server("250 ok")
        XCTAssertEqual(rcpt1.sentText, "RCPT TO:<a@example.org>\r\n")
        XCTAssertEqual(rcpt1.timers, [.rcpt])
        XCTAssertEqual(h.server("550 no").sentText, "RCPT TO:<b@example.org>\r\n")
        let data = h.server("250 ok")
        XCTAssertEqual(data.sentText, "DATA\r\n")
        XCTAssertEqual(data.timers, [.dataInitiation])
        XCTAssertTrue(h.server("354 go").contains(.sendBody))
    }

    func testWithoutPipeliningNoDATAWhenEveryRecipientWasRefused() {
        var h = ClientHarness(plain, envelope(["a@example.org"]))
        hello(&h, ["250-mx", "250-SIZE 0"])
        h.server("250 ok")
        let actions = h.server("550 5.1.1 unknown")
        XCTAssertEqual(actions.sentText, "QUIT\r\n")
        XCTAssertEqual(actions.outcome?.results.map(\.status), [.permanent])
    }

    func testHELOFallbackWhenEHLOIsRefused() {
        // RFC 5321 §4.1.1.1: a 5xx to EHLO → HELO; then no extension is used.
        var h = ClientHarness(plain, envelope(["a@example.org"], bodyType: .sevenBit))
        h.server("220 old.example.org SMTP")
        XCTAssertEqual(h.server("502 5.5.1 command not implemented").sentText, "HELO out.example.net\r\n")
        XCTAssertEqual(h.server("250 old.example.org").sentText, "MAIL FROM:<alice@example.net>\r\n")
        XCTAssertEqual(h.session.capabilities, SMTPServerCapabilities())
    }

    func testEHLO4xxAndGreeting554AreHostFailures() {
        var h = ClientHarness(plain, envelope(["a@example.org"]))
        h.server("220 mx")
        let ehlo = h.server("421 4.3.2 shutting down")
        XCTAssertEqual(ehlo.outcome?.results.map(\.status), [.temporary])
        XCTAssertEqual(ehlo.outcome?.tryNextHost, true)

        var g = ClientHarness(plain, envelope(["a@example.org"]))
        let greeting = g.server("554 5.7.1 no service for you")
        XCTAssertEqual(greeting.outcome?.results.map(\.status), [.temporary])
        XCTAssertEqual(greeting.outcome?.tryNextHost, true)
        XCTAssertEqual(greeting.sentText, "QUIT\r\n")   // RFC 5321 §3.1
    }

    func testEHLOKeywords() {
        let reply = SMTPReply(code: 250, enhanced: nil, lines: [
            "mx.example.org greets you", "pipelining", "SIZE 35882577", "8BITMIME", "SMTPUTF8", "STARTTLS", "DSN", "CHUNKING",
            "ENHANCEDSTATUSCODES", "AUTH PLAIN login", "AUTH=CRAM-MD5", "X-UNKNOWN stuff", "",
        ])
        let caps = SMTPServerCapabilities(ehlo: reply)
        XCTAssertEqual(caps.size, 35_882_577)
        XCTAssertTrue(caps.pipelining && caps.eightBitMIME && caps.smtpUTF8 && caps.startTLS && caps.dsn && caps.chunking)
        XCTAssertTrue(caps.enhancedStatusCodes)
        XCTAssertEqual(caps.authMechanisms, ["PLAIN", "LOGIN", "CRAM-MD5"])
        XCTAssertEqual(SMTPServerCapabilities(ehlo: SMTPReply(code: 250, enhanced: nil, lines: ["mx", "SIZE"])).size, 0)
        // The greeting line is never a keyword.
        XCTAssertFalse(SMTPServerCapabilities(ehlo: SMTPReply(code: 250, enhanced: nil, lines: ["PIPELINING"])).pipelining)
    }

    func testOpportunisticSTARTTLSDropsInjectedBytesAndSaysEHLOAgain() {
        var h = ClientHarness(SMTPClientConfig(heloName: "out.example.net"), envelope(["a@example.org"]))
        XCTAssertEqual(hello(&h, ["250-mx", "250-STARTTLS", "250-PIPELINING"]).sentText, "STARTTLS\r\n")
        // CVE-2011-0411 style: a reply smuggled after the 220 must never count under TLS.
        let tls = h.server("220 2.0.0 Ready to start TLS", "250 injected")
        XCTAssertEqual(tls, [.startTLS])
        XCTAssertNil(h.session.timer)
        XCTAssertEqual(h.session.receive(Array("250 more plaintext\r\n".utf8)), [])
        let ehlo = h.run { $0.tlsEstablished(verified: false) }
        XCTAssertEqual(ehlo.sentText, "EHLO out.example.net\r\n")
        XCTAssertEqual(h.session.capabilities, SMTPServerCapabilities())
        XCTAssertEqual(h.server("250-mx", "250 SIZE 100000").sentText, "MAIL FROM:<alice@example.net> SIZE=1000\r\n",
                       "no second STARTTLS; unverified still encrypts")
        XCTAssertTrue(h.session.tlsActive)
        h.server("250 ok")
        h.server("250 ok")
        h.server("354 go")
        h.run { $0.bodyFinished() }
        XCTAssertEqual(h.server("250 ok").outcome?.usedTLS, true)
    }

    func testRequiredTLSNotOfferedDefers() {
        var h = ClientHarness(SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .required), envelope(["a@example.org"]))
        let actions = hello(&h, ["250-mx", "250-PIPELINING"])
        XCTAssertEqual(actions.outcome?.results.first?.reply, .tlsNotOffered)
        XCTAssertEqual(actions.outcome?.results.first?.status, .temporary)
        XCTAssertEqual(actions.outcome?.tryNextHost, true)
        XCTAssertEqual(actions.sentText, "QUIT\r\n")
    }

    func testVerifyPolicyRefusesAnUnverifiedCertificate() {
        for verified in [false, true] {
            var h = ClientHarness(SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .verify), envelope(["a@example.org"]))
            hello(&h, ["250-mx", "250-STARTTLS"])
            XCTAssertEqual(h.server("220 go"), [.startTLS])
            let after = h.run { $0.tlsEstablished(verified: verified) }
            if verified {
                XCTAssertEqual(after.sentText, "EHLO out.example.net\r\n")
                XCTAssertNil(after.outcome)
            } else {
                XCTAssertEqual(after.outcome?.results.first?.reply, .tlsNotVerified)
                XCTAssertEqual(after.outcome?.results.first?.status, .temporary)
            }
        }
    }

    func testOpportunistic454GoesOnInPlaintextButRequiredDefers() {
        var h = ClientHarness(SMTPClientConfig(heloName: "out.example.net"), envelope(["a@example.org"]))
        hello(&h, ["250-mx", "250-STARTTLS"])
        XCTAssertEqual(h.server("454 4.7.0 TLS not available").sentText, "MAIL FROM:<alice@example.net>\r\n")
        XCTAssertFalse(h.session.tlsActive)

        var r = ClientHarness(SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .required), envelope(["a@example.org"]))
        hello(&r, ["250-mx", "250-STARTTLS"])
        XCTAssertEqual(r.server("454 4.7.0 TLS not available").outcome?.results.first?.status, .temporary)
    }

    func testHandshakeFailureSuggestsAPlaintextRetry() {
        var h = ClientHarness(SMTPClientConfig(heloName: "out.example.net"), envelope(["a@example.org"]))
        hello(&h, ["250-mx", "250-STARTTLS"])
        h.server("220 go")
        let failed = h.run { $0.tlsFailed() }
        XCTAssertEqual(failed.outcome?.retryWithoutTLS, true)
        XCTAssertEqual(failed.outcome?.results.first?.reply, .tlsFailed)
        XCTAssertTrue(failed.closes)
    }

    func testImplicitTLSRelayWithAUTHPLAIN() {
        let config = SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .verify, implicitTLS: true,
                                      credentials: SMTPClientCredentials(user: "relayuser", password: "s3cret"))
        var h = ClientHarness(config, envelope(["a@example.org"]))
        XCTAssertEqual(h.all, [.startTLS])
        XCTAssertEqual(h.run { $0.tlsEstablished(verified: true) }.timers, [.greeting])
        let auth = hello(&h, ["250-relay", "250-AUTH LOGIN PLAIN", "250-PIPELINING"])
        // RFC 4616: base64("\0relayuser\0s3cret"); marked sensitive.
        XCTAssertEqual(auth.first, .send(Array("AUTH PLAIN AHJlbGF5dXNlcgBzM2NyZXQ=\r\n".utf8), sensitive: true))
        XCTAssertEqual(h.server("235 2.7.0 Authentication successful").sentText,
                       "MAIL FROM:<alice@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n")
    }

    func testAUTHLOGINAndRefusedCredentials() {
        let config = SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .disabled,
                                      credentials: SMTPClientCredentials(user: "u", password: "p"), authRequiresTLS: false)
        var h = ClientHarness(config, envelope(["a@example.org"]))
        XCTAssertEqual(hello(&h, ["250-relay", "250-AUTH LOGIN"]).sentText, "AUTH LOGIN\r\n")
        XCTAssertEqual(h.server("334 VXNlcm5hbWU6"), [.send(Array("dQ==\r\n".utf8), sensitive: true), .armTimer(.command, .seconds(300))])
        XCTAssertEqual(h.server("334 UGFzc3dvcmQ6").first, .send(Array("cA==\r\n".utf8), sensitive: true))
        let refused = h.server("535 5.7.8 Authentication credentials invalid")
        // A relay refusing our credentials is our configuration problem: defer, never bounce.
        XCTAssertEqual(refused.outcome?.results.first?.status, .temporary)
        XCTAssertEqual(refused.outcome?.results.first?.reply.code, 535)
    }

    func testCredentialsAreNeverSentInPlaintextByDefault() {
        let config = SMTPClientConfig(heloName: "out.example.net", tlsPolicy: .opportunistic,
                                      credentials: SMTPClientCredentials(user: "u", password: "p"))
        var h = ClientHarness(config, envelope(["a@example.org"]))
        let actions = hello(&h, ["250-relay", "250-AUTH PLAIN"])
        XCTAssertEqual(actions.outcome?.results.first?.reply, .authUnavailable)
        XCTAssertFalse(actions.sentText.contains("AUTH"))
        // Printing the config never shows the password.
        XCTAssertEqual("\(SMTPClientCredentials(user: "relay", password: "hunter2"))", "relay (password hidden)")
        let secretConfig = SMTPClientConfig(heloName: "h", credentials: SMTPClientCredentials(user: "u", password: "hunter2"))
        XCTAssertFalse(String(reflecting: secretConfig).contains("hunter2"))
        XCTAssertFalse(String(describing: secretConfig).contains("hunter2"))
    }

    func testSizeOverTheServerLimitFailsBeforeMAIL() {
        var h = ClientHarness(plain, envelope(["a@example.org"], size: 2_000_000))
        let actions = hello(&h, ["250-mx", "250-SIZE 1000000"])
        XCTAssertEqual(actions.outcome?.results.first?.status, .permanent)
        XCTAssertEqual(actions.outcome?.results.first?.reply, .tooBigForServer)
        XCTAssertFalse(actions.outcome!.results.first!.remote)
        XCTAssertEqual(actions.sentText, "QUIT\r\n")
    }

    func testEightBitBodyToA7BitServerAsksForADowngrade() {
        var h = ClientHarness(plain, envelope(["a@example.org"], size: 1000, bodyType: .eightBitMIME))
        let actions = hello(&h, ["250-mx", "250-SIZE 1200"])
        XCTAssertEqual(actions.sentText, "")
        XCTAssertTrue(actions.contains(.needsDowngrade))
        XCTAssertNil(h.session.timer)
        // Quoted-printable grew the body; SIZE is checked again with the new size.
        XCTAssertEqual(h.run { $0.downgraded(size: 1100) }.sentText, "MAIL FROM:<alice@example.net> SIZE=1100\r\n")

        var big = ClientHarness(plain, envelope(["a@example.org"], size: 1000, bodyType: .eightBitMIME))
        hello(&big, ["250-mx", "250-SIZE 1200"])
        XCTAssertEqual(big.run { $0.downgraded(size: 1300) }.outcome?.results.first?.reply, .tooBigForServer)
    }

    func testEightBitBodyThatCannotBeConvertedBounces() {
        var e = envelope(["a@example.org"], bodyType: .eightBitMIME)
        e.downgradable = false
        var h = ClientHarness(plain, e)
        let actions = hello(&h, ["250-mx", "250-PIPELINING"])
        XCTAssertEqual(actions.outcome?.results.first?.status, .permanent)
        XCTAssertEqual(actions.outcome?.results.first?.reply, .conversionImpossible)

        var ok = ClientHarness(plain, envelope(["a@example.org"], bodyType: .eightBitMIME))
        XCTAssertTrue(hello(&ok).sentText.hasPrefix("MAIL FROM:<alice@example.net> SIZE=1000 BODY=8BITMIME\r\n"))
    }

    func testSMTPUTF8RequiredButNotOffered() {
        var e = envelope(["jörg@example.org"])
        e.requiresSMTPUTF8 = true
        var h = ClientHarness(plain, e)
        let actions = hello(&h, ["250-mx", "250-8BITMIME"])
        XCTAssertEqual(actions.outcome?.results.first?.status, .permanent)     // RFC 6531 §3.2
        XCTAssertEqual(actions.outcome?.results.first?.reply.enhanced, "5.6.7")

        var ok = ClientHarness(plain, e)
        XCTAssertTrue(hello(&ok).sentText.hasPrefix("MAIL FROM:<alice@example.net> SIZE=1000 SMTPUTF8\r\nRCPT TO:<jörg@example.org>"))
    }

    func testDSNParametersOnlyWhenOffered() {
        var e = envelope([])
        e.recipients = [OutboundRecipient(path("a@example.org"), notify: [.failure, .delay], originalRecipient: "A+1@example.org"),
                        OutboundRecipient(path("b@example.org"), notify: .never)]
        e.ret = .headers
        e.envelopeID = "id=42 x"
        var h = ClientHarness(plain, e)
        XCTAssertEqual(hello(&h).sentText, "MAIL FROM:<alice@example.net> SIZE=1000 RET=HDRS ENVID=id+3D42+20x\r\n"
                       + "RCPT TO:<a@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;A+2B1@example.org\r\n"
                       + "RCPT TO:<b@example.org> NOTIFY=NEVER\r\nDATA\r\n")
        var n = ClientHarness(plain, e)
        XCTAssertEqual(hello(&n, ["250-mx", "250-PIPELINING"]).sentText,
                       "MAIL FROM:<alice@example.net>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    }

    func testNullSenderBounce() {
        var h = ClientHarness(plain, envelope(["a@example.org"], sender: nil))
        XCTAssertTrue(hello(&h, ["250-mx", "250-PIPELINING"]).sentText.hasPrefix("MAIL FROM:<>\r\n"))
    }

    func testTheTimerOfEachState() {
        var h = ClientHarness(plain, envelope(["a@example.org"]))
        XCTAssertEqual(h.all, [.armTimer(.greeting, .seconds(300))])
        XCTAssertEqual(h.server("220 mx").timers, [.command])
        XCTAssertEqual(h.server("250-mx", "250 PIPELINING").timers, [.mail])
        XCTAssertEqual(h.server("250 ok").timers, [.rcpt])
        XCTAssertEqual(h.server("250 ok").timers, [.dataInitiation])
        XCTAssertEqual(h.server("354 go"), [.sendBody, .armTimer(.dataBlock, .seconds(180))])
        XCTAssertEqual(h.run { $0.bodyChunk(Array("x\r\n".utf8)) }.timers, [.dataBlock])
        XCTAssertEqual(h.run { $0.bodyFinished() }, [.send(Array(".\r\n".utf8)), .armTimer(.dataTermination, .seconds(600))])
        XCTAssertEqual(h.server("250 ok").timers, [.command])
        XCTAssertEqual(SMTPClientTimeouts.rfc5321.duration(.dataInitiation), .seconds(120))
        XCTAssertEqual(SMTPClientTimeouts.rfc5321.duration(.mail), .seconds(300))
    }

    func testTimeoutsAndLostConnections() {
        // Timeout waiting for the final reply: temporary, no next host (the server may have the message).
        var h = ClientHarness(plain, envelope(["a@example.org"]))
        hello(&h, ["250-mx", "250-PIPELINING"])
        h.server("250 ok", "250 ok", "354 go")
        h.run { $0.bodyFinished() }
        let timeout = h.run { $0.timedOut() }
        XCTAssertEqual(timeout.outcome, SMTPClientOutcome(results: [
            RecipientResult(recipient: path("a@example.org"), status: .temporary, reply: .clientTimeout, remote: false)]))
        XCTAssertTrue(timeout.closes)
        XCTAssertEqual(h.run { $0.timedOut() }, [])

        // Lost before the greeting: the next MX.
        var l = ClientHarness(plain, envelope(["a@example.org"]))
        let lost = l.run { $0.connectionClosed() }
        XCTAssertEqual(lost.outcome?.tryNextHost, true)
        XCTAssertEqual(lost.outcome?.results.first?.reply, .connectionLost)
        XCTAssertFalse(lost.closes)

        // Closed after the results: nothing more to report.
        var q = ClientHarness(plain, envelope(["a@example.org"]))
        hello(&q, ["250-mx", "250-PIPELINING"])
        q.server("250 ok", "550 no", "554 no valid recipients")
        XCTAssertEqual(q.run { $0.connectionClosed() }, [])
    }

    func testConnectionReuseForSeveralMessages() {
        var config = plain
        config.reuseConnection = true
        var h = ClientHarness(config, envelope(["a@example.org"]))
        hello(&h, ["250-mx", "250-PIPELINING", "250-SIZE 5000"])
        h.server("250 ok", "250 ok", "354 go")
        h.run { $0.bodyFinished() }
        let first = h.server("250 2.0.0 queued")
        XCTAssertEqual(first.outcome?.results.map(\.status), [.accepted])
        XCTAssertEqual(first.last, .readyForNextMessage)
        XCTAssertEqual(first.sentText, "", "no QUIT")
        XCTAssertNil(h.session.timer)

        // A message this server cannot take fails alone; the connection stays.
        let tooBig = h.run { $0.nextMessage(envelope(["b@example.org"], size: 9000)) }
        XCTAssertEqual(tooBig.outcome?.results.first?.reply, .tooBigForServer)
        XCTAssertEqual(tooBig.last, .readyForNextMessage)

        // The transaction completed, so no RSET before the next MAIL.
        XCTAssertEqual(h.run { $0.nextMessage(envelope(["c@example.org"])) }.sentText,
                       "MAIL FROM:<alice@example.net> SIZE=1000\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
        h.server("250 ok", "550 5.1.1 unknown", "554 5.5.1 no valid recipients")
        // MAIL was accepted but no message ended: RSET leads the next group (RFC 5321 §4.1.1.5).
        XCTAssertEqual(h.run { $0.nextMessage(envelope(["d@example.org"])) }.sentText,
                       "RSET\r\nMAIL FROM:<alice@example.net> SIZE=1000\r\nRCPT TO:<d@example.org>\r\nDATA\r\n")
        XCTAssertEqual(h.server("250 2.0.0 reset", "250 ok", "250 ok").timers, [.mail, .rcpt, .dataInitiation])
        XCTAssertTrue(h.server("354 go").contains(.sendBody))
        h.run { $0.bodyFinished() }
        XCTAssertEqual(h.server("250 ok").outcome?.results.first?.recipient, path("d@example.org"))
        XCTAssertEqual(h.run { $0.quit() }.sentText, "QUIT\r\n")
        XCTAssertTrue(h.server("221 bye").closes)
    }

    func testConnectionReuseWithoutPipeliningResetsFirst() {
        var config = plain
        config.reuseConnection = true
        var h = ClientHarness(config, envelope(["a@example.org"]))
        hello(&h, ["250-mx"])
        h.server("250 ok")
        XCTAssertEqual(h.server("550 5.1.1 unknown").last, .readyForNextMessage)   // no DATA was sent
        XCTAssertEqual(h.run { $0.nextMessage(envelope(["b@example.org"])) }.sentText, "RSET\r\n")
        XCTAssertEqual(h.server("250 ok").sentText, "MAIL FROM:<alice@example.net>\r\n")
        XCTAssertEqual(h.run { $0.connectionClosed() }.outcome?.results.first?.reply, .connectionLost)
    }

    func testHostileServers() {
        // Junk where a reply belongs, an endless line, a reply while nothing was asked.
        var junk = ClientHarness(plain, envelope(["a@example.org"]))
        let j = junk.server("HELLO THERE")
        XCTAssertEqual(j.outcome?.results.first?.reply, .malformedReply)
        XCTAssertTrue(j.closes)

        var endless = ClientHarness(SMTPClientConfig(heloName: "o", tlsPolicy: .disabled, replyLimits: .init(maxLineLength: 100)),
                                    envelope(["a@example.org"]))
        var actions: [SMTPClientAction] = []
        for _ in 0..<10 { actions += endless.session.receive(Array(repeating: UInt8(ascii: "2"), count: 30)) }
        XCTAssertEqual(actions.outcome?.results.first?.status, .temporary)
        XCTAssertTrue(endless.session.isClosed)

        var early = ClientHarness(plain, envelope(["a@example.org"], bodyType: .eightBitMIME))
        hello(&early, ["250-mx"])   // waiting for the glue's downgrade
        XCTAssertEqual(early.server("421 4.4.2 idle too long").outcome?.results.first?.reply.code, 421)
    }

    func testServerGivesUpDuringTheBodyOrAfterTheDot() {
        var h = ClientHarness(plain, envelope(["a@example.org", "b@example.org"]))
        hello(&h, ["250-mx", "250-PIPELINING"])
        h.server("250 ok", "250 ok", "250 ok", "354 go")
        let abort = h.server("554 5.6.0 message refused")
        XCTAssertEqual(abort.outcome?.results.map(\.status), [.permanent, .permanent])
        XCTAssertTrue(abort.closes)

        var t = ClientHarness(plain, envelope(["a@example.org", "b@example.org"]))
        hello(&t, ["250-mx", "250-PIPELINING"])
        t.server("250 ok", "250 ok", "452 4.5.3 too many", "354 go")
        t.run { $0.bodyFinished() }
        let final = t.server("451 4.3.0 try later")
        XCTAssertEqual(final.outcome?.results.map(\.status), [.temporary, .temporary])
        XCTAssertEqual(final.outcome?.results.map(\.reply.code), [451, 452])
    }
}

final class SMTPDotStufferTests: XCTestCase {
    func stuffed(_ chunks: [String]) -> String {
        var s = SMTPDotStuffer()
        var out: [UInt8] = []
        for c in chunks { s.stuff(Array(c.utf8), into: &out) }
        s.finish(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testTransparencyAndLineEnds() {
        let table: [(String, String)] = [
            ("", ".\r\n"),
            ("a\r\n", "a\r\n.\r\n"),
            ("no final newline", "no final newline\r\n.\r\n"),
            (".\r\n..\r\nx.y\r\n", "..\r\n...\r\nx.y\r\n.\r\n"),          // RFC 5321 §4.5.2
            ("bare\nlf\n.\n", "bare\r\nlf\r\n..\r\n.\r\n"),               // no "\n.\n" reaches the server
            ("bare\rcr\r.\r", "bare\r\ncr\r\n..\r\n.\r\n"),               // nor "\r.\r"
        ]
        for (input, wire) in table {
            XCTAssertEqual(stuffed([input]), wire, input.debugDescription)
            // Any split gives the same wire bytes.
            XCTAssertEqual(stuffed(input.map { String($0) }), wire, "byte by byte: \(input.debugDescription)")
        }
        XCTAssertEqual(stuffed(["line\r", "\n.", "x\r\n"]), "line\r\n..x\r\n.\r\n")
    }

    /// The run-copying path against the byte-at-a-time rule it replaced, over random bodies of
    /// dots and line ends cut at random places, through contiguous and non-contiguous chunks.
    func testRunPathMatchesTheByteRuleAtAnyCut() {
        func reference(_ input: [UInt8]) -> [UInt8] {
            var out: [UInt8] = [], atLineStart = true, pendingCR = false
            for b in input {
                if pendingCR {
                    pendingCR = false
                    out += [13, 10]
                    atLineStart = true
                    if b == 10 { continue }
                }
                switch b {
                case 13: pendingCR = true
                case 10: out += [13, 10]; atLineStart = true
                default:
                    if atLineStart, b == 46 { out.append(46) }
                    out.append(b)
                    atLineStart = false
                }
            }
            if pendingCR || !atLineStart { out += [13, 10] }
            return out + [46, 13, 10]
        }
        var rng = SplitMix(seed: 5321)
        let alphabet: [UInt8] = [46, 46, 13, 10, 97, 98]
        for round in 0..<2000 {
            let input = (0..<Int(rng.next() % 64)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            var s = SMTPDotStuffer(), out: [UInt8] = [], at = 0
            while at < input.count {
                let end = min(input.count, at + 1 + Int(rng.next() % 8))
                if round % 2 == 0 { s.stuff(input[at..<end], into: &out) } else { s.stuff(input[at..<end].lazy.map { $0 }, into: &out) }
                at = end
            }
            s.finish(into: &out)
            XCTAssertEqual(out, reference(input), "\(input)")
        }
    }

    func testXText() {
        XCTAssertEqual(XText.encode("plain@example.org"), "plain@example.org")
        XCTAssertEqual(XText.encode("a+b=c d\u{1}"), "a+2Bb+3Dc+20d+01")   // RFC 3461 §4
        XCTAssertEqual(XText.encode("é"), "+C3+A9")
    }
}

/// The fuzz entry point on generated server conversations: random bytes, and random sequences of
/// plausible reply lines, under every configuration byte. A violated invariant traps.
final class SMTPClientFuzzTests: XCTestCase {
    func testRandomAndPlausibleServerBytes() {
        var rng = SplitMix(seed: 2026)
        let lines = ["220 mx", "250-mx", "250 PIPELINING", "250-STARTTLS", "250-SIZE 100", "250-8BITMIME", "250-AUTH PLAIN LOGIN",
                     "250 ok", "250 2.1.5 ok", "354 go", "550 5.1.1 no", "451 4.3.0 later", "334 VXNlcm5hbWU6", "235 ok", "221 bye",
                     "220 go", "502 no", "454 no tls", "junk", "250-", "2", ""]
        for round in 0..<3000 {
            var data: [UInt8] = [UInt8(truncatingIfNeeded: round)]
            if round % 3 == 0 {
                data += (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                for _ in 0..<Int(rng.next() % 16) {
                    data += Array(lines[Int(rng.next() % UInt64(lines.count))].utf8) + (rng.next() % 5 == 0 ? [10] : [13, 10])
                }
            }
            SMTPClientSession.fuzz(data)
        }
    }
}
