// What only the SQLite store has: durable group commit, bodies inline or as files, dedup, the
// orphan sweep and crypt(3) hashes. What every store must do is in StoreConformance.swift.
import XCTest
import GRDB
@testable import MailStore

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "postern-test-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

final class StoreTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: true, inlineMax: 0)   // bodies as files; see testSmallBodiesLiveInTheRow...
        _ = try StoreConformance(store)     // the suite's fixture: domains, users, aliases
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testConcurrentDeliveriesAreGroupCommittedAndAllDurable() throws {
        let n = 400
        let group = DispatchGroup()
        let lock = NSLock()
        var ok = 0
        for i in 0..<n {
            group.enter()
            DispatchQueue.global().async {
                self.store.deliver(sender: "s@x.org", recipients: ["alice@example.org"], body: Array("Subject: \(i)\r\n\r\nbody \(i)\r\n".utf8), submitter: nil) { r in
                    if case .success(let o) = r, o.statuses == [.delivered] { lock.lock(); ok += 1; lock.unlock() }
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

    func testSmallBodiesLiveInTheRowAndLargeOnesInFiles() throws {
        let inline = try SQLiteMailStore(dataDir: dir + "/inline", fsync: true, inlineMax: 1024)
        try inline.addDomain("example.org")
        try inline.addUser("alice@example.org", password: "x")
        let small = "Subject: s\r\n\r\nsmall\r\n", large = "Subject: l\r\n\r\n" + String(repeating: "0123456789abcdef\r\n", count: 200)
        _ = try deliverSync(inline, "s@x.org", ["alice@example.org"], small)
        _ = try deliverSync(inline, "s@x.org", ["alice@example.org"], large)
        XCTAssertEqual(try inline.blobs.allHashes().count, 1, "only the large body is a file")
        XCTAssertEqual(try inline.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM messages WHERE body IS NOT NULL") }, 1)
        let bodies = try inline.messages(user: 1, mailbox: nil).map { String(decoding: try inline.body($0.body), as: UTF8.self) }
        XCTAssertEqual(bodies, [small, large])
        XCTAssertEqual(try inline.sweep().blobs, 0, "the sweep keeps the file of the large body")
    }

    /// A staged body stays in memory up to inline_max (it ends up in its row: no file is ever
    /// created for it) and spills to a file in tmp/ past it.
    func testStagedBodiesSpillToAFileOnlyPastInlineMax() throws {
        let s = try SQLiteMailStore(dataDir: dir + "/spill", fsync: false, inlineMax: 1024)
        let tmp = dir + "/spill/tmp"
        func files() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] }
        let small = try XCTUnwrap(try s.stageBody() as? StagedBlob)
        try Array(repeating: UInt8(65), count: 1000).withUnsafeBytes { try small.append($0) }
        XCTAssertFalse(small.isOnDisk)
        XCTAssertEqual(files(), [])
        let large = try XCTUnwrap(try s.stageBody() as? StagedBlob)
        try Array(repeating: UInt8(66), count: 1000).withUnsafeBytes { try large.append($0) }
        try Array(repeating: UInt8(67), count: 1000).withUnsafeBytes { try large.append($0) }
        XCTAssertTrue(large.isOnDisk)
        XCTAssertEqual(files().count, 1)
        XCTAssertEqual(try large.withMappedBytes { Array($0) }, Array(repeating: 66, count: 1000) + Array(repeating: 67, count: 1000))
        small.discard(); large.discard()
        XCTAssertEqual(files(), [])
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

    func testPasswordHashes() throws {
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
    }
}
