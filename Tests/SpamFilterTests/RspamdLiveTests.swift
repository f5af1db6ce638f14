// Against a real rspamd 3.4 (RspamdFixture): GTUBE rejected, clean mail to INBOX, the markers'
// add header / rewrite subject (Junk) and greylist (451), learning raising /stat's count, a wrong
// password refused once, `postern spam status`'s report; rspamd stopped or silent: on_failure.
import XCTest
import Logging
import NIOCore
import NIOPosix
import MailCore
import SMTPProtocol
@testable import SpamFilter

final class RspamdLiveTests: XCTestCase {
    static var rspamd: RspamdFixture?
    static var skip: Error?
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override class func setUp() {
        super.setUp()
        do { rspamd = try RspamdFixture() } catch { skip = error }
    }

    override class func tearDown() {
        rspamd?.stop()
        rspamd = nil
        super.tearDown()
    }

    func fixture() throws -> RspamdFixture {
        if let e = Self.skip { throw e }
        return Self.rspamd!
    }

    func scanner(_ r: RspamdFixture, onFailure: SpamFailurePolicy = .accept) -> SpamScanner {
        var c = SpamConfig()
        c.url = r.url
        c.onFailure = onFailure
        return SpamScanner(group: Self.group, config: c)!
    }

    static let envelope = SpamEnvelope(sender: "alice@example.org", recipients: ["bob@example.com"], clientIP: "192.0.2.1",
                                       helo: "mx.example.org", queueID: "1QTQVC3E85")

    func scan(_ r: RspamdFixture, _ message: [UInt8]) throws -> SpamScan {
        try scanner(r).scan(ByteBuffer(bytes: message), Self.envelope).wait()
    }

    func testGTUBEIsRejected() throws {
        let r = try fixture()
        let s = try scan(r, RspamdFixture.message(subject: "test", body: RspamdFixture.gtube))
        XCTAssertEqual(s.reply?.action, .reject)
        XCTAssertEqual(s.verdict, .reject(.spamRejected))
        XCTAssertEqual(s.verdict, .reject(SMTPReply(550, "5.7.1", "Message rejected as spam")))
    }

    func testCleanMessageGoesToInbox() throws {
        let r = try fixture()
        let s = try scan(r, RspamdFixture.message(subject: "Lunch on Thursday", body: "Shall we meet at noon by the fountain?"))
        XCTAssertNil(s.failure)
        XCTAssertEqual(s.reply?.action, .noAction)
        guard case .deliver(let d) = s.verdict else { return XCTFail("\(s.verdict)") }
        XCTAssertFalse(d.toJunk)
        XCTAssertEqual(d.headerFields.first?.name, "X-Spam-Status")
        XCTAssertTrue(d.headerFields.first?.value.hasPrefix("No, score=") ?? false, "\(d.headerFields)")
    }

    /// Scans a message whose Subject holds `marker`: rspamd's action must be `action`, the
    /// verdict a delivery to Junk. Returns the scan, the delivery and the message as delivered.
    func junk(_ marker: String, _ action: SpamAction) throws -> (SpamScan, SpamDelivery, String) {
        let msg = RspamdFixture.message(subject: "\(marker) hello", body: "Hello there")
        let s = try scan(try fixture(), msg)
        XCTAssertEqual(s.reply?.action, action)
        guard case .deliver(let d) = s.verdict, d.toJunk else { throw RspamdError.badReply("not a Junk delivery: \(s.verdict)") }
        return (s, d, String(decoding: SpamHeaders.apply(d, to: msg), as: UTF8.self))
    }

    func testAddHeaderGoesToJunkWithFields() throws {
        let (s, d, out) = try junk(RspamdFixture.addHeaderMarker, .addHeader)
        XCTAssertEqual(d.headerFields.map(\.name), ["X-Spam-Status", "X-Spam-Score", "X-Spam-Symbols"])
        XCTAssertTrue(d.headerFields[0].value.hasPrefix("Yes, score="))
        XCTAssertTrue(d.headerFields[2].value.contains("POSTERN_TEST_ADD_HEADER"))
        XCTAssertTrue(out.hasPrefix("X-Spam-Status: Yes, score="))
        XCTAssertTrue(out.hasSuffix("\r\n\r\nHello there\r\n"))
        XCTAssertNil(d.subject)
        XCTAssertTrue(s.logDescription.hasPrefix("action=add header score="), s.logDescription)
    }

    func testRewriteSubjectGoesToJunkWithTheNewSubject() throws {
        let (_, d, out) = try junk(RspamdFixture.rewriteMarker, .rewriteSubject)
        XCTAssertEqual(d.subject, "***SPAM*** \(RspamdFixture.rewriteMarker) hello")
        XCTAssertTrue(out.contains("\r\nSubject: ***SPAM*** \(RspamdFixture.rewriteMarker) hello\r\n"), out)
        XCTAssertEqual(out.components(separatedBy: "Subject:").count, 2, out)
    }

    func testGreylistScoreDefers() throws {
        let r = try fixture()
        let s = try scan(r, RspamdFixture.message(subject: "\(RspamdFixture.greylistMarker) hello", body: "Hello there"))
        XCTAssertEqual(s.verdict, .tempfail(SMTPReply(451, "4.7.1", "Try again later")), "\(String(describing: s.reply))")
    }

    func testLearnRaisesLearnedCount() throws {
        let r = try fixture()
        let before = try status(r).stat?.learned ?? -1
        let learner = SpamLearner(loop: Self.group.next(), controller: RspamdEndpoint(url: r.controllerURL)!, password: r.password,
                                  timeout: .seconds(5), capacity: 10, logger: Logger(label: "test"))
        learner.learn(.spam, message: ByteBuffer(bytes: RspamdFixture.message(subject: "Cheap pills", body: RspamdFixture.prose("pill"))),
                      origin: "test spam")
        learner.learn(.ham, message: ByteBuffer(bytes: RspamdFixture.message(subject: "Minutes", body: RspamdFixture.prose("minute"))),
                      origin: "test ham")
        try learner.drained().wait()
        let c = try learner.counters().wait()
        XCTAssertEqual(c.learned, 2, "\(c)")
        XCTAssertEqual(c.pending, 0)
        XCTAssertEqual(try status(r).stat?.learned, before + 2)
    }

    func testWrongPasswordIsRefusedNotRetried() throws {
        let r = try fixture()
        let learner = SpamLearner(loop: Self.group.next(), controller: RspamdEndpoint(url: r.controllerURL)!, password: "not-the-password",
                                  timeout: .seconds(5), capacity: 10, logger: Logger(label: "test"))
        learner.learn(.spam, message: ByteBuffer(bytes: RspamdFixture.message(subject: "x", body: RspamdFixture.prose("x"))), origin: "test")
        try learner.drained().wait()
        let c = try learner.counters().wait()
        XCTAssertEqual(c.refused, 1, "\(c)")
        XCTAssertEqual(c.retries, 0)
    }

    func testStatusReport() throws {
        let r = try fixture()
        let rep = try status(r)
        XCTAssertTrue(rep.reachable, rep.lines.joined(separator: "\n"))
        XCTAssertEqual(rep.stat?.version, "3.4")
        XCTAssertNotNil(rep.stat?.statfiles["BAYES_SPAM"])
        XCTAssertTrue(rep.lines[0].hasSuffix("reachable"))
        XCTAssertFalse(rep.lines.joined().contains(r.password))
        let wrong = try SpamStatusReport.fetch(group: Self.group, scanner: RspamdEndpoint(url: r.url)!,
                                               controller: RspamdEndpoint(url: r.controllerURL)!, password: "nope", timeout: .seconds(5)).wait()
        XCTAssertNil(wrong.scannerError)
        XCTAssertTrue([RspamdError.http(status: 401), .http(status: 403)].contains(wrong.controllerError), "\(String(describing: wrong.controllerError))")
        XCTAssertFalse(wrong.reachable)
    }

    func status(_ r: RspamdFixture) throws -> SpamStatusReport {
        try SpamStatusReport.fetch(group: Self.group, scanner: RspamdEndpoint(url: r.url)!, controller: RspamdEndpoint(url: r.controllerURL)!,
                                   password: r.password, timeout: .seconds(5)).wait()
    }
}

/// rspamd stopped (its own instance: the other class keeps running), and a peer that accepts and
/// never answers: on_failure decides, learn requests wait in the queue and are retried.
final class RspamdDownTests: XCTestCase {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let envelope = RspamdLiveTests.envelope

    func testStoppedRspamdFollowsOnFailure() throws {
        let r = try RspamdFixture()
        defer { r.stop() }
        var c = SpamConfig()
        c.url = r.url
        let msg = ByteBuffer(bytes: RspamdFixture.message(subject: "Hello", body: "Hi"))
        XCTAssertNotNil(try SpamScanner(group: Self.group, config: c)!.scan(msg, Self.envelope).wait().reply, "up first")
        try r.stopRspamd()

        let accept = try SpamScanner(group: Self.group, config: c)!.scan(msg, Self.envelope).wait()
        XCTAssertNil(accept.reply)
        XCTAssertNotNil(accept.failure)
        XCTAssertEqual(accept.verdict, .deliver(SpamDelivery(headerFields: [], subject: nil, toJunk: false)))
        XCTAssertTrue(accept.logDescription.hasPrefix("unscanned (cannot connect"), accept.logDescription)
        c.onFailure = .tempfail
        XCTAssertEqual(try SpamScanner(group: Self.group, config: c)!.scan(msg, Self.envelope).wait().verdict, .tempfail(.spamDeferred))

        // Learning while rspamd is down: queued, retried, not lost before its attempts run out.
        let learner = SpamLearner(loop: Self.group.next(), controller: RspamdEndpoint(url: r.controllerURL)!, password: r.password,
                                  timeout: .seconds(1), capacity: 10, logger: Logger(label: "test"))
        learner.learn(.spam, message: msg, origin: "test")
        var counts = try learner.counters().wait()
        let deadline = NIODeadline.now() + .seconds(10)
        while counts.retries < 2 && NIODeadline.now() < deadline {
            usleep(100_000)
            counts = try learner.counters().wait()
        }
        XCTAssertGreaterThanOrEqual(counts.retries, 2, "\(counts)")
        XCTAssertEqual(counts.pending, 1)
        XCTAssertEqual(counts.learned + counts.dropped + counts.refused, 0)
        learner.stop()
    }

    /// A peer that accepts and never answers: the scan gives up after the timeout.
    func testSilentPeerTimesOut() throws {
        let server = try ServerBootstrap(group: Self.group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let scanner = SpamScanner(group: Self.group, endpoint: RspamdEndpoint(host: "127.0.0.1", port: server.localAddress!.port!),
                                  timeout: .milliseconds(300), onFailure: .tempfail)
        let s = try scanner.scan(ByteBuffer(string: "Subject: x\r\n\r\nx\r\n"), Self.envelope).wait()
        XCTAssertEqual(s.failure, .timeout)
        XCTAssertEqual(s.verdict, .tempfail(.spamDeferred))
    }
}
