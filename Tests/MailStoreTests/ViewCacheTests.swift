// SELECT's view cache (SQLiteMailStore+IMAP.swift ViewCache): a large mailbox's view is kept
// only while nothing changed it — every STORE, EXPUNGE, delivery and re-creation shows at once.
import XCTest
import GRDB
@testable import MailStore

final class ViewCacheTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, alice: UserRef!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 0, clock: { conformanceNow })
        _ = try StoreConformance(store)
        alice = try store.user(named: "alice@example.org")
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    /// A mailbox of `n` messages (all one body), large enough to be cached.
    func fill(_ name: String, _ n: Int) throws -> Int64 {
        let id = name == "INBOX" ? try XCTUnwrap(try store.mailbox(user: alice.id, name: name)).id
            : try store.createMailbox(user: alice.id, name: name, specialUse: "").id
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "Subject: one\r\n\r\nx\r\n")
        try store.pool.write { db in
            let st = try db.makeStatement(sql: "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keyword_bits, modseq, internal_date) VALUES (?, ?, 1, 0, 0, ?, 0)")
            for uid in 1...n { try st.execute(arguments: [id, uid, uid]) }
            try db.execute(sql: "UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, exists_count = ? WHERE id = ?", arguments: [n + 1, n, n, id])
        }
        return id
    }

    func testEveryChangeIsSeenThroughTheCache() throws {
        let n = ViewCache.minEntries + 500
        let box = try fill("Big", n)
        let first = try store.view(user: alice.id, mailbox: box)
        XCTAssertEqual(first.entries.count, n)
        XCTAssertEqual(try store.view(user: alice.id, mailbox: box).entries, first.entries)   // from the cache

        _ = try store.storeFlags(user: alice.id, mailbox: box, uids: [7], operation: .add, flags: [.seen, .deleted], keywords: ["K"], unchangedSince: nil)
        let flagged = try store.view(user: alice.id, mailbox: box)
        XCTAssertEqual(flagged.entries[6].flags, [.seen, .deleted])
        XCTAssertEqual(flagged.keywords, ["K"])
        XCTAssertEqual(flagged.summary.highestModSeq, first.summary.highestModSeq + 1)

        XCTAssertEqual(try store.expunge(user: alice.id, mailbox: box, uids: nil).0, [7])
        let expunged = try store.view(user: alice.id, mailbox: box)
        XCTAssertEqual(expunged.entries.count, n - 1)
        XCTAssertFalse(expunged.entries.contains { $0.uid == 7 })

        let copied = try store.copy(user: alice.id, from: box, uids: [1], to: box, move: false).0
        let grown = try store.view(user: alice.id, mailbox: box)
        XCTAssertEqual(grown.entries.count, n)
        XCTAssertEqual(grown.entries.last?.uid, copied.destinationUIDs.first)
    }

    func testARecreatedMailboxIsNotTheOldOne() throws {
        let n = ViewCache.minEntries
        let old = try fill("Again", n)
        XCTAssertEqual(try store.view(user: alice.id, mailbox: old).entries.count, n)
        try store.deleteMailbox(user: alice.id, name: "Again")
        let new = try store.createMailbox(user: alice.id, name: "Again", specialUse: "")
        XCTAssertEqual(try store.view(user: alice.id, mailbox: new.id).entries, [])
    }

    func testSmallMailboxesAreNotKept() throws {
        let box = try fill("Small", 10)
        _ = try store.view(user: alice.id, mailbox: box)
        let key = ViewCache.Key(user: alice.id, mailbox: box, uidValidity: 0, highestModSeq: 0, uidNext: 0, messages: 0)
        XCTAssertNil(store.viewCache.entries(key))
    }
}
