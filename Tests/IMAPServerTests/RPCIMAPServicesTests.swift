// RPCIMAPServices over the real store service (InProcessStore, the NIO client a worker uses):
// login outcomes, every mailbox operation through the services, batching of details and reads,
// watches firing through the EventRouter after a delivery from another connection, close, and
// RPC errors mapped to IMAPServiceError kinds.
import XCTest
import NIOCore
import MailIPC
import MailModel
import MailStore
import MailWorker
import MailTesting
@testable import IMAPServer

final class RPCIMAPServicesTests: XCTestCase {
    var instance: InProcessStore!
    var router: EventRouter!

    override func setUpWithError() throws {
        instance = try InProcessStore(maxDelivery: 4 << 20, authBudget: AuthBudget(maxFailures: 3, window: 600))
        try instance.store.addDomain("example.org")
        try instance.store.addUser("alice@example.org", password: "secret")
        router = EventRouter()
    }
    override func tearDown() { instance = nil; router = nil }

    func services() throws -> (RPCIMAPServices, RPCClient) {
        let router = self.router!
        let rpc = try instance.nioClient(.imapd) { router.route($0) }
        return (RPCIMAPServices(rpc: rpc, events: router), rpc)
    }

    func loggedIn() async throws -> RPCIMAPServices {
        let (s, _) = try services()
        let outcome = await s.authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1")
        XCTAssertEqual(outcome, .success(canonical: "alice@example.org"))
        return s
    }

    func assertKind<T>(_ kind: IMAPServiceError.Kind, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> T) async {
        do { _ = try await body(); XCTFail("no error", file: file, line: line) } catch {
            XCTAssertEqual((error as? IMAPServiceError)?.kind, kind, "\(error)", file: file, line: line)
        }
    }

    func body(_ subject: String, _ text: String = "hi") -> [UInt8] { Array("Subject: \(subject)\r\n\r\n\(text)\r\n".utf8) }

    func testAuthenticateOutcomes() async throws {
        let (s, _) = try services()
        let wrong = await s.authenticate(user: "alice@example.org", password: "nope", client: "198.51.100.1")
        XCTAssertEqual(wrong, .failure)
        for _ in 0..<2 { _ = await s.authenticate(user: "alice@example.org", password: "nope", client: "198.51.100.1") }
        let blocked = await s.authenticate(user: "alice@example.org", password: "secret", client: "198.51.100.1")
        XCTAssertEqual(blocked, .blocked, "over the address's failure budget: nothing checked")
        let ok = await s.authenticate(user: "alice@example.org", password: "secret", client: "198.51.100.2")
        XCTAssertEqual(ok, .success(canonical: "alice@example.org"))
        let names = try await s.mailboxes().map(\.name)
        XCTAssertTrue(names.contains("INBOX"))
    }

    func testCallsBeforeLoginAndAfterCloseAreDenied() async throws {
        let (s, _) = try services()
        await assertKind(.denied) { try await s.mailboxes() }
        let outcome = await s.authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1")
        XCTAssertEqual(outcome, .success(canonical: "alice@example.org"))
        let first = try await s.mailboxes().first
        let inbox = try XCTUnwrap(first)
        _ = try await s.watch(mailbox: inbox.id) { _ in }
        XCTAssertEqual(router.count, 1)
        s.close()
        XCTAssertEqual(router.count, 0, "close forgets the watches")
        await assertKind(.denied) { try await s.subscriptions() }
    }

    func testALostStoreIsTemporary() async throws {
        let (s, rpc) = try services()
        _ = await s.authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1")
        try await rpc.channel.close()
        await assertKind(.temporary) { try await s.mailboxes() }
        await assertKind(.temporary) { try await s.select("INBOX") }
        await assertKind(.temporary) { try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: self.body("x")) }
        let outcome = await s.authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1")
        XCTAssertEqual(outcome, .tempFail)
    }

    func testErrorCodesMapToServiceKinds() {
        let cases: [(ErrorCode, IMAPServiceError.Kind)] = [(.notFound, .notFound), (.exists, .exists), (.denied, .denied), (.invalid, .invalid),
                                                          (.throttled, .limit), (.temporary, .temporary), (.internal, .temporary), (.badSequence, .temporary)]
        for (code, kind) in cases { XCTAssertEqual(RPCIMAPServices.serviceError(RPCError("x", code: code)).kind, kind, "\(code)") }
        XCTAssertEqual(RPCIMAPServices.serviceError(RPCClient.timedOut).kind, .temporary)
        XCTAssertEqual(RPCIMAPServices.serviceError(ChannelError.ioOnClosedChannel).kind, .temporary)
    }

    func testMailboxLifecycleThroughTheServices() async throws {
        let s = try await loggedIn()
        let defaults = try await s.mailboxes().map(\.name)
        try await s.createMailbox("Projects", specialUse: "")
        await assertKind(.exists) { try await s.createMailbox("Projects", specialUse: "") }
        try await s.setSubscribed("Projects", true)
        let subscribed = try await s.subscriptions().contains("Projects")
        XCTAssertTrue(subscribed)
        try await s.renameMailbox(from: "Projects", to: "Old")
        let names = try await s.mailboxes().map(\.name)
        XCTAssertEqual(Set(names), Set(defaults + ["Old"]))
        let count = try await s.status("Old")?.summary.messages
        XCTAssertEqual(count, 0)
        let missing = try await s.status("Nope")
        XCTAssertNil(missing)
        try await s.deleteMailbox("Old")
        await assertKind(.notFound) { try await s.select("Old") }
    }

    func testAppendSelectStoreSearchCopyExpunge() async throws {
        let s = try await loggedIn()
        try await s.createMailbox("Projects", specialUse: "")
        var uids: [UInt32] = []
        for i in 1...4 { uids.append(try await s.append(to: "INBOX", flags: i == 1 ? [.seen] : [], keywords: [], internalDate: nil, body: body("m\(i)")).uid) }
        XCTAssertEqual(uids, [1, 2, 3, 4])
        await assertKind(.notFound) { try await s.append(to: "Nope", flags: [], keywords: [], internalDate: nil, body: self.body("x")) }
        let view = try await s.select("INBOX")
        XCTAssertEqual(view.entries.map(\.uid), uids); XCTAssertEqual(view.summary.messages, 4)
        XCTAssertEqual(view.entries[0].flags, [.seen])
        let mb = view.summary.id
        let update = try await s.storeFlags(mailbox: mb, uids: [2, 3], operation: .add, flags: .deleted, keywords: ["todo"], unchangedSince: nil)
        XCTAssertEqual(update.changed.map(\.uid), [2, 3]); XCTAssertEqual(update.keywords, ["todo"])
        let unseen = try await s.search(mailbox: mb, query: .flags(.seen, set: false))
        XCTAssertEqual(unseen, [2, 3, 4])
        let todo = try await s.search(mailbox: mb, query: .keyword("todo", set: true))
        XCTAssertEqual(todo, [2, 3])
        let copy = try await s.copy(mailbox: mb, uids: [1, 4], to: "Projects", move: true)
        XCTAssertEqual(copy.sourceUIDs, [1, 4]); XCTAssertEqual(copy.destinationUIDs, [1, 2])
        await assertKind(.notFound) { try await s.copy(mailbox: mb, uids: [2], to: "Nope", move: false) }
        let expunged = try await s.expunge(mailbox: mb, uids: nil)
        XCTAssertEqual(expunged, [2, 3])
        let delta = try await s.delta(mailbox: mb, since: view.summary.highestModSeq, limit: 100)
        XCTAssertEqual(delta.vanished, [1, 2, 3, 4]); XCTAssertEqual(delta.summary.messages, 0)
        let archived = try await s.select("Projects").entries.count
        XCTAssertEqual(archived, 2)
    }

    func testDetailsAreBatchedAndReadsChunked() async throws {
        let s = try await loggedIn()
        let n = MailboxLimits.detailsPerRequest + 6
        for i in 1...n { _ = try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: 1_700_000_000 + Int64(i), body: body("m\(i)")) }
        let big = body("big", String(repeating: "x", count: 3 * maxReadChunk + 123))
        let bigUID = try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: big).uid
        let view = try await s.select("INBOX")
        let details = try await s.details(mailbox: view.summary.id, uids: view.entries.map(\.uid).reversed())
        XCTAssertEqual(details.map(\.uid), view.entries.map(\.uid), "every UID, ascending, across batches")
        XCTAssertEqual(details[0].internalDate, 1_700_000_001)
        let whole = try await s.read(mailbox: view.summary.id, uid: bigUID, offset: 0, length: big.count + 1000)
        XCTAssertEqual(whole, big, "read in chunks up to the message's end")
        let middle = try await s.read(mailbox: view.summary.id, uid: bigUID, offset: maxReadChunk - 7, length: maxReadChunk + 20)
        XCTAssertEqual(middle, Array(big[(maxReadChunk - 7)..<(2 * maxReadChunk + 13)]))
        await assertKind(.notFound) { try await s.read(mailbox: view.summary.id, uid: 9999, offset: 0, length: 10) }
    }

    func testOverLimitRequestsAreRefusedBeforeTheStore() async throws {
        let s = try await loggedIn()
        let deep = (0..<(MailboxLimits.searchMaxDepth + 1)).reduce(SearchQuery.all) { q, _ in .not(q) }
        await assertKind(.limit) { try await s.search(mailbox: 1, query: deep) }
        let keywords = (0...maxKeywordsPerMailbox).map { "k\($0)" }
        await assertKind(.limit) { try await s.storeFlags(mailbox: 1, uids: [1], operation: .add, flags: [], keywords: keywords, unchangedSince: nil) }
        // a UID set too fragmented for a frame, a search string too long for one
        let scattered = (0..<UInt32(MailboxLimits.maxUIDRanges + 1)).map { $0 * 2 + 1 }
        await assertKind(.limit) { try await s.copy(mailbox: 1, uids: scattered, to: "Trash", move: false) }
        await assertKind(.limit) { try await s.search(mailbox: 1, query: .text(String(repeating: "x", count: RPCLimits.defaultMaxFrame))) }
        // the connection was never put at risk: it still serves
        let count = try await s.mailboxes().count
        XCTAssertGreaterThan(count, 0)
    }

    func testWatchFiresAfterADeliveryFromAnotherConnection() async throws {
        let s = try await loggedIn()
        let first = try await s.mailboxes().first { $0.name == "INBOX" }
        let view = MailboxView(summary: try XCTUnwrap(first), keywords: [], entries: [])
        let fired = expectation(description: "changed")
        fired.assertForOverFulfill = false
        let seen = ModSeqBox()
        let watch = try await s.watch(mailbox: view.summary.id) { modSeq in seen.set(modSeq); fired.fulfill() }
        let lmtp = try instance.nioClient(.lmtpd)
        let statuses = try await lmtp.deliver(DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), body: ByteBuffer(bytes: body("new"))).get()
        XCTAssertEqual(statuses, [.ok])
        await fulfillment(of: [fired], timeout: 5)
        let delta = try await s.delta(mailbox: view.summary.id, since: view.summary.highestModSeq, limit: 100)
        XCTAssertEqual(delta.changed.count, 1)
        XCTAssertEqual(seen.get(), delta.summary.highestModSeq)
        // the pull re-armed the watch: the next delivery fires again
        let again = expectation(description: "changed again")
        again.assertForOverFulfill = false
        seen.onSet = { again.fulfill() }
        _ = try await lmtp.deliver(DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), body: ByteBuffer(bytes: body("newer"))).get()
        await fulfillment(of: [again], timeout: 5)
        watch.cancel()
        XCTAssertEqual(router.count, 0)
    }
    func testStatusAndAnIncompleteDeltaThroughTheServices() async throws {
        let s = try await loggedIn()
        let first = try await s.mailboxes().first { $0.name == "INBOX" }
        let inbox = try XCTUnwrap(first)
        for i in 1...3 { _ = try await s.append(to: "INBOX", flags: i == 1 ? [.seen] : [], keywords: [], internalDate: nil, body: body("m\(i)")) }
        let status = try await s.status("INBOX")
        XCTAssertEqual(status?.summary.messages, 3); XCTAssertEqual(status?.unseen, 2)
        let part = try await s.delta(mailbox: inbox.id, since: inbox.highestModSeq, limit: 2)
        XCTAssertEqual(part.changed.count, 2); XCTAssertFalse(part.complete)
        let rest = try await s.delta(mailbox: inbox.id, since: part.changed.last!.modSeq, limit: 2)
        XCTAssertEqual(rest.changed.map(\.uid), [3]); XCTAssertTrue(rest.complete)
    }

    func testACancelledWatchHearsNothingMore() async throws {
        let s = try await loggedIn()
        let first = try await s.mailboxes().first { $0.name == "INBOX" }
        let inbox = try XCTUnwrap(first)
        let box = ModSeqBox()
        let watch = try await s.watch(mailbox: inbox.id) { box.set($0) }
        watch.cancel()
        XCTAssertEqual(router.count, 0)
        _ = try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: body("quiet"))
        let status = try await s.status("INBOX")       // a round trip after the change: any event came before it
        XCTAssertEqual(status?.summary.messages, 1)
        XCTAssertEqual(box.get(), 0)
    }
}

/// The MODSEQ a watch reported (callbacks come from the client's event loop).
final class ModSeqBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 0
    var onSet: (() -> Void)?
    func set(_ v: UInt64) { lock.lock(); value = v; let f = onSet; lock.unlock(); f?() }
    func get() -> UInt64 { lock.lock(); defer { lock.unlock() }; return value }
}
