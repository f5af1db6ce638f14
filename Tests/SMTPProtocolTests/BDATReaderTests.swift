// BDAT / CHUNKING (RFC 3030): binary-exact chunks, several and pipelined chunks, BDAT 0 LAST,
// the size limit across chunks, DATA after BDAT, refused BDATs that still consume their
// octets, aborts on RSET/QUIT/timeout, LMTP per-recipient replies. Every transcript is also
// fed one byte at a time and must give the same actions.
import Foundation
import SMTPProtocol
import XCTest

final class BDATReaderTests: XCTestCase {
    let alice = MailPath(localPart: "alice", domain: "example.org")
    let bob = MailPath(localPart: "bob", domain: "example.org")
    let sender = MailPath(localPart: "s", domain: "remote.example")
    let start = "EHLO c\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\n"

    func mta(limits: SMTPLimits = SMTPLimits(), extensions: [SMTPExtension] = SMTPExtension.smtpdDefaults) -> SMTPSessionConfig {
        var config = smtpdConfig(.mta, limits: limits)
        config.extensions = extensions
        return config
    }

    var envelope: SMTPEnvelope { SMTPEnvelope(helo: "c", sender: sender, recipients: [alice], chunked: true) }

    func testSingleChunk() {
        let glue = transcriptBothWays(mta(), [start + "BDAT 5 LAST\r\nhelloQUIT\r\n"])
        XCTAssertEqual(Array(glue.actions.dropFirst(4)), [
            .beginMessage(envelope), .messageChunk(Array(ascii: "hello")), .endMessage,
            .reply(.delivered(to: nil)), .reply(.closing), .close,
        ])
        XCTAssertEqual(glue.session.receivedProtocol(), "ESMTP")
    }

    func testSeveralChunksAndZeroLast() {
        let glue = transcriptBothWays(mta(), [start + "BDAT 3\r\nabcBDAT 2\r\ndeBDAT 0 LAST\r\nNOOP\r\n"])
        XCTAssertEqual(Array(glue.actions.dropFirst(4)), [
            .beginMessage(envelope), .reply(.chunkReceived(3)), .reply(.chunkReceived(2)),
            .messageChunk(Array(ascii: "abcde")), .endMessage, .reply(.delivered(to: nil)), .reply(.ok),
        ])
        XCTAssertEqual(SMTPReply.chunkReceived(3).encoded(), Array(ascii: "250 2.0.0 3 octets received\r\n"))

        let empty = transcriptBothWays(mta(), [start + "BDAT 0 LAST\r\n"])
        XCTAssertEqual(Array(empty.actions.dropFirst(4)), [.beginMessage(envelope), .endMessage, .reply(.delivered(to: nil))])
        XCTAssertEqual(empty.bodies, [[]])

        let lower = transcriptBothWays(mta(), [start + "bdat 0\r\nBdAt 2   last\r\nok"])
        XCTAssertEqual(lower.bodies, [Array(ascii: "ok")])
    }

    /// Two transactions and everything between them in one receive (RFC 2920 + RFC 3030 §4.2).
    func testPipelinedTransactions() {
        let input = start + "BDAT 4\r\nab\r\nBDAT 4 LAST\r\ncd\r\n" +
            "MAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nBDAT 3 LAST\r\nxyzQUIT\r\n"
        let glue = transcriptBothWays(mta(), [input]) { $0.verdicts["nobody@example.org"] = .unknown }
        XCTAssertEqual(glue.bodies, [Array(ascii: "ab\r\ncd\r\n"), Array(ascii: "xyz")])
        XCTAssertEqual(glue.codes, ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0",
                                    "250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.0.0", "221 2.0.0"])
        XCTAssertTrue(glue.actions.contains(.beginMessage(SMTPEnvelope(helo: "c", sender: nil, recipients: [bob], chunked: true))))
    }

    /// Octets are binary: no dot-unstuffing, no end at CRLF.CRLF, bare CR/LF and NUL kept.
    func testBinaryContentIsExact() {
        let payload: [UInt8] = [0x00, 0x0D, 0x0A, 0x2E, 0x0D, 0x0A, 0x0A, 0x2E, 0x0A, 0x0D, 0x2E, 0x0D, 0x0D, 0x0A,
                                0xFF, 0x80, 0x2E, 0x2E, 0x0D] + Array(ascii: "\r\n.\r\nMAIL FROM:<x@y.example>\r\n")
        for policy in [BareLinefeedPolicy.reject, .normalize] {
            var limits = SMTPLimits()
            limits.messageChunkSize = 7
            var config = mta(limits: limits, extensions: SMTPExtension.smtpdDefaults + [.binaryMIME])
            config.bareLinefeed = policy
            let head = Array(ascii: start.replacingOccurrences(of: "remote.example>", with: "remote.example> BODY=BINARYMIME") +
                             "BDAT 10\r\n") + payload[0..<10] + Array(ascii: "BDAT \(payload.count - 10) LAST\r\n") + payload[10...] +
                Array(ascii: "NOOP\r\n")
            var whole = ScriptedGlue(config)
            whole.feed([head])
            var bytewise = ScriptedGlue(config)
            bytewise.feed(head.map { [$0] })
            XCTAssertEqual(whole.actions, bytewise.actions)
            XCTAssertEqual(whole.bodies, [payload], "\(policy)")
            XCTAssertEqual(whole.replies.last, .ok)
            XCTAssertEqual(whole.actions.filter { if case .messageChunk = $0 { return true }; return false }.count, (payload.count + 6) / 7,
                           "fixed-size chunks across BDAT boundaries")
            guard case .beginMessage(let env)? = whole.actions.first(where: { if case .beginMessage = $0 { return true }; return false }) else {
                return XCTFail("no beginMessage")
            }
            XCTAssertEqual(env.bodyType, .binaryMIME)
            XCTAssertTrue(env.chunked)
        }
    }

    func testSizeLimitAcrossChunks() {
        var limits = SMTPLimits()
        limits.maxMessageSize = 10
        limits.messageChunkSize = 4
        // Fits exactly.
        let fits = transcriptBothWays(mta(limits: limits), [start + "BDAT 6\r\nabcdefBDAT 4 LAST\r\nghij"])
        XCTAssertEqual(fits.bodies, [Array(ascii: "abcdefghij")])
        // Over across chunks: abort at the chunk that would pass the limit, 552 after LAST, in sync.
        let over = transcriptBothWays(mta(limits: limits), [start + "BDAT 6\r\nabcdefBDAT 5\r\nghijkBDAT 1 LAST\r\nlNOOP\r\n"])
        XCTAssertEqual(Array(over.actions.dropFirst(4)), [
            .beginMessage(envelope), .messageChunk(Array(ascii: "abcd")), .reply(.chunkReceived(6)),
            .abortMessage, .reply(.chunkReceived(5)), .reply(.messageTooBig), .reply(.ok),
        ])
        XCTAssertNil(over.session.envelope, "the transaction ended")
        // The first chunk is already too big: no message is begun at all.
        let first = transcriptBothWays(mta(limits: limits), [start + "BDAT 11 LAST\r\n0123456789aRSET\r\n"])
        XCTAssertEqual(Array(first.actions.dropFirst(4)), [.reply(.messageTooBig), .reply(.ok)])
        // LMTP answers each recipient.
        var lmtp = lmtpConfig(limits: limits)
        lmtp.extensions.append(.chunking)
        let perRecipient = transcriptBothWays(lmtp, ["LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n" +
                                                     "BDAT 12 LAST\r\n0123456789ab"])
        XCTAssertEqual(Array(perRecipient.replies.suffix(2)), [.messageTooBig, .messageTooBig])
    }

    func testLMTPPerRecipientRepliesAfterLast() {
        var config = lmtpConfig()
        config.extensions.append(.chunking)
        let glue = transcriptBothWays(config, ["LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n" +
                                               "BDAT 2\r\nhiBDAT 0 LAST\r\n"]) { $0.deliveries["bob@example.org"] = .failed(.mailboxFull) }
        XCTAssertEqual(Array(glue.replies.suffix(3)), [.chunkReceived(2), .delivered(to: alice), .mailboxFull])
        XCTAssertTrue(glue.replies[0].lines.contains("CHUNKING"))
    }

    func testDATAAfterBDATIsRefused() {
        let glue = transcriptBothWays(mta(), [start + "BDAT 2\r\nabDATA\r\nBDAT 1 LAST\r\nc"])
        XCTAssertEqual(Array(glue.actions.dropFirst(4)), [
            .beginMessage(envelope), .reply(.chunkReceived(2)), .reply(.dataAfterBDAT),
            .messageChunk(Array(ascii: "abc")), .endMessage, .reply(.delivered(to: nil)),
        ])
        // BINARYMIME still cannot use DATA; BDAT is fine.
        let binary = transcriptBothWays(mta(extensions: SMTPExtension.smtpdDefaults + [.binaryMIME]),
                                        ["EHLO c\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nBDAT 1 LAST\r\nx"])
        XCTAssertEqual(Array(binary.replies.suffix(2)), [.badSequence, .delivered(to: nil)])
    }

    /// A refused BDAT still consumes its octets, so they are never taken for commands.
    func testRefusedBDATConsumesItsOctets() {
        let smuggled = "MAIL FROM:<evil@x.example>\r\n"
        let bdat = "BDAT \(smuggled.utf8.count) LAST\r\n" + smuggled
        // (input, replies)
        let table: [(String, [SMTPReply])] = [
            (bdat + "NOOP\r\n", [.needHello, .ok]),
            ("HELO c\r\n" + bdat + "NOOP\r\n", [.helo("mx.example.org"), .ehloRequired, .ok]),
            ("EHLO c\r\n" + bdat + "NOOP\r\n", [.hello("mx.example.org", keywords: SMTPSessionPolicyTests.base + ["STARTTLS"]), .needMail, .ok]),
            ("EHLO c\r\nMAIL FROM:<>\r\n" + bdat + "RCPT TO:<alice@example.org>\r\nBDAT 1 LAST\r\nx",
             [.hello("mx.example.org", keywords: SMTPSessionPolicyTests.base + ["STARTTLS"]), .okSender, .noValidRecipients,
              .okRecipient, .delivered(to: nil)]),
        ]
        for (input, expected) in table {
            let glue = transcriptBothWays(mta(), [input])
            XCTAssertEqual(glue.replies, expected, input.debugDescription)
            XCTAssertFalse(glue.replies.contains(.nestedMail))
            XCTAssertFalse(glue.actions.contains(.beginMessage(SMTPEnvelope(helo: "c", sender: MailPath(localPart: "evil", domain: "x.example")))))
        }
    }

    func testSyntaxAndNotAdvertised() {
        let table: [(String, SMTPReply)] = [
            ("BDAT\r\n", .parameterError), ("BDAT x\r\n", .parameterError), ("BDAT 5 FIRST\r\n", .parameterError),
            ("BDAT -1\r\n", .parameterError), ("BDAT 1 LAST extra\r\n", .parameterError), ("BDAT 5LAST\r\n", .parameterError),
            ("BDAT 123456789012345678901 LAST\r\n", .parameterError),
        ]
        for (input, expected) in table {
            let glue = transcriptBothWays(mta(), [start + input + "NOOP\r\n"])
            XCTAssertEqual(Array(glue.replies.suffix(2)), [expected, .ok], input.debugDescription)
        }
        // Without CHUNKING: 502 and nothing consumed (as before).
        let off = transcriptBothWays(mta(extensions: SMTPExtension.defaults), [start + "BDAT 6 LAST\r\nNOOP\r\n"])
        XCTAssertEqual(Array(off.replies.suffix(2)), [.notImplemented, .ok])
    }

    /// A message begun with BDAT is aborted when the transaction ends early.
    func testAbortBetweenAndInsideChunks() {
        let table: [(String, [SMTPAction])] = [
            ("BDAT 3\r\nabcRSET\r\n", [.reply(.chunkReceived(3)), .abortMessage, .reply(.ok)]),
            ("BDAT 3\r\nabcEHLO d\r\n", [.reply(.chunkReceived(3)), .abortMessage,
                                        .reply(.hello("mx.example.org", keywords: SMTPSessionPolicyTests.base + ["STARTTLS"]))]),
            ("BDAT 3\r\nabcQUIT\r\n", [.reply(.chunkReceived(3)), .abortMessage, .reply(.closing), .close]),
            ("BDAT 3\r\nabcMAIL FROM:<>\r\n", [.reply(.chunkReceived(3)), .reply(.nestedMail)]),
            ("BDAT 3\r\nabcRCPT TO:<bob@example.org>\r\nBDAT 0 LAST\r\n",          // RFC 3030 §3
             [.reply(.chunkReceived(3)), .reply(.badSequence), .messageChunk(Array(ascii: "abc")), .endMessage,
              .reply(.delivered(to: nil))]),
        ]
        for (input, expected) in table {
            let glue = transcriptBothWays(mta(), [start + input])
            XCTAssertEqual(Array(glue.actions.dropFirst(5)), expected, input.debugDescription)
        }
        // Timeouts inside a chunk and between chunks.
        for input in ["BDAT 10\r\nabc", "BDAT 3\r\nabc"] {
            var glue = ScriptedGlue(mta())
            glue.feed(start + input)
            XCTAssertEqual(glue.session.isReadingData, input.hasPrefix("BDAT 10"))
            var session = glue.session
            XCTAssertEqual(session.timedOut(), [.abortMessage, .reply(.timeout), .close])
        }
        // Error budget exhausted between chunks: the message is aborted before the close.
        var limits = SMTPLimits()
        limits.maxErrors = 1
        let errors = transcriptBothWays(mta(limits: limits), [start + "BDAT 3\r\nabcBOGUS\r\n"])
        XCTAssertEqual(Array(errors.actions.suffix(4)), [.reply(.syntaxError), .reply(.tooManyErrors), .abortMessage, .close])
    }

    /// A chunk size over Int.max is clamped: the session reads (and drops) until the timeout.
    func testHugeChunkSize() {
        var glue = ScriptedGlue(mta())
        glue.feed(start + "BDAT 99999999999999999999 LAST\r\nQUIT\r\n")
        XCTAssertEqual(glue.replies.count, 3, "nothing after the BDAT is a command")
        XCTAssertTrue(glue.session.isReadingData)
        var session = glue.session
        XCTAssertEqual(session.timedOut(), [.reply(.timeout), .close])
    }

    /// BDAT in an authenticated submission session: sender check, then chunks.
    func testSubmissionWithBDAT() {
        let input = "EHLO c\r\nAUTH PLAIN \(base64("\0alice\0secret"))\r\nMAIL FROM:<alice@example.org>\r\n" +
            "RCPT TO:<friend@remote.example>\r\nBDAT 8 LAST\r\nhi\nthere"
        let glue = transcriptBothWays(smtpdConfig(.smtps), [input]) { $0.verdicts["friend@remote.example"] = .acceptRemote }
        XCTAssertEqual(glue.bodies, [Array(ascii: "hi\nthere")])
        XCTAssertTrue(glue.actions.contains(.beginMessage(SMTPEnvelope(
            helo: "c", sender: alice, recipients: [MailPath(localPart: "friend", domain: "remote.example")],
            remoteIndices: [0], authenticatedUser: "alice@example.org", chunked: true))))
        XCTAssertEqual(glue.session.receivedProtocol(), "ESMTPSA")
    }
}
