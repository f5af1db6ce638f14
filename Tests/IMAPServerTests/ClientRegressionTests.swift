// What real clients (mbsync, mutt; Tests/integration/test_imap_clients.py) broke, pinned down
// in the engine without sockets: each test is the client's exchange, cut to the part that failed.
import XCTest
import IMAPProtocol
import IMAPServer
import MailModel
import MailStore
import MailTesting
import MailWorker

final class ClientRegressionTests: XCTestCase {
    var store: InProcessStore!

    static func message(_ n: Int) -> String {
        "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: m\(n)\r\nMessage-ID: <\(n)@example.net>\r\n\r\nBody \(n)\r\n"
    }

    override func setUpWithError() throws {
        store = try InProcessStore()
        try store.store.addDomain("example.org")
        try store.store.addUser("alice@example.org", password: "secret")
    }

    private func loggedIn() throws -> SessionDriver {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        return c
    }

    /// The client's (UIDVALIDITY, HIGHESTMODSEQ) after a first session, then: several messages
    /// change (more than one MODSEQ), one is expunged after them, one arrives.
    private func mailboxChangedSinceFirstVisit() throws -> (validity: Substring, modseq: Substring) {
        for n in 1...5 { try store.deliver(to: ["alice@example.org"], Self.message(n)) }
        let c = try loggedIn()
        let s = c.send("a", "SELECT INBOX")
        let validity = s.components(separatedBy: "[UIDVALIDITY ")[1].prefix { $0.isNumber }
        let modseq = s.components(separatedBy: "[HIGHESTMODSEQ ")[1].prefix { $0.isNumber }
        c.send("b", "UID STORE 1 +FLAGS.SILENT (\\Seen)")
        c.send("c", "UID STORE 2 +FLAGS.SILENT (\\Answered)")
        c.send("d", "UID STORE 5 +FLAGS.SILENT (Old)")
        c.send("e", "UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        XCTAssertTrue(c.send("f", "EXPUNGE").contains("* 3 EXPUNGE"))
        c.send("g", "LOGOUT")
        try store.deliver(to: ["alice@example.org"], Self.message(6))
        return (validity, modseq)
    }

    /// mutt with `imap_qresync` and a header cache: SELECT (CONDSTORE), then
    /// `UID FETCH 1:<last cached> (FLAGS) (CHANGEDSINCE m VANISHED)`. Postern read one delta page
    /// of one entry, whose tombstones stop at that entry's MODSEQ: the expunge after the first
    /// change went unreported, and mutt paired sequence numbers with the wrong UIDs ("UID vs MSN
    /// mismatch") and never fetched the new message.
    func testUIDFetchVanishedReportsExpungesAfterSeveralChanges() throws {
        let (_, modseq) = try mailboxChangedSinceFirstVisit()
        let c = try loggedIn()
        XCTAssertTrue(c.send("a", "ENABLE QRESYNC").contains("* ENABLED QRESYNC"))
        XCTAssertTrue(c.send("b", "SELECT INBOX (CONDSTORE)").contains("* 5 EXISTS"))
        let r = c.send("c", "UID FETCH 1:5 (FLAGS) (CHANGEDSINCE \(modseq) VANISHED)")
        XCTAssertTrue(has(r, "* VANISHED (EARLIER) 3\r\n"), r)
        XCTAssertTrue(has(r, "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ ("), r)
        XCTAssertTrue(has(r, "* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ ("), r)
        XCTAssertTrue(has(r, "* 4 FETCH (UID 5 FLAGS (Old) MODSEQ ("), r)
        XCTAssertFalse(r.contains("UID 4 "), r)
        // The VANISHED (EARLIER) set is cut to the UIDs the client asked about.
        let none = c.send("d", "UID FETCH 4:5 (FLAGS) (CHANGEDSINCE \(modseq) VANISHED)")
        XCTAssertFalse(none.contains("VANISHED"), none)
    }

    /// The same through SELECT (QRESYNC ...) (RFC 7162 §3.2.5.2).
    func testQResyncSelectReportsExpungesAfterSeveralChanges() throws {
        let (validity, modseq) = try mailboxChangedSinceFirstVisit()
        let c = try loggedIn()
        c.send("a", "ENABLE QRESYNC")
        let r = c.send("b", "SELECT INBOX (QRESYNC (\(validity) \(modseq)))")
        XCTAssertTrue(has(r, "* 5 EXISTS\r\n"), r)
        XCTAssertTrue(has(r, "* VANISHED (EARLIER) 3\r\n"), r)
        XCTAssertTrue(has(r, "FETCH (UID 6 FLAGS () MODSEQ ("), r)
    }

    /// Expunges spread over several delta pages: every one is reported, once, ascending (the
    /// store alone, one page of one entry, shows the cut the session used to fall into).
    func testVanishedUIDsCollectsTombstonesAcrossDeltaPages() async throws {
        for n in 1...6 { try store.deliver(to: ["alice@example.org"], Self.message(n)) }
        let events = EventRouter()
        let services = RPCIMAPServices(rpc: try store.nioClient(.imapd, onEvent: { events.route($0) }), events: events)
        defer { services.close() }
        let login = await services.authenticate(user: "alice@example.org", password: "secret", client: "127.0.0.1")
        XCTAssertEqual(login, .success(canonical: "alice@example.org"))
        let view = try await services.select("INBOX")
        let box = view.summary.id, since = view.summary.highestModSeq
        // change, expunge, change, expunge, change: each its own MODSEQ.
        _ = try await services.storeFlags(mailbox: box, uids: [1], operation: .add, flags: .seen, keywords: [], unchangedSince: nil)
        _ = try await services.storeFlags(mailbox: box, uids: [2], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)
        let first = try await services.expunge(mailbox: box, uids: [2])
        XCTAssertEqual(first, [2])
        _ = try await services.storeFlags(mailbox: box, uids: [3], operation: .add, flags: .flagged, keywords: [], unchangedSince: nil)
        _ = try await services.storeFlags(mailbox: box, uids: [6, 4], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)
        let second = try await services.expunge(mailbox: box, uids: [6, 4])
        XCTAssertEqual(second.sorted(), [4, 6])
        _ = try await services.storeFlags(mailbox: box, uids: [5], operation: .add, flags: .answered, keywords: [], unchangedSince: nil)

        let one = try await services.delta(mailbox: box, since: since, limit: 1)
        XCTAssertFalse(one.complete)
        XCTAssertEqual(one.vanished, [], "the store cuts an incomplete delta's tombstones")
        for page in [1, 2, 3, 100, VanishedPaging.deltaPage] {
            let gone = try await services.vanishedUIDs(mailbox: box, since: since, page: page)
            XCTAssertEqual(gone, [2, 4, 6], "page \(page)")
        }
        let later = try await services.delta(mailbox: box, since: since, limit: 100).summary.highestModSeq
        let none = try await services.vanishedUIDs(mailbox: box, since: later, page: 1)
        XCTAssertEqual(none, [])
    }

    /// mbsync 1.4 (no modified UTF-7) sends a local folder "Bücher" as raw UTF-8 in a quoted
    /// string. That is well-formed (RFC 9051 §4.3) but not a name before UTF8=ACCEPT: NO
    /// [CANNOT] for that one command. A BAD made mbsync cancel the whole store, so no other
    /// folder was synced either.
    func testEightBitMailboxNameBeforeUTF8AcceptIsNoNotBad() throws {
        let c = try loggedIn()
        let create = c.send("a", "CREATE \"B\u{FC}cher\"")
        XCTAssertTrue(has(create, "a NO [CANNOT] "), create)
        for (i, command) in ["SELECT \"B\u{FC}cher\"", "STATUS \"B\u{FC}cher\" (MESSAGES)", "LIST \"\" \"B\u{FC}*\"",
                             "CREATE \"a&b\""].enumerated() {
            let r = c.send("n\(i)", command)
            XCTAssertTrue(has(r, "n\(i) NO [CANNOT] "), r)
        }
        // Not counted as bad commands: the session goes on past the BAD limit.
        for i in 0..<(IMAPSessionConfig(hostname: "x", startTLSAvailable: false).maxBadCommands + 1) {
            XCTAssertTrue(has(c.send("r\(i)", "CREATE \"B\u{FC}cher\""), "r\(i) NO [CANNOT] "))
        }
        XCTAssertTrue(has(c.send("b", "CREATE \"B&APw-cher\""), "b OK"))
        let list = c.send("c", "LIST \"\" \"B*\"")
        XCTAssertTrue(has(list, "* LIST (\\HasNoChildren) \"/\" B&APw-cher\r\n"), list)
        // Malformed input stays BAD.
        XCTAssertTrue(has(c.send("d", "CREATE \"unterminated"), "d BAD "))
        // With UTF8=ACCEPT the UTF-8 name is the same mailbox.
        XCTAssertTrue(c.send("e", "ENABLE UTF8=ACCEPT").contains("* ENABLED UTF8=ACCEPT"))
        XCTAssertTrue(has(c.send("f", "CREATE \"B\u{FC}cher\""), "f NO [ALREADYEXISTS]"))
    }
}
