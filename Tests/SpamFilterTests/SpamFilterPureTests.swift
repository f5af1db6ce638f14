// The pure pieces without sockets: endpoint URLs, /checkv2 and /stat replies as rspamd 3.4
// sends them, the action → verdict table, X-Spam-* fields and their insertion, the learn
// queue's bounds, retry schedule and answer classification, learning addresses, envelope fields.
import XCTest
import NIOCore
import MailCore
import SMTPProtocol
@testable import SpamFilter

final class SpamFilterPureTests: XCTestCase {
    func testEndpoints() {
        let cases: [(String, RspamdEndpoint?)] = [
            ("http://127.0.0.1:11333", .init(host: "127.0.0.1", port: 11333, pathPrefix: "")),
            ("http://[::1]:11334/rspamd/", .init(host: "::1", port: 11334, pathPrefix: "/rspamd")),
            ("HTTP://rspamd.internal", .init(host: "rspamd.internal", port: 11333, pathPrefix: "")),
            ("https://127.0.0.1:11333", nil), ("http://", nil), ("http://h:0", nil), ("http://h:99999", nil),
            ("http://[::1", nil), ("http://u@h:1", nil), ("127.0.0.1:11333", nil),
        ]
        for (url, want) in cases { XCTAssertEqual(RspamdEndpoint(url: url), want, url) }
        XCTAssertEqual(RspamdEndpoint(url: "http://[::1]:11334/x")?.description, "http://[::1]:11334/x")
        XCTAssertEqual(RspamdEndpoint(url: "http://[::1]:11334/x")?.path("/stat"), "/x/stat")
    }

    /// Replies copied from rspamd 3.4 (Debian bookworm) answering spam_support.py's messages.
    static let gtubeReply = #"{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"},"message-id":"1@example.org","time_real":0.192372}"#
    static let addHeaderReply = #"{"is_skipped":false,"score":66.0,"required_score":100.0,"action":"add header","symbols":{"RDNS_NONE":{"name":"RDNS_NONE","score":1.0,"metric_score":1.0,"description":"Cannot resolve reverse DNS for sender's IP"},"POSTERN_TEST_ADD_HEADER":{"name":"POSTERN_TEST_ADD_HEADER","score":60.0,"metric_score":60.0,"options":["POSTERN-TEST-ADD-HEADER hello"]},"MIME_GOOD":{"name":"MIME_GOOD","score":-0.100000,"metric_score":-0.100000,"options":["text/plain"]}},"message-id":"2@example.org","time_real":0.036021,"milter":{"remove_headers":{"X-Spam":0}}}"#

    func testCheckReplies() throws {
        let g = try RspamdReply(json: Array(Self.gtubeReply.utf8))
        XCTAssertEqual(g, RspamdReply(action: .reject, score: 15, requiredScore: 15, symbols: [SpamSymbol(name: "GTUBE", score: 0)]))
        let a = try RspamdReply(json: Array(Self.addHeaderReply.utf8))
        XCTAssertEqual(a.action, .addHeader)
        XCTAssertEqual(a.score, 66)
        XCTAssertEqual(a.symbols.map(\.name), ["MIME_GOOD", "POSTERN_TEST_ADD_HEADER", "RDNS_NONE"])
        XCTAssertEqual(a.symbols.first?.score ?? 0, -0.1, accuracy: 1e-9)
        let r = try RspamdReply(json: Array(#"{"action":"rewrite subject","score":7.5,"required_score":15,"subject":"***SPAM*** hi"}"#.utf8))
        XCTAssertEqual(r.action, .rewriteSubject)
        XCTAssertEqual(r.subject, "***SPAM*** hi")
        for bad in ["", "{}", "[1]", #"{"action":"reject"}"#, #"{"error":"cannot parse"}"#, "\u{0}garbage"] {
            XCTAssertThrowsError(try RspamdReply(json: Array(bad.utf8)), bad)
        }
        XCTAssertThrowsError(try RspamdReply(json: Array(#"{"error":"no memory"}"#.utf8))) {
            XCTAssertEqual($0 as? RspamdError, .badReply("rspamd: no memory"))
        }
    }

    func testActionNames() {
        for (name, action) in [("reject", SpamAction.reject), ("soft reject", .softReject), ("greylist", .greylist),
                               ("add header", .addHeader), ("rewrite subject", .rewriteSubject), ("no action", .noAction),
                               ("add_header", .addHeader), ("discard", .other("discard"))] {
            XCTAssertEqual(SpamAction(rspamdName: name), action, name)
        }
        XCTAssertEqual(SpamAction.softReject.name, "soft reject")
    }

    func testVerdicts() {
        func v(_ a: SpamAction, subject: String? = nil) -> SpamVerdict {
            SpamVerdict(RspamdReply(action: a, score: 7, requiredScore: 15, symbols: [SpamSymbol(name: "B", score: 7), SpamSymbol(name: "A", score: 0)], subject: subject))
        }
        XCTAssertEqual(v(.reject), .reject(SMTPReply(550, "5.7.1", "Message rejected as spam")))
        XCTAssertEqual(v(.softReject), .tempfail(SMTPReply(451, "4.7.1", "Try again later")))
        XCTAssertEqual(v(.greylist), .tempfail(.spamDeferred))
        let spamFields = [SpamHeaderField("X-Spam-Status", "Yes, score=7.00 required=15.00"), SpamHeaderField("X-Spam-Score", "7.00"),
                          SpamHeaderField("X-Spam-Symbols", "A, B")]
        XCTAssertEqual(v(.addHeader), .deliver(SpamDelivery(headerFields: spamFields, subject: nil, toJunk: true)))
        XCTAssertEqual(v(.rewriteSubject, subject: "***SPAM*** x\r\nBcc: y"),
                       .deliver(SpamDelivery(headerFields: spamFields, subject: "***SPAM*** xBcc: y", toJunk: true)))
        XCTAssertEqual(v(.addHeader, subject: "ignored"), .deliver(SpamDelivery(headerFields: spamFields, subject: nil, toJunk: true)))
        let hamFields = [SpamHeaderField("X-Spam-Status", "No, score=7.00 required=15.00")] + spamFields.dropFirst()
        XCTAssertEqual(v(.noAction), .deliver(SpamDelivery(headerFields: hamFields, subject: nil, toJunk: false)))
        XCTAssertEqual(v(.other("discard")).name, "inbox")
        XCTAssertEqual(SpamVerdict.unscanned(.accept), .deliver(SpamDelivery(headerFields: [], subject: nil, toJunk: false)))
        XCTAssertEqual(SpamVerdict.unscanned(.tempfail), .tempfail(.spamDeferred))
    }

    func testNumbers() {
        for (d, s) in [(0.0, "0.00"), (6.5, "6.50"), (-0.1, "-0.10"), (15, "15.00"), (0.005, "0.01"), (100.456, "100.46")] {
            XCTAssertEqual(SpamHeaders.number(d), s)
        }
    }

    func testApplyPrependsAndStripsOwnFields() {
        let msg = Array("X-Spam-Status: No, score=-100\r\nFrom: a@example.org\r\nx-spam-score:\r\n -100\r\nSubject: hi\r\n\r\nX-Spam-Status: body\r\n".utf8)
        let d = SpamDelivery(headerFields: [SpamHeaderField("X-Spam-Status", "Yes, score=7.00 required=15.00"), SpamHeaderField("X-Spam-Score", "7.00")],
                             subject: nil, toJunk: true)
        XCTAssertEqual(String(decoding: SpamHeaders.apply(d, to: msg), as: UTF8.self),
                       "X-Spam-Status: Yes, score=7.00 required=15.00\r\nX-Spam-Score: 7.00\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\nX-Spam-Status: body\r\n")
    }

    func testApplyRewritesSubject() {
        let d = SpamDelivery(headerFields: [], subject: "***SPAM*** hi there", toJunk: true)
        let folded = Array("From: a@example.org\r\nSubject: hi\r\n there\r\nTo: b@example.com\r\n\r\nbody\r\n".utf8)
        XCTAssertEqual(String(decoding: SpamHeaders.apply(d, to: folded), as: UTF8.self),
                       "From: a@example.org\r\nSubject: ***SPAM*** hi there\r\nTo: b@example.com\r\n\r\nbody\r\n")
        let none = Array("From: a@example.org\n\nbody\n".utf8)
        XCTAssertEqual(String(decoding: SpamHeaders.apply(d, to: none), as: UTF8.self),
                       "Subject: ***SPAM*** hi there\r\nFrom: a@example.org\n\nbody\n")
    }

    func testApplyWithNothingToDoKeepsTheBytes() {
        let msg = Array("From: a@example.org\r\n\r\nbody\r\n".utf8)
        XCTAssertEqual(SpamHeaders.apply(SpamDelivery(headerFields: [], subject: nil, toJunk: false), to: msg), msg)
        XCTAssertEqual(SpamHeaders.apply(SpamDelivery(headerFields: [], subject: nil, toJunk: false), to: []), [])
    }

    func testLongSymbolListsFold() {
        let names = (0..<30).map { "SYMBOL_NUMBER_\($0)" }
        let reply = RspamdReply(action: .addHeader, score: 7, requiredScore: 15, symbols: names.map { SpamSymbol(name: $0, score: 1) })
        let rendered = SpamHeaders.fields(reply, isSpam: true).map(SpamHeaders.render).reduce([], +)
        let text = String(decoding: rendered, as: UTF8.self)
        XCTAssertTrue(text.hasSuffix("\r\n"))
        let lines = text.components(separatedBy: "\r\n").dropLast()
        XCTAssertGreaterThan(lines.count, 4)
        for l in lines { XCTAssertLessThanOrEqual(l.utf8.count, SpamHeaders.foldWidth, l) }
        // Unfolded, the value is the list again.
        let unfolded = text.replacingOccurrences(of: "\r\n ", with: " ")
        XCTAssertTrue(unfolded.contains("X-Spam-Symbols: " + names.sorted().joined(separator: ", ") + "\r\n"))
    }

    func testSafeValue() {
        XCTAssertEqual(SpamHeaders.safeValue("a\r\nb\tc "), "abc")
        XCTAssertEqual(SpamHeaders.safeValue("  "), nil)
        XCTAssertEqual(SpamHeaders.safeValue("Ünïcode"), "Ünïcode")
    }

    func testEnvelopeFields() {
        let e = SpamEnvelope(sender: "", recipients: ["a@example.com", "b@example.com\r\nX: y"], clientIP: "192.0.2.1",
                             helo: "mx.example.org", clientHostname: nil, user: "alice@example.com", queueID: "1QTQVC3E85")
        XCTAssertEqual(e.headerFields.map { "\($0): \($1)" },
                       ["From: <>", "Rcpt: a@example.com", "Rcpt: b@example.comX: y", "IP: 192.0.2.1", "Helo: mx.example.org",
                        "User: alice@example.com", "Queue-Id: 1QTQVC3E85"])
    }

    func testLearnQueueIsBounded() {
        func job(_ n: Int, bytes: Int = 10) -> LearnJob {
            LearnJob(kind: .spam, message: ByteBuffer(bytes: [UInt8](repeating: 0x61, count: bytes)), origin: "#\(n)")
        }
        var q = LearnQueue(capacity: 3, maxBytes: 100)
        XCTAssertTrue(q.push(job(1)).isEmpty)
        XCTAssertTrue(q.push(job(2)).isEmpty)
        XCTAssertTrue(q.push(job(3)).isEmpty)
        XCTAssertEqual(q.push(job(4)).map(\.origin), ["#1"])
        XCTAssertEqual(q.count, 3)
        XCTAssertEqual(q.bytes, 30)
        // Bytes bound too: a 90-byte message pushes out what does not fit beside it.
        XCTAssertEqual(q.push(job(5, bytes: 90)).map(\.origin), ["#2", "#3"])
        XCTAssertEqual(q.bytes, 100)
        XCTAssertEqual(q.popFirst()?.origin, "#4")
        var retry = q.popFirst()!
        XCTAssertEqual(retry.origin, "#5")
        XCTAssertTrue(q.isEmpty)
        retry.attempts = 2
        q.pushFront(retry)
        XCTAssertEqual(q.popFirst()?.attempts, 2)
        XCTAssertNil(q.popFirst())
        // Many pushes and pops keep the storage compacted and the order.
        var big = LearnQueue(capacity: 1000)
        for i in 0..<500 { _ = big.push(job(i)) }
        for i in 0..<400 { XCTAssertEqual(big.popFirst()?.origin, "#\(i)") }
        big.pushFront(job(399))
        XCTAssertEqual(big.count, 101)
        XCTAssertEqual(big.popFirst()?.origin, "#399")
        XCTAssertEqual(big.popFirst()?.origin, "#400")
    }

    func testRetrySchedule() {
        XCTAssertEqual(LearnQueue.retryDelay(afterAttempts: 1), .seconds(1))
        XCTAssertEqual(LearnQueue.retryDelay(afterAttempts: 2), .seconds(2))
        XCTAssertEqual(LearnQueue.retryDelay(afterAttempts: 4), .seconds(8))
        XCTAssertEqual(LearnQueue.retryDelay(afterAttempts: 9), .seconds(256))
        XCTAssertEqual(LearnQueue.retryDelay(afterAttempts: 10), .minutes(5))
        XCTAssertEqual(LearnQueue.retryDelay(afterAttempts: 1000), .minutes(5))
    }

    func testLearnOutcomes() {
        XCTAssertEqual(LearnOutcome.classify(status: 200, error: nil), .learned)
        XCTAssertEqual(LearnOutcome.classify(status: 208, error: nil), .alreadyLearned)
        XCTAssertEqual(LearnOutcome.classify(status: 401, error: nil), .refused("the controller refused the password (HTTP 401)"))
        XCTAssertEqual(LearnOutcome.classify(status: 400, error: nil), .refused("HTTP 400"))
        XCTAssertEqual(LearnOutcome.classify(status: 500, error: nil), .retry("HTTP 500"))
        XCTAssertEqual(LearnOutcome.classify(status: nil, error: .timeout), .retry("timed out"))
        XCTAssertEqual(LearnOutcome.classify(status: nil, error: .http(status: 403)), .refused("the controller refused the password (HTTP 403)"))
    }

    func testLearnAddresses() {
        let a = SpamLearnAddresses(spam: "spam@", ham: "Ham@Example.org")
        XCTAssertEqual(a.kind(of: "spam@example.org"), .spam)
        XCTAssertEqual(a.kind(of: "SPAM@other.example"), .spam)
        XCTAssertEqual(a.kind(of: "ham@example.org"), .ham)
        XCTAssertNil(a.kind(of: "ham@other.example"))
        XCTAssertNil(a.kind(of: "nospam@example.org"))
        XCTAssertNil(a.kind(of: "spam"))
        XCTAssertNil(SpamLearnAddresses(spam: "", ham: "").kind(of: "spam@example.org"))
        XCTAssertTrue(SpamLearnAddresses(SpamConfig()).isEmpty)
    }

    func testStatReply() throws {
        let s = try RspamdStatus(json: Array(#"{"version":"3.4","uptime":4,"scanned":3,"learned":2,"spam_count":1,"ham_count":2,"statfiles":[{"revision":5,"symbol":"BAYES_SPAM","type":"redis"},{"revision":1,"symbol":"BAYES_HAM"}]}"#.utf8))
        XCTAssertEqual(s.version, "3.4")
        XCTAssertEqual(s.scanned, 3)
        XCTAssertEqual(s.learned, 2)
        XCTAssertEqual(s.statfiles, ["BAYES_SPAM": 5, "BAYES_HAM": 1])
        XCTAssertThrowsError(try RspamdStatus(json: Array(#"{"error":"Unauthorized"}"#.utf8)))
        XCTAssertThrowsError(try RspamdStatus(json: Array("nope".utf8)))
    }
}
