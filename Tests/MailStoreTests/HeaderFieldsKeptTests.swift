// The fields kept per body at delivery (header_fields, v10) answer HEADER.FIELDS byte for byte as
// filtering the whole header does, and never with stale bytes: a body id reused after an expunge,
// a body with nothing kept (too long, stored before v10) mixed with kept ones, names they do not cover.
import XCTest
import GRDB
import MIME
import MailSyntax
@testable import MailStore

final class HeaderFieldsKeptTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, alice: UserRef!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 64 * 1024, clock: { conformanceNow })
        try store.addDomain("example.org")
        try store.addUser("alice@example.org", password: "secret")
        alice = try store.user(named: "alice@example.org")
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    static let messages = [
        "From: a@x.org\r\nSubject: one\r\n two\r\nsubject: dup\r\nX-Other: y\r\nTO: b@y.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n",
        "From: a@x.org\nSubject: bare LF\n folded\nDate: x\n\nbody\n",
        "From: a@x.org\r\nSubject: no body and no blank line",
        "X-Only: 1\r\nX-Also: 2\r\n\r\nno wanted field\r\n",
        "From: a@x.org\r\nnot a field line\r\n continued\r\nDate: d\r\n\r\nb\r\n",
        "Subject : spaced before the colon\r\nFROM:x\r\nReferences: <1@x>\r\n\t<2@x>\r\n\r\nb\r\n",
        "\r\nempty header\r\n",
        "Received: from a\r\nFrom: a@x.org\r\nReceived: from b\r\nDate: d\r\nTo: c@z.org\r\nCc: d@z.org\r\nSubject: s\r\n\r\nb\r\n",
    ]
    static let selections: [[String]] = [["FROM", "TO", "SUBJECT", "DATE"], ["subject"], ["From", "from", "FROM"], ["references", "to"],
                                         ["from", "x-other"], ["missing"]]

    func inbox() throws -> Int64 { try XCTUnwrap(try store.mailbox(user: alice.id, name: "INBOX")).id }
    func append(_ m: String) throws -> UInt32 {
        try appendSync(store, user: alice.id, mailbox: try inbox(), body: Array(m.utf8)).0.uid
    }
    /// RFC 9051 §6.4.5 from the whole header: the reference answer.
    func expected(_ m: String, _ names: [String]) -> [UInt8] {
        let body = Array(m.utf8), h = MessageParser.parse(body).headerSize
        var out: [UInt8] = []
        body[..<h].withUnsafeBytes { HeaderFieldFilter.append($0, fieldNames: HeaderFieldFilter.fieldNames(names), not: false, to: &out) }
        return out
    }
    func fetch(_ uids: [UInt32], _ names: [String], limit: Int = 8192) throws -> [(MessageDetails, [UInt8]?)] {
        try store.details(user: alice.id, mailbox: try inbox(), uids: uids, info: false, prefix: .fields(names, not: false), prefixLimit: limit)
    }
    func check(_ uids: [UInt32], _ bodies: [String], _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for names in Self.selections {
            let got = try fetch(uids, names)
            XCTAssertEqual(got.map(\.0.uid), uids, label, file: file, line: line)
            for ((d, bytes), m) in zip(got, bodies) {
                XCTAssertEqual(d.size, UInt64(m.utf8.count), file: file, line: line)
                // an empty answer comes as no prefix (FETCH reads the header by range)
                XCTAssertEqual(bytes ?? [], expected(m, names), "\(label) UID \(d.uid) \(names)", file: file, line: line)
            }
        }
    }
    func keptRows() throws -> Int { try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM header_fields")! } }

    func testKeptFieldsAnswerAsTheWholeHeader() throws {
        let uids = try Self.messages.map(append)
        XCTAssertEqual(try keptRows(), Self.messages.count, "one row per body, made at delivery")
        try check(uids, Self.messages, "kept")
        // a sparse set (looked up UID by UID) and a set with a gap (the range scan skips it)
        try check([uids[0], uids[7]], [Self.messages[0], Self.messages[7]], "sparse")
        try check(Array(uids.dropFirst(2)), Array(Self.messages.dropFirst(2)), "run")
        // the kept bytes are what answers (not the header, filtered again)
        try store.pool.write { try $0.execute(sql: "UPDATE header_fields SET fields = CAST('Subject: kept\r\n' AS BLOB)") }
        XCTAssertEqual(try fetch([uids[3]], ["subject"])[0].1, Array("Subject: kept\r\n".utf8))
        XCTAssertTrue(HeaderFieldFilter.keptCovers(HeaderFieldFilter.fieldNames(["FROM", "To", "subject", "DATE", "Message-ID"])))
        XCTAssertFalse(HeaderFieldFilter.keptCovers(HeaderFieldFilter.fieldNames(["from", "x-other"])))
    }

    func testBodiesInFilesKeepTheirFieldsToo() throws {
        store = try SQLiteMailStore(dataDir: dir + "/files", fsync: false, inlineMax: 0, clock: { conformanceNow })
        try store.addDomain("example.org")
        try store.addUser("alice@example.org", password: "secret")
        alice = try store.user(named: "alice@example.org")
        let uids = try Self.messages.map(append)
        XCTAssertEqual(try keptRows(), Self.messages.count)
        try check(uids, Self.messages, "files")
    }

    /// The highest body id freed by an expunge is SQLite's next one: the new body's fields, not the old.
    func testReusedBodyIDNeverAnswersTheOldFields() throws {
        let first = try append("From: old@x.org\r\nSubject: old\r\n\r\nold\r\n")
        let id1 = try store.pool.read { try Int64.fetchOne($0, sql: "SELECT max(id) FROM messages")! }
        _ = try store.storeFlags(user: alice.id, mailbox: try inbox(), uids: [first], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)
        _ = try store.expunge(user: alice.id, mailbox: try inbox(), uids: nil)
        XCTAssertEqual(try keptRows(), 0, "the row goes with its body")
        let fresh = "From: new@x.org\r\nSubject: new and longer\r\n\r\nnew\r\n"
        let second = try append(fresh)
        XCTAssertEqual(try store.pool.read { try Int64.fetchOne($0, sql: "SELECT max(id) FROM messages")! }, id1, "the id was reused")
        try check([second], [fresh], "reused id")
    }

    /// Bodies with no row (stored before v10) go the general way, merged in UID order; the
    /// start-up fill makes their rows, and answers stay the same.
    func testBodiesWithoutKeptFieldsMixAndAreFilledAtStart() throws {
        let uids = try Self.messages.map(append)
        try store.pool.write { try $0.execute(sql: "DELETE FROM header_fields WHERE message_id % 2 = 0") }
        XCTAssertLessThan(try keptRows(), Self.messages.count)
        try check(uids, Self.messages, "mixed")
        XCTAssertEqual(try store.fillHeaderFields(), Self.messages.count / 2)
        XCTAssertEqual(try keptRows(), Self.messages.count)
        XCTAssertEqual(try store.fillHeaderFields(), 0, "nothing left")
        try check(uids, Self.messages, "filled")
    }

    /// The fill never writes the fields of a body that left its id meanwhile, nor over a delivery's row.
    func testFillWritesOnlyForTheBodyItRead() throws {
        let uid = try append(Self.messages[0])
        let (id, hash) = try store.pool.read { db in
            let r = try XCTUnwrap(try Row.fetchOne(db, sql: "SELECT id, hash FROM messages"))
            return (r[0] as Int64, [UInt8](r[1] as Data))
        }
        let wrong = Array("Subject: another body\r\n".utf8)
        try store.pool.write { db in
            XCTAssertFalse(try SQLiteMailStore.insertFilled(db, id, hash: hash, size: 1, wrong), "the delivery's row stays")
            try db.execute(sql: "DELETE FROM header_fields")
            XCTAssertFalse(try SQLiteMailStore.insertFilled(db, id, hash: Array(repeating: 7, count: 32), size: 1, wrong), "another body's hash")
            XCTAssertTrue(try SQLiteMailStore.insertFilled(db, id, hash: hash, size: Self.messages[0].utf8.count, wrong))
        }
        XCTAssertEqual(try fetch([uid], ["subject"])[0].1, wrong, "the row written is what answers")
    }

    /// Kept bytes past the limit are not kept (NULL): the header is filtered when fetched.
    func testTooLongKeptFieldsAreFilteredWhenFetched() throws {
        let refs = (0..<1000).map { "<\($0)@example.org>" }.joined(separator: "\r\n ")
        let long = "From: a@x.org\r\nReferences: \(refs)\r\nSubject: s\r\n\r\nb\r\n"
        let uids = [try append(long), try append(Self.messages[0])]
        XCTAssertEqual(try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM header_fields WHERE fields IS NULL")! }, 1)
        let got = try fetch(uids, ["from", "subject"], limit: 64 * 1024)
        XCTAssertEqual(got.map(\.0.uid), uids)
        XCTAssertEqual(got[0].1, expected(long, ["from", "subject"]))
        XCTAssertEqual(got[1].1, expected(Self.messages[0], ["from", "subject"]))
        XCTAssertEqual(try fetch([uids[0]], ["references"], limit: 64 * 1024)[0].1, expected(long, ["references"]))
        let limited = try fetch(uids, ["from", "subject"])
        XCTAssertNil(limited[0].1, "a header past the prefix limit: read by range")
        XCTAssertEqual(limited[1].1, expected(Self.messages[0], ["from", "subject"]))
    }

    /// One body delivered twice is stored (and kept) once.
    func testOneBodyOneRow() throws {
        _ = try append(Self.messages[0])
        _ = try append(Self.messages[0])
        XCTAssertEqual(try keptRows(), 1)
    }
}
