// SELECT answered from the process's memo (ViewMemo.swift) over the real store: a current memo
// sends no SELECT to the store (frames counted on the RPC client's channel); any change from
// another store connection (delivery, flags, expunge, rename, delete and re-create) makes it
// stale; a delivery racing a memo SELECT is always seen by the session; users stay apart.
import XCTest
import NIOCore
import MailIPC
import MailModel
import MailStore
import MailWorker
import MailTesting
@testable import IMAPServer

/// Counts the frames a client writes, by type (outbound bytes at the head of its pipeline).
final class SentFrames: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    private let lock = NSLock()
    private var counts: [UInt16: Int] = [:]
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var b = unwrapOutboundIn(data)
        var types: [UInt16] = []
        while let length = b.readInteger(as: UInt32.self), let type = b.readInteger(as: UInt16.self) {
            types.append(type)
            b.moveReaderIndex(forwardBy: min(b.readableBytes, 6 + Int(length)))
        }
        lock.withLock { for t in types { counts[t, default: 0] += 1 } }
        context.write(data, promise: promise)
    }
    func count(_ t: MessageType) -> Int { lock.withLock { counts[t.rawValue] ?? 0 } }
    func reset() { lock.withLock { counts = [:] } }
}

final class SelectMemoTests: XCTestCase {
    var instance: InProcessStore!
    let router = EventRouter(), memo = ViewMemo(), sent = SentFrames()
    /// This imapd process's one store connection, and another process's.
    var rpc: RPCClient!, otherRPC: RPCClient!

    override func setUpWithError() throws {
        instance = try InProcessStore(maxDelivery: 4 << 20, authBudget: AuthBudget(maxFailures: 3, window: 600))
        try instance.store.addDomain("example.org")
        try instance.store.addUser("alice@example.org", password: "secret")
        try instance.store.addUser("bob@example.org", password: "secret")
        let router = self.router
        rpc = try instance.nioClient(.imapd) { router.route($0) }
        try rpc.channel.pipeline.addHandler(sent, position: .first).wait()
        otherRPC = try instance.nioClient(.imapd)
    }
    override func tearDown() { rpc = nil; otherRPC = nil; instance = nil }

    func login(_ user: String, memo: ViewMemo?, other: Bool = false) async throws -> RPCIMAPServices {
        let s = RPCIMAPServices(rpc: other ? otherRPC : rpc, events: router, memo: memo)
        let outcome = await s.authenticate(user: user, password: "secret", client: "192.0.2.1")
        XCTAssertEqual(outcome, .success(canonical: user))
        return s
    }

    /// INBOX of `user` with `n` messages (rows sharing one body), big enough for the memo.
    func fill(_ user: String, _ n: Int) async throws -> Int64 {
        let s = try await login(user, memo: nil, other: true)
        _ = try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: Array("Subject: x\r\n\r\nhi\r\n".utf8))
        return try insertRows(user, n)
    }

    func insertRows(_ user: String, _ n: Int) throws -> Int64 { try instance.insertSharedRows(user: user, n) }

    /// SELECTs until the memo holds a current view (the first, unless a change raced it).
    func warm(_ s: RPCIMAPServices, _ user: String, _ name: String = "INBOX") async throws {
        for _ in 0..<4 where memo.current(user: user, mailbox: name, client: ObjectIdentifier(rpc)) == nil {
            _ = try await s.select(name)
        }
        XCTAssertNotNil(memo.current(user: user, mailbox: name, client: ObjectIdentifier(rpc)), "memo of \(name) not current")
    }

    /// Waits (bounded) for the event that makes the memo of `name` stale.
    func waitStale(_ user: String, _ name: String = "INBOX") async throws {
        for _ in 0..<500 where memo.current(user: user, mailbox: name, client: ObjectIdentifier(rpc)) != nil {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertNil(memo.current(user: user, mailbox: name, client: ObjectIdentifier(rpc)), "memo of \(name) still current")
    }

    func testCurrentMemoSendsNoSelect() async throws {
        _ = try await fill("alice@example.org", 300)
        let a = try await login("alice@example.org", memo: memo), b = try await login("alice@example.org", memo: memo)
        _ = try await a.select("INBOX")
        XCTAssertNotNil(memo.current(user: "alice@example.org", mailbox: "INBOX", client: ObjectIdentifier(rpc)), "current after one SELECT")
        sent.reset()
        let (view, w) = try await b.selectWatching("INBOX") { _ in }
        XCTAssertEqual(sent.count(.mailboxSelect), 0)
        let whole = try await login("alice@example.org", memo: nil).select("INBOX")
        XCTAssertEqual(view, whole)
        XCTAssertEqual(view.entries.count, 300)
        // The session's own watch went out (unawaited) and works: a NOOP-style delta re-arms it.
        _ = try await b.delta(mailbox: view.summary.id, since: view.summary.highestModSeq, limit: 10)
        XCTAssertEqual(sent.count(.mailboxWatchByID), 1)
        w.cancel()
        XCTAssertEqual(memo.watchCount, 1)
    }

    /// Each change from another store connection makes the memo stale, and the next SELECT is
    /// the store's whole view.
    func testChangesFromAnotherConnectionMakeItStale() async throws {
        let box = try await fill("alice@example.org", 300)
        let a = try await login("alice@example.org", memo: memo), other = try await login("alice@example.org", memo: nil, other: true)
        let changes: [(String, () async throws -> Void)] = [
            ("deliver", { _ = try await other.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: Array("Subject: y\r\n\r\nz\r\n".utf8)) }),
            ("flag", { _ = try await other.storeFlags(mailbox: box, uids: [5], operation: .add, flags: [.seen], keywords: ["k"], unchangedSince: nil) }),
            ("expunge", {
                _ = try await other.storeFlags(mailbox: box, uids: [6], operation: .add, flags: [.deleted], keywords: [], unchangedSince: nil)
                _ = try await other.expunge(mailbox: box, uids: [6])
            }),
        ]
        for (what, change) in changes {
            try await warm(a, "alice@example.org")
            try await change()
            try await waitStale("alice@example.org")
            let viaMemo = try await a.select("INBOX"), whole = try await other.select("INBOX")
            XCTAssertEqual(viaMemo, whole, what)
        }
        // RENAME: the old name is no mailbox any more; the new name is another memo key.
        try await other.createMailbox("Big", specialUse: "")
        _ = try await other.copy(mailbox: box, uids: Array(1...299), to: "Big", move: false)
        try await warm(a, "alice@example.org", "Big")
        try await other.renameMailbox(from: "Big", to: "Bigger")
        try await waitStale("alice@example.org", "Big")
        do { _ = try await a.select("Big"); XCTFail("renamed mailbox selected") } catch let e as IMAPServiceError {
            XCTAssertEqual(e.kind, .notFound)
        }
        // DELETE and CREATE again: a new UIDVALIDITY, never the old view.
        try await other.renameMailbox(from: "Bigger", to: "Big")
        try await warm(a, "alice@example.org", "Big")
        let old = try await a.select("Big")
        try await other.deleteMailbox("Big")
        try await other.createMailbox("Big", specialUse: "")
        try await waitStale("alice@example.org", "Big")
        let new = try await a.select("Big")
        XCTAssertNotEqual(new.summary.uidValidity, old.summary.uidValidity)
        XCTAssertEqual(new.entries.count, 0)
    }

    /// Deliveries racing memo SELECTs: the session either has the message in its view or hears
    /// of it from its watch (what IDLE and NOOP act on).
    func testDeliveryRacingSelectIsNeverLost() async throws {
        _ = try await fill("alice@example.org", 300)
        let a = try await login("alice@example.org", memo: memo), other = try await login("alice@example.org", memo: nil, other: true)
        final class Heard: @unchecked Sendable { let lock = NSLock(); var modSeq: UInt64 = 0 }
        var hits = 0, viaWatch = 0
        for round in 0..<40 {
            try await warm(a, "alice@example.org")
            let heard = Heard()
            sent.reset()
            async let delivered = other.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: Array("Subject: \(round)\r\n\r\nr\r\n".utf8))
            async let selected = a.selectWatching("INBOX") { m in heard.lock.withLock { heard.modSeq = max(heard.modSeq, m) } }
            let (d, (view, watch)) = try await (delivered, selected)
            if sent.count(.mailboxSelect) == 0 { hits += 1 }
            let whole = try await other.select("INBOX")
            let entry = try XCTUnwrap(whole.entries.first { $0.uid == d.uid })
            if !view.entries.contains(where: { $0.uid == d.uid }) {
                viaWatch += 1
                for _ in 0..<500 where heard.lock.withLock({ heard.modSeq }) < entry.modSeq { try await Task.sleep(nanoseconds: 10_000_000) }
                XCTAssertGreaterThanOrEqual(heard.lock.withLock { heard.modSeq }, entry.modSeq, "round \(round): UID \(d.uid) lost")
            }
            watch.cancel()
        }
        print("memo hits in the race: \(hits) of 40; the message heard from the watch, not in the view: \(viaWatch)")
    }

    /// An account removed and added again under the same name never gets the old account's view.
    func testRemovedAccountIsStale() async throws {
        _ = try await fill("bob@example.org", 300)
        let bob = try await login("bob@example.org", memo: memo)
        try await warm(bob, "bob@example.org")
        let admin = try instance.nioClient(.admin)
        _ = try await admin.call(UserRemove("bob@example.org")).get()
        try await waitStale("bob@example.org")
        try instance.store.addUser("bob@example.org", password: "secret")
        let again = try await login("bob@example.org", memo: memo)
        let view = try await again.select("INBOX")
        XCTAssertEqual(view.entries.count, 0)
    }

    func testUsersKeptApart() async throws {
        _ = try await fill("alice@example.org", 300)
        _ = try await fill("bob@example.org", 400)
        let alice = try await login("alice@example.org", memo: memo), bob = try await login("bob@example.org", memo: memo)
        try await warm(alice, "alice@example.org")
        XCTAssertNil(memo.current(user: "bob@example.org", mailbox: "INBOX", client: ObjectIdentifier(rpc)))
        sent.reset()
        let bobs = try await bob.select("INBOX")
        XCTAssertEqual(sent.count(.mailboxSelect), 1)
        XCTAssertEqual(bobs.entries.count, 400)
        try await warm(bob, "bob@example.org")
        let alices = try await alice.select("INBOX"), again = try await bob.select("INBOX")
        XCTAssertEqual(alices.entries.count, 300)
        XCTAssertEqual(again, bobs)
        XCTAssertNotEqual(alices.summary.id, bobs.summary.id)
    }
}
