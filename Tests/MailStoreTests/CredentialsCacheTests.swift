// The store's credentials cache (CredentialsCache.swift) through SQLiteMailStore.authenticate,
// clock injected: a hit skips the stored hash, an entry expires with its TTL, a password change
// or removal forgets it at once, failures are never kept, TTL 0 keeps nothing.
import XCTest
import GRDB
@testable import MailStore

final class CredentialsCacheTests: XCTestCase {
    final class Clock: @unchecked Sendable { var t = Date(timeIntervalSince1970: 1_790_000_000) }
    var dir = "", store: SQLiteMailStore!, clock = Clock()

    func open(ttl: TimeInterval) throws {
        dir = tempDir()
        let clock = self.clock
        store = try SQLiteMailStore(dataDir: dir, fsync: false, authCacheTTL: ttl, clock: { clock.t })
        try store.addDomain("example.org")
        try store.addUser("Alice@example.org", password: "{CRYPT}" + PasswordHash.make("secret", prefix: "$5$"))
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    /// Replaces alice's stored hash behind the store's back: only a cache hit still logs in.
    func spoilHash() throws {
        try store.pool.write { db in try db.execute(sql: "UPDATE users SET password = ?", arguments: [try PasswordHash.make("other", prefix: "$5$")]) }
    }

    func testHitSkipsTheHashAndExpiresWithTheTTL() throws {
        try open(ttl: 300)
        XCTAssertEqual(try store.authenticate("alice@example.org", password: "secret")?.address, "alice@example.org")
        XCTAssertEqual(store.credentials.count, 1)
        try spoilHash()
        XCTAssertEqual(try store.authenticate("ALICE@Example.org", password: "secret")?.address, "alice@example.org", "a hit, any case")
        XCTAssertNil(try store.authenticate("alice@example.org", password: "Secret"), "another password is checked against the hash")
        clock.t += 299
        XCTAssertNotNil(try store.authenticate("alice@example.org", password: "secret"))
        clock.t += 2
        XCTAssertNil(try store.authenticate("alice@example.org", password: "secret"), "expired: the (spoiled) hash decides")
        XCTAssertEqual(store.credentials.count, 0)
    }

    func testFailuresAreNeverKept() throws {
        try open(ttl: 300)
        XCTAssertNil(try store.authenticate("alice@example.org", password: "wrong"))
        XCTAssertNil(try store.authenticate("nobody@example.org", password: "secret"))
        XCTAssertEqual(store.credentials.count, 0)
    }

    func testPasswordChangeAndRemovalForget() throws {
        try open(ttl: 300)
        XCTAssertNotNil(try store.authenticate("alice@example.org", password: "secret"))
        try store.setPassword("alice@example.org", password: "{CRYPT}" + PasswordHash.make("new", prefix: "$5$"))
        XCTAssertNil(try store.authenticate("alice@example.org", password: "secret"), "old password refused at once")
        XCTAssertNotNil(try store.authenticate("alice@example.org", password: "new"))
        try store.removeUser("alice@example.org")
        XCTAssertNil(try store.authenticate("alice@example.org", password: "new"), "removed user")
        try store.addUser("alice@example.org", password: "{CRYPT}" + PasswordHash.make("new", prefix: "$5$"))
        XCTAssertNotNil(try store.authenticate("alice@example.org", password: "new"))
        try store.removeDomain("example.org")
        XCTAssertNil(try store.authenticate("alice@example.org", password: "new"), "removed domain")
    }

    func testVerificationStartedBeforeAChangeIsNotKept() {
        let c = CredentialsCache(ttl: 300), now = Date()
        let user = UserRef(id: 1, address: "a@x.org")
        let started = c.currentGeneration
        c.forget("a@x.org")                       // the password changed while crypt ran
        c.keep("a@x.org", password: "old", user: user, generation: started, now: now)
        XCTAssertNil(c.user("a@x.org", password: "old", now: now))
        c.keep("a@x.org", password: "new", user: user, generation: c.currentGeneration, now: now)
        XCTAssertEqual(c.user("a@x.org", password: "new", now: now), user)
        XCTAssertNil(c.user("a@x.org", password: "", now: now))
    }

    func testZeroTTLKeepsNothing() throws {
        try open(ttl: 0)
        XCTAssertNotNil(try store.authenticate("alice@example.org", password: "secret"))
        XCTAssertEqual(store.credentials.count, 0)
        try spoilHash()
        XCTAssertNil(try store.authenticate("alice@example.org", password: "secret"))
    }
}
