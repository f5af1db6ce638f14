// The store's RPC service in-process over real socketpairs: handshake, role allow-lists, the
// session gate, wrong-sequence requests answered without a close, watch/notify/pull events
// with coalescing, the streamed export, and malformed input closing one connection only.
import XCTest
import NIOCore
import NIOPosix
import Logging
import MailIPC
import MailWorker
import MailTesting
@testable import MailStore
@testable import StoreServer

final class StoreServiceTests: XCTestCase {
    var instance: InProcessStore!
    var store: SQLiteMailStore { instance.store }

    override func setUpWithError() throws {
        instance = try InProcessStore()
        try store.addDomain("example.org")
        try store.addUser("alice@example.org", password: "secret")
    }
    override func tearDown() { instance = nil }

    /// A client connection to the service with `role`, as the master would make it.
    func connect(_ role: Role, hello: Bool = true) throws -> BlockingRPCConnection {
        let c = try instance.connect(role, hello: false)
        if hello { XCTAssertEqual(try c.hello(client: "test"), role.rawValue) }
        return c
    }

    /// The NIO client a worker uses, on the same kind of connection.
    func nioClient(_ role: Role, events: EventRouter? = nil) throws -> RPCClient {
        try instance.nioClient(role) { events?.route($0) }
    }

    func assertClosed(_ c: BlockingRPCConnection, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try c.receive(), file: file, line: line) { e in
            XCTAssertEqual((e as? RPCError)?.message, "connection closed by peer", file: file, line: line)
        }
    }

    func assertError(_ code: ErrorCode, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { XCTAssertEqual(($0 as? RPCError)?.code, code, "\($0)", file: file, line: line) }
    }

    func deliver(_ c: BlockingRPCConnection, _ begin: DeliverBegin, _ body: String) throws -> (UInt32, any RPCMessage) {
        let id = c.allocateID()
        try c.send(begin, id: id)
        try c.send(DeliverChunk(ByteBuffer(string: body)), id: id)
        try c.send(DeliverEnd(), id: id)
        return try c.receive()
    }

    /// RFC 5321 §4.5.1: the bare "postmaster" (the <Postmaster> fallback) answers an address
    /// that reaches every target of the postmaster alias, and delivery to it reaches them all.
    func testPostmasterCanonicalReachesEveryTarget() throws {
        try store.addUser("bob@example.org", password: "x")
        try store.addAlias("postmaster@example.org", target: "alice@example.org")
        try store.addAlias("postmaster@example.org", target: "bob@example.org")
        let smtp = try connect(.smtpd)
        let reply = try smtp.call(LookupRecipient("postmaster"))
        XCTAssertEqual(reply.status, .ok)
        let (_, answer) = try deliver(smtp, DeliverBegin(sender: "x@client.example", recipients: [reply.canonical]), "Subject: pm\r\n\r\nhi\r\n")
        XCTAssertEqual((answer as? DeliverResult)?.statuses, [.ok])
        for user in ["alice@example.org", "bob@example.org"] {
            let ref = try XCTUnwrap(try store.user(named: user))
            XCTAssertEqual(try store.messages(user: ref.id, mailbox: "INBOX").count, 1, user)
        }
        XCTAssertEqual(try smtp.call(LookupRecipient("alice+x@example.org")), RecipientReply(.ok, "alice@example.org"), "one target: the user's address")
    }

    func testRequestsOutsideTheRoleAreRefused() throws {
        let lmtp = try connect(.lmtpd)
        assertError(.denied) { _ = try lmtp.call(DomainAdd("evil.org")) }
        assertError(.denied) { _ = try lmtp.call(Export(user: "alice@example.org")) }
        assertError(.denied) { _ = try lmtp.call(Authenticate(user: "alice@example.org", password: "secret")) }
        XCTAssertEqual(try store.domains(), ["example.org"])
        // still usable for what the role may do
        XCTAssertEqual(try lmtp.call(LookupRecipient("alice@example.org")), RecipientReply(.ok, "alice@example.org"))
        XCTAssertEqual(try lmtp.call(LookupRecipient("x@example.org")), RecipientReply(.unknownUser, "x@example.org"))
        let smtp = try connect(.smtpd)
        XCTAssertEqual(try smtp.call(SenderLogins("alice+x@example.org")), Names(["alice@example.org"]))
        XCTAssertEqual(try smtp.call(SenderLogins("nobody@example.org")), Names([]))
        assertError(.denied) { _ = try smtp.call(Lookup(map: .senders, key: "alice@example.org")) }   // Postfix maps are lookupd's
        let lookup = try connect(.lookupd)
        assertError(.denied) { _ = try lookup.call(DeliverBegin(sender: "", recipients: ["alice@example.org"])) }
        XCTAssertEqual(try lookup.call(Lookup(map: .senders, key: "alice+x@example.org")), LookupResult(found: true, value: "alice@example.org"))
    }

    func testHelloMustComeFirstAndMatchTheMajorVersion() throws {
        let a = try connect(.lmtpd, hello: false)
        try a.send(LookupRecipient("alice@example.org"), id: 1)
        assertClosed(a)
        let b = try connect(.lmtpd, hello: false)
        try b.send(Hello(major: 99, minor: 0, client: "future"), id: 1)
        let (id, m) = try b.receive()
        XCTAssertEqual(id, 1)
        XCTAssertEqual((m as? ErrorReply)?.code, .invalid)
        assertClosed(b)
    }

    func testMalformedFramesCloseOnlyThatConnection() throws {
        let healthy = try connect(.lmtpd)
        let inputs: [[UInt8]] = [
            Array("EHLO garbage\r\n".utf8) + [UInt8](repeating: 0x41, count: 100),      // not a frame at all
            [0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 1],                              // oversized length
            { var b = ByteBuffer(); LookupRecipient("a@b").frame(requestID: 3).write(into: &b); var x = Array(b.readableBytesView); x[6] = 0xee; return x }(),  // reserved flag bits are ignored
            { var b = ByteBuffer(); Frame(type: MessageType.lookupRecipient.rawValue, requestID: 3, payload: ByteBuffer(bytes: [0, 0, 0, 9, 65])).write(into: &b); return Array(b.readableBytesView) }(),
            { var b = ByteBuffer(); Frame(type: 4242, requestID: 3, payload: ByteBuffer()).write(into: &b); return Array(b.readableBytesView) }(),
            { var b = ByteBuffer(); LookupRecipient("a@b").frame(requestID: 0).write(into: &b); return Array(b.readableBytesView) }(),   // id 0 is for events
        ]
        for (i, bytes) in inputs.enumerated() {
            let c = try connect(.lmtpd)
            try c.writeAll(bytes)
            if i == 2 {
                let (id, m) = try c.receive()
                XCTAssertEqual(id, 3); XCTAssertTrue(m is RecipientReply, "frame with reserved flag bits should be answered")
                continue
            }
            assertClosed(c)
        }
        // A truncated frame followed by the client closing: the store drops it quietly.
        let t = try connect(.lmtpd)
        try t.writeAll([0, 0, 0, 50, 0, 10, 0, 0, 0, 0, 0, 1, 1, 2, 3])
        _ = shutdown(t.fd, Int32(SHUT_WR))
        assertClosed(t)
        XCTAssertEqual(try healthy.call(LookupRecipient("alice@example.org")), RecipientReply(.ok, "alice@example.org"))
    }

    func testWrongSequenceIsAnsweredAndTheConnectionStays() throws {
        let lmtp = try connect(.lmtpd)
        // a chunk and an end without a begin: each answered badSequence, nothing closed
        try lmtp.send(DeliverChunk(ByteBuffer(string: "x")), id: 5)
        var (id, m) = try lmtp.receive()
        XCTAssertEqual(id, 5); XCTAssertEqual((m as? ErrorReply)?.code, .badSequence)
        try lmtp.send(DeliverEnd(), id: 6)
        (id, m) = try lmtp.receive()
        XCTAssertEqual(id, 6); XCTAssertEqual((m as? ErrorReply)?.code, .badSequence)
        // a begin without recipients: refused at its end
        (id, m) = try deliver(lmtp, DeliverBegin(sender: "", recipients: []), "x\r\n")
        XCTAssertEqual((m as? ErrorReply)?.code, .invalid)
        // credit for a stream that does not exist is ignored
        try lmtp.send(StreamCredit(frames: 3), id: 77)
        XCTAssertEqual(try lmtp.call(LookupRecipient("alice@example.org")).status, .ok)
        (_, m) = try deliver(lmtp, DeliverBegin(sender: "", recipients: ["alice@example.org"]), "Subject: ok\r\n\r\n")
        XCTAssertEqual(m as? DeliverResult, DeliverResult([.ok]))
    }

    func testTheSessionGateRefusesAnotherConnectionsSession() throws {
        let imap = try connect(.imapd)
        assertError(.denied) { _ = try imap.call(MailboxList(session: 12345)) }
        assertError(.denied) { _ = try imap.call(Authenticate(user: "alice@example.org", password: "wrong")) }
        let opened = try imap.call(Authenticate(user: "alice@example.org", password: "secret"))
        XCTAssertEqual(opened.user, "alice@example.org")
        XCTAssertEqual(try imap.call(MailboxList(session: opened.id)).list.first?.name, "INBOX")
        // Another connection cannot use this session id, for any session-scoped request.
        let other = try connect(.imapd)
        assertError(.denied) { _ = try other.call(MailboxList(session: opened.id)) }
        assertError(.denied) { _ = try other.call(MailboxWatch(session: opened.id, mailbox: "INBOX")) }
        let watch = try imap.call(MailboxWatch(session: opened.id, mailbox: "INBOX")).watch
        assertError(.notFound) { _ = try other.call(MailboxChanges(watch: watch, sinceModSeq: 0)) }
        assertError(.notFound) { _ = try other.call(MailboxUnwatch(watch: watch)) }
        // ...and the other connection is still open and served
        XCTAssertThrowsError(try other.call(Authenticate(user: "alice@example.org", password: "nope")))
        XCTAssertEqual(try imap.call(SessionEnd(opened.id)), OK())
        assertError(.denied) { _ = try imap.call(MailboxList(session: opened.id)) }
    }

    func testSubmissionNeedsASessionOfThisConnection() throws {
        let smtp = try connect(.smtpd)
        // a made-up session id: refused at the end of the delivery, the connection stays
        var (_, m) = try deliver(smtp, DeliverBegin(sender: "alice@example.org", recipients: ["x@remote.net"], session: 777), "hi\r\n")
        XCTAssertEqual((m as? ErrorReply)?.code, .denied)
        XCTAssertEqual(try store.queue().count, 0)
        let sid = try smtp.call(Authenticate(user: "alice@example.org", password: "secret")).id
        (_, m) = try deliver(smtp, DeliverBegin(sender: "alice@example.org", recipients: ["x@remote.net"], session: sid), "hi\r\n")
        XCTAssertEqual(m as? DeliverResult, DeliverResult([.ok]))
        XCTAssertEqual(try store.queue().count, 1)
        // lmtpd can never queue remote mail
        let lmtp = try connect(.lmtpd)
        (_, m) = try deliver(lmtp, DeliverBegin(sender: "alice@example.org", recipients: ["x@remote.net"]), "hi\r\n")
        XCTAssertEqual(m as? DeliverResult, DeliverResult([.notLocal]))
        XCTAssertEqual(try store.queue().count, 1)
    }

    func testWatchedMailboxNotifiesOnceUntilPulled() throws {
        let imap = try connect(.imapd)
        let sid = try imap.call(Authenticate(user: "alice@example.org", password: "secret")).id
        let w = try imap.call(MailboxWatch(session: sid, mailbox: "INBOX"))
        assertError(.notFound) { _ = try imap.call(MailboxWatch(session: sid, mailbox: "Nope")) }
        let lmtp = try connect(.lmtpd)
        for i in 0..<50 {
            let (_, m) = try deliver(lmtp, DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), "Subject: \(i)\r\n\r\nyo\r\n")
            XCTAssertEqual(m as? DeliverResult, DeliverResult([.ok]))
        }
        // Fifty changes, one notification: the next frame after it is the reply to our pull.
        let (eid, event) = try imap.receive()
        XCTAssertEqual(eid, 0)
        XCTAssertEqual((event as? MailboxChanged)?.watch, w.watch)
        let id = imap.allocateID()
        try imap.send(MailboxChanges(watch: w.watch, sinceModSeq: w.state.highestModSeq), id: id)
        let (rid, reply) = try imap.receive()
        XCTAssertEqual(rid, id, "only one notification was pending")
        let changes = try XCTUnwrap(reply as? Changes)
        XCTAssertEqual(changes.messages.map(\.uid), Array(1...50))
        XCTAssertEqual(changes.state.messages, 50)
        // after the pull the watch is armed again
        _ = try deliver(lmtp, DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), "Subject: again\r\n\r\n")
        let (eid2, event2) = try imap.receive()
        XCTAssertEqual(eid2, 0)
        XCTAssertEqual((event2 as? MailboxChanged)?.highestModSeq, changes.state.highestModSeq + 1)
        // unwatched: no more events; a SessionEnd drops the session's watches too
        XCTAssertEqual(try imap.call(MailboxUnwatch(watch: w.watch)), OK())
        _ = try deliver(lmtp, DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), "Subject: unseen\r\n\r\n")
        XCTAssertEqual(try imap.call(MailboxList(session: sid)).list[0].messages, 52, "the next frame is this reply, not an event")
    }

    /// DESIGN §5: 50 concurrent wrong logins from one address over two worker connections reach
    /// the password check at most budget (10) times; the rest are refused .throttled, and so is
    /// the right password from there, while another address logs in.
    func testConcurrentLoginsNeverExceedTheAddressBudget() throws {
        let a = try nioClient(.smtpd), b = try nioClient(.smtpd)
        let attempts = (0..<50).map { i in
            (i % 2 == 0 ? a : b).call(Authenticate(user: "alice@example.org", password: "wrong", client: "203.0.113.9", service: "smtp"))
        }
        var codes: [ErrorCode?] = []
        for f in attempts {
            XCTAssertThrowsError(try f.wait()) { codes.append(($0 as? RPCError)?.code) }
        }
        XCTAssertEqual(codes.filter { $0 == .denied }.count, 10, "password checks")
        XCTAssertEqual(codes.filter { $0 == .throttled }.count, 40, "cheap refusals")
        assertError(.throttled) { _ = try a.call(Authenticate(user: "alice@example.org", password: "secret", client: "203.0.113.9")).wait() }
        XCTAssertEqual(try b.call(Authenticate(user: "alice@example.org", password: "secret", client: "203.0.113.10")).wait().user, "alice@example.org")
    }

    func testEventsReachTheWatchingSessionThroughTheRouter() throws {
        let router = EventRouter()
        let imap = try nioClient(.imapd, events: router)
        let sid = try imap.call(Authenticate(user: "alice@example.org", password: "secret")).wait().id
        let w = try imap.call(MailboxWatch(session: sid, mailbox: "INBOX")).wait()
        let got = expectation(description: "notified")
        router.register(watch: w.watch) { m in XCTAssertEqual(m.watch, w.watch); got.fulfill() }
        let lmtp = try nioClient(.lmtpd)
        XCTAssertEqual(try lmtp.deliver(DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), body: ByteBuffer(string: "Subject: e\r\n\r\n")).wait(), [.ok])
        wait(for: [got], timeout: 5)
        XCTAssertEqual(try imap.call(MailboxChanges(watch: w.watch, sinceModSeq: w.state.highestModSeq)).wait().messages.count, 1)
    }

    func testExportStreamsWithCredit() throws {
        let lmtp = try connect(.lmtpd)
        let big = String(repeating: "0123456789abcdef\r\n", count: 40_000)   // ~700 KiB: three chunks each
        for i in 0..<20 { _ = try deliver(lmtp, DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), "Subject: \(i)\r\n\r\n" + big) }
        // The NIO client, consuming slowly: the store never runs ahead of the credit it was given.
        let admin = try nioClient(.admin)
        let loop = admin.channel.eventLoop
        nonisolated(unsafe) var messages = 0, bytes = 0
        let end = try admin.stream(Export(user: "alice@example.org"), window: 4) { item in
            switch item {
            case .message: messages += 1
            case .chunk(let b): bytes += b.readableBytes
            }
            return loop.scheduleTask(in: .milliseconds(2)) {}.futureResult
        }.wait()
        XCTAssertEqual(end.count, 20)
        XCTAssertEqual(messages, 20)
        XCTAssertEqual(bytes, try store.messages(user: 1, mailbox: nil).reduce(0) { $0 + Int($1.size) })
        // unknown user: the stream ends with the error
        XCTAssertThrowsError(try admin.stream(Export(user: "nobody@example.org")) { _ in loop.makeSucceededVoidFuture() }.wait()) {
            XCTAssertEqual(($0 as? RPCError)?.code, .notFound)
        }
    }

    /// The staged bodies in the data dir's tmp: name → size.
    func staged() -> [String: Int] {
        let tmp = instance.dir.path + "/tmp"
        var out: [String: Int] = [:]
        for n in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] {
            out[n] = (try? FileManager.default.attributesOfItem(atPath: tmp + "/" + n)[.size] as? Int) ?? -1
        }
        return out
    }

    func waitFor(_ what: String, file: StaticString = #filePath, line: UInt = #line, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(5)
        while !cond() && Date() < deadline { usleep(10_000) }
        XCTAssertTrue(cond(), "timed out waiting for \(what): staged \(staged())", file: file, line: line)
    }

    /// Issue 9: bodies go to staged files chunk by chunk as they arrive, not into memory; an
    /// abort (and a closed connection) discards them, an end delivers from them.
    func testChunksAreStagedAsTheyArriveAndAnAbortLeavesNothing() throws {
        let lmtp = try connect(.lmtpd)
        let chunk = ByteBuffer(repeating: 65, count: 100 * 1024)
        let (a, b) = (lmtp.allocateID(), lmtp.allocateID())
        for id in [a, b] { try lmtp.send(DeliverBegin(sender: "", recipients: ["alice@example.org"]), id: id) }
        for _ in 0..<3 { try lmtp.send(DeliverChunk(chunk), id: a) }
        try lmtp.send(DeliverChunk(ByteBuffer(string: "Subject: kept\r\n\r\n")), id: b)
        try lmtp.send(DeliverChunk(chunk), id: b)
        waitFor("two staged bodies") { staged().values.sorted() == [100 * 1024 + 17, 300 * 1024] }
        try lmtp.send(DeliverAbort(), id: a)
        try lmtp.send(DeliverChunk(chunk), id: a)      // a late chunk of the aborted delivery: refused, nothing staged
        XCTAssertEqual((try lmtp.receive().1 as? ErrorReply)?.code, .badSequence)
        waitFor("the aborted body to go") { staged().values.sorted() == [100 * 1024 + 17] }
        try lmtp.send(DeliverEnd(), id: b)
        let (rid, m) = try lmtp.receive()
        XCTAssertEqual(rid, b)
        XCTAssertEqual(m as? DeliverResult, DeliverResult([.ok]), "the abort answered nothing; the next reply is b's")
        XCTAssertEqual(staged(), [:])
        let listed = try store.messages(user: 1, mailbox: nil)
        XCTAssertEqual(listed.count, 1)
        XCTAssertEqual(try store.body(listed[0].body), Array("Subject: kept\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 100 * 1024))
        // A connection that closes mid-body takes its staged body with it.
        let other = try connect(.lmtpd)
        let c = other.allocateID()
        try other.send(DeliverBegin(sender: "", recipients: ["alice@example.org"]), id: c)
        try other.send(DeliverChunk(chunk), id: c)
        waitFor("the body to be staged") { staged().count == 1 }
        _ = shutdown(other.fd, Int32(SHUT_RDWR))
        waitFor("the staged body to go with the connection") { staged().isEmpty }
        XCTAssertEqual(try store.mailboxes(user: 1)[0].messages, 1)
    }

    /// Over the per-connection cap of bytes queued for writing the store stops reading (back-
    /// pressure) instead of refusing: three big bodies in transfer at once are all delivered.
    func testBodiesBeyondTheQueueCapAreDeliveredNotRefused() throws {
        let lmtp = try connect(.lmtpd)
        let chunk = ByteBuffer(repeating: 65, count: 900 * 1024)
        let ids = (0..<3).map { _ in lmtp.allocateID() }
        for id in ids {   // three big bodies in transfer at once: more than the 2 MiB cap
            try lmtp.send(DeliverBegin(sender: "", recipients: ["alice@example.org"]), id: id)
            try lmtp.send(DeliverChunk(chunk), id: id)
        }
        for id in ids { try lmtp.send(DeliverEnd(), id: id) }
        var results: [UInt32: DeliverResult] = [:]
        while results.count < 3 { let (id, m) = try lmtp.receive(); results[id] = m as? DeliverResult }
        XCTAssertEqual(Array(results.values), Array(repeating: DeliverResult([.ok]), count: 3))
        XCTAssertEqual(try store.mailboxes(user: 1)[0].messages, 3)
        XCTAssertEqual(staged(), [:])
    }

    /// The worker's streaming API: chunks sent as they come, then end; or abort.
    func testStreamedDeliveryThroughTheNIOClient() throws {
        let lmtp = try nioClient(.lmtpd)
        let d = lmtp.beginDelivery(DeliverBegin(sender: "", recipients: ["alice@example.org"]))
        try d.send(ByteBuffer(string: "Subject: streamed\r\n\r\n")).wait()
        try d.send(ByteBuffer(repeating: 66, count: 600 * 1024)).wait()
        XCTAssertEqual(try d.end().wait(), [.ok])
        let gone = lmtp.beginDelivery(DeliverBegin(sender: "", recipients: ["alice@example.org"]))
        try gone.send(ByteBuffer(repeating: 67, count: 300 * 1024)).wait()
        waitFor("the body to be staged") { staged().values.first == 300 * 1024 }
        gone.abort()
        XCTAssertThrowsError(try gone.end().wait())
        XCTAssertThrowsError(try gone.send(ByteBuffer(string: "late")).wait())
        waitFor("the aborted body to go") { staged().isEmpty }
        XCTAssertEqual(try store.mailboxes(user: 1)[0].messages, 1)
        XCTAssertEqual(try store.body(try store.messages(user: 1, mailbox: nil)[0].body).count, 21 + 600 * 1024)
    }

    func testOversizedDeliveryIsRefusedAndNothingStored() throws {
        let lmtp = try connect(.lmtpd)
        let id = lmtp.allocateID()
        try lmtp.send(DeliverBegin(sender: "", recipients: ["alice@example.org"]), id: id)
        for _ in 0..<5 { try lmtp.send(DeliverChunk(ByteBuffer(repeating: 65, count: 256 * 1024)), id: id) }
        try lmtp.send(DeliverEnd(), id: id)
        let (rid, m) = try lmtp.receive()
        XCTAssertEqual(rid, id)
        XCTAssertEqual((m as? ErrorReply)?.code, .invalid)
        XCTAssertEqual(try store.mailboxes(user: 1)[0].messages, 0)
    }
}

final class WatchTableTests: XCTestCase {
    func testTenThousandChangesLeaveOnePendingNotification() {
        var t = WatchTable()
        let conn = ObjectIdentifier(WatchTableTests.self)
        let w = t.add(connection: conn, session: 1, mailboxID: 7)
        let other = t.add(connection: conn, session: 2, mailboxID: 8)
        var sent = 0
        for m in 1...10_000 { sent += t.changed(mailboxID: 7, modSeq: UInt64(m)).count }
        XCTAssertEqual(sent, 1)
        XCTAssertEqual(t.watches[w]?.latest, 10_000)
        XCTAssertEqual(t.watches[other]?.notified, false, "another mailbox's watch is untouched")
        t.pulled(w)
        XCTAssertEqual(t.changed(mailboxID: 7, modSeq: 10_001).map(\.watch), [w])
        t.remove(w)
        XCTAssertTrue(t.changed(mailboxID: 7, modSeq: 10_002).isEmpty)
        t.remove { $0.session == 2 }
        XCTAssertTrue(t.watches.isEmpty)
    }
}
