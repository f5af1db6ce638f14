// smtpd session policy: STARTTLS (RFC 3207, incl. the CVE-2011-0411 injection), capability
// lists before/after TLS, AUTH PLAIN/LOGIN (RFC 4954, RFC 4616), failure counting and delays,
// submission rules (MAIL needs AUTH, sender ownership, remote recipients). Transcripts are
// also fed one byte at a time (one segment per TLS handshake) and must give the same actions.
import Foundation
import SMTPProtocol
import XCTest

final class SMTPSessionPolicyTests: XCTestCase {
    let alice = MailPath(localPart: "alice", domain: "example.org")
    let bob = MailPath(localPart: "bob", domain: "example.org")
    let remote = MailPath(localPart: "friend", domain: "remote.example")

    static let base = ["PIPELINING", "SIZE 52428800", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "CHUNKING"]
    /// The submission roles also offer DSN (RFC 3461).
    static let submissionBase = base + ["DSN"]
    let plainAlice = base64("\0alice\0secret")

    func ehlo(_ keywords: [String]) -> SMTPReply { .hello("mx.example.org", keywords: keywords) }

    // MARK: - STARTTLS

    /// RFC 3207 §4.2 / CVE-2011-0411: commands pipelined after STARTTLS in the same packet
    /// are dropped, never answered — not before the handshake and not after it.
    func testSTARTTLSDropsPipelinedInput() {
        var session = SMTPSession(config: smtpdConfig(.submission), clientAddress: "192.0.2.7")
        _ = session.receive(Array(ascii: "EHLO c\r\n"))
        let actions = session.receive(Array(ascii: "STARTTLS\r\nNOOP\r\n"))
        XCTAssertEqual(actions, [.reply(.readyToStartTLS), .startTLS])
        XCTAssertTrue(session.isAwaitingExternal)
        XCTAssertEqual(session.receive(Array(ascii: "NOOP\r\nRSET\r\n")), [], "plaintext during the handshake is dropped")
        XCTAssertEqual(session.tlsStarted(info: testTLSInfo), [])
        XCTAssertFalse(session.isAwaitingExternal)
        XCTAssertTrue(session.isTLSActive)
        XCTAssertEqual(session.tlsInfo, testTLSInfo)
        XCTAssertEqual(session.receive(Array(ascii: "EHLO c\r\n")),
                       [.reply(ehlo(Self.submissionBase + ["AUTH PLAIN LOGIN"]))], "nothing left over from before the handshake")
        XCTAssertEqual(SMTPReply.readyToStartTLS.encoded(), Array(ascii: "220 2.0.0 Ready to start TLS\r\n"))
    }

    /// The STARTTLS line itself arrives in pieces: what follows it is still dropped.
    func testSTARTTLSSplitAcrossReceives() {
        var session = SMTPSession(config: smtpdConfig(.mta), clientAddress: "192.0.2.7")
        XCTAssertEqual(session.receive(Array(ascii: "EHLO c\r\nSTART")).count, 1)
        XCTAssertEqual(session.receive(Array(ascii: "T")), [])
        XCTAssertEqual(session.receive(Array(ascii: "LS\r\nNOOP\r\nNO")), [.reply(.readyToStartTLS), .startTLS])
        XCTAssertEqual(session.tlsStarted(info: nil), [])
        XCTAssertEqual(session.receive(Array(ascii: "OP\r\nNOOP\r\n")), [.reply(.syntaxError), .reply(.ok)],
                       "the partial \"NO\" from before the handshake is gone")
    }

    func testSTARTTLSInjectionVariants() {
        // (segment sent before the handshake, actions expected from it after the EHLO)
        let table: [(String, [SMTPAction])] = [
            ("STARTTLS\r\nNOOP\r\n", [.reply(.readyToStartTLS), .startTLS]),
            ("STARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<alice@example.org>\r\n", [.reply(.readyToStartTLS), .startTLS]),
            ("STARTTLS\r\nMAIL FROM:<partial", [.reply(.readyToStartTLS), .startTLS]),
            ("NOOP\r\nSTARTTLS\r\nQUIT\r\n", [.reply(.ok), .reply(.readyToStartTLS), .startTLS]),
            ("starttls\r\n\u{16}\u{3}\u{1}garbage", [.reply(.readyToStartTLS), .startTLS]),
        ]
        for (injected, expected) in table {
            let glue = transcript(smtpdConfig(.mta), ["EHLO c\r\n" + injected, "EHLO c\r\nNOOP\r\n"])
            XCTAssertEqual(Array(glue.actions.dropFirst()), expected + [.reply(ehlo(Self.base)), .reply(.ok)],
                           injected.debugDescription)
            XCTAssertEqual(glue.handshakes.count, 1)
        }
    }

    /// STARTTLS reached while draining input buffered during a wait (here AUTH on loopback):
    /// the rest of the buffer is dropped too.
    func testSTARTTLSFromBufferedInputDropsTheRest() {
        var session = SMTPSession(config: smtpdConfig(.submission), clientAddress: "127.0.0.1")
        XCTAssertTrue(session.clientIsLoopback)
        let first = session.receive(Array(ascii: "EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nSTARTTLS\r\nNOOP\r\n"))
        XCTAssertEqual(first.last, .authenticate(user: "alice", password: "secret"))
        XCTAssertEqual(session.receive(Array(ascii: "RSET\r\n")), [])
        XCTAssertEqual(session.authenticated(.success("alice@example.org")),
                       [.reply(.authSucceeded), .reply(.readyToStartTLS), .startTLS])
        XCTAssertEqual(session.tlsStarted(info: nil), [])
        XCTAssertNil(session.authenticatedUser, "RFC 3207 §4.2: AUTH is forgotten")
        XCTAssertEqual(session.receive(Array(ascii: "NOOP\r\n")), [.reply(.ok)])
    }

    func testStateIsResetAfterSTARTTLS() {
        let glue = transcriptBothWays(smtpdConfig(.mta), [
            "EHLO c\r\nSTARTTLS\r\n",
            "MAIL FROM:<a@b.example>\r\nEHLO again\r\nMAIL FROM:<a@b.example>\r\n",
        ])
        XCTAssertEqual(glue.replies.map(\.code), [250, 220, 503, 250, 250])
        XCTAssertEqual(glue.replies[2], .needHello, "RFC 3207 §4.2: HELO/EHLO is forgotten")
        XCTAssertEqual(glue.session.receivedProtocol(), "ESMTPS")
    }

    func testSTARTTLSRefusals() {
        var offTLS = smtpdConfig(.mta)
        offTLS.tlsAvailable = false
        var temporarily = offTLS
        temporarily.tlsTemporarilyUnavailable = true
        // (config, input, replies)
        let table: [(SMTPSessionConfig, String, [SMTPReply])] = [
            (smtpdConfig(.mta), "STARTTLS now\r\n", [.parameterError]),
            (smtpdConfig(.mta), "EHLO c\r\nSTARTTLS\r\n", [ehlo(Self.base + ["STARTTLS"]), .readyToStartTLS]),
            (smtpdConfig(.smtps), "EHLO c\r\nSTARTTLS\r\n", [ehlo(Self.submissionBase + ["AUTH PLAIN LOGIN"]), .tlsAlreadyActive]),
            (offTLS, "EHLO c\r\nSTARTTLS\r\n", [ehlo(Self.base), .notImplemented]),
            (offTLS, "STARTTLS x\r\n", [.notImplemented]),
            (temporarily, "EHLO c\r\nSTARTTLS\r\n", [ehlo(Self.base), .tlsTemporarilyUnavailable]),
            (smtpdConfig(.mta), "EHLO c\r\nMAIL FROM:<>\r\nSTARTTLS\r\n", [ehlo(Self.base + ["STARTTLS"]), .okSender, .transactionInProgress]),
            (lmtpConfig(), "LHLO c\r\nSTARTTLS\r\n", [ehlo(defaultKeywords), .notImplemented]),
        ]
        for (config, input, expected) in table {
            let glue = transcriptBothWays(config, [input])
            XCTAssertEqual(glue.replies, expected, input.debugDescription)
        }
        XCTAssertEqual(SMTPReply.tlsTemporarilyUnavailable.code, 454)
        XCTAssertEqual(SMTPReply.tlsTemporarilyUnavailable.enhanced, "4.7.0")

        // A second STARTTLS after the handshake.
        let glue = transcriptBothWays(smtpdConfig(.mta), ["STARTTLS\r\n", "EHLO c\r\nSTARTTLS\r\nNOOP\r\n"])
        XCTAssertEqual(glue.replies, [.readyToStartTLS, ehlo(Self.base), .tlsAlreadyActive, .ok])
        XCTAssertEqual(SMTPReply.tlsAlreadyActive.code, 503)
        XCTAssertEqual(SMTPReply.tlsAlreadyActive.enhanced, "5.5.1")
    }

    func testTimeoutDuringHandshake() {
        var glue = ScriptedGlue(smtpdConfig(.mta))
        glue.completeTLS = false
        glue.feed("EHLO c\r\nSTARTTLS\r\n")
        XCTAssertTrue(glue.session.isAwaitingExternal)
        var session = glue.session
        XCTAssertEqual(session.timedOut(), [.reply(.timeout), .close])
        XCTAssertEqual(session.tlsStarted(info: testTLSInfo), [])
    }

    // MARK: - Capabilities

    func testCapabilitiesBeforeAndAfterTLS() {
        // (role, loopback, EHLO before TLS, EHLO after TLS or nil)
        let table: [(SMTPRole, Bool, [String], [String]?)] = [
            (.mta, false, Self.base + ["STARTTLS"], Self.base),
            (.submission, false, Self.submissionBase + ["STARTTLS"], Self.submissionBase + ["AUTH PLAIN LOGIN"]),
            (.submission, true, Self.submissionBase + ["STARTTLS", "AUTH PLAIN LOGIN"], Self.submissionBase + ["AUTH PLAIN LOGIN"]),
            (.smtps, false, Self.submissionBase + ["AUTH PLAIN LOGIN"], nil),
        ]
        for (role, loopback, before, after) in table {
            var segments = ["EHLO c\r\n"]
            if after != nil { segments[0] += "STARTTLS\r\n"; segments.append("EHLO c\r\n") }
            let glue = transcriptBothWays(smtpdConfig(role), segments, loopback: loopback)
            let hellos = glue.replies.filter { $0.code == 250 }.map { Array($0.lines.dropFirst()) }
            XCTAssertEqual(hellos, [before] + (after.map { [$0] } ?? []), "\(role) loopback=\(loopback)")
        }
        // Config: AUTH offered before TLS when not required; mechanisms in config order.
        var config = smtpdConfig(.submission)
        config.requireTLSForAuth = false
        config.authMechanisms = [.login]
        XCTAssertEqual(SMTPSession(config: config, clientAddress: "192.0.2.7").capabilities,
                       Self.submissionBase + ["STARTTLS", "AUTH LOGIN"])
        // HELO: no extensions at all.
        XCTAssertEqual(transcript(smtpdConfig(.smtps), ["HELO c\r\n"]).replies, [.helo("mx.example.org")])
    }

    func testLoopbackDetection() {
        for (address, expected) in [("127.0.0.1", true), ("127.1.2.3", true), ("::1", true), ("::ffff:127.0.0.1", true),
                                    ("[::1]", true), ("192.0.2.1", false), ("::ffff:192.0.2.1", false),
                                    ("128.0.0.1", false), ("localhost", false), ("2001:db8::1", false), ("", false)] {
            XCTAssertEqual(SMTPSession.isLoopbackAddress(address), expected, address)
        }
        XCTAssertTrue(SMTPSession(config: smtpdConfig(.submission), clientAddress: "unix", clientIsLoopback: true).isAuthAvailable)
        XCTAssertFalse(SMTPSession(config: smtpdConfig(.submission), clientAddress: "127.0.0.1", clientIsLoopback: false).isAuthAvailable)
    }

    // MARK: - AUTH

    func testAuthExchanges() {
        let p = plainAlice
        // (lines after EHLO on smtps, expected actions after the EHLO reply)
        let ok: [SMTPAction] = [.authenticate(user: "alice", password: "secret"), .reply(.authSucceeded)]
        let table: [(String, [SMTPAction])] = [
            ("AUTH PLAIN \(p)\r\n", ok),
            ("auth plain \(p)\r\n", ok),
            ("AUTH PLAIN \(p.replacingOccurrences(of: "=", with: ""))\r\n", ok),           // unpadded
            ("AUTH PLAIN\r\n\(p)\r\n", [.reply(.authChallengeEmpty)] + ok),
            ("AUTH PLAIN \(base64("alice\0alice\0secret"))\r\n", ok),                      // authzid = authcid
            ("AUTH LOGIN\r\n\(base64("alice"))\r\n\(base64("secret"))\r\n",
             [.reply(.authChallengeUsername), .reply(.authChallengePassword)] + ok),
            ("AUTH LOGIN \(base64("alice"))\r\n\(base64("secret"))\r\n", [.reply(.authChallengePassword)] + ok),
            ("AUTH PLAIN \(base64("\0alice\0wrong"))\r\n",
             [.authenticate(user: "alice", password: "wrong"), .authFailed(user: "alice", mechanism: .plain, failures: 1),
              .reply(.authCredentialsInvalid)]),
            ("AUTH PLAIN \(base64("bob\0alice\0secret"))\r\n",                              // proxy authorization
             [.authFailed(user: "alice", mechanism: .plain, failures: 1), .reply(.authCredentialsInvalid)]),
            ("AUTH PLAIN =\r\n", [.authFailed(user: "", mechanism: .plain, failures: 1), .reply(.authCredentialsInvalid)]),
            ("AUTH PLAIN \(base64("alice\0secret"))\r\n",
             [.authFailed(user: "", mechanism: .plain, failures: 1), .reply(.authCredentialsInvalid)]),   // never the password
            ("AUTH PLAIN \(base64("\0alice\0"))\r\n",
             [.authFailed(user: "alice", mechanism: .plain, failures: 1), .reply(.authCredentialsInvalid)]),
            ("AUTH LOGIN \(base64("al\nice"))\r\n\(base64("x"))\r\n",
             [.reply(.authChallengePassword), .authenticate(user: "al\nice", password: "x"),
              .authFailed(user: "al\nice", mechanism: .login, failures: 1), .reply(.authCredentialsInvalid)]),
            ("AUTH LOGIN =\r\n", [.authFailed(user: "", mechanism: .login, failures: 1), .reply(.authCredentialsInvalid)]),
            ("AUTH PLAIN\r\n*\r\nNOOP\r\n", [.reply(.authChallengeEmpty), .reply(.authCancelled), .reply(.ok)]),
            ("AUTH LOGIN\r\n*\r\n", [.reply(.authChallengeUsername), .reply(.authCancelled)]),
            ("AUTH LOGIN\r\n\(base64("alice"))\r\n*\r\n",
             [.reply(.authChallengeUsername), .reply(.authChallengePassword), .reply(.authCancelled)]),
            ("AUTH PLAIN a\r\n", [.reply(.authBadBase64)]),
            ("AUTH PLAIN AG#s\r\n", [.reply(.authBadBase64)]),
            ("AUTH PLAIN AA=A\r\n", [.reply(.authBadBase64)]),
            ("AUTH PLAIN\r\nnot base64!\r\nNOOP\r\n", [.reply(.authChallengeEmpty), .reply(.authBadBase64), .reply(.ok)]),
            ("AUTH LOGIN\r\n***\r\n", [.reply(.authChallengeUsername), .reply(.authBadBase64)]),
            ("AUTH PLAIN \(p) extra\r\n", [.reply(.parameterError)]),
            ("AUTH\r\n", [.reply(.parameterError)]),
            ("AUTH CRAM-MD5\r\n", [.reply(.authMechanismUnknown)]),
            ("AUTH XOAUTH2 abc=\r\n", [.reply(.authMechanismUnknown)]),
            ("AUTH PLAIN \(p)\r\nAUTH PLAIN \(p)\r\n", ok + [.reply(.alreadyAuthenticated)]),
        ]
        for (input, expected) in table {
            let glue = transcriptBothWays(smtpdConfig(.smtps), ["EHLO c\r\n" + input])
            XCTAssertEqual(Array(glue.actions.dropFirst()), expected, input.debugDescription)
        }
        let glue = transcript(smtpdConfig(.smtps), ["EHLO c\r\nAUTH PLAIN \(p)\r\n"])
        XCTAssertEqual(glue.session.authenticatedUser, "alice@example.org", "the glue's canonical name")
        XCTAssertEqual(glue.session.receivedProtocol(), "ESMTPSA")
        XCTAssertEqual(SMTPReply.authChallengeEmpty.encoded(), Array(ascii: "334 \r\n"), "RFC 4954 §4: \"334\" SP")
        XCTAssertEqual(SMTPReply.authChallengeUsername.encoded(), Array(ascii: "334 VXNlcm5hbWU6\r\n"))
        XCTAssertEqual(SMTPReply.authSucceeded.encoded(), Array(ascii: "235 2.7.0 Authentication successful\r\n"))
    }

    func testAuthTemporaryFailureIsNotCounted() {
        let glue = transcriptBothWays(smtpdConfig(.smtps), ["EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n"]) { $0.authTempFail = true }
        XCTAssertEqual(glue.replies.last, .authTemporaryFailure)
        XCTAssertEqual(glue.session.authFailureCount, 0)
        XCTAssertNil(glue.session.authenticatedUser)
    }

    func testAuthSequencing() {
        var mtaWithAuth = smtpdConfig(.mta)
        mtaWithAuth.authMechanisms = [.plain, .login]
        let p = plainAlice
        // (config, input, replies)
        let table: [(SMTPSessionConfig, String, [SMTPReply])] = [
            (smtpdConfig(.smtps), "AUTH PLAIN \(p)\r\n", [.needHello]),
            (smtpdConfig(.smtps), "HELO c\r\nAUTH PLAIN \(p)\r\n", [.helo("mx.example.org"), .ehloRequired]),
            (smtpdConfig(.submission), "EHLO c\r\nAUTH PLAIN \(p)\r\n", [ehlo(Self.submissionBase + ["STARTTLS"]), .tlsRequiredForAuth]),
            (mtaWithAuth, "EHLO c\r\nMAIL FROM:<>\r\nAUTH PLAIN \(p)\r\n", [ehlo(Self.base + ["STARTTLS"]), .okSender, .transactionInProgress]),
            (smtpdConfig(.mta), "EHLO c\r\nAUTH PLAIN \(p)\r\n", [ehlo(Self.base + ["STARTTLS"]), .notImplemented]),
            (lmtpConfig(), "LHLO c\r\nAUTH PLAIN \(p)\r\n", [ehlo(defaultKeywords), .notImplemented]),
        ]
        for (config, input, expected) in table {
            XCTAssertEqual(transcriptBothWays(config, [input]).replies, expected, input.debugDescription)
        }
        // AUTH during a transaction (MTA with AUTH on loopback).
        let inTransaction = transcriptBothWays(mtaWithAuth, ["EHLO c\r\nMAIL FROM:<>\r\nAUTH PLAIN \(p)\r\nRSET\r\nAUTH PLAIN \(p)\r\n"],
                                               loopback: true)
        XCTAssertEqual(Array(inTransaction.replies.dropFirst()), [.okSender, .transactionInProgress, .ok, .authSucceeded])
        XCTAssertEqual(SMTPReply.tlsRequiredForAuth.code, 530)
        XCTAssertEqual(SMTPReply.tlsRequiredForAuth.enhanced, "5.7.0")
    }

    func testAuthBeforeTLSRefusedUnlessLoopback() {
        let segments = ["EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nSTARTTLS\r\n", "EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n"]
        let remoteClient = transcriptBothWays(smtpdConfig(.submission), segments)
        XCTAssertEqual(remoteClient.codes, ["250", "530 5.7.0", "220 2.0.0", "250", "235 2.7.0"])
        let local = transcriptBothWays(smtpdConfig(.submission), [segments[0]], loopback: true)
        XCTAssertEqual(local.codes, ["250", "235 2.7.0", "220 2.0.0"])
        var plaintextAllowed = smtpdConfig(.submission)
        plaintextAllowed.requireTLSForAuth = false
        XCTAssertEqual(transcriptBothWays(plaintextAllowed, ["EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n"]).codes, ["250", "235 2.7.0"])
    }

    /// Each failure is reported (for fail2ban), delayed by the growing policy, and the last
    /// allowed one closes the session with 421 4.7.0.
    func testAuthFailuresAreDelayedCountedAndClose() {
        let delay = AuthFailureDelay(initial: .seconds(1), maximum: .seconds(3))
        let wrong = "AUTH PLAIN \(base64("\0alice\0wrong"))\r\n"
        let glue = transcriptBothWays(smtpdConfig(.smtps, delay: delay), ["EHLO c\r\n" + wrong + wrong + "AUTH LOGIN =\r\n" + "NOOP\r\n"])
        let attempt: [SMTPAction] = [.authenticate(user: "alice", password: "wrong")]
        XCTAssertEqual(Array(glue.actions.dropFirst()),
                       attempt + [.authFailed(user: "alice", mechanism: .plain, failures: 1), .delay(.seconds(1)), .reply(.authCredentialsInvalid)] +
                       attempt + [.authFailed(user: "alice", mechanism: .plain, failures: 2), .delay(.seconds(2)), .reply(.authCredentialsInvalid)] +
                       [.authFailed(user: "", mechanism: .login, failures: 3), .delay(.seconds(3)), .reply(.authCredentialsInvalid),
                        .reply(.tooManyAuthFailures), .close])
        XCTAssertTrue(glue.session.isClosed)
        XCTAssertEqual(SMTPReply.tooManyAuthFailures.code, 421)
        XCTAssertEqual(SMTPReply.tooManyAuthFailures.enhanced, "4.7.0")
        XCTAssertEqual(SMTPReply.authCredentialsInvalid.encoded(), Array(ascii: "535 5.7.8 Authentication credentials invalid\r\n"))

        // Input during the delay is only buffered; the reply comes with delayElapsed.
        var session = SMTPSession(config: smtpdConfig(.smtps, delay: .standard), clientAddress: "192.0.2.7")
        _ = session.receive(Array(ascii: "EHLO c\r\n" + wrong))
        XCTAssertEqual(session.authenticated(.failure), [.authFailed(user: "alice", mechanism: .plain, failures: 1), .delay(.seconds(1))])
        XCTAssertTrue(session.isAwaitingExternal)
        XCTAssertEqual(session.receive(Array(ascii: "NOOP\r\n")), [])
        XCTAssertEqual(session.authenticated(.success("x")), [], "nothing pending")
        XCTAssertEqual(session.delayElapsed(), [.reply(.authCredentialsInvalid), .reply(.ok)])
        XCTAssertEqual(session.delayElapsed(), [])
        XCTAssertEqual(session.authFailureCount, 1)

        XCTAssertEqual((1...6).map { AuthFailureDelay.standard.delay(afterFailure: $0) },
                       [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(15), .seconds(15)])
        XCTAssertEqual(AuthFailureDelay.none.delay(afterFailure: 3), .zero)
    }

    func testAuthSyntaxErrorsCountTowardsMaxErrors() {
        var limits = SMTPLimits()
        limits.maxErrors = 3
        let glue = transcriptBothWays(smtpdConfig(.smtps, limits: limits),
                                      ["EHLO c\r\nAUTH PLAIN #\r\nAUTH PLAIN\r\n*\r\nAUTH BOGUS\r\nNOOP\r\n"])
        XCTAssertEqual(Array(glue.replies.dropFirst()),
                       [.authBadBase64, .authChallengeEmpty, .authCancelled, .authMechanismUnknown, .tooManyErrors])
        XCTAssertEqual(glue.actions.last, .close)
    }

    /// RFC 4954 §4: AUTH lines and continuations up to 12288 octets; other commands stay at 512
    /// (plus RFC 3461's allowance for ORCPT/ENVID where DSN is offered, as on smtps: 1048).
    func testAuthLineLength() {
        let user = String(repeating: "u", count: 6000)
        let long = base64("\0\(user)\0secret")                  // 8012 base64 characters
        XCTAssertGreaterThan(long.utf8.count, 8000)
        let table: [(String, SMTPAction)] = [
            ("AUTH PLAIN \(long)\r\n", .authenticate(user: user, password: "secret")),
            ("AUTH PLAIN\r\n\(long)\r\n", .authenticate(user: user, password: "secret")),
            // The password decodes but holds NULs: a failure (AuthLog shortens the name in the log).
            ("AUTH LOGIN\r\n\(base64(user))\r\n\(long)\r\n",
             .authFailed(user: user, mechanism: .login, failures: 1)),
            ("NOOP \(String(repeating: "x", count: 1100))\r\n", .reply(.lineTooLong)),
            ("AUTH PLAIN \(String(repeating: "A", count: 12300))\r\n", .reply(.lineTooLong)),
            ("AUTH PLAIN\r\n\(String(repeating: "A", count: 12300))\r\nNOOP\r\n", .reply(.ok)),
        ]
        for (index, (input, expected)) in table.enumerated() {
            let glue = transcriptBothWays(smtpdConfig(.smtps), ["EHLO c\r\n" + input])
            XCTAssertTrue(glue.actions.contains(expected), "\(index): \(glue.actions.suffix(3))")
        }
        // The continuation that was too long ends the exchange with 500 5.5.2.
        let tooLong = transcript(smtpdConfig(.smtps), ["EHLO c\r\nAUTH PLAIN\r\n\(String(repeating: "A", count: 12300))\r\nNOOP\r\n"])
        XCTAssertEqual(Array(tooLong.replies.dropFirst()), [.authChallengeEmpty, .lineTooLong, .ok])
        // Without AUTH configured a long AUTH line is just too long.
        let mta = transcript(smtpdConfig(.mta), ["EHLO c\r\nAUTH PLAIN \(long)\r\n"])
        XCTAssertEqual(mta.replies.last, .lineTooLong)
    }

    func testBareLinefeedEndsTheExchange() {
        let glue = transcriptBothWays(smtpdConfig(.smtps), ["EHLO c\r\nAUTH PLAIN\r\n\(plainAlice)\nNOOP\r\n"])
        XCTAssertEqual(Array(glue.replies.dropFirst()), [.authChallengeEmpty, .bareLinefeedCommand, .ok])
        XCTAssertNil(glue.session.authenticatedUser)
    }

    // MARK: - Submission rules

    func testSubmissionNeedsAuthBeforeMail() {
        let glue = transcriptBothWays(smtpdConfig(.submission), [
            "EHLO c\r\nMAIL FROM:<alice@example.org>\r\nSTARTTLS\r\n",
            "EHLO c\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n" +
            "AUTH PLAIN \(plainAlice)\r\nMAIL FROM:<alice@example.org>\r\n",
        ])
        XCTAssertEqual(glue.codes, ["250", "530 5.7.0", "220 2.0.0", "250", "530 5.7.0", "503 5.5.1", "503 5.5.1", "235 2.7.0", "250 2.1.0"])
        XCTAssertEqual(glue.replies[1], .authRequired)
        XCTAssertFalse(glue.actions.contains(.checkRecipient(bob)))
        XCTAssertEqual(glue.actions.filter { if case .checkSender = $0 { return true }; return false }, [.checkSender(alice)])
    }

    func testSenderOwnership() {
        let auth = "EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n"
        var allowNull = smtpdConfig(.smtps)
        allowNull.allowNullSenderWhenAuthenticated = true
        // (config, MAIL line, expected actions after 235)
        let table: [(SMTPSessionConfig, String, [SMTPAction])] = [
            (smtpdConfig(.smtps), "MAIL FROM:<alice@example.org>\r\n", [.checkSender(alice), .reply(.okSender)]),
            (smtpdConfig(.smtps), "MAIL FROM:<alias@example.org> SIZE=10\r\n",
             [.checkSender(MailPath(localPart: "alias", domain: "example.org")), .reply(.okSender)]),
            (smtpdConfig(.smtps), "MAIL FROM:<bob@example.org>\r\n", [.checkSender(bob), .reply(.senderNotOwned)]),
            (smtpdConfig(.smtps), "MAIL FROM:<>\r\n", [.reply(.nullSenderNotAllowed)]),
            (allowNull, "MAIL FROM:<>\r\n", [.checkSender(nil), .reply(.okSender)]),
            (smtpdConfig(.smtps), "MAIL FROM:<alice@example.org> FOO=1\r\n", [.reply(.parameterNotRecognized)]),
        ]
        for (config, mail, expected) in table {
            let glue = transcriptBothWays(config, [auth + mail])
            XCTAssertEqual(Array(glue.actions.drop { $0 != .reply(.authSucceeded) }.dropFirst()), expected, mail)
        }
        XCTAssertEqual(SMTPReply.senderNotOwned.encoded(), Array(ascii: "553 5.7.1 Sender address rejected: not owned by user\r\n"))

        // Refused sender: no transaction; pipelined RCPT/DATA get 503; the session goes on.
        let refused = transcriptBothWays(smtpdConfig(.smtps), [auth + "MAIL FROM:<bob@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n" +
                                                              "MAIL FROM:<alice@example.org>\r\n"])
        XCTAssertEqual(Array(refused.codes.dropFirst(2)), ["553 5.7.1", "503 5.5.1", "503 5.5.1", "250 2.1.0"])
        XCTAssertEqual(refused.session.envelope?.authenticatedUser, "alice@example.org")

        // Unauthenticated MTA sessions are not checked.
        let mta = transcriptBothWays(smtpdConfig(.mta), ["EHLO c\r\nMAIL FROM:<bob@example.org>\r\nMAIL FROM:<>\r\n"])
        XCTAssertFalse(mta.actions.contains { if case .checkSender = $0 { return true }; return false })
        XCTAssertEqual(Array(mta.replies.dropFirst()), [.okSender, .nestedMail])
    }

    func testRemoteRecipientsInAuthenticatedSessions() {
        let input = "EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n" +
            "RCPT TO:<friend@remote.example>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\nhi\r\n.\r\n"
        let glue = transcriptBothWays(smtpdConfig(.smtps), [input]) {
            $0.verdicts["friend@remote.example"] = .acceptRemote
            $0.verdicts["nobody@example.org"] = .unknown
        }
        let envelope = SMTPEnvelope(helo: "c", sender: alice, recipients: [bob, remote], remoteIndices: [1],
                                    authenticatedUser: "alice@example.org")
        XCTAssertTrue(glue.actions.contains(.beginMessage(envelope)))
        XCTAssertEqual(envelope.localRecipients, [bob])
        XCTAssertEqual(envelope.remoteRecipients, [remote])
        XCTAssertTrue(envelope.isRemote(1))
        XCTAssertFalse(envelope.isRemote(0))
        XCTAssertEqual(glue.replies.last, .delivered(to: nil))

        // Unauthenticated: the engine never queues a remote recipient, whatever the glue says.
        let mta = transcriptBothWays(smtpdConfig(.mta), ["EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<friend@remote.example>\r\n"]) {
            $0.verdicts["friend@remote.example"] = .acceptRemote
        }
        XCTAssertEqual(mta.replies.last, .relayDenied)
        XCTAssertEqual(mta.session.envelope?.recipients, [])
    }

    func testVRFYAndHELOOnSubmission() {
        let glue = transcriptBothWays(smtpdConfig(.smtps), ["HELO c\r\nVRFY alice\r\nAUTH LOGIN\r\nMAIL FROM:<alice@example.org>\r\n"])
        XCTAssertEqual(glue.replies, [.helo("mx.example.org"), .cannotVerify, .ehloRequired, .authRequired])
    }

    func testReceivedProtocolAndTLSInfo() {
        XCTAssertEqual(testTLSInfo.receivedText, "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")
        XCTAssertEqual(TLSInfo(version: "TLSv1.2", cipher: "ECDHE-RSA-AES128-GCM-SHA256").receivedText,
                       "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256")
        var smtps = SMTPSession(config: smtpdConfig(.smtps), clientAddress: "192.0.2.7")
        XCTAssertTrue(smtps.isTLSActive)
        XCTAssertNil(smtps.tlsInfo)
        XCTAssertEqual(smtps.tlsStarted(info: testTLSInfo), [], "implicit TLS: handshake info recorded later")
        XCTAssertEqual(smtps.tlsInfo, testTLSInfo)
        _ = smtps.receive(Array(ascii: "EHLO c\r\n"))
        XCTAssertEqual(smtps.receivedProtocol(), "ESMTPS")
        XCTAssertEqual(smtps.receivedProtocol(tls: false), "ESMTP")
        var mta = SMTPSession(config: smtpdConfig(.mta), clientAddress: "192.0.2.7")
        XCTAssertEqual(mta.tlsStarted(info: testTLSInfo), [], "no STARTTLS pending: ignored")
        XCTAssertFalse(mta.isTLSActive)
        XCTAssertNil(mta.tlsInfo)
    }

    func testNewRepliesAreConsistent() {
        let named: [(SMTPReply, Int, String?)] = [
            (.readyToStartTLS, 220, "2.0.0"), (.tlsAlreadyActive, 503, "5.5.1"), (.tlsTemporarilyUnavailable, 454, "4.7.0"),
            (.authChallengeEmpty, 334, nil), (.authSucceeded, 235, "2.7.0"), (.authCredentialsInvalid, 535, "5.7.8"),
            (.authTemporaryFailure, 454, "4.7.0"), (.authCancelled, 501, "5.0.0"), (.authBadBase64, 501, "5.5.2"),
            (.authMechanismUnknown, 504, "5.5.4"), (.alreadyAuthenticated, 503, "5.5.1"), (.tlsRequiredForAuth, 530, "5.7.0"),
            (.authRequired, 530, "5.7.0"), (.tooManyAuthFailures, 421, "4.7.0"), (.senderNotOwned, 553, "5.7.1"),
            (.nullSenderNotAllowed, 553, "5.7.1"), (.chunkReceived(5), 250, "2.0.0"), (.ehloRequired, 503, "5.5.1"),
            (.transactionInProgress, 503, "5.5.1"), (.dataAfterBDAT, 503, "5.5.1"),
        ]
        for (reply, code, enhanced) in named {
            XCTAssertEqual(reply.code, code, reply.description)
            XCTAssertEqual(reply.enhanced, enhanced, reply.description)
            if let enhanced { XCTAssertEqual(enhanced.first, String(code).first, reply.description) }
        }
        XCTAssertEqual(SMTPReply.chunkReceived(5).lines, ["5 octets received"])
    }
}

// MARK: - Our domains as sender from strangers (mta, localSenderRequiresAuth)

extension SMTPSessionPolicyTests {
    var localSenderConfig: SMTPSessionConfig {
        var config = smtpdConfig(.mta)
        config.localSenderRequiresAuth = true
        return config
    }

    /// An untrusted client without AUTH: the sender's domain is asked; one of ours is 553 5.7.1.
    func testLocalSenderFromAnUntrustedClientIsRefused() {
        var session = SMTPSession(config: localSenderConfig, clientAddress: "192.0.2.7")
        _ = session.receive(Array(ascii: "EHLO c\r\n"))
        XCTAssertEqual(session.receive(Array(ascii: "MAIL FROM:<alice@Example.org>\r\n")), [.checkSenderDomain("Example.org")])
        XCTAssertTrue(session.isAwaitingExternal)
        XCTAssertEqual(session.senderDomainLookedUp(isLocal: true), [.reply(.localSenderNeedsAuth)])
        XCTAssertEqual(SMTPReply.localSenderNeedsAuth.code, 553)
        XCTAssertEqual(SMTPReply.localSenderNeedsAuth.enhanced, "5.7.1")
        XCTAssertNil(session.envelope)
        XCTAssertEqual(session.receive(Array(ascii: "MAIL FROM:<x@remote.example>\r\n")), [.checkSenderDomain("remote.example")])
        XCTAssertEqual(session.senderDomainLookedUp(isLocal: false), [.reply(.okSender)])
        XCTAssertEqual(session.envelope?.sender?.address, "x@remote.example")
        XCTAssertEqual(session.senderDomainLookedUp(isLocal: true), [], "nothing pending")
    }

    /// The store could not say: 451 4.3.0; the null sender is never asked about.
    func testLocalSenderCheckTemporaryFailureAndNullSender() {
        var session = SMTPSession(config: localSenderConfig, clientAddress: "192.0.2.7")
        _ = session.receive(Array(ascii: "EHLO c\r\n"))
        _ = session.receive(Array(ascii: "MAIL FROM:<alice@example.org>\r\n"))
        XCTAssertEqual(session.senderDomainLookedUp(isLocal: nil), [.reply(.localError)])
        XCTAssertEqual(session.receive(Array(ascii: "MAIL FROM:<>\r\n")), [.reply(.okSender)])
    }

    /// Trusted clients (loopback by default, or as the glue says) and sessions without the
    /// policy are not asked.
    func testTrustedClientsAndOtherRolesAreNotAsked() {
        for (config, address, trusted) in [(localSenderConfig, "127.0.0.1", nil), (localSenderConfig, "192.0.2.7", true),
                                           (smtpdConfig(.mta), "192.0.2.7", nil)] as [(SMTPSessionConfig, String, Bool?)] {
            var session = SMTPSession(config: config, clientAddress: address, clientIsTrusted: trusted)
            _ = session.receive(Array(ascii: "EHLO c\r\n"))
            XCTAssertEqual(session.receive(Array(ascii: "MAIL FROM:<alice@example.org>\r\n")), [.reply(.okSender)], address)
        }
        XCTAssertFalse(SMTPSession(config: localSenderConfig, clientAddress: "192.0.2.7", clientIsTrusted: false).clientIsTrusted)
        XCTAssertFalse(SMTPSession(config: localSenderConfig, clientAddress: "192.0.2.7").clientIsTrusted)
    }
}
