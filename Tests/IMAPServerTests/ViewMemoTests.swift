// The process's SELECT memo (ViewMemo.swift) over the real store: a SELECT that starts from a
// kept view and merges the store's changes since it equals a SELECT of the whole view, through
// random deliveries, flag changes and expunges from another session; the store sends only the
// changes; a memo entry of another mailbox or UIDVALIDITY is never used.
import XCTest
import MailIPC
import MailModel
import MailStore
import MailWorker
import MailTesting
@testable import IMAPServer

final class ViewMemoTests: XCTestCase {
    var instance: InProcessStore!
    let router = EventRouter()

    override func setUpWithError() throws {
        instance = try InProcessStore(maxDelivery: 4 << 20, authBudget: AuthBudget(maxFailures: 3, window: 600))
        try instance.store.addDomain("example.org")
        try instance.store.addUser("alice@example.org", password: "secret")
    }
    override func tearDown() { instance = nil }

    func loggedIn(memo: ViewMemo?) async throws -> RPCIMAPServices {
        let router = self.router
        let s = RPCIMAPServices(rpc: try instance.nioClient(.imapd) { router.route($0) }, events: router, memo: memo)
        let outcome = await s.authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1")
        XCTAssertEqual(outcome, .success(canonical: "alice@example.org"))
        return s
    }

    /// INBOX with `n` messages (rows sharing one body), big enough for the memo.
    func fill(_ s: RPCIMAPServices, _ n: Int) async throws -> Int64 {
        _ = try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: Array("Subject: x\r\n\r\nhi\r\n".utf8))
        return try insertRows(n)
    }

    /// Rows 2...n of INBOX, all pointing at the body of row 1.
    func insertRows(_ n: Int) throws -> Int64 { try instance.insertSharedRows(user: "alice@example.org", n) }

    func testKeptViewPlusChangesEqualsTheWholeView() async throws {
        let memo = ViewMemo()
        let a = try await loggedIn(memo: memo), fresh = try await loggedIn(memo: nil), other = try await loggedIn(memo: nil)
        let box = try await fill(other, ViewMemo.minEntries + 200)
        var rng = SystemRandomNumberGenerator()
        var first = try await a.select("INBOX")
        let firstWhole = try await fresh.select("INBOX")
        XCTAssertEqual(first, firstWhole)
        for round in 0..<25 {
            let live = first.entries.map(\.uid)
            switch round % 4 {
            case 0:
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    _ = try await other.append(to: "INBOX", flags: [.flagged], keywords: ["k\(round)"], internalDate: nil, body: Array("Subject: \(round)\r\n\r\nx\r\n".utf8))
                }
            case 1:
                let pick = (0..<Int.random(in: 1...20, using: &rng)).map { _ in live.randomElement(using: &rng)! }
                _ = try await other.storeFlags(mailbox: box, uids: Array(Set(pick)).sorted(), operation: .add, flags: [.seen], keywords: ["k\(round % 3)"], unchangedSince: nil)
            case 2:
                let pick = (0..<Int.random(in: 1...5, using: &rng)).map { _ in live.randomElement(using: &rng)! }
                _ = try await other.storeFlags(mailbox: box, uids: Array(Set(pick)).sorted(), operation: .add, flags: [.deleted], keywords: [], unchangedSince: nil)
                _ = try await other.expunge(mailbox: box, uids: Array(Set(pick)).sorted())
            default:
                break   // nothing changed: the kept view comes back as is
            }
            let viaMemo = try await a.select("INBOX"), whole = try await fresh.select("INBOX")
            XCTAssertEqual(viaMemo, whole, "round \(round)")
            XCTAssertEqual(memo.view(user: "alice@example.org", mailbox: "INBOX"), whole)
            first = whole
        }
    }

    func testStoreSendsOnlyTheChanges() async throws {
        let s = try await loggedIn(memo: nil)
        let box = try await fill(s, 1000)
        let whole = try await s.select("INBOX")
        _ = try await s.storeFlags(mailbox: box, uids: [3, 500], operation: .add, flags: [.answered], keywords: [], unchangedSince: nil)
        _ = try await s.storeFlags(mailbox: box, uids: [7], operation: .add, flags: [.deleted], keywords: [], unchangedSince: nil)
        _ = try await s.expunge(mailbox: box, uids: [7])
        let rpc = try instance.nioClient(.imapd)
        let session = try await rpc.call(Authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1", service: "imap")).get().id
        func stream(_ known: ViewStamp?) async throws -> (ViewHeader?, [ViewEntry]) {
            final class G: @unchecked Sendable { var h: ViewHeader?; var e: [ViewEntry] = [] }
            let g = G(), loop = rpc.channel.eventLoop
            _ = try await rpc.stream(MailboxSelect(session: session, name: "INBOX", known: known)) { item in
                switch item { case .header(let h): g.h = h; case .chunk(let e): g.e += e }
                return loop.makeSucceededVoidFuture()
            }.get()
            return (g.h, g.e)
        }
        let (h, changed) = try await stream(whole.stamp)
        XCTAssertEqual(h?.since, whole.summary.highestModSeq)
        XCTAssertEqual(h?.vanished, [7])
        XCTAssertEqual(changed.map(\.uid).sorted(), [3, 500])
        // Another UIDVALIDITY or mailbox: the whole view.
        var stale = whole.stamp; stale.uidValidity &+= 1
        let (h2, all) = try await stream(stale)
        XCTAssertEqual(h2?.since, 0)
        XCTAssertEqual(all.count, 999)
        stale = whole.stamp; stale.mailbox += 100
        let (h3, _) = try await stream(stale)
        XCTAssertEqual(h3?.since, 0)
    }
}
