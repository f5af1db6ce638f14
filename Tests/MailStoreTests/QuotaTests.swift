// Quota (RFC 9208, issue 11) on the SQLite store: the usage counters equal COUNT/SUM over the
// rows after every path that adds or removes a message (delivery, APPEND, COPY, MOVE, EXPUNGE,
// POP3's expunge, mailbox delete, rename of INBOX, user removal), the migration's bootstrap,
// refusals with nothing stored (delivery per recipient, APPEND, COPY), lowered limits, the
// admin's limit syntax, and the RPC (QuotaGet for imapd's own user, UserQuota for admin).
import XCTest
import GRDB
import NIOCore
import MailIPC
import MailTesting
@testable import MailStore

final class QuotaTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, alice: UserRef!, bob: UserRef!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 0, clock: { conformanceNow })
        _ = try StoreConformance(store)
        alice = try store.user(named: "alice@example.org")
        bob = try store.user(named: "bob@example.org")
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    /// What the rows say: (bytes, messages) of `user`, counted the slow way.
    static func recount(_ db: Database, user: Int64) throws -> (UInt64, UInt64) {
        let r = try Row.fetchOne(db, sql: """
            SELECT coalesce(sum(m.size), 0), count(*) FROM mailboxes b JOIN mailbox_messages mm ON mm.mailbox_id = b.id
            JOIN messages m ON m.id = mm.message_id WHERE b.user_id = ?
            """, arguments: [user])!
        return (UInt64(r[0] as Int64), UInt64(r[1] as Int64))
    }

    func assertExact(_ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for u in [alice!, bob!] {
            let q = try store.quota(user: u.id)
            let (bytes, count) = try store.pool.read { try Self.recount($0, user: u.id) }
            XCTAssertEqual(q.bytes, bytes, "\(what): bytes of \(u.address)", file: file, line: line)
            XCTAssertEqual(q.messages, count, "\(what): messages of \(u.address)", file: file, line: line)
        }
    }

    func box(_ u: UserRef, _ name: String) throws -> Int64 { try XCTUnwrap(try store.mailbox(user: u.id, name: name)).id }
    func uids(_ u: UserRef, _ name: String) throws -> [UInt32] { try store.view(user: u.id, mailbox: box(u, name)).entries.map(\.uid) }
    func body(_ n: Int, _ tag: String = "") -> String { "Subject: \(tag)\r\n\r\n" + String(repeating: "x", count: n) + "\r\n" }

    func testCountersFollowEveryPath() throws {
        try assertExact("empty")
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], body(100, "one"))
        _ = try deliverSync(store, "s@x.org", ["alice@example.org", "bob@example.org"], body(2000, "shared"))   // one body, two copies
        _ = try deliverSync(store, "s@x.org", ["team@example.org"], body(50, "alias"))
        try assertExact("deliveries")
        XCTAssertEqual(try store.quota(user: alice.id).messages, 3)
        _ = try appendSync(store, user: alice.id, mailbox: box(alice, "Drafts"), body: Array(body(300, "draft").utf8))
        try assertExact("append")
        _ = try store.copy(user: alice.id, from: box(alice, "INBOX"), uids: uids(alice, "INBOX"), to: box(alice, "Archive"), move: false)
        try assertExact("copy")
        XCTAssertEqual(try store.quota(user: alice.id).messages, 7)
        _ = try store.copy(user: alice.id, from: box(alice, "Archive"), uids: [1, 2], to: box(alice, "Trash"), move: true)
        try assertExact("move")
        XCTAssertEqual(try store.quota(user: alice.id).messages, 7)
        _ = try store.storeFlags(user: alice.id, mailbox: box(alice, "Trash"), uids: [1], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)
        XCTAssertEqual(try store.expunge(user: alice.id, mailbox: box(alice, "Trash"), uids: nil).0, [1])
        try assertExact("expunge")
        XCTAssertEqual(try store.expunge(user: bob.id, mailbox: box(bob, "INBOX"), uids: [1], force: true).0, [1])   // POP3 DELE at QUIT
        try assertExact("pop3 expunge")
        try store.renameMailbox(user: alice.id, from: "INBOX", to: "Old")
        try assertExact("rename INBOX")
        try store.deleteMailbox(user: alice.id, name: "Old")
        try assertExact("mailbox delete")
        XCTAssertEqual(try store.quota(user: alice.id).messages, 3)
        let before = try store.quota(user: bob.id)
        try store.removeUser("alice@example.org")
        XCTAssertEqual(try store.quota(user: bob.id), before, "another user's removal leaves bob's counters alone")
        assertStoreError(.notFound, nil, try store.quota("alice@example.org"))
        XCTAssertEqual(try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM users WHERE used_messages != 0 AND id = ?", arguments: [self.alice.id]) }, 0)
    }

    /// A delivery that would cross a limit is refused for that recipient only: nothing stored
    /// for it (no row, no blob file), the other recipient gets it.
    func testOverQuotaDeliveryStoresNothingForThatRecipient() throws {
        try store.setQuota("alice@example.org", storage: .set(1000), messages: .keep)
        let o = try deliverSync(store, "s@x.org", ["alice@example.org", "bob@example.org"], body(2000, "big"))
        XCTAssertEqual(o.statuses, [.overQuota, .delivered])
        XCTAssertEqual(try uids(alice, "INBOX"), [])
        XCTAssertEqual(try uids(bob, "INBOX"), [1])
        XCTAssertEqual(try store.quota(user: alice.id).bytes, 0)
        // Alone, the refused body leaves no file behind (bob's copy kept the shared one above).
        let files = try store.blobs.allHashes().count
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["alice@example.org"], body(3000, "alone")).statuses, [.overQuota])
        XCTAssertEqual(try store.blobs.allHashes().count, files)
        // A small one still fits; an alias reaching alice and bob delivers to bob only.
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["alice@example.org"], body(100, "small")).statuses, [.delivered])
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["team@example.org"], body(2000, "team")).statuses, [.delivered])
        XCTAssertEqual(try uids(alice, "INBOX"), [1])
        XCTAssertEqual(try uids(bob, "INBOX"), [1, 2])
        try assertExact("after refusals")
    }

    /// One reply for all (smtpd): a recipient over quota refuses the delivery for every
    /// recipient, nothing stored, so the single 552/452 is true for all of them.
    func testAllOrNothingDeliveryStoresNothingWhenOneRecipientIsFull() throws {
        try store.setQuota("alice@example.org", storage: .set(1000), messages: .keep)
        let one = DeliveryOptions(allOrNothing: true)
        let o = try deliverSync(store, "s@x.org", ["bob@example.org", "alice@example.org"], body(2000, "big"), options: one)
        XCTAssertEqual(o.statuses, [.overQuota, .overQuota])
        XCTAssertEqual(try uids(alice, "INBOX"), [])
        XCTAssertEqual(try uids(bob, "INBOX"), [])
        // Room for both: delivered to both; an alias with room in one target is not refused.
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["bob@example.org", "alice@example.org"], body(100, "small"), options: one).statuses,
                       [.delivered, .delivered])
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["team@example.org"], body(2000, "team"), options: one).statuses, [.delivered])
        XCTAssertEqual(try uids(alice, "INBOX"), [1])
        XCTAssertEqual(try uids(bob, "INBOX"), [1, 2])
        try assertExact("after all-or-nothing refusals")
    }

    func testMessageLimitAndLoweredLimitThenExpungeFrees() throws {
        for i in 1...3 { _ = try deliverSync(store, "s@x.org", ["alice@example.org"], body(10, "\(i)")) }
        let q = try store.setQuota("alice@example.org", storage: .keep, messages: .set(2))   // lowered below usage
        XCTAssertEqual(q, QuotaUsage(bytes: q.bytes, messages: 3, storageLimit: nil, messageLimit: 2))
        XCTAssertTrue(q.isFull)
        XCTAssertTrue(try store.isFull(store.resolve("alice@example.org")))
        XCTAssertFalse(try store.isFull(store.resolve("team@example.org")), "an alias with more targets is decided at delivery")
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["alice@example.org"], body(1, "tiny")).statuses, [.overQuota])
        // Expunging two frees room for one.
        _ = try store.expunge(user: alice.id, mailbox: box(alice, "INBOX"), uids: [1, 2], force: true)
        XCTAssertFalse(try store.isFull(store.resolve("alice@example.org")))
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["alice@example.org"], body(1, "fits")).statuses, [.delivered])
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["alice@example.org"], body(1, "full")).statuses, [.overQuota])
        XCTAssertEqual(try store.setQuota("alice@example.org", storage: .keep, messages: .remove).messageLimit, nil)
        XCTAssertEqual(try deliverSync(store, "s@x.org", ["alice@example.org"], body(1, "free")).statuses, [.delivered])
        try assertExact("message limit")
    }

    func testAppendAndCopyOverQuotaAreRefusedMoveIsNot() throws {
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], body(600, "a"))
        let used = try store.quota(user: alice.id).bytes
        try store.setQuota("alice@example.org", storage: .set(used + 500), messages: .keep)
        assertStoreError(.overQuota, nil, try appendSync(store, user: alice.id, mailbox: box(alice, "Drafts"), body: Array(body(800, "d").utf8)))
        XCTAssertEqual(try uids(alice, "Drafts"), [])
        assertStoreError(.overQuota, nil, try store.copy(user: alice.id, from: box(alice, "INBOX"), uids: [1], to: box(alice, "Archive"), move: false))
        XCTAssertEqual(try uids(alice, "Archive"), [])
        XCTAssertEqual(try store.copy(user: alice.id, from: box(alice, "INBOX"), uids: [1], to: box(alice, "Archive"), move: true).0.destinationUIDs, [1])
        _ = try appendSync(store, user: alice.id, mailbox: box(alice, "Drafts"), body: Array(body(400, "fits").utf8))
        try assertExact("append/copy")
    }

    /// v9-quota counts what is already stored, and keeps a v1 `quota` column's value as the storage limit.
    func testMigrationBootstrapsCounters() throws {
        let old = try oldDatabase(dir + "/v7", upTo: "v7-user-spam", """
            INSERT INTO domains (id, name, created) VALUES (1, 'example.org', 0);
            INSERT INTO users (id, domain_id, local, local_key, password, created, quota) VALUES (1, 1, 'al', 'al', 'x', 0, 5000), (2, 1, 'bo', 'bo', 'x', 0, 0);
            INSERT INTO mailboxes (id, user_id, name, uidvalidity) VALUES (1, 1, 'INBOX', 1), (2, 1, 'Sent', 2), (3, 2, 'INBOX', 3);
            INSERT INTO messages (id, hash, size, info, created, body) VALUES (1, x'01', 100, x'', 0, x''), (2, x'02', 250, x'', 0, x'');
            INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date) VALUES (1, 1, 1, 1, 0), (2, 1, 2, 1, 0), (2, 2, 1, 1, 0), (3, 1, 2, 1, 0);
            """)
        let s = try SQLiteMailStore(dataDir: old, fsync: false)
        XCTAssertEqual(try s.quota(user: 1), QuotaUsage(bytes: 450, messages: 3, storageLimit: 5000, messageLimit: nil))
        XCTAssertEqual(try s.quota(user: 2), QuotaUsage(bytes: 250, messages: 1))
    }

    func testAdminLimitSyntax() {
        XCTAssertEqual(QuotaLimitChange.storage("2G"), .set(2 << 30))
        XCTAssertEqual(QuotaLimitChange.storage("500m"), .set(500 << 20))
        XCTAssertEqual(QuotaLimitChange.storage("1T"), .set(1 << 40))
        XCTAssertEqual(QuotaLimitChange.storage("1234"), .set(1234))
        XCTAssertEqual(QuotaLimitChange.storage("none"), .remove)
        for bad in ["", "G", "2X", "-1", "1.5G", "99999999999T", "２G"] { XCTAssertNil(QuotaLimitChange.storage(bad), bad) }
        XCTAssertEqual(QuotaLimitChange.messages("100000"), .set(100_000))
        XCTAssertEqual(QuotaLimitChange.messages("NONE"), .remove)
        XCTAssertNil(QuotaLimitChange.messages("10K"))
        XCTAssertEqual(QuotaUsage.kibibytes(0), 0)
        XCTAssertEqual(QuotaUsage.kibibytes(1), 1)
        XCTAssertEqual(QuotaUsage.kibibytes(2048), 2)
        XCTAssertEqual(QuotaUsage.kibibytes(2049), 3)
        XCTAssertTrue(QuotaUsage(bytes: 10, storageLimit: 10).allows(bytes: 0, messages: 0))
        XCTAssertFalse(QuotaUsage(bytes: 10, storageLimit: 10).allows(bytes: 1, messages: 1))
        XCTAssertFalse(QuotaUsage(bytes: .max, storageLimit: 10).allows(bytes: .max, messages: 1))
    }

    /// The RPC: admin sets and reads by address; imapd reads its own session's user only.
    func testRPC() throws {
        let instance = try InProcessStore()
        try instance.store.addDomain("example.org")
        try instance.store.addUser("alice@example.org", password: "secret")
        let admin = try instance.connect(.admin)
        let set = try admin.call(UserQuota("alice@example.org", storage: .set(2 << 30), messages: .set(100_000))).usage
        XCTAssertEqual(set, QuotaUsage(bytes: 0, messages: 0, storageLimit: 2 << 30, messageLimit: 100_000))
        XCTAssertEqual(try admin.call(UserQuota("alice@example.org", storage: .remove)).usage.storageLimit, nil)
        XCTAssertThrowsError(try admin.call(UserQuota("nobody@example.org"))) { XCTAssertEqual(($0 as? RPCError)?.code, .notFound) }
        let imap = try instance.connect(.imapd)
        let sid = try imap.call(Authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.7", service: "imap")).id
        XCTAssertEqual(try imap.call(QuotaGet(session: sid)).usage.messageLimit, 100_000)
        XCTAssertThrowsError(try imap.call(QuotaGet(session: sid + 1))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        XCTAssertThrowsError(try imap.call(UserQuota("alice@example.org"))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        // At RCPT: no room for the SIZE declared, then no room at all.
        let lmtp = try instance.connect(.lmtpd)
        _ = try admin.call(UserQuota("alice@example.org", storage: .set(1000)))
        XCTAssertEqual(try lmtp.call(LookupRecipient("alice@example.org", size: 1000)).status, .ok)
        XCTAssertEqual(try lmtp.call(LookupRecipient("alice@example.org", size: 1001)).status, .overQuota)
        _ = try admin.call(UserQuota("alice@example.org", messages: .set(0)))
        XCTAssertEqual(try lmtp.call(LookupRecipient("alice@example.org")).status, .overQuota)
    }
}
