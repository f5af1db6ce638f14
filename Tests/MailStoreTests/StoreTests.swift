// The SQLite store on a real file: users and mailboxes, recipient resolution, durable group
// commit, dedup, the orphan sweep and crypt(3) passwords.
import XCTest
import GRDB
import MailIPC
@testable import MailStore

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "postern-test-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

func deliverSync(_ s: SQLiteMailStore, _ sender: String, _ rcpts: [String], _ body: String, submitter: UserRef? = nil) throws -> DeliveryOutcome {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var out: Result<DeliveryOutcome, Error>!
    s.deliver(sender: sender, recipients: rcpts, body: Array(body.utf8), submitter: submitter) { out = $0; sem.signal() }
    sem.wait()
    return try out.get()
}

final class StoreTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: true, inlineMax: 0)   // bodies as files; see testSmallBodiesLiveInTheRow...
        try store.addDomain("Example.ORG")
        try store.addUser("alice@example.org", password: "secret")
        try store.addUser("bob@example.org", password: "hunter2")
        try store.addAlias("postmaster@example.org", target: "alice@example.org")
        try store.addAlias("team@example.org", target: "alice@example.org")
        try store.addAlias("team@example.org", target: "bob@example.org")
        try store.addAlias("team@example.org", target: "carol@elsewhere.net")
        try store.addAlias("loop1@example.org", target: "loop2@example.org")
        try store.addAlias("loop2@example.org", target: "loop1@example.org")
        try store.addDomain("catch.test")
        try store.addAlias("@catch.test", target: "bob@example.org")
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testUsersGetTheSpecialUseMailboxes() throws {
        let u = try XCTUnwrap(try store.user(named: "ALICE@example.org"))
        let m = try store.mailboxes(user: u.id)
        XCTAssertEqual(m.map(\.name), ["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"])
        XCTAssertEqual(m.map(\.specialUse), ["", "\\Drafts", "\\Sent", "\\Junk", "\\Trash", "\\Archive"])
        XCTAssertEqual(Set(m.map(\.uidValidity)).count, 6)
        XCTAssertTrue(m.allSatisfy { $0.uidNext == 1 && $0.messages == 0 })
        XCTAssertThrowsError(try store.addUser("alice@example.org", password: "x")) { XCTAssertEqual(($0 as? StoreError)?.code, .exists) }
        XCTAssertThrowsError(try store.addUser("x@nodomain.test", password: "x")) { XCTAssertEqual(($0 as? StoreError)?.code, .notFound) }
        XCTAssertThrowsError(try store.addDomain("bad domain")) { XCTAssertEqual(($0 as? StoreError)?.code, .invalid) }
    }

    func testResolution() throws {
        func users(_ a: String) throws -> [String]? {
            if case .deliver(let u, _) = try store.resolve(a) { return u.map(\.address) }
            return nil
        }
        XCTAssertEqual(try users("alice@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("Alice@EXAMPLE.org"), ["alice@example.org"])
        XCTAssertEqual(try users("alice+lists@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("postmaster@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("postmaster+x@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("anything@catch.test"), ["bob@example.org"])
        XCTAssertEqual(try store.resolve("team@example.org"),
                       .deliver(users: [UserRef(id: 1, address: "alice@example.org"), UserRef(id: 2, address: "bob@example.org")], remote: ["carol@elsewhere.net"]))
        XCTAssertEqual(try store.resolve("nobody@example.org"), .unknownUser)
        XCTAssertEqual(try store.resolve("alice@example.com"), .notLocal)
        XCTAssertEqual(try store.resolve("alice@example.org."), .notLocal)
        XCTAssertEqual(try store.resolve("loop1@example.org"), .unknownUser)   // a loop delivers nowhere, and ends
        XCTAssertEqual(try store.resolve("no-at-sign"), .unknownUser)
        XCTAssertEqual(try users("Postmaster"), ["alice@example.org"])   // RFC 5321 §4.5.1
        // Full case folding, as Postfix applies before a lookup: "weiß" is found as "weiss".
        try store.addUser("Weiß@example.org", password: "x")
        XCTAssertEqual(try users("weiss@example.org"), ["weiß@example.org"])
        XCTAssertEqual(try users("WEISS+tag@example.org"), ["weiß@example.org"])
        XCTAssertThrowsError(try store.addUser("weiss@example.org", password: "x")) { XCTAssertEqual(($0 as? StoreError)?.code, .exists) }
        XCTAssertEqual(try store.lookup(map: "senders", key: "weiss@example.org"), "weiß@example.org")
    }

    func testDeliveryAssignsUIDsAndQueuesRemoteAliasTargets() throws {
        let o = try deliverSync(store, "s@x.org", ["team@example.org", "nobody@example.org", "alice@example.org"], "Subject: t\r\n\r\nhi\r\n")
        XCTAssertEqual(o.statuses, [.ok, .unknownUser, .ok])
        XCTAssertEqual(o.changes.count, 2)   // alice once (alias + direct), bob once
        let alice = try store.user(named: "alice@example.org")!
        XCTAssertEqual(try store.mailboxes(user: alice.id)[0].messages, 1)
        XCTAssertEqual(try store.mailboxes(user: alice.id)[0].uidNext, 2)
        XCTAssertEqual(try store.queue().count, 1)
        XCTAssertTrue(try store.queue()[0].contains("<carol@elsewhere.net>"))
        var bodies: [[UInt8]] = []
        try store.export(user: alice.id, mailbox: "INBOX") { _, b in bodies.append(b) }
        XCTAssertEqual(bodies, [Array("Subject: t\r\n\r\nhi\r\n".utf8)])
    }

    func testConcurrentDeliveriesAreGroupCommittedAndAllDurable() throws {
        let n = 400
        let group = DispatchGroup()
        let lock = NSLock()
        var ok = 0
        for i in 0..<n {
            group.enter()
            DispatchQueue.global().async {
                self.store.deliver(sender: "s@x.org", recipients: ["alice@example.org"], body: Array("Subject: \(i)\r\n\r\nbody \(i)\r\n".utf8), submitter: nil) { r in
                    if case .success(let o) = r, o.statuses == [.ok] { lock.lock(); ok += 1; lock.unlock() }
                    group.leave()
                }
            }
        }
        group.wait()
        XCTAssertEqual(ok, n)
        XCTAssertLessThan(store.committer.batches, n, "deliveries should share transactions")
        // Reopen from disk: everything acknowledged is there, UIDs 1...n exactly once.
        store = nil
        let again = try SQLiteMailStore(dataDir: dir, fsync: true)
        let uids = try again.pool.read { db in try Int64.fetchAll(db, sql: "SELECT uid FROM mailbox_messages ORDER BY uid") }
        XCTAssertEqual(uids, Array(1...Int64(n)))
    }

    func testSubmissionQueuesRemoteRecipientsOnlyForTheSenderItsUserOwns() throws {
        let alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
        // unauthenticated: a remote recipient is refused, nothing queued (never an open relay)
        XCTAssertEqual(try deliverSync(store, "alice@example.org", ["x@remote.net"], "a\r\n").statuses, [.notLocal])
        XCTAssertEqual(try store.queue().count, 0)
        // authenticated as alice, with her own or her alias address: queued
        XCTAssertEqual(try deliverSync(store, "alice@example.org", ["x@remote.net", "bob@example.org"], "b\r\n", submitter: alice).statuses, [.ok, .ok])
        XCTAssertEqual(try deliverSync(store, "postmaster@example.org", ["y@remote.net"], "c\r\n", submitter: alice).statuses, [.ok])
        XCTAssertEqual(try store.queue().count, 2)
        // someone else's address: refused whole
        XCTAssertThrowsError(try deliverSync(store, "bob@example.org", ["z@remote.net"], "d\r\n", submitter: alice)) {
            XCTAssertEqual(($0 as? StoreError)?.code, .denied)
        }
        XCTAssertEqual(try store.queue().count, 2)
    }

    func testSmallBodiesLiveInTheRowAndLargeOnesInFiles() throws {
        let inline = try SQLiteMailStore(dataDir: dir + "/inline", fsync: true, inlineMax: 1024)
        try inline.addDomain("example.org")
        try inline.addUser("alice@example.org", password: "x")
        let small = "Subject: s\r\n\r\nsmall\r\n", large = "Subject: l\r\n\r\n" + String(repeating: "0123456789abcdef\r\n", count: 200)
        _ = try deliverSync(inline, "s@x.org", ["alice@example.org"], small)
        _ = try deliverSync(inline, "s@x.org", ["alice@example.org"], large)
        XCTAssertEqual(try inline.blobs.allHashes().count, 1, "only the large body is a file")
        XCTAssertEqual(try inline.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM messages WHERE body IS NOT NULL") }, 1)
        var bodies: [String] = []
        try inline.export(user: 1, mailbox: nil) { _, b in bodies.append(String(decoding: b, as: UTF8.self)) }
        XCTAssertEqual(bodies, [small, large])
        XCTAssertEqual(try inline.sweep().blobs, 0, "the sweep keeps the file of the large body")
    }

    func testIdenticalBodiesAreStoredOnce() throws {
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "same\r\n")
        _ = try deliverSync(store, "s@x.org", ["bob@example.org"], "same\r\n")
        XCTAssertEqual(try store.blobs.allHashes().count, 1)
        XCTAssertEqual(try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM messages") }, 1)
        XCTAssertEqual(try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM mailbox_messages") }, 2)
    }

    func testSweepRemovesOrphansAndKeepsReferencedBlobs() throws {
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "kept\r\n")
        let orphan = Array("orphan\r\n".utf8)
        let h = orphan.withUnsafeBytes { SHA256Digest.hash($0) }
        try orphan.withUnsafeBytes { try store.blobs.write(h, $0) }
        FileManager.default.createFile(atPath: dir + "/tmp/partial.123", contents: Data([1, 2, 3]))
        try store.pool.write { db in
            try db.execute(sql: "INSERT INTO messages (hash, size, info, created) VALUES (?, 1, x'00', 0)", arguments: [Data(repeating: 7, count: 32)])
        }
        let r = try store.sweep()
        XCTAssertEqual(r.blobs, 1)
        XCTAssertEqual(r.rows, 1)
        XCTAssertEqual(try store.blobs.allHashes().count, 1)
        XCTAssertFalse(store.blobs.exists(h))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp"), [])
    }

    func testPostfixLookups() throws {
        let cases: [(String, String, String?)] = [
            ("domains", "example.org", "OK"), ("domains", "EXAMPLE.ORG", "OK"), ("domains", "example.com", nil),
            ("recipients", "alice@example.org", "OK"), ("recipients", "alice+tag@example.org", "OK"),
            ("recipients", "postmaster@example.org", "OK"), ("recipients", "nobody@example.org", nil),
            ("recipients", "whoever@catch.test", "OK"), ("recipients", "@catch.test", "OK"), ("recipients", "@example.org", nil),
            ("recipients", "alice@example.com", nil),
            ("aliases", "team@example.org", "alice@example.org,bob@example.org,carol@elsewhere.net"),
            ("aliases", "@catch.test", "bob@example.org"), ("aliases", "alice@example.org", nil), ("aliases", "team", nil),
            ("senders", "alice@example.org", "alice@example.org"), ("senders", "alice+x@example.org", "alice@example.org"),
            ("senders", "postmaster@example.org", "alice@example.org"), ("senders", "team@example.org", "alice@example.org,bob@example.org"),
            ("senders", "anything@catch.test", nil), ("senders", "nobody@example.org", nil),
        ]
        for (map, key, want) in cases { XCTAssertEqual(try store.lookup(map: map, key: key), want, "\(map) \(key)") }
        XCTAssertThrowsError(try store.lookup(map: "nosuchmap", key: "x")) { XCTAssertEqual(($0 as? StoreError)?.code, .invalid) }
    }

    func testPasswords() throws {
        let alice = try store.authenticate("alice@example.org", password: "secret")
        XCTAssertEqual(alice?.address, "alice@example.org")
        XCTAssertNil(try store.authenticate("alice@example.org", password: "Secret"))
        XCTAssertNil(try store.authenticate("nobody@example.org", password: "secret"))
        let stored = try store.pool.read { try String.fetchOne($0, sql: "SELECT password FROM users WHERE local = 'alice'") }!
        XCTAssertTrue(stored.hasPrefix("$y$"), "yescrypt by default")
        for prefix in ["$6$", "$2b$"] {   // imported from Dovecot or /etc/shadow
            let h = try PasswordHash.make("pw", prefix: prefix)
            XCTAssertTrue(h.hasPrefix(prefix))
            XCTAssertTrue(PasswordHash.verify("pw", against: h))
            XCTAssertFalse(PasswordHash.verify("pw2", against: h))
        }
        XCTAssertFalse(PasswordHash.verify("pw", against: "*"))
        XCTAssertFalse(PasswordHash.verify("pw", against: ""))
        try store.setPassword("bob@example.org", password: "{CRYPT}" + (try PasswordHash.make("imported", prefix: "$6$")))
        XCTAssertNotNil(try store.authenticate("bob@example.org", password: "imported"))
    }
}
