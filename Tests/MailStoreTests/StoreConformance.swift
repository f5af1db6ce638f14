// The store conformance suite (DESIGN §3): what every MailStore implementation must do, written
// against the protocols only (AccountStore, DeliveryStore, MailboxStore, QueueStore) and the
// Postfix maps above them. SQLite runs it below; a PostgreSQL store adds one class the same way.
import XCTest
import Foundation
import LookupProtocol
import MailStore
import StoreServer

func deliverSync(_ s: any DeliveryStore, _ sender: String, _ rcpts: [String], _ body: String, submitter: UserRef? = nil,
                 options: DeliveryOptions = DeliveryOptions()) throws -> DeliveryOutcome {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var out: Result<DeliveryOutcome, Error>!
    s.deliver(sender: sender, recipients: rcpts, body: Array(body.utf8), submitter: submitter, options: options) { out = $0; sem.signal() }
    sem.wait()
    return try out.get()
}

func deliverStagedSync(_ s: any DeliveryStore, _ sender: String, _ rcpts: [String], _ staged: any StagedBody, submitter: UserRef? = nil) throws -> DeliveryOutcome {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var out: Result<DeliveryOutcome, Error>!
    s.deliver(sender: sender, recipients: rcpts, staged: staged, submitter: submitter) { out = $0; sem.signal() }
    sem.wait()
    return try out.get()
}

/// A body staged piece by piece, as the store server writes one from DeliverChunk frames.
func stage(_ s: any DeliveryStore, _ body: [UInt8], piece: Int = 4096) throws -> any StagedBody {
    let staged = try s.stageBody()
    var i = 0
    while i < body.count {
        try body[i..<min(i + piece, body.count)].withUnsafeBytes { try staged.append($0) }
        i += piece
    }
    return staged
}

/// The clock the suite gives a store: a fixed time it can check for.
let conformanceNow = Date(timeIntervalSince1970: 1_790_000_000)

struct StoreConformance {
    let store: any MailStore

    /// The fixture every check starts from.
    init(_ store: any MailStore) throws {
        self.store = store
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

    func usersGetTheSpecialUseMailboxes() throws {
        let u = try XCTUnwrap(try store.user(named: "ALICE@example.org"))
        let m = try store.mailboxes(user: u.id)
        XCTAssertEqual(m.map(\.name), ["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"])
        XCTAssertEqual(m.map(\.specialUse), ["", "\\Drafts", "\\Sent", "\\Junk", "\\Trash", "\\Archive"])
        XCTAssertEqual(Set(m.map(\.uidValidity)).count, 6)
        XCTAssertTrue(m.allSatisfy { $0.uidNext == 1 && $0.messages == 0 })
        XCTAssertEqual(try store.mailbox(user: u.id, name: "Junk")?.specialUse, "\\Junk")
        XCTAssertNil(try store.mailbox(user: u.id, name: "Nope"))
        XCTAssertThrowsError(try store.addUser("alice@example.org", password: "x")) { XCTAssertEqual(($0 as? StoreError)?.code, .exists) }
        XCTAssertThrowsError(try store.addUser("x@nodomain.test", password: "x")) { XCTAssertEqual(($0 as? StoreError)?.code, .notFound) }
        XCTAssertThrowsError(try store.addDomain("bad domain")) { XCTAssertEqual(($0 as? StoreError)?.code, .invalid) }
        XCTAssertEqual(try store.domains(), ["catch.test", "example.org"])
        XCTAssertEqual(try store.users(domain: "example.org"), ["alice@example.org", "bob@example.org"])
        XCTAssertEqual(try store.aliases(domain: "catch.test"), [AliasRecord(source: "@catch.test", target: "bob@example.org")])
    }

    func resolution() throws {
        func users(_ a: String) throws -> [String]? {
            if case .deliver(let u, _) = try store.resolve(a) { return u.map(\.address) }
            return nil
        }
        let alice = try XCTUnwrap(try store.user(named: "alice@example.org")), bob = try XCTUnwrap(try store.user(named: "bob@example.org"))
        XCTAssertEqual(try users("alice@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("Alice@EXAMPLE.org"), ["alice@example.org"])
        XCTAssertEqual(try users("alice+lists@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("postmaster@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("postmaster+x@example.org"), ["alice@example.org"])
        XCTAssertEqual(try users("anything@catch.test"), ["bob@example.org"])
        XCTAssertEqual(try store.resolve("team@example.org"), .deliver(users: [alice, bob], remote: ["carol@elsewhere.net"]))
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
        XCTAssertEqual(try store.senderLogins("weiss@example.org"), ["weiß@example.org"])
    }

    /// A NUL never reaches SQLite's C strings, where it would cut the key short and match.
    func nulNeverMatches() throws {
        XCTAssertEqual(try store.resolve("alice@example.org\0x"), .unknownUser)
        XCTAssertEqual(try store.resolve("alice\0@example.org"), .unknownUser)
        XCTAssertEqual(try store.resolve("alice@example.org\0"), .unknownUser)
        XCTAssertFalse(try store.hasDomain("example.org\0.evil"))
        XCTAssertNil(try store.user(named: "alice@example.org\0"))
        let maps = PostfixMaps(accounts: store)
        for map in LookupMap.allCases { XCTAssertNil(try? maps.lookup(map, key: "alice@example.org\0.x") ?? nil, "\(map)") }
        XCTAssertEqual(try store.senderLogins("alice@example.org\0"), [])
    }

    func deliveryAssignsUIDsAndQueuesRemoteAliasTargets() throws {
        let o = try deliverSync(store, "s@x.org", ["team@example.org", "nobody@example.org", "alice@example.org"], "Subject: t\r\n\r\nhi\r\n")
        XCTAssertEqual(o.statuses, [.delivered, .unknownUser, .delivered])
        XCTAssertEqual(o.changes.count, 2)   // alice once (alias + direct), bob once
        let alice = try store.user(named: "alice@example.org")!
        let inbox = try XCTUnwrap(try store.mailbox(user: alice.id, name: "INBOX"))
        XCTAssertEqual(inbox.messages, 1)
        XCTAssertEqual(inbox.uidNext, 2)
        XCTAssertEqual(o.changes.first { $0.user == alice.id }?.mailboxID, inbox.id)
        XCTAssertEqual(o.changes.first { $0.user == alice.id }?.highestModSeq, inbox.highestModSeq)
        let q = try store.queue()
        XCTAssertEqual(q.map(\.recipient), ["carol@elsewhere.net"])
        XCTAssertEqual(q[0].sender, "s@x.org")
        XCTAssertEqual(q[0].created, Int64(conformanceNow.timeIntervalSince1970), "dates come from the injected clock")
        let listed = try store.messages(user: alice.id, mailbox: "INBOX")
        XCTAssertEqual(listed.map(\.uid), [1])
        XCTAssertEqual(listed[0].internalDate, Int64(conformanceNow.timeIntervalSince1970))
        XCTAssertEqual(try listed.map { try store.body($0.body) }, [Array("Subject: t\r\n\r\nhi\r\n".utf8)])
        XCTAssertThrowsError(try store.messages(user: alice.id, mailbox: "Nope")) { XCTAssertEqual(($0 as? StoreError)?.code, .notFound) }
    }

    func submissionQueuesRemoteRecipientsOnlyForTheSenderItsUserOwns() throws {
        let alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
        // unauthenticated: a remote recipient is refused, nothing queued (never an open relay)
        XCTAssertEqual(try deliverSync(store, "alice@example.org", ["x@remote.net"], "a\r\n").statuses, [.notLocal])
        XCTAssertEqual(try store.queue().count, 0)
        // authenticated as alice, with her own or her alias address: queued
        XCTAssertEqual(try deliverSync(store, "alice@example.org", ["x@remote.net", "bob@example.org"], "b\r\n", submitter: alice).statuses, [.delivered, .delivered])
        XCTAssertEqual(try deliverSync(store, "postmaster@example.org", ["y@remote.net"], "c\r\n", submitter: alice).statuses, [.delivered])
        XCTAssertEqual(try store.queue().count, 2)
        // someone else's address: refused whole
        XCTAssertThrowsError(try deliverSync(store, "bob@example.org", ["z@remote.net"], "d\r\n", submitter: alice)) {
            XCTAssertEqual(($0 as? StoreError)?.code, .denied)
        }
        XCTAssertEqual(try store.queue().count, 2)
    }

    func postfixLookups() throws {
        let maps = PostfixMaps(accounts: store)
        let cases: [(LookupMap, String, String?)] = [
            (.domains, "example.org", "OK"), (.domains, "EXAMPLE.ORG", "OK"), (.domains, "example.com", nil),
            (.recipients, "alice@example.org", "OK"), (.recipients, "alice+tag@example.org", "OK"),
            (.recipients, "postmaster@example.org", "OK"), (.recipients, "nobody@example.org", nil),
            (.recipients, "whoever@catch.test", "OK"), (.recipients, "@catch.test", "OK"), (.recipients, "@example.org", nil),
            (.recipients, "alice@example.com", nil),
            (.aliases, "team@example.org", "alice@example.org,bob@example.org,carol@elsewhere.net"),
            (.aliases, "@catch.test", "bob@example.org"), (.aliases, "alice@example.org", nil), (.aliases, "team", nil),
            (.senders, "alice@example.org", "alice@example.org"), (.senders, "alice+x@example.org", "alice@example.org"),
            (.senders, "postmaster@example.org", "alice@example.org"), (.senders, "team@example.org", "alice@example.org,bob@example.org"),
            (.senders, "anything@catch.test", nil), (.senders, "nobody@example.org", nil),
        ]
        for (map, key, want) in cases { XCTAssertEqual(try maps.lookup(map, key: key), want, "\(map) \(key)") }
        // (An unknown map name never reaches the store: the RPC codec refuses it, CodecTests.)
    }

    func authentication() throws {
        let alice = try store.authenticate("alice@example.org", password: "secret")
        XCTAssertEqual(alice?.address, "alice@example.org")
        XCTAssertNil(try store.authenticate("alice@example.org", password: "Secret"))
        XCTAssertNil(try store.authenticate("nobody@example.org", password: "secret"))
        XCTAssertNil(try store.authenticate("no-at-sign", password: "secret"))
        // a crypt(3) hash imported from Dovecot or /etc/shadow
        try store.setPassword("bob@example.org", password: "{CRYPT}$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/")
        XCTAssertNotNil(try store.authenticate("bob@example.org", password: "password"))
        XCTAssertThrowsError(try store.setPassword("bob@example.org", password: "")) { XCTAssertEqual(($0 as? StoreError)?.code, .invalid) }
    }

    /// DESIGN §3: a body staged as it arrives is delivered whole, small or large; a discarded
    /// one, or one whose delivery is refused, leaves nothing behind.
    func stagedDeliveryAndDiscard() throws {
        let alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
        var bodies: [[UInt8]] = []
        for size in [0, 100, 300_000] {
            let body = Array("Subject: staged \(size)\r\n\r\n".utf8) + (0..<size).map { UInt8(65 + $0 % 26) }
            let staged = try stage(store, body)
            XCTAssertEqual(staged.size, body.count)
            XCTAssertEqual(try deliverStagedSync(store, "s@x.org", ["alice@example.org"], staged).statuses, [.delivered])
            bodies.append(body)
        }
        // the same content again: a second message, the same bytes
        XCTAssertEqual(try deliverStagedSync(store, "s@x.org", ["alice@example.org"], try stage(store, bodies[2], piece: 65536)).statuses, [.delivered])
        bodies.append(bodies[2])
        // discarded: nothing delivered, and it cannot be delivered any more (discard is idempotent)
        let dropped = try stage(store, bodies[2])
        dropped.discard(); dropped.discard()
        XCTAssertThrowsError(try deliverStagedSync(store, "s@x.org", ["alice@example.org"], dropped))
        // refused whole (a sender alice does not own): nothing delivered or queued
        XCTAssertThrowsError(try deliverStagedSync(store, "bob@example.org", ["z@remote.net"], try stage(store, bodies[1]), submitter: alice)) {
            XCTAssertEqual(($0 as? StoreError)?.code, .denied)
        }
        let listed = try store.messages(user: alice.id, mailbox: "INBOX")
        XCTAssertEqual(listed.map(\.uid), [1, 2, 3, 4])
        XCTAssertEqual(try listed.map { try store.body($0.body) }, bodies)
        XCTAssertEqual(listed.map(\.size), bodies.map { UInt64($0.count) })
        XCTAssertEqual(try store.queue().count, 0)
    }

    func changesSinceAModSeq() throws {
        let alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
        let before = try XCTUnwrap(try store.mailbox(user: alice.id, name: "INBOX"))
        for i in 0..<5 { _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "Subject: \(i)\r\n\r\n\(i)\r\n") }
        let all = try XCTUnwrap(try store.changes(mailbox: before.id, since: before.highestModSeq, limit: 100))
        XCTAssertEqual(all.messages.map(\.uid), [1, 2, 3, 4, 5])
        XCTAssertTrue(all.complete)
        XCTAssertEqual(all.summary.messages, 5)
        XCTAssertEqual(all.summary.highestModSeq, all.messages.last?.modSeq)
        let part = try XCTUnwrap(try store.changes(mailbox: before.id, since: all.messages[1].modSeq, limit: 2))
        XCTAssertEqual(part.messages.map(\.uid), [3, 4])
        XCTAssertFalse(part.complete)
        XCTAssertEqual(try store.changes(mailbox: before.id, since: all.summary.highestModSeq, limit: 10)?.messages, [])
        XCTAssertNil(try store.changes(mailbox: -1, since: 0, limit: 10))
    }
}

final class SQLiteStoreConformanceTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = tempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }
    func suite() throws -> StoreConformance {
        try StoreConformance(SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 0, clock: { conformanceNow }))
    }

    func testUsersGetTheSpecialUseMailboxes() throws { try suite().usersGetTheSpecialUseMailboxes() }
    func testResolution() throws { try suite().resolution() }
    func testNULNeverMatches() throws { try suite().nulNeverMatches() }
    func testDeliveryAssignsUIDsAndQueuesRemoteAliasTargets() throws { try suite().deliveryAssignsUIDsAndQueuesRemoteAliasTargets() }
    func testSubmissionQueuesRemoteRecipientsOnlyForTheSenderItsUserOwns() throws { try suite().submissionQueuesRemoteRecipientsOnlyForTheSenderItsUserOwns() }
    func testPostfixLookups() throws { try suite().postfixLookups() }
    func testAuthentication() throws { try suite().authentication() }
    func testChangesSinceAModSeq() throws { try suite().changesSinceAModSeq() }
    func testStagedDeliveryAndDiscard() throws {
        try suite().stagedDeliveryAndDiscard()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp"), [], "no staged file left")
    }
    /// Small staged bodies go into their row: the same checks with bodies inline.
    func testStagedDeliveryInline() throws {
        try StoreConformance(SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 1 << 20, clock: { conformanceNow })).stagedDeliveryAndDiscard()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp"), [], "no staged file left")
    }
}
