// The mailbox RPC family end to end over the real store service (InProcessStore, socketpairs,
// SQLite in a temp dir), with the imapd role: every operation, the role allow-list, the session
// gate, other users' mailbox ids, APPEND's streamed body and its refusals, and watchers told of a
// change before the worker hears its reply.
import XCTest
import NIOCore
import MailIPC
import MailWorker
import MailTesting
@testable import MailStore
@testable import StoreServer

final class MailboxRPCTests: XCTestCase {
    var instance: InProcessStore!
    var store: SQLiteMailStore { instance.store }

    override func setUpWithError() throws {
        instance = try InProcessStore(maxDelivery: 1 << 20)
        try store.addDomain("example.org")
        try store.addUser("alice@example.org", password: "secret")
        try store.addUser("bob@example.org", password: "hunter2")
    }
    override func tearDown() { instance = nil }

    /// An imapd connection with alice logged in: the connection and her session id.
    func login(_ user: String = "alice@example.org", _ password: String = "secret", role: Role = .imapd) throws -> (BlockingRPCConnection, UInt64) {
        let c = try instance.connect(role)
        return (c, try c.call(Authenticate(user: user, password: password, client: "192.0.2.7", service: "imap")).id)
    }

    func assertError(_ code: ErrorCode, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { XCTAssertEqual(($0 as? RPCError)?.code, code, "\($0)", file: file, line: line) }
    }

    func inbox(_ c: BlockingRPCConnection, _ sid: UInt64) throws -> MailboxSummary {
        try XCTUnwrap(try c.call(MailboxSummaries(session: sid)).summaries.first { $0.name == "INBOX" })
    }

    /// APPEND: begin, the body in chunks of `chunk` bytes, end; the reply frame's message.
    func append(_ c: BlockingRPCConnection, _ begin: AppendBegin, _ body: [UInt8], chunk: Int = 1000) throws -> any RPCMessage {
        let id = c.allocateID()
        try c.send(begin, id: id)
        var off = 0
        while off < body.count {
            try c.send(DeliverChunk(ByteBuffer(bytes: body[off..<min(off + chunk, body.count)])), id: id)
            off += chunk
        }
        try c.send(DeliverEnd(), id: id)
        while true {
            let (rid, m) = try c.receive()
            if rid == id { return m }
        }
    }

    func message(_ subject: String, _ text: String = "hello") -> [UInt8] {
        Array("From: a@example.net\r\nTo: alice@example.org\r\nSubject: \(subject)\r\n\r\n\(text)\r\n".utf8)
    }

    func appended(_ c: BlockingRPCConnection, _ sid: UInt64, to mailbox: String = "INBOX", _ subject: String, flags: SystemFlags = [],
                  keywords: [String] = []) throws -> AppendResult {
        let body = message(subject)
        let r = try append(c, AppendBegin(session: sid, mailbox: mailbox, flags: flags, keywords: keywords, internalDate: 1_700_000_000,
                                          size: UInt64(body.count)), body)
        return try XCTUnwrap(r as? AppendReply, "\(r)").result
    }

    func select(_ c: BlockingRPCConnection, _ sid: UInt64, _ name: String) throws -> (ViewHeader?, [ViewEntry], ViewEnd) {
        var header: ViewHeader?, entries: [ViewEntry] = []
        let end = try c.stream(MailboxSelect(session: sid, name: name)) { item in
            switch item {
            case .header(let h): XCTAssertNil(header, "one header"); XCTAssertTrue(entries.isEmpty, "first"); header = h
            case .chunk(let e): XCTAssertLessThanOrEqual(e.count, MailboxLimits.entriesPerChunk); entries += e
            }
        }
        return (header, entries, end)
    }

    // MARK: the gates

    func testOnlyMailboxRolesMayAsk() throws {
        for role in [Role.smtpd, .lmtpd, .lookupd] {
            let c = try instance.connect(role)
            assertError(.denied) { _ = try c.call(MailboxCreate(session: 1, name: "x")) }
            assertError(.denied) { _ = try c.call(MailboxSummaries(session: 1)) }
            assertError(.denied) { _ = try c.call(SearchRun(session: 1, mailbox: 1, query: .all)) }
            assertError(.denied) { _ = try c.call(MailboxWatchByID(session: 1, mailbox: 1)) }
            assertError(.denied) { _ = try c.stream(MailboxSelect(session: 1, name: "INBOX")) { _ in } }
        }
        // pop3d: the view, reads and expunges, nothing that changes mailboxes
        let before = try store.mailboxes(user: 1).map(\.name)
        let (pop, sid) = try login(role: .pop3d)
        assertError(.denied) { _ = try pop.call(MailboxCreate(session: sid, name: "x")) }
        assertError(.denied) { _ = try pop.call(FlagsStore(session: sid, mailbox: 1, uids: [1], operation: .add, flags: .seen, keywords: [], unchangedSince: nil)) }
        XCTAssertEqual(try pop.call(MailboxSummaries(session: sid)).summaries.map(\.name), before)
        XCTAssertEqual(try store.mailboxes(user: 1).map(\.name), before)
        XCTAssertFalse(before.contains("x"))
    }

    func testAnotherConnectionsSessionIsRefused() throws {
        let (alice, sid) = try login()
        let mailbox = try inbox(alice, sid).id
        let before = try store.mailboxes(user: 1).map(\.name)
        let other = try instance.connect(.imapd)
        assertError(.denied) { _ = try other.call(MailboxSummaries(session: sid)) }
        assertError(.denied) { _ = try other.call(MailboxCreate(session: sid, name: "Stolen")) }
        assertError(.denied) { _ = try other.call(MailboxDeltaGet(session: sid, mailbox: mailbox, since: 0)) }
        assertError(.denied) { _ = try other.call(MessageRead(session: sid, mailbox: mailbox, uid: 1, offset: 0, length: 10)) }
        assertError(.denied) { _ = try other.call(MessagesExpunge(session: sid, mailbox: mailbox, uids: nil)) }
        assertError(.denied) { _ = try other.call(MailboxWatchByID(session: sid, mailbox: mailbox)) }
        assertError(.denied) { _ = try other.stream(MailboxSelect(session: sid, name: "INBOX")) { _ in } }
        let r = try append(other, AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: 5), Array("hello".utf8))
        XCTAssertEqual((r as? ErrorReply)?.code, .denied)
        // the refused connection is still served, and nothing was changed
        XCTAssertThrowsError(try other.call(Authenticate(user: "alice@example.org", password: "wrong")))
        XCTAssertEqual(try store.mailboxes(user: 1).map(\.name), before)
        XCTAssertEqual(try store.mailboxes(user: 1).first { $0.name == "INBOX" }?.messages, 0)
    }

    func testAnotherUsersMailboxIDIsNotFound() throws {
        let (bobC, bobSid) = try login("bob@example.org", "hunter2")
        let bobs = try inbox(bobC, bobSid)
        _ = try appended(bobC, bobSid, "for bob only")
        let (alice, sid) = try login()
        assertError(.notFound) { _ = try alice.call(MailboxWatchByID(session: sid, mailbox: bobs.id)) }
        assertError(.notFound) { _ = try alice.call(MailboxDeltaGet(session: sid, mailbox: bobs.id, since: 0)) }
        assertError(.notFound) { _ = try alice.call(MessageRead(session: sid, mailbox: bobs.id, uid: 1, offset: 0, length: 100)) }
        assertError(.notFound) { _ = try alice.call(FlagsStore(session: sid, mailbox: bobs.id, uids: [1], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)) }
        assertError(.notFound) { _ = try alice.call(MessagesExpunge(session: sid, mailbox: bobs.id, uids: nil)) }
        assertError(.notFound) { _ = try alice.call(SearchRun(session: sid, mailbox: bobs.id, query: .all)) }
        assertError(.notFound) { _ = try alice.call(MessagesCopy(session: sid, mailbox: bobs.id, uids: [1], to: "INBOX", move: true)) }
        let details = try? alice.call(DetailsGet(session: sid, mailbox: bobs.id, uids: [1]))
        XCTAssertTrue(details == nil || details!.details.isEmpty, "never bob's message")
        // bob's message is where it was
        XCTAssertEqual(try bobC.call(SearchRun(session: bobSid, mailbox: bobs.id, query: .all)).uids, [1])
    }

    func testWrongSequencesAreAnsweredAndTheConnectionStays() throws {
        let (c, sid) = try login()
        let id = c.allocateID()
        try c.send(DeliverChunk(ByteBuffer(string: "stray")), id: id)
        var (rid, m) = try c.receive()
        XCTAssertEqual(rid, id); XCTAssertEqual((m as? ErrorReply)?.code, .badSequence)
        try c.send(DeliverEnd(), id: id)
        (rid, m) = try c.receive()
        XCTAssertEqual((m as? ErrorReply)?.code, .badSequence)
        // imapd may not begin a delivery of its own
        XCTAssertThrowsError(try c.call(DeliverBegin(sender: "a@b", recipients: ["alice@example.org"])))
        XCTAssertEqual(try inbox(c, sid).name, "INBOX", "still served")
    }

    // MARK: operations

    func testMailboxesCreateRenameDeleteAndSubscriptions() throws {
        let (c, sid) = try login()
        let defaults = try c.call(MailboxSummaries(session: sid)).summaries.map(\.name)
        XCTAssertTrue(defaults.contains("INBOX"))
        XCTAssertEqual(try c.call(MailboxCreate(session: sid, name: "Projects", specialUse: "")), OK())
        assertError(.exists) { _ = try c.call(MailboxCreate(session: sid, name: "Projects")) }
        XCTAssertEqual(try c.call(MailboxRename(session: sid, from: "Projects", to: "Old")), OK())
        assertError(.notFound) { _ = try c.call(MailboxRename(session: sid, from: "Projects", to: "X")) }
        XCTAssertEqual(try c.call(SubscriptionSet(session: sid, name: "Old", subscribed: true)), OK())
        XCTAssertEqual(try c.call(SubscriptionSet(session: sid, name: "Ghost", subscribed: true)), OK())
        XCTAssertEqual(Set(try c.call(SubscriptionList(session: sid)).names).intersection(["Old", "Ghost"]), ["Old", "Ghost"])
        let names = try c.call(MailboxSummaries(session: sid)).summaries.map(\.name)
        XCTAssertEqual(Set(names), Set(defaults + ["Old"]))
        let status = try XCTUnwrap(try c.call(MailboxStatusGet(session: sid, name: "Old")).status)
        XCTAssertEqual(status.summary.name, "Old"); XCTAssertEqual(status.summary.messages, 0)
        XCTAssertNil(try c.call(MailboxStatusGet(session: sid, name: "Nope")).status)
        XCTAssertEqual(try c.call(MailboxDelete(session: sid, name: "Old")), OK())
        assertError(.denied) { _ = try c.call(MailboxDelete(session: sid, name: "INBOX")) }
        XCTAssertEqual(try c.call(MailboxSummaries(session: sid)).summaries.map(\.name), defaults)
        // bob's mailboxes are his own
        let (b, bsid) = try login("bob@example.org", "hunter2")
        XCTAssertEqual(try b.call(MailboxCreate(session: bsid, name: "Old")), OK())
    }

    func testAppendSelectDetailsAndReadByRange() throws {
        let (c, sid) = try login()
        let big = message("big", String(repeating: "0123456789abcdef\r\n", count: 20_000))   // ~360 KiB: many chunks
        let r = try append(c, AppendBegin(session: sid, mailbox: "INBOX", flags: [.seen], keywords: ["work"], internalDate: 1_600_000_000,
                                          size: UInt64(big.count)), big, chunk: RPCLimits.chunkSize)
        let first = try XCTUnwrap(r as? AppendReply).result
        let second = try appended(c, sid, "small", flags: [.flagged])
        XCTAssertEqual(second.uid, first.uid + 1)
        XCTAssertEqual(second.uidValidity, first.uidValidity)
        let (header, entries, end) = try select(c, sid, "INBOX")
        let h = try XCTUnwrap(header)
        XCTAssertEqual(h.summary.name, "INBOX"); XCTAssertEqual(h.summary.messages, 2); XCTAssertEqual(h.summary.uidValidity, first.uidValidity)
        XCTAssertEqual(h.keywords, ["work"])
        XCTAssertEqual(entries.map(\.uid), [first.uid, second.uid]); XCTAssertEqual(end.count, 2)
        XCTAssertEqual(entries[0].flags, [.seen]); XCTAssertEqual(entries[0].keywords, 1)
        XCTAssertEqual(entries[1].flags, [.flagged])
        assertError(.notFound) { _ = try c.stream(MailboxSelect(session: sid, name: "Nope")) { _ in } }
        // details and reads by range
        let d = try c.call(DetailsGet(session: sid, mailbox: h.summary.id, uids: [first.uid, second.uid, 999]))
        XCTAssertEqual(d.details.map(\.uid), [first.uid, second.uid]); XCTAssertEqual(d.through, 999)
        XCTAssertEqual(d.details[0].size, UInt64(big.count)); XCTAssertEqual(d.details[0].internalDate, 1_600_000_000)
        let part = try c.call(MessageRead(session: sid, mailbox: h.summary.id, uid: first.uid, offset: 10, length: 100)).bytes
        XCTAssertEqual(Array(part.readableBytesView), Array(big[10..<110]))
        let tail = try c.call(MessageRead(session: sid, mailbox: h.summary.id, uid: first.uid, offset: UInt64(big.count - 5), length: 100)).bytes
        XCTAssertEqual(Array(tail.readableBytesView), Array(big.suffix(5)), "cut at the end")
        assertError(.invalid) { _ = try c.call(MessageRead(session: sid, mailbox: h.summary.id, uid: first.uid, offset: 0, length: UInt32(MailboxLimits.maxReadLength + 1))) }
        assertError(.notFound) { _ = try c.call(MessageRead(session: sid, mailbox: h.summary.id, uid: 999, offset: 0, length: 10)) }
    }

    func testSelectStreamsALargeViewInChunks() throws {
        let (c, sid) = try login()
        let n = MailboxLimits.entriesPerChunk + 10
        let done = DispatchGroup()
        for i in 0..<n {
            done.enter()
            store.deliver(sender: "s@x.org", recipients: ["alice@example.org"], body: Array("Subject: \(i)\r\n\r\n".utf8), submitter: nil) { _ in done.leave() }
        }
        done.wait()
        var chunks = 0
        let end = try c.stream(MailboxSelect(session: sid, name: "INBOX"), window: 2) { item in if case .chunk = item { chunks += 1 } }
        XCTAssertEqual(end.count, UInt32(n))
        XCTAssertEqual(chunks, 2)
    }

    func testAppendRefusalsAreAnsweredAtTheEndAndStoreNothing() throws {
        let (c, sid) = try login()
        let body = message("x")
        // larger than the store takes
        var r = try append(c, AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: 2 << 20), body)
        XCTAssertEqual((r as? ErrorReply)?.code, .invalid)
        // longer or shorter than announced
        r = try append(c, AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: UInt64(body.count - 1)), body)
        XCTAssertEqual((r as? ErrorReply)?.code, .invalid)
        r = try append(c, AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: UInt64(body.count + 1)), body)
        XCTAssertEqual((r as? ErrorReply)?.code, .invalid)
        // a mailbox that does not exist: [TRYCREATE]
        r = try append(c, AppendBegin(session: sid, mailbox: "Nope", flags: [], keywords: [], internalDate: nil, size: UInt64(body.count)), body)
        XCTAssertEqual((r as? ErrorReply)?.code, .notFound)
        // an abort: no reply, nothing kept
        let id = c.allocateID()
        try c.send(AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: 100), id: id)
        try c.send(DeliverChunk(ByteBuffer(string: "part")), id: id)
        try c.send(DeliverAbort(), id: id)
        XCTAssertEqual(try inbox(c, sid).messages, 0, "the next frame is this reply")
        XCTAssertEqual(try appended(c, sid, "after the refusals").uid, 1, "the connection still serves appends")
    }

    func testFlagsExpungeCopyMoveAndSearch() throws {
        let (c, sid) = try login()
        XCTAssertEqual(try c.call(MailboxCreate(session: sid, name: "Projects")), OK())
        for i in 1...5 { _ = try appended(c, sid, "m\(i)") }
        let mb = try inbox(c, sid).id
        let u = try c.call(FlagsStore(session: sid, mailbox: mb, uids: [2, 3], operation: .add, flags: .deleted, keywords: ["$Junk"], unchangedSince: nil)).update
        XCTAssertEqual(u.changed.map(\.uid), [2, 3]); XCTAssertTrue(u.changed.allSatisfy { $0.flags.contains(.deleted) })
        XCTAssertEqual(u.keywords, ["$Junk"])
        // UNCHANGEDSINCE older than the change: refused per message (RFC 7162 §3.1.3)
        let again = try c.call(FlagsStore(session: sid, mailbox: mb, uids: [2], operation: .remove, flags: .deleted, keywords: [], unchangedSince: 1)).update
        XCTAssertEqual(again.modified, [2]); XCTAssertEqual(again.changed, [])
        XCTAssertEqual(try c.call(SearchRun(session: sid, mailbox: mb, query: .flags(.deleted, set: true))).uids, [2, 3])
        XCTAssertEqual(try c.call(SearchRun(session: sid, mailbox: mb, query: .not(.keyword("$Junk", set: true)))).uids, [1, 4, 5])
        XCTAssertEqual(try c.call(SearchRun(session: sid, mailbox: mb, query: .uids([4...9]))).uids, [4, 5])
        // expunge of the \Deleted among the named UIDs, then of all
        XCTAssertEqual(try c.call(MessagesExpunge(session: sid, mailbox: mb, uids: [3, 4])).uids, [3])
        XCTAssertEqual(try c.call(MessagesExpunge(session: sid, mailbox: mb, uids: nil)).uids, [2])
        // copy and move by destination name
        let copied = try c.call(MessagesCopy(session: sid, mailbox: mb, uids: [1, 4], to: "Projects", move: false)).result
        XCTAssertEqual(copied.sourceUIDs, [1, 4]); XCTAssertEqual(copied.destinationUIDs, [1, 2])
        let moved = try c.call(MessagesCopy(session: sid, mailbox: mb, uids: [5], to: "Projects", move: true)).result
        XCTAssertEqual(moved.destinationUIDs, [3])
        assertError(.notFound) { _ = try c.call(MessagesCopy(session: sid, mailbox: mb, uids: [1], to: "Nope", move: false)) }
        XCTAssertEqual(try c.call(SearchRun(session: sid, mailbox: mb, query: .all)).uids, [1, 4])
        // the delta since the start tells of the vanished UIDs
        let delta = try c.call(MailboxDeltaGet(session: sid, mailbox: mb, since: 0)).delta
        XCTAssertEqual(delta.vanished, [2, 3, 5]); XCTAssertTrue(delta.complete)
        XCTAssertEqual(delta.summary.messages, 2)
    }

    func testWatchersHearOfAChangeBeforeTheReplyAndAPullRearms() throws {
        let (c, sid) = try login()
        _ = try appended(c, sid, "one")
        let mb = try inbox(c, sid)
        let w = try c.call(MailboxWatchByID(session: sid, mailbox: mb.id))
        XCTAssertEqual(w.state.highestModSeq, mb.highestModSeq)
        let id = c.allocateID()
        try c.send(FlagsStore(session: sid, mailbox: mb.id, uids: [1], operation: .add, flags: .seen, keywords: [], unchangedSince: nil), id: id)
        var (rid, m) = try c.receive()
        XCTAssertEqual(rid, 0, "the event comes first"); XCTAssertEqual((m as? MailboxChanged)?.watch, w.watch)
        (rid, m) = try c.receive()
        XCTAssertEqual(rid, id); let modSeq = try XCTUnwrap(m as? FlagUpdateReply).update.highestModSeq
        XCTAssertEqual((try c.call(MailboxDeltaGet(session: sid, mailbox: mb.id, since: mb.highestModSeq, watch: w.watch))).delta.changed.map(\.uid), [1])
        // pulled: the next change notifies again (an APPEND from another connection)
        let (other, osid) = try login()
        _ = try appended(other, osid, "two")
        (rid, m) = try c.receive()
        XCTAssertEqual(rid, 0); XCTAssertGreaterThan(try XCTUnwrap(m as? MailboxChanged).highestModSeq, modSeq)
    }
    func testDeltaIsBoundedByItsLimitAndAskedAgain() throws {
        let (c, sid) = try login()
        let start = try inbox(c, sid)
        for i in 1...5 { _ = try appended(c, sid, "m\(i)") }
        var since = start.highestModSeq, seen: [UInt32] = [], rounds = 0
        while true {
            let d = try c.call(MailboxDeltaGet(session: sid, mailbox: start.id, since: since, limit: 2)).delta
            XCTAssertLessThanOrEqual(d.changed.count, 2)
            seen += d.changed.map(\.uid); rounds += 1
            if d.complete { break }
            since = try XCTUnwrap(d.changed.last).modSeq
        }
        XCTAssertEqual(seen, [1, 2, 3, 4, 5]); XCTAssertGreaterThanOrEqual(rounds, 3)
    }

    func testStatusCountsUnseenAndDeleted() throws {
        let (c, sid) = try login()
        _ = try appended(c, sid, "a", flags: [.seen])
        _ = try appended(c, sid, "b", flags: [.deleted])
        _ = try appended(c, sid, "c")
        let s = try XCTUnwrap(try c.call(MailboxStatusGet(session: sid, name: "INBOX")).status)
        XCTAssertEqual(s.summary.messages, 3); XCTAssertEqual(s.unseen, 2); XCTAssertEqual(s.deleted, 1)
        XCTAssertGreaterThan(s.size, 0)
    }

    /// Bodies held for APPEND are bounded per connection (two of the largest at once); a
    /// refusal past it is temporary, and the budget comes back when they end.
    func testAppendBodiesInMemoryAreBoundedPerConnection() throws {
        let (c, sid) = try login()
        let max = UInt64(1 << 20)
        let a = c.allocateID(), b = c.allocateID()
        try c.send(AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: max), id: a)
        try c.send(AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: max), id: b)
        let r = try append(c, AppendBegin(session: sid, mailbox: "INBOX", flags: [], keywords: [], internalDate: nil, size: 5), Array("hello".utf8))
        XCTAssertEqual((r as? ErrorReply)?.code, .temporary)
        // another connection has its own budget
        let (other, osid) = try login()
        XCTAssertEqual(try appended(other, osid, "elsewhere").uid, 1)
        try c.send(DeliverAbort(), id: a)
        try c.send(DeliverAbort(), id: b)
        XCTAssertEqual(try appended(c, sid, "after").uid, 2)
    }

    func testSessionEndDropsTheSessionsWatches() throws {
        let (c, sid) = try login()
        let mb = try inbox(c, sid)
        let w = try c.call(MailboxWatchByID(session: sid, mailbox: mb.id))
        XCTAssertEqual(try c.call(SessionEnd(sid)), OK())
        assertError(.notFound) { _ = try c.call(MailboxUnwatch(watch: w.watch)) }
        let (other, osid) = try login()
        _ = try appended(other, osid, "unseen by the ended session")
        let sid2 = try c.call(Authenticate(user: "alice@example.org", password: "secret")).id
        XCTAssertEqual(try inbox(c, sid2).messages, 1, "the next frame is this reply, not an event")
    }

    /// A malformed SEARCH program is a protocol error: that connection closes, the store serves on.
    func testAHostileSearchProgramClosesOnlyThatConnection() throws {
        let (c, sid) = try login()
        var w = WireWriter(ByteBuffer()); w.u64(sid); w.i64(1)
        for _ in 0..<10_000 { w.u8(3) }              // NOT NOT NOT ... far past the depth limit
        w.u8(0)
        try c.sendRaw(Frame(type: MessageType.searchRun.rawValue, requestID: c.allocateID(), payload: w.buffer))
        XCTAssertThrowsError(try c.receive())
        let (other, osid) = try login()
        XCTAssertEqual(try inbox(other, osid).name, "INBOX")
    }
    /// Deleting a watched mailbox, or renaming INBOX (which empties it), tells its watchers.
    func testDeleteAndInboxRenameNotifyWatchers() throws {
        let (c, sid) = try login()
        XCTAssertEqual(try c.call(MailboxCreate(session: sid, name: "Doomed")), OK())
        let doomed = try XCTUnwrap(try c.call(MailboxSummaries(session: sid)).summaries.first { $0.name == "Doomed" })
        let w = try c.call(MailboxWatchByID(session: sid, mailbox: doomed.id))
        let (other, osid) = try login()
        XCTAssertEqual(try other.call(MailboxDelete(session: osid, name: "Doomed")), OK())
        var (rid, m) = try c.receive()
        XCTAssertEqual(rid, 0); XCTAssertEqual((m as? MailboxChanged)?.watch, w.watch)
        assertError(.notFound) { _ = try c.call(MailboxDeltaGet(session: sid, mailbox: doomed.id, since: 0, watch: w.watch)) }
        // INBOX renamed: its messages leave, its watchers hear of it
        _ = try appended(c, sid, "moves away")
        let inboxNow = try inbox(c, sid)
        let wi = try c.call(MailboxWatchByID(session: sid, mailbox: inboxNow.id))
        XCTAssertEqual(try other.call(MailboxRename(session: osid, from: "INBOX", to: "Old Inbox")), OK())
        (rid, m) = try c.receive()
        XCTAssertEqual(rid, 0); XCTAssertEqual((m as? MailboxChanged)?.watch, wi.watch)
        let delta = try c.call(MailboxDeltaGet(session: sid, mailbox: inboxNow.id, since: inboxNow.highestModSeq, watch: wi.watch)).delta
        XCTAssertEqual(delta.vanished, [1]); XCTAssertEqual(delta.summary.messages, 0)
    }
}
