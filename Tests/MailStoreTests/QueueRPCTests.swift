// The queue family end to end in-process: the real store service over socketpairs, the
// outbound agent's side through RPCOutboundQueue (claim, read, report, watch events), the
// administrator's requests, and the outbound role refused outside its own (MailIPCTests checks the list).
import XCTest
import NIOCore
import MailIPC
import MailTesting
import OutboundServer
@testable import MailStore

final class QueueRPCTests: XCTestCase {
    var instance: InProcessStore!
    var store: SQLiteMailStore { instance.store }

    override func setUpWithError() throws {
        instance = try InProcessStore()
        try store.addDomain("example.org")
        try store.addUser("alice@example.org", password: "secret")
    }
    override func tearDown() { instance = nil }

    func agent() throws -> RPCOutboundQueue {
        let events = QueueEvents()
        return RPCOutboundQueue(rpc: try instance.nioClient(.outbound, onEvent: events.route), events: events)
    }

    /// alice submits over an smtpd connection, as the submission port does.
    func submit(_ body: String, to rcpts: [String]) throws {
        let smtp = try instance.connect(.smtpd)
        let sid = try smtp.call(Authenticate(user: "alice@example.org", password: "secret")).id
        let id = smtp.allocateID()
        try smtp.send(DeliverBegin(sender: "alice@example.org", recipients: rcpts, session: sid), id: id)
        try smtp.send(DeliverChunk(ByteBuffer(string: body)), id: id)
        try smtp.send(DeliverEnd(), id: id)
        XCTAssertEqual(try smtp.receive().1 as? DeliverResult, DeliverResult(Array(repeating: .ok, count: rcpts.count)))
    }

    func testOutboundIsRefusedMailboxAndAdminRequests() throws {
        let c = try instance.connect(.outbound)
        for request in [MailboxSummaries(session: 1) as any RPCMessage, Authenticate(user: "alice@example.org", password: "secret"),
                        QueueEntriesGet(), QueueAdminRequest(.delete, message: 1), DeliverBegin(sender: "", recipients: ["alice@example.org"])] {
            let id = c.allocateID()
            try c.send(request, id: id)
            let (rid, reply) = try c.receive()
            XCTAssertEqual(rid, id)
            XCTAssertEqual((reply as? ErrorReply)?.code, .denied, "\(request.type)")
        }
        XCTAssertEqual(try c.call(QueueClaimRequest(lease: 60, limit: 1)).claim.jobs, [], "the connection stays")
    }

    /// The watch fires when a submission queues a remote recipient; the agent claims, reads the
    /// body without its Return-Path, and reports a bounce that lands in alice's INBOX.
    func testWatchClaimReadReport() async throws {
        let q = try agent()
        let fired = expectation(description: "queue changed")
        fired.assertForOverFulfill = false
        try await q.watch { fired.fulfill() }
        let body = "Return-Path: <alice@example.org>\r\nFrom: alice@example.org\r\nSubject: hi\r\n\r\n" + String(repeating: "x", count: 600_000) + "\r\n"
        try submit(body, to: ["bob@remote.test"])
        await fulfillment(of: [fired], timeout: 5)

        let claim = try await q.claim(lease: 60, limit: 10)
        let job = try XCTUnwrap(claim.jobs.first)
        XCTAssertEqual(job.recipients.map(\.address), ["bob@remote.test"])
        let expected = Array(body.utf8.dropFirst("Return-Path: <alice@example.org>\r\n".utf8.count))
        XCTAssertEqual(job.size, expected.count)
        let read = try await q.read(message: job.message, offset: 0, length: job.size + 10)
        XCTAssertEqual(read, expected, "read in frames of at most \(QueueLimits.maxReadLength) bytes")
        let part = try await q.read(message: job.message, offset: 6, length: 5)
        XCTAssertEqual(part, Array("alice".utf8))
        let again = try await q.claim(lease: 60, limit: 10)
        XCTAssertEqual(again.jobs, [], "leased")

        let imap = try instance.connect(.imapd)
        let sid = try imap.call(Authenticate(user: "alice@example.org", password: "secret")).id
        let watch = try imap.call(MailboxWatch(session: sid, mailbox: "INBOX"))
        let dsn = "From: MAILER-DAEMON@example.org\r\nSubject: Undelivered\r\n\r\nbob: 550\r\n"
        try await q.report([QueueResult(recipient: job.recipients[0].id, outcome: .failed(reply: "550 5.1.1 no"))],
                           notice: QueueNotice(recipient: "alice@example.org", body: Array(dsn.utf8)))
        let (eid, event) = try imap.receive()
        XCTAssertEqual(eid, 0)
        XCTAssertEqual((event as? MailboxChanged)?.watch, watch.watch, "IMAP watchers hear of the bounce")
        XCTAssertEqual(try store.queueEntries(), [])
        do { _ = try await q.read(message: job.message, offset: 0, length: 10); XCTFail("read after the last row left") }
        catch let e as OutboundQueueError { XCTAssertEqual(e.kind, .notFound) }
    }

    /// One event until the next claim, whatever happens meanwhile; flush and release notify.
    func testQueueEventsCoalesceUntilTheNextClaim() throws {
        let c = try instance.connect(.outbound)
        XCTAssertEqual(try c.call(QueueWatch()), OK())
        try submit("Subject: 1\r\n\r\nx\r\n", to: ["a@remote.test"])
        try submit("Subject: 2\r\n\r\nx\r\n", to: ["b@remote.test"])
        let (eid, event) = try c.receive()
        XCTAssertEqual(eid, 0)
        XCTAssertTrue(event is QueueChanged)
        let claim = try c.call(QueueClaimRequest(lease: 600, limit: 10)).claim
        XCTAssertEqual(claim.jobs.count, 2, "the reply, not a second event")
        // an administrator's hold and release: due now again, the agent hears of it
        let admin = try instance.connect(.admin)
        let m = claim.jobs[0].message
        XCTAssertEqual(try admin.call(QueueAdminRequest(.hold, message: m)).rows, 1)
        XCTAssertEqual(try admin.call(QueueAdminRequest(.release, message: m)).rows, 1)
        let (eid2, event2) = try c.receive()
        XCTAssertEqual(eid2, 0)
        XCTAssertTrue(event2 is QueueChanged)
        let entries = try admin.call(QueueEntriesGet())
        XCTAssertEqual(entries.entries.map(\.recipient), ["a@remote.test", "b@remote.test"])
        XCTAssertEqual(entries.entries.map(\.sender), ["alice@example.org", "alice@example.org"])
        XCTAssertTrue(entries.complete)
        // a page at a time
        let first = try admin.call(QueueEntriesGet(after: 0, limit: 1))
        XCTAssertEqual(first.entries.map(\.recipient), ["a@remote.test"])
        XCTAssertFalse(first.complete)
        let second = try admin.call(QueueEntriesGet(after: first.entries[0].id, limit: 1))
        XCTAssertEqual(second.entries.map(\.recipient), ["b@remote.test"])
        XCTAssertTrue(second.complete)
        XCTAssertEqual(try admin.call(QueueAdminRequest(.delete, message: 424242)).rows, 0)
        // a report whose notice is queued for a remote sender: due now, the agent hears of it
        XCTAssertEqual(try c.call(QueueClaimRequest(lease: 600, limit: 10)).claim.jobs, [], "still leased; the watch is re-armed")
        let report = QueueReport(results: [QueueResult(recipient: claim.jobs[1].recipients[0].id, outcome: .failed(reply: "550 no"))],
                                 notice: QueueNotice(recipient: "someone@remote.test", body: Array("Subject: bounce\r\n\r\nno\r\n".utf8)))
        let id = c.allocateID()
        try c.send(report, id: id)
        var got: [UInt32: any RPCMessage] = [:]
        for _ in 0..<2 { let (i, m) = try c.receive(); got[i] = m }
        XCTAssertEqual(got[id] as? OK, OK())
        XCTAssertTrue(got[0] is QueueChanged)
        XCTAssertEqual(try store.queueEntries().filter { $0.origin == .bounce }.map(\.sender), [""])
    }
}
