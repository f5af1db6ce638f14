// What only the SQLite store's IMAP side has: schema v5 migrating older data, blob files removed
// after an expunge (and swept after a crash in between), APPEND sharing the group commit, a
// 100k-message view, SEARCH's SQL prefilter and paging. Every store's part is MailboxConformance.
import XCTest
import GRDB
import MIME
@testable import MailStore

/// A data dir at `path` whose database is migrated up to `version` and holds the rows `sql` inserts.
func oldDatabase(_ path: String, upTo version: String, _ sql: String) throws -> String {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    let q = try DatabaseQueue(path: path + "/postern.db")
    try Schema.migrator().migrate(q, upTo: version)
    try q.write { try $0.execute(sql: sql) }
    try q.close()
    return path
}

final class SQLiteMailboxTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, alice: UserRef!, bob: UserRef!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try open()
        _ = try StoreConformance(store)
        alice = try store.user(named: "alice@example.org")
        bob = try store.user(named: "bob@example.org")
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    func open(fsync: Bool = false, inlineMax: Int = 0) throws -> SQLiteMailStore {
        try SQLiteMailStore(dataDir: dir, fsync: fsync, inlineMax: inlineMax, clock: { conformanceNow })
    }
    func inbox(_ u: UserRef? = nil) throws -> Int64 { try XCTUnwrap(try store.mailbox(user: (u ?? alice).id, name: "INBOX")).id }
    func count(_ sql: String) throws -> Int { try store.pool.read { try Int.fetchOne($0, sql: sql)! } }
    func expungeAll(_ u: UserRef, _ mailbox: Int64) throws -> [UInt32] {
        let uids = try store.view(user: u.id, mailbox: mailbox).entries.map(\.uid)
        _ = try store.storeFlags(user: u.id, mailbox: mailbox, uids: uids, operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)
        return try store.expunge(user: u.id, mailbox: mailbox, uids: nil).0
    }

    /// Schema v5 over a v4 database: subscriptions from the old column, keyword bits, UIDVALIDITY floor.
    func testMigrationFromV4KeepsSubscriptions() throws {
        let old = try oldDatabase(dir + "/v4", upTo: "v4-modseq-index", """
            INSERT INTO domains (id, name, created) VALUES (1, 'example.org', 0);
            INSERT INTO users (id, domain_id, local, local_key, password, created) VALUES (1, 1, 'al', 'al', 'x', 0);
            INSERT INTO mailboxes (user_id, name, uidvalidity, subscribed) VALUES (1, 'INBOX', 100, 1), (1, 'Old', 300, 0), (1, 'Kept', 200, 1);
            """)
        let s = try SQLiteMailStore(dataDir: old, fsync: false)
        XCTAssertEqual(try s.subscriptions(user: 1), ["INBOX", "Kept"])
        XCTAssertEqual(try s.mailboxes(user: 1).map(\.subscribed), [true, false, true])
        XCTAssertGreaterThan(try s.createMailbox(user: 1, name: "New", specialUse: "").uidValidity, 300)
    }

    /// DESIGN §9: SELECT of a 100,000-message mailbox in well under a second.
    func testViewOf100kMessagesIsFast() throws {
        let n = 100_000, id = try inbox()
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "Subject: one\r\n\r\nx\r\n")
        try store.pool.write { db in
            let st = try db.makeStatement(sql: "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keyword_bits, modseq, internal_date) VALUES (?, ?, 1, ?, ?, ?, 0)")
            for uid in 2...n { try st.execute(arguments: [id, uid, uid % 32, uid % 7, uid]) }
            try db.execute(sql: "UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, exists_count = ? WHERE id = ?", arguments: [n + 1, n, n, id])
        }
        let start = Date()
        let v = try store.view(user: alice.id, mailbox: id)
        let took = Date().timeIntervalSince(start)
        XCTAssertEqual(v.entries.count, n)
        let size = try XCTUnwrap(try store.details(user: alice.id, mailbox: id, uids: [1]).first).size
        XCTAssertEqual(v.entries.last, ViewEntry(uid: UInt32(n), modSeq: UInt64(n), flags: SystemFlags(rawValue: UInt32(n % 32)), keywords: UInt64(n % 7),
                                                 size: UInt32(size)))
        XCTAssertLessThan(took, 1.0, "view of \(n) took \(took) s")
        print("view of \(n) messages: \(Int(took * 1000)) ms")
        XCTAssertEqual(try store.delta(user: alice.id, mailbox: id, since: UInt64(n - 10), limit: 1000).changed.map(\.uid), Array(UInt32(n - 9)...UInt32(n)))
        // STORE over all of them goes by one range scan
        let (u, _) = try store.storeFlags(user: alice.id, mailbox: id, uids: Array(1...UInt32(n)), operation: .add, flags: .seen, keywords: [], unchangedSince: nil)
        XCTAssertEqual(u.changed.count, n / 2 + 1, "the even UIDs and UID 1 lacked \\Seen")
    }

    /// Bodies nobody references any more lose their files; shared ones keep them.
    func testExpungeRemovesUnreferencedBlobFiles() throws {
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "only alice\r\n")
        _ = try deliverSync(store, "s@x.org", ["alice@example.org", "bob@example.org"], "both\r\n")
        XCTAssertEqual(try store.blobs.allHashes().count, 2)
        XCTAssertEqual(try expungeAll(alice, inbox()), [1, 2])
        XCTAssertEqual(try store.blobs.allHashes().count, 1)
        XCTAssertEqual(try count("SELECT count(*) FROM messages"), 1)
        XCTAssertEqual(try store.read(user: bob.id, mailbox: inbox(bob), uid: 1, offset: 0, length: 100), Array("both\r\n".utf8))
        XCTAssertEqual(try count("SELECT count(*) FROM expunged"), 2)
    }

    /// A crash between the expunge's commit and the file's removal leaves an orphan file: the
    /// start-up sweep removes it.
    func testOrphanBlobOfAnExpungeIsSweptAtStart() throws {
        let body = Array("gone soon\r\n".utf8), h = body.withUnsafeBytes { SHA256Digest.hash($0) }
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "gone soon\r\n")
        _ = try expungeAll(alice, inbox())
        XCTAssertFalse(store.blobs.exists(h))
        try body.withUnsafeBytes { try store.blobs.write(h, $0) }   // as if the process died before removing it
        store = try open()
        XCTAssertEqual(try store.sweep().blobs, 1)
        XCTAssertFalse(store.blobs.exists(h))
    }

    /// The same bytes delivered again after an expunge get their file back and keep it.
    func testRedeliveryAfterExpungeKeepsItsFile() throws {
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "again\r\n")
        _ = try expungeAll(alice, inbox())
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "again\r\n")
        XCTAssertEqual(try store.read(user: alice.id, mailbox: inbox(), uid: 2, offset: 0, length: 100), Array("again\r\n".utf8))
        XCTAssertEqual(try store.sweep().blobs, 0)
    }

    /// Expunges racing deliveries of the same bytes never take a file a delivered row needs.
    func testConcurrentExpungeAndRedeliveryOfTheSameBody() throws {
        let body = "racing body\r\n", id = try inbox()
        let group = DispatchGroup()
        for _ in 0..<40 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                _ = try? deliverSync(self.store, "s@x.org", ["alice@example.org"], body)
            }
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                _ = try? self.expungeAll(self.alice, id)
            }
        }
        group.wait()
        for e in try store.view(user: alice.id, mailbox: id).entries {
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: e.uid, offset: 0, length: 100), Array(body.utf8))
        }
        XCTAssertEqual(try store.sweep().blobs, 0)
    }

    func testDeleteMailboxRemovesTombstonesAndKeywords() throws {
        let tmp = try store.createMailbox(user: alice.id, name: "Tmp", specialUse: "")
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "x\r\n")
        _ = try store.copy(user: alice.id, from: inbox(), uids: [1], to: tmp.id, move: false)
        _ = try store.copy(user: alice.id, from: inbox(), uids: [1], to: tmp.id, move: false)
        _ = try store.storeFlags(user: alice.id, mailbox: tmp.id, uids: [1], operation: .add, flags: .deleted, keywords: ["K"], unchangedSince: nil)
        _ = try store.expunge(user: alice.id, mailbox: tmp.id, uids: nil)
        XCTAssertEqual(try count("SELECT count(*) FROM expunged WHERE mailbox_id = \(tmp.id)"), 1)
        try store.deleteMailbox(user: alice.id, name: "Tmp")
        for table in ["expunged", "mailbox_keywords", "mailbox_messages"] {
            XCTAssertEqual(try count("SELECT count(*) FROM \(table) WHERE mailbox_id = \(tmp.id)"), 0, table)
        }
        XCTAssertEqual(try count("SELECT count(*) FROM messages"), 1, "INBOX still has the body")
    }

    /// APPEND shares the group commit with deliveries: fewer batches than messages, every
    /// acknowledged one on disk (reopened with fsync on), UIDs each used once.
    func testConcurrentAppendsShareTheGroupCommit() throws {
        store = try open(fsync: true)
        let n = 200, id = try inbox()
        let group = DispatchGroup(), lock = NSLock()
        nonisolated(unsafe) var uids: [UInt32] = []
        for i in 0..<n {
            group.enter()
            DispatchQueue.global().async {
                let body = Array("Subject: \(i)\r\n\r\nappended \(i)\r\n".utf8)
                if i % 2 == 0 {
                    self.store.append(user: self.alice.id, mailbox: id, flags: .seen, keywords: ["k\(i % 3)"], internalDate: nil, body: body) { r in
                        if case .success(let (a, _)) = r { lock.lock(); uids.append(a.uid); lock.unlock() }
                        group.leave()
                    }
                } else {
                    self.store.deliver(sender: "s@x.org", recipients: ["alice@example.org"], body: body, submitter: nil) { r in
                        if case .success(let o) = r, let c = o.changes.first { lock.lock(); uids.append(c.uidNext - 1); lock.unlock() }
                        group.leave()
                    }
                }
            }
        }
        group.wait()
        XCTAssertEqual(uids.sorted(), Array(1...UInt32(n)))
        XCTAssertLessThan(store.committer.batches, n, "appends and deliveries share transactions")
        store = try open(fsync: true)
        let v = try store.view(user: alice.id, mailbox: id)
        XCTAssertEqual(v.entries.map(\.uid), Array(1...UInt32(n)))
        XCTAssertEqual(Set(v.keywords), ["k0", "k1", "k2"])
    }

    /// A failing APPEND (someone else's mailbox) fails alone: deliveries in its batch go through.
    func testFailedAppendDoesNotFailItsBatch() throws {
        let bobs = try inbox(bob)
        let group = DispatchGroup(), lock = NSLock()
        nonisolated(unsafe) var delivered = 0, refused = 0
        for i in 0..<100 {
            group.enter()
            if i % 2 == 0 {
                store.append(user: alice.id, mailbox: bobs, flags: [], keywords: [], internalDate: nil, body: Array("no \(i)\r\n".utf8)) { r in
                    if case .failure(let e) = r, (e as? StoreError)?.code == .notFound { lock.lock(); refused += 1; lock.unlock() }
                    group.leave()
                }
            } else {
                store.deliver(sender: "s@x.org", recipients: ["alice@example.org"], body: Array("yes \(i)\r\n".utf8), submitter: nil) { r in
                    if case .success = r { lock.lock(); delivered += 1; lock.unlock() }
                    group.leave()
                }
            }
        }
        group.wait()
        XCTAssertEqual(refused, 50)
        XCTAssertEqual(delivered, 50)
        XCTAssertEqual(try store.mailbox(user: bob.id, name: "INBOX")?.messages, 0)
        XCTAssertEqual(try store.blobs.allHashes().count, 50, "the refused appends' files are gone")
        XCTAssertEqual(try store.sweep().blobs, 0)
    }

    /// Ranged reads read only the range: from the row (inline) or the blob file.
    func testReadRangesInlineAndFromFiles() throws {
        let inline = try SQLiteMailStore(dataDir: dir + "/inline", fsync: false, inlineMax: 1024)
        try inline.addDomain("example.org")
        try inline.addUser("al@example.org", password: "x")
        let u = try XCTUnwrap(try inline.user(named: "al@example.org"))
        let small = Array("Subject: s\r\n\r\nsmall body\r\n".utf8), large = (0..<5000).map { UInt8(48 + $0 % 10) }
        _ = try deliverSync(inline, "s@x.org", ["al@example.org"], String(decoding: small, as: UTF8.self))
        _ = try appendSync(inline, user: u.id, mailbox: try XCTUnwrap(try inline.mailbox(user: u.id, name: "INBOX")).id, body: large)
        let id = try XCTUnwrap(try inline.mailbox(user: u.id, name: "INBOX")).id
        XCTAssertEqual(try inline.blobs.allHashes().count, 1, "only the large one is a file")
        XCTAssertEqual(try inline.read(user: u.id, mailbox: id, uid: 1, offset: 3, length: 5), Array(small[3..<8]))
        XCTAssertEqual(try inline.read(user: u.id, mailbox: id, uid: 1, offset: small.count, length: 5), [])
        XCTAssertEqual(try inline.read(user: u.id, mailbox: id, uid: 2, offset: 4990, length: 100), Array(large[4990...]))
        let h = large.withUnsafeBytes { SHA256Digest.hash($0) }
        XCTAssertEqual(try inline.blobs.read(h, offset: 1000, length: 3), Array(large[1000..<1003]))
        XCTAssertEqual(try inline.blobs.read(h, offset: 9999, length: 3), [])
    }

    /// The prefilter keeps every message the keys can match (the evaluator decides exactly).
    func testSearchPrefilterKeepsEveryMatch() throws {
        let id = try inbox()
        for i in 1...6 { _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "Subject: \(i)\r\n\r\n" + String(repeating: "x", count: i * 100)) }
        _ = try store.storeFlags(user: alice.id, mailbox: id, uids: [2, 4], operation: .add, flags: [.seen, .flagged], keywords: ["Work"], unchangedSince: nil)
        let mod = try XCTUnwrap(try store.mailbox(user: alice.id, name: "INBOX")).highestModSeq
        func candidates(_ q: SearchQuery) throws -> [UInt32] {
            try store.pool.read { db in
                var clauses: [String] = [], args: [DatabaseValueConvertible] = []
                SQLiteMailStore.prefilter(q, keywords: try SQLiteMailStore.keywordNames(db, id), &clauses, &args)
                return try Int64.fetchAll(db, sql: """
                    SELECT mm.uid FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id WHERE mm.mailbox_id = ?
                    \(clauses.map { "AND (\($0))" }.joined(separator: " ")) ORDER BY mm.uid
                    """, arguments: StatementArguments([id] + args)).map { UInt32($0) }
            }
        }
        let day = Int(conformanceNow.timeIntervalSince1970) / 86_400
        let cases: [(SearchQuery, [UInt32])] = [
            (.all, [1, 2, 3, 4, 5, 6]),
            (.flags([.seen, .flagged], set: true), [2, 4]),
            (.flags(.seen, set: false), [1, 3, 5, 6]),
            (.keyword("WORK", set: true), [2, 4]),
            (.keyword("Work", set: false), [1, 3, 5, 6]),
            (.keyword("Unknown", set: true), []),
            (.keyword("Unknown", set: false), [1, 2, 3, 4, 5, 6]),
            (.uids([2...3, 6...9]), [2, 3, 6]),
            (.larger(350), [4, 5, 6]),
            (.smaller(350), [1, 2, 3]),
            (.modSeq(mod), [2, 4]),
            (.internalDate(.on, day: day), [1, 2, 3, 4, 5, 6]),
            (.internalDate(.before, day: day - 5), []),
            (.internalDate(.since, day: day + 5), []),
            (.and([.uids([1...4]), .flags(.seen, set: true), .larger(300)]), [4]),
            (.or(.uids([1...1]), .uids([2...2])), [1, 2, 3, 4, 5, 6]),   // not pushed: the evaluator decides
            (.not(.uids([1...1])), [1, 2, 3, 4, 5, 6]),
        ]
        for (q, want) in cases { XCTAssertEqual(try candidates(q), want, "\(q)") }
    }

    /// SEARCH reads its candidates page by page: every message of a large mailbox is seen once.
    func testSearchPagesThroughALargeMailbox() throws {
        let n = 3 * SQLiteMailStore.searchPage + 7, id = try inbox()
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "Subject: one\r\n\r\nx\r\n")
        try store.pool.write { db in
            let st = try db.makeStatement(sql: "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date) VALUES (?, ?, 1, 1, 0)")
            for uid in 2...n { try st.execute(arguments: [id, uid]) }
        }
        XCTAssertEqual(try store.search(user: alice.id, mailbox: id, query: .all), Array(1...UInt32(n)))
    }
}
