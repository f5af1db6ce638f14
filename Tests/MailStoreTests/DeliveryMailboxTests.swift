// Delivery into a named mailbox (spam filtering's Junk, issue 14): the user's mailbox with the
// special use first, then the name, else created with the special use (and subscribed);
// nil and "INBOX" stay INBOX; the other recipients of the same delivery are unaffected.
import XCTest
import GRDB
@testable import MailStore

final class DeliveryMailboxTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false)
        _ = try StoreConformance(store)     // domains, users (alice, bob, ...), aliases
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func deliver(_ rcpts: [String], _ mailbox: DeliveryMailbox?) throws -> DeliveryOutcome {
        let staged = try stage(store, Array("Subject: junk\r\n\r\nbuy now\r\n".utf8))
        let sem = DispatchSemaphore(value: 0)
        var out: Result<DeliveryOutcome, Error>!
        store.deliver(sender: "s@example.net", recipients: rcpts, staged: staged, submitter: nil, options: DeliveryOptions(mailbox: mailbox)) { out = $0; sem.signal() }
        sem.wait()
        return try out.get()
    }

    func counts(_ address: String) throws -> [String: UInt32] {
        let u = try XCTUnwrap(try store.user(named: address))
        return Dictionary(uniqueKeysWithValues: try store.mailboxes(user: u.id).map { ($0.name, $0.messages) })
    }

    static let junk = DeliveryMailbox(name: "Junk", specialUse: "\\Junk")

    func testIntoTheJunkMailbox() throws {
        let o = try deliver(["alice@example.org"], Self.junk)
        XCTAssertEqual(o.statuses, [.delivered])
        XCTAssertEqual(o.changes.map(\.mailbox), ["Junk"])
        XCTAssertEqual(try counts("alice@example.org")["Junk"], 1)
        XCTAssertEqual(try counts("alice@example.org")["INBOX"], 0)
    }

    /// The per-user setting (`postern user spam-junk USER off`): that user's marked mail stays in
    /// INBOX; the other recipients of the same delivery still get theirs in Junk; back on → Junk.
    func testUserSettingKeepsMarkedMailInInbox() throws {
        try store.setSpamToJunk("alice@example.org", false)
        let o = try deliver(["alice@example.org", "bob@example.org"], Self.junk)
        XCTAssertEqual(o.changes.map(\.mailbox), ["INBOX", "Junk"])
        XCTAssertEqual(try counts("alice@example.org")["INBOX"], 1)
        XCTAssertEqual(try counts("alice@example.org")["Junk"], 0)
        XCTAssertEqual(try counts("bob@example.org")["Junk"], 1)
        try store.setSpamToJunk("Alice@example.org", true)
        XCTAssertEqual(try deliver(["alice@example.org"], Self.junk).changes.map(\.mailbox), ["Junk"])
        XCTAssertThrowsError(try store.setSpamToJunk("nobody@example.org", false))
    }

    func testBySpecialUseBeforeName() throws {
        let u = try XCTUnwrap(try store.user(named: "alice@example.org"))
        try store.renameMailbox(user: u.id, from: "Junk", to: "Spam")     // keeps \Junk
        XCTAssertEqual(try deliver(["alice@example.org"], Self.junk).changes.map(\.mailbox), ["Spam"])
        XCTAssertEqual(try counts("alice@example.org")["Spam"], 1)
        XCTAssertNil(try counts("alice@example.org")["Junk"])
    }

    func testCreatedWhenMissing() throws {
        let u = try XCTUnwrap(try store.user(named: "alice@example.org"))
        try store.deleteMailbox(user: u.id, name: "Junk")
        XCTAssertEqual(try deliver(["alice@example.org", "bob@example.org"], Self.junk).statuses, [.delivered, .delivered])
        let junk = try XCTUnwrap(try store.mailboxes(user: u.id).first { $0.name == "Junk" })
        XCTAssertEqual(junk.specialUse, "\\Junk")
        XCTAssertEqual(junk.messages, 1)
        XCTAssertTrue(junk.subscribed)
        XCTAssertEqual(try counts("bob@example.org")["Junk"], 1)
    }

    func testInboxStaysInbox() throws {
        XCTAssertEqual(try deliver(["alice@example.org"], nil).changes.map(\.mailbox), ["INBOX"])
        XCTAssertEqual(try deliver(["alice@example.org"], DeliveryMailbox(name: "INBOX", specialUse: "")).changes.map(\.mailbox), ["INBOX"])
        XCTAssertEqual(try counts("alice@example.org")["INBOX"], 2)
    }
}
