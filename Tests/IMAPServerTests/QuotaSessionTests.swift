// QUOTA (RFC 9208) end to end without sockets: capabilities, GETQUOTAROOT / GETQUOTA with and
// without limits, SETQUOTA refused, APPEND and COPY over quota answered NO [OVERQUOTA] with
// nothing stored, MOVE still allowed, and an expunge making room again.
import XCTest
import IMAPServer
import MailStore
import MailTesting

final class QuotaSessionTests: XCTestCase {
    var store: InProcessStore!

    override func setUpWithError() throws {
        store = try InProcessStore()
        try store.store.addDomain("example.org")
        try store.store.addUser("alice@example.org", password: "secret")
    }

    func loggedIn() throws -> SessionDriver {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK")
        c.login()
        return c
    }

    func testCapabilitiesAndNoLimits() throws {
        let c = try loggedIn()
        let caps = c.send("a", "CAPABILITY")
        XCTAssertTrue(has(caps, " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"), caps)
        XCTAssertFalse(has(caps, "QUOTASET"), caps)
        // No limit: the mailbox is under no quota root (RFC 9208's QUOTA lists need a limit).
        let r = c.send("b", "GETQUOTAROOT INBOX")
        XCTAssertTrue(has(r, "* QUOTAROOT INBOX\r\nb OK"), r)
        XCTAssertTrue(has(c.send("c", "GETQUOTA \"\""), "c NO [NONEXISTENT]"))
        XCTAssertTrue(has(c.send("d", "GETQUOTAROOT Nope"), "d NO [NONEXISTENT]"))
        XCTAssertTrue(has(c.send("e", "SETQUOTA \"\" (STORAGE 10)"), "e NO [NOPERM]"))
    }

    func testFiguresAndOverQuota() throws {
        let body = "Subject: q\r\n\r\n" + String(repeating: "x", count: 1500) + "\r\n"   // 1517 bytes
        try store.deliver(to: ["alice@example.org"], body)
        try store.store.setQuota("alice@example.org", storage: .set(3000), messages: .set(10))
        let c = try loggedIn()
        let r = c.send("a", "GETQUOTAROOT INBOX")
        XCTAssertTrue(has(r, "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 2 3 MESSAGE 1 10)\r\na OK"), r)
        XCTAssertTrue(has(c.send("b", "GETQUOTA \"\""), "* QUOTA \"\" (STORAGE 2 3 MESSAGE 1 10)\r\nb OK"))
        // APPEND of a second 1517-byte message would cross 3000 bytes.
        let append = c.send("c", "APPEND Drafts {\(body.utf8.count)+}\r\n\(body)")
        XCTAssertTrue(has(append, "c NO [OVERQUOTA]"), append)
        XCTAssertEqual(try store.store.quota("alice@example.org").messages, 1)
        XCTAssertTrue(has(c.send("d", "SELECT INBOX"), "d OK"))
        XCTAssertTrue(has(c.send("e", "COPY 1 Archive"), "e NO [OVERQUOTA]"))
        XCTAssertTrue(has(c.send("f", "STATUS Archive (MESSAGES SIZE)"), "* STATUS Archive (MESSAGES 0 SIZE 0)"))
        XCTAssertTrue(has(c.send("g", "MOVE 1 Archive"), "g OK"))
        XCTAssertTrue(has(c.send("h", "GETQUOTA \"\""), "(STORAGE 2 3 MESSAGE 1 10)"))
        // Expunged, the room is back and the APPEND goes through.
        XCTAssertTrue(has(c.send("i", "SELECT Archive"), "i OK"))
        XCTAssertTrue(has(c.send("j", "STORE 1 +FLAGS (\\Deleted)"), "j OK"))
        XCTAssertTrue(has(c.send("k", "EXPUNGE"), "k OK"))
        XCTAssertTrue(has(c.send("l", "GETQUOTA \"\""), "(STORAGE 0 3 MESSAGE 0 10)"))
        XCTAssertTrue(has(c.send("m", "APPEND Drafts {\(body.utf8.count)+}\r\n\(body)"), "m OK [APPENDUID"))
    }
}
