// SORT, THREAD and ESORT through the real session, the RPC and the SQLite store in-process:
// sequence numbers and UIDs, search criteria, SAVE, the charset refusal, References read from
// message files and from rows, and the capabilities advertised.
import XCTest
import IMAPProtocol
import IMAPServer
import MailStore
import MailTesting

final class SortSessionTests: XCTestCase {
    var store: InProcessStore!

    override func setUpWithError() throws {
        store = try InProcessStore()
        try store.store.addDomain("example.org")
        try store.store.addUser("alice@example.org", password: "secret")
    }

    func message(_ subject: String, from: String, date: String, id: String, refs: String? = nil, body: String = "hi") -> String {
        "From: \(from)\r\nTo: alice@example.org\r\nSubject: \(subject)\r\nDate: \(date)\r\nMessage-ID: <\(id)>\r\n"
            + (refs.map { "References: \($0)\r\n" } ?? "") + "\r\n" + body + "\r\n"
    }

    func testSortThreadAndESort() throws {
        // a large body lands in a file, small ones in their row: References come from both
        let big = String(repeating: "x", count: 200_000)
        try store.deliver(to: ["alice@example.org"], message("Re: lunch", from: "Zed <zed@example.net>", date: "Tue, 2 Jan 2024 10:00:00 +0000", id: "b@x", refs: "<a@x>"))
        try store.deliver(to: ["alice@example.org"], message("lunch", from: "amy@example.net", date: "Mon, 1 Jan 2024 10:00:00 +0000", id: "a@x", body: big))
        try store.deliver(to: ["alice@example.org"], message("[team] Budget", from: "=?utf-8?q?=C3=89va?= <eva@example.net>", date: "Wed, 3 Jan 2024 10:00:00 +0000", id: "c@x", refs: "<a@x> <b@x>", body: big))
        try store.deliver(to: ["alice@example.org"], message("budget", from: "bob@example.net", date: "Wed, 3 Jan 2024 09:00:00 +0000", id: "d@x"))
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        let caps = c.send("a", "CAPABILITY")
        for cap in ["SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "ESORT"] { XCTAssertTrue(caps.contains(" \(cap)"), caps) }
        c.send("b", "SELECT INBOX")
        XCTAssertTrue(c.send("c", "SORT (SUBJECT) UTF-8 ALL").contains("* SORT 3 4 1 2\r\n"))
        XCTAssertTrue(c.send("d", "SORT (REVERSE DATE) UTF-8 ALL").contains("* SORT 3 4 1 2\r\n"))
        XCTAssertTrue(c.send("e", "SORT (DISPLAYFROM) UTF-8 ALL").contains("* SORT 2 4 3 1\r\n"))
        XCTAssertTrue(c.send("f", "UID SORT (SIZE) US-ASCII NOT FROM bob").contains("* SORT 1 2 3\r\n"))
        XCTAssertTrue(c.send("g", "SORT (SUBJECT) KOI8-R ALL").contains("g NO [BADCHARSET"))
        // ESORT: MIN and MAX are the first and last in sort order, ALL keeps it
        let e = c.send("h", "SORT RETURN (MIN MAX COUNT ALL) (REVERSE DATE) UTF-8 ALL")
        XCTAssertTrue(e.contains("* ESEARCH (TAG \"h\") MIN 3 MAX 2 ALL 3:4,1:2 COUNT 4\r\n"), e)
        // SAVE: the messages found, then used by SEARCH $
        XCTAssertTrue(c.send("i", "SORT RETURN (SAVE) (SUBJECT) UTF-8 SUBJECT budget").contains("i OK"))
        XCTAssertTrue(c.send("j", "SEARCH $").contains("* SEARCH 3 4\r\n"))
        // REFERENCES: 2 → 1 → 3 by References (3's base subject differs, which does not matter);
        // 4 alone. ORDEREDSUBJECT: by base subject, each thread by date, threads by their first.
        XCTAssertTrue(c.send("k", "THREAD REFERENCES UTF-8 ALL").contains("* THREAD (2 1 3)(4)\r\n"))
        XCTAssertTrue(c.send("l", "UID THREAD ORDEREDSUBJECT UTF-8 ALL").contains("* THREAD (2 1)(4 3)\r\n"))
        XCTAssertTrue(c.send("m", "THREAD REFERENCES UTF-8 SUBJECT nothing-matches").contains("* THREAD\r\n"))
    }
}
