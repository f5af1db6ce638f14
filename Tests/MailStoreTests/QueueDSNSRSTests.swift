// Queue rows: origin and the client's RFC 3461 parameters; SRS as postsrsd does it (a forward's
// sender rewritten, a bounce to a verified SRS address resolved to the original sender; forged or
// over 21 days old: unknown user); srs.key made once with mode 0600.
import XCTest
import GRDB
import MailSyntax
@testable import MailStore

final class QueueDSNSRSTests: XCTestCase {
    /// The store's clock, moved by the tests.
    final class Clock: @unchecked Sendable {
        private let lock = NSLock()
        private var t = Date(timeIntervalSince1970: 1_800_000_000)
        var now: Date { lock.withLock { t } }
        func advance(days: Double) { lock.withLock { t += days * 86_400 } }
    }

    struct QueueRow: Equatable {
        var sender: String, recipient: String, origin: Int, notify: Int?, orcpt: String, ret: String, envid: String
    }

    let key = [UInt8](repeating: 7, count: 32)
    let srsDomain = "mail.example.net"
    var dir = "", store: SQLiteMailStore!, clock = Clock()

    override func setUpWithError() throws {
        dir = tempDir()
        let clock = self.clock
        store = try SQLiteMailStore(dataDir: dir, fsync: false, clock: { clock.now })
        _ = try StoreConformance(store)              // example.org: alice, bob, team (incl. carol@elsewhere.net)
        try store.addAlias("fwd@example.org", target: "friend@remote.example")
        store.configureSRS(.store(key: key, domain: srsDomain))
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func rows() throws -> [QueueRow] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT sender, recipient, origin, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid FROM queue ORDER BY id").map {
                QueueRow(sender: $0[0], recipient: $0[1], origin: $0[2], notify: $0[3], orcpt: $0[4], ret: $0[5], envid: $0[6])
            }
        }
    }

    func deliver(_ sender: String, _ rcpts: [String], submitter: UserRef? = nil, options: DeliveryOptions = DeliveryOptions()) throws -> DeliveryOutcome {
        let sem = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var out: Result<DeliveryOutcome, Error>?
        store.deliver(sender: sender, recipients: rcpts, body: Array("Subject: t\r\n\r\nhi\r\n".utf8), submitter: submitter, options: options) {
            out = $0; sem.signal()
        }
        sem.wait()
        return try out!.get()
    }

    func srsForward(_ sender: String) -> String {
        let a = SQLiteMailStore.srsAddress(sender)!
        let f = store.srs!.forward(a, at: Int64(clock.now.timeIntervalSince1970))
        return "\(f.localPart)@\(f.domain)"
    }

    func testSubmissionQueuesTheClientsDSNParameters() throws {
        let alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
        let options = DeliveryOptions(envelopeDSN: QueueEnvelopeDSN(ret: "HDRS", envid: "abc"),
                                      recipientDSN: [QueueRecipientDSN(notify: 3, orcpt: "rfc822;x@remote.example"),
                                                     QueueRecipientDSN(), QueueRecipientDSN(notify: 0)])
        let out = try deliver("alice@example.org", ["x@remote.example", "bob@example.org", "fwd@example.org"], submitter: alice, options: options)
        XCTAssertEqual(out.statuses, [.delivered, .delivered, .delivered])
        XCTAssertEqual(try rows(), [
            QueueRow(sender: "alice@example.org", recipient: "x@remote.example", origin: 0, notify: 3, orcpt: "rfc822;x@remote.example",
                     ret: "HDRS", envid: "abc"),
            // An alias's remote target takes its recipient's parameters; a submission keeps its sender.
            QueueRow(sender: "alice@example.org", recipient: "friend@remote.example", origin: 0, notify: 0, orcpt: "", ret: "HDRS", envid: "abc"),
        ])
        // Without parameters: NULL notify, empty strings.
        _ = try deliver("alice@example.org", ["y@remote.example"], submitter: alice)
        XCTAssertEqual(try rows().last, QueueRow(sender: "alice@example.org", recipient: "y@remote.example", origin: 0, notify: nil,
                                                 orcpt: "", ret: "", envid: ""))
    }

    func testAForwardLeavesWithTheSRS0RewriteOfItsSender() throws {
        let out = try deliver("Joe.User@Sender.example", ["team@example.org", "fwd@example.org"])
        XCTAssertEqual(out.statuses, [.delivered, .delivered])
        let srs0 = srsForward("Joe.User@Sender.example")
        XCTAssertTrue(srs0.hasPrefix("SRS0="), srs0)
        XCTAssertTrue(srs0.hasSuffix("=Sender.example=Joe.User@\(srsDomain)"), srs0)
        XCTAssertEqual(try rows(), [
            QueueRow(sender: srs0, recipient: "carol@elsewhere.net", origin: 1, notify: nil, orcpt: "", ret: "", envid: ""),
            QueueRow(sender: srs0, recipient: "friend@remote.example", origin: 1, notify: nil, orcpt: "", ret: "", envid: ""),
        ])
        // The local members of the alias got the message with its real sender.
        XCTAssertEqual(try store.pool.read { try String.fetchAll($0, sql: "SELECT DISTINCT sender FROM mailbox_messages") }, ["Joe.User@Sender.example"])
        // A null sender stays null; a sender already in the SRS domain is kept.
        _ = try deliver("", ["fwd@example.org"])
        _ = try deliver("someone@\(srsDomain)", ["fwd@example.org"])
        XCTAssertEqual(try rows().suffix(2).map(\.sender), ["", "someone@\(srsDomain)"])
        XCTAssertEqual(try rows().suffix(2).map(\.origin), [1, 1])
    }

    func testWithoutSRSTheSenderIsKept() throws {
        store.configureSRS(nil)
        _ = try deliver("joe@sender.example", ["fwd@example.org"])
        XCTAssertEqual(try rows().map(\.sender), ["joe@sender.example"])
        XCTAssertEqual(try store.resolve("SRS0=abcd=LB=sender.example=joe@\(srsDomain)"), .notLocal)
    }

    func testABounceToAValidSRSAddressGoesToTheOriginalSender() throws {
        let srs0 = srsForward("Joe.User@Sender.example")
        XCTAssertEqual(try store.resolve(srs0), .deliver(users: [], remote: ["Joe.User@Sender.example"]))
        XCTAssertEqual(try store.resolve(srs0.uppercased().replacingOccurrences(of: "SRS0=", with: "srs0=")),
                       .deliver(users: [], remote: ["JOE.USER@SENDER.EXAMPLE"]), "hash and tag compare case-insensitively")
        // The bounce arrives on port 25 (no submitter): queued to the original sender, null sender kept.
        clock.advance(days: 20)
        let out = try deliver("", [srs0])
        XCTAssertEqual(out.statuses, [.delivered])
        XCTAssertEqual(try rows(), [QueueRow(sender: "", recipient: "Joe.User@Sender.example", origin: 1, notify: nil, orcpt: "", ret: "", envid: "")])
        // An original sender that is local is delivered locally.
        let local = srsForward("alice@example.org")
        guard case .deliver(let users, let remote) = try store.resolve(local) else { return XCTFail("not resolved") }
        XCTAssertEqual(users.map(\.address), ["alice@example.org"])
        XCTAssertEqual(remote, [])
        // SRS1 (a re-forwarded SRS0 of another forwarder) reverses to that forwarder's address.
        let srs1 = srsForward("SRS0=abcd=LB=example.com=joe@orig-fwd.example")
        XCTAssertTrue(srs1.hasPrefix("SRS1="), srs1)
        XCTAssertEqual(try store.resolve(srs1), .deliver(users: [], remote: ["SRS0=abcd=LB=example.com=joe@orig-fwd.example"]))
    }

    func testForgedOrExpiredSRSAddressesAreUnknownUsers() throws {
        let srs0 = srsForward("joe@sender.example")
        let fields = srs0.split(separator: "=", omittingEmptySubsequences: false)
        var forged = fields
        forged[1] = forged[1] == "AAAA" ? "BBBB" : "AAAA"
        XCTAssertEqual(try store.resolve(forged.joined(separator: "=")), .unknownUser, "bad hash")
        XCTAssertEqual(try store.resolve(srs0.replacingOccurrences(of: "=joe@", with: "=eve@")), .unknownUser, "another user, same hash")
        XCTAssertEqual(try store.resolve("SRS0=xyz@\(srsDomain)"), .unknownUser, "malformed")
        // Another key signed it (another server's, or ours before a key change).
        let other = SRS.store(key: [UInt8](repeating: 9, count: 32), domain: srsDomain)
        let theirs = other.forward(SRS.Address(localPart: "joe", domain: "sender.example"), at: Int64(clock.now.timeIntervalSince1970))
        XCTAssertEqual(try store.resolve("\(theirs.localPart)@\(theirs.domain)"), .unknownUser)
        // 21 days: still valid; 22: expired (postsrsd's maximum age).
        clock.advance(days: 21)
        XCTAssertEqual(try store.resolve(srs0), .deliver(users: [], remote: ["joe@sender.example"]))
        clock.advance(days: 1)
        XCTAssertEqual(try store.resolve(srs0), .unknownUser)
        let out = try deliver("", [srs0])
        XCTAssertEqual(out.statuses, [.unknownUser])
        XCTAssertEqual(try rows(), [])
        // Not an SRS local part, or not the SRS domain: resolved as before.
        XCTAssertEqual(try store.resolve("joe@\(srsDomain)"), .notLocal)
        XCTAssertEqual(try store.resolve("SRS0=abcd=LB=sender.example=joe@elsewhere.example"), .notLocal)
    }

    func testTheKeyIsMadeOnceWithMode0600() throws {
        let path = dir + "/" + SRSKey.fileName
        let first = try SRSKey.loadOrCreate(path: path)
        XCTAssertTrue(first.created)
        XCTAssertEqual(first.key.count, 32)
        XCTAssertNotEqual(first.key, [UInt8](repeating: 0, count: 32))
        let again = try SRSKey.loadOrCreate(path: path)
        XCTAssertEqual(again.key, first.key, "read back, not made again")
        XCTAssertFalse(again.created)
        func mode() throws -> Int { try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777 }
        XCTAssertEqual(try mode(), 0o600)
        chmod(path, 0o644)
        XCTAssertEqual(try SRSKey.loadOrCreate(path: path).key, first.key)
        XCTAssertEqual(try mode(), 0o600, "a key readable by others is made 0600 again")
        XCTAssertNotEqual(try SRSKey.loadOrCreate(path: dir + "/other.key").key, first.key, "random")
        FileManager.default.createFile(atPath: dir + "/short.key", contents: Data([1, 2, 3]))
        XCTAssertThrowsError(try SRSKey.loadOrCreate(path: dir + "/short.key"))
    }
}
