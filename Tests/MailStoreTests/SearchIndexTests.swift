// SEARCH through the full-text index answers exactly what the full scan answers (issue 11 point 1):
// a generated corpus (non-ASCII text, RFC 2047 words, quoted-printable and base64 bodies, HTML
// parts, attachments' names) on a real SQLite store, many queries, after expunge, move,
// re-delivery of the same body to another user, a wiped index rebuilt by reindex, index off.
import XCTest
import GRDB
import MIME
import MailIPC
import MailTesting
@testable import MailStore

/// A deterministic corpus of varied messages (the integration test has a Python twin).
enum SearchCorpus {
    static let words = ["zebracorn", "Grüße", "STRASSE", "Ärger", "καλημέρα", "東京会議", "naïve", "Quartalsbericht",
                        "delta", "foxtrot", "zebra", "über", "Œuvre", "smörgåsbord", "ﬁnance", "İstanbul"]

    static func word(_ i: Int, _ k: Int) -> String { words[(i * 7 + k * 3) % words.count] }

    static func base64(_ s: String) -> String {
        // 76-character lines (RFC 2045 §6.8)
        let b = Data(s.utf8).base64EncodedString()
        return stride(from: 0, to: b.count, by: 76).map { i in
            String(b[b.index(b.startIndex, offsetBy: i)..<b.index(b.startIndex, offsetBy: min(i + 76, b.count))])
        }.joined(separator: "\r\n")
    }

    /// Quoted-printable of UTF-8 text with a soft line break every `width` characters, so words
    /// are cut across lines (RFC 2045 §6.7 rule 5).
    static func quotedPrintable(_ s: String, width: Int) -> String {
        var out = "", line = 0
        for b in Array(s.utf8) {
            if b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n") { out.append(Character(UnicodeScalar(b))); line = 0; continue }   // hard breaks stay
            let piece = (b >= 0x80 || b == UInt8(ascii: "=")) ? String(format: "=%02X", b) : String(UnicodeScalar(b))
            if line + piece.count > width { out += "=\r\n"; line = 0 }
            out += piece; line += piece.count
        }
        return out
    }

    static func encodedWord(_ s: String, b: Bool) -> String {
        b ? "=?utf-8?b?\(Data(s.utf8).base64EncodedString())?="
          : "=?UTF-8?Q?" + Array(s.utf8).map { $0 >= 0x80 || $0 == 0x3F || $0 == 0x3D || $0 == 0x5F || $0 == 0x20 ? String(format: "=%02X", $0) : String(UnicodeScalar($0)) }.joined() + "?="
    }

    static func message(_ i: Int) -> String {
        let subject: String
        switch i % 4 {
        case 0: subject = "Plain \(word(i, 0)) report \(i)"
        case 1: subject = encodedWord("Betreff \(word(i, 1)) \(i)", b: false)
        case 2: subject = encodedWord("Тема \(word(i, 2)) \(i)", b: true)
        default: subject = "Mixed " + encodedWord(word(i, 3), b: i % 8 == 3) + " tail"
        }
        let from = i % 3 == 0 ? "\(encodedWord("Jürgen Müller", b: false)) <jm\(i % 5)@example.de>" : "Sender \(i % 7) <s\(i % 7)@example.org>"
        let text = "Hello \(word(i, 4)) and \(word(i, 5)); see zebracorn-\(i % 10) at line end.\r\nSecond line: \(word(i, 6)) ab cd x."
        let head = "From: \(from)\r\nTo: user\(i % 4)@example.org\r\nSubject: \(subject)\r\nDate: \(date(i))\r\nX-Tag: tag-\(word(i, 7))\r\nMessage-ID: <\(i)@corpus>\r\nMIME-Version: 1.0\r\n"
        switch i % 6 {
        case 0:
            return head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\(text)\r\n"
        case 1:
            return head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                + quotedPrintable(text + " zebracorn zebracorn", width: 9 + i % 7) + "\r\n"
        case 2:
            return head + "Content-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\(base64(text))\r\n"
        case 3:
            return head + """
                Content-Type: multipart/alternative; boundary="b\(i)"\r
                \r
                --b\(i)\r
                Content-Type: text/plain; charset=iso-8859-1\r
                Content-Transfer-Encoding: quoted-printable\r
                \r
                Gr=FC=DFe aus K=F6ln, \(i) Stra=DFe=\r
                nbahn\r
                --b\(i)\r
                Content-Type: text/html; charset=utf-8\r
                \r
                <html><body><p>Hello <b>\(word(i, 4))</b> &amp; zebra<i>corn</i></p></body></html>\r
                --b\(i)--\r

                """
        case 4:
            let name = i % 8 == 4 ? "filename*=utf-8''Bericht%20\(i).pdf" : "filename=\"\(encodedWord("Quartalsbericht-\(word(i, 8)).pdf", b: true))\""
            return head + """
                Content-Type: multipart/mixed; boundary="m\(i)"\r
                \r
                --m\(i)\r
                Content-Type: text/plain; charset=utf-8\r
                \r
                \(text)\r
                --m\(i)\r
                Content-Type: application/pdf; name="scan\(i).pdf"\r
                Content-Disposition: attachment; \(name)\r
                Content-Transfer-Encoding: base64\r
                \r
                \(base64("zebracorn binary \(word(i, 9)) not searched"))\r
                --m\(i)--\r

                """
        default:
            return head + """
                Content-Type: multipart/mixed; boundary="r\(i)"\r
                \r
                --r\(i)\r
                Content-Type: text/plain\r
                \r
                Forwarded below.\r
                --r\(i)\r
                Content-Type: message/rfc822\r
                \r
                Subject: \(encodedWord("Inner \(word(i, 10))", b: true))\r
                From: inner@example.net\r
                \r
                Inner body \(word(i, 11)) zebracorn\r
                --r\(i)--\r

                """
        }
    }

    static func date(_ i: Int) -> String {
        let d = Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 86_400 / 3)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(secondsFromGMT: (i % 5 - 2) * 3600)
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return f.string(from: d)
    }

    /// Queries over the corpus: every content key, short needles, needles cut by soft line
    /// breaks, combinations with cheap keys.
    static func queries(day: Int) -> [SearchQuery] {
        var q: [SearchQuery] = []
        for w in words + ["zebracorn-3", "grüsse", "strasse", "ärger", "ÄRGER", "Straßenbahn", "köln", "ΚΑΛΗΜΈΡΑ", "b>", "<b>hello",
                          "zebracorn zebracorn", "bericht 4", "quartalsbericht-", ".pdf", "scan4", "tag-", "jürgen", "inner", "x.", "a*b",
                          "[z", "z?b", "100%", "_", "nbahn", "\"quoted\"", "fi"] {
            q += [.text(w), .body(w), .header("subject", w), .header("from", w), .header("x-tag", w)]
        }
        for short in ["z", "ü", "ab", "x.", "東京", "e", "Ä"] { q += [.text(short), .body(short), .header("subject", short)] }
        q += [.header("x-tag", ""), .header("x-missing", ""), .header("to", "user1"), .header("message-id", "@corpus>"),
              .body(""), .text("")]
        q += [
            .or(.text("zebracorn"), .header("subject", "grüße")),
            .or(.text("zebracorn"), .flags(.seen, set: true)),
            .not(.text("zebracorn")),
            .and([.text("zebracorn"), .not(.body("delta"))]),
            .and([.text("zebracorn"), .flags(.flagged, set: true)]),
            .and([.body("zebra"), .larger(700)]),
            .and([.text("über"), .smaller(900)]),
            .and([.text("delta"), .sentDate(.since, day: day - 10)]),
            .and([.body("foxtrot"), .internalDate(.on, day: day)]),
            .and([.text("stra"), .or(.header("subject", "betreff"), .header("from", "müller"))]),
            .or(.and([.text("καλη"), .uids([1...20])]), .and([.body("zebracorn-1"), .keyword("Work", set: true)])),
            .and([.or(.body("zebracorn"), .text("東京")), .or(.text("report"), .not(.flags(.seen, set: true)))]),
            .and([.text("zebracorn"), .text("ze")]),
            .or(.text("ab"), .text("grüße")),
        ]
        return q
    }
}

final class SearchIndexTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, alice: UserRef!, bob: UserRef!
    let count = 96

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 2048, clock: { conformanceNow })
        _ = try StoreConformance(store)
        alice = try store.user(named: "alice@example.org")
        bob = try store.user(named: "bob@example.org")
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    func mailbox(_ u: UserRef, _ name: String) throws -> Int64 { try XCTUnwrap(try store.mailbox(user: u.id, name: name)).id }

    func fill() throws {
        for i in 0..<count {
            let body = SearchCorpus.message(i)
            if i % 5 == 4 {
                _ = try appendSync(store, user: alice.id, mailbox: try mailbox(alice, "INBOX"), flags: i % 2 == 0 ? [.seen] : [],
                                   keywords: i % 3 == 0 ? ["Work"] : [], body: Array(body.utf8))
            } else if i % 7 == 3 {
                _ = try deliverStagedSync(store, "s@x.org", ["alice@example.org"], try stage(store, Array(body.utf8), piece: 100))
            } else {
                _ = try deliverSync(store, "s@x.org", ["alice@example.org"], body)
            }
        }
        let inbox = try mailbox(alice, "INBOX")
        _ = try store.storeFlags(user: alice.id, mailbox: inbox, uids: Array(stride(from: 1, through: UInt32(count), by: 3)),
                                 operation: .add, flags: [.flagged], keywords: [], unchangedSince: nil)
    }

    /// Every query: the indexed answer equals the scan, in every mailbox of `users`. Returns how
    /// many queries the index narrowed and how many matched something.
    @discardableResult
    func assertSame(_ users: [UserRef], _ label: String, file: StaticString = #filePath, line: UInt = #line) throws -> (narrowed: Int, nonEmpty: Int) {
        let day = Int(conformanceNow.timeIntervalSince1970) / 86_400
        var narrowed = 0, nonEmpty = 0
        for u in users {
            for m in try store.mailboxes(user: u.id) where m.messages > 0 {
                for q in SearchCorpus.queries(day: day) {
                    let scan = try store.search(user: u.id, mailbox: m.id, query: q, useIndex: false)
                    let indexed = try store.search(user: u.id, mailbox: m.id, query: q, useIndex: true)
                    XCTAssertEqual(indexed, scan, "\(label): \(u.address) \(m.name) \(q)", file: file, line: line)
                    if SearchIndexPlan(PreparedSearch(q)) != nil { narrowed += 1 }
                    if !scan.isEmpty { nonEmpty += 1 }
                }
            }
        }
        return (narrowed, nonEmpty)
    }

    func testIndexedAnswersEqualTheScan() throws {
        try fill()
        XCTAssertEqual(try store.searchIndexCounts().pending, 0)
        let (narrowed, nonEmpty) = try assertSame([alice], "fresh")
        XCTAssertGreaterThan(narrowed, 150)     // most queries went through the index …
        XCTAssertGreaterThan(nonEmpty, 120)     // … and the corpus answers many of them,
        // the cases the index must not miss among them: soft line breaks inside the needle,
        // folding (ß/ss, Ä/ä, ﬁ/fi), an attachment's encoded name, an iso-8859-1 part, HTML source.
        let inbox = try mailbox(alice, "INBOX")
        for q: SearchQuery in [.body("zebracorn zebracorn"), .text("straßenbahn"), .text("grüsse"), .text("ärger"),
                               .text("quartalsbericht-"), .body("köln"), .body("hello <b>"), .text("finance"), .header("from", "jürgen")] {
            XCTAssertFalse(try store.search(user: alice.id, mailbox: inbox, query: q).isEmpty, "\(q)")
        }
    }

    /// A body whose text is over `maxIndexedText` is not indexed (no delivery holds the writer
    /// for megabytes of trigrams): it stays pending, and SEARCH still finds it by the scan.
    func testTooLargeATextStaysPendingAndIsStillFound() throws {
        let big = "Subject: big\r\nMessage-ID: <big@x.org>\r\n\r\n"
            + String(repeating: "plain filler text line\r\n", count: SearchIndexLimits.maxIndexedText / 24 + 10) + "zebracorn\r\n"
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], big)
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], "Subject: small\r\n\r\nzebracorn too\r\n")
        XCTAssertEqual(try store.searchIndexCounts().pending, 1)
        XCTAssertEqual(try store.searchIndexCounts().indexed, 1)
        let inbox = try mailbox(alice, "INBOX")
        XCTAssertEqual(try store.search(user: alice.id, mailbox: inbox, query: .text("zebracorn")), [1, 2])
        XCTAssertEqual(try store.reindex(user: alice.id), 2)
        XCTAssertEqual(try store.searchIndexCounts().pending, 1, "reindex leaves it pending too")
    }

    /// A body only queued for remote recipients is not indexed (it leaves with its last
    /// recipient; its trigrams were most of a submission's writes); one that also reaches a
    /// mailbox is, staged or in memory.
    func testAQueuedOnlyBodyIsNotIndexed() throws {
        for staged in [false, true] {
            let before = try store.searchIndexCounts()
            let out = "Subject: out \(staged)\r\n\r\nzebracorn leaves\r\n"
            let both = "Subject: both \(staged)\r\n\r\nzebracorn stays\r\n"
            if staged {
                _ = try deliverStagedSync(store, "alice@example.org", ["x@remote.example"], try stage(store, Array(out.utf8), piece: 7), submitter: alice)
                _ = try deliverStagedSync(store, "alice@example.org", ["y@remote.example", "bob@example.org"],
                                          try stage(store, Array(both.utf8), piece: 7), submitter: alice)
            } else {
                _ = try deliverSync(store, "alice@example.org", ["x@remote.example"], out, submitter: alice)
                _ = try deliverSync(store, "alice@example.org", ["y@remote.example", "bob@example.org"], both, submitter: alice)
            }
            let after = try store.searchIndexCounts()
            XCTAssertEqual(after.indexed - before.indexed, 1, "staged \(staged)")
            XCTAssertEqual(after.pending - before.pending, 1, "staged \(staged)")
        }
        XCTAssertEqual(try store.search(user: bob.id, mailbox: try mailbox(bob, "INBOX"), query: .text("zebracorn")), [1, 2])
    }

    func testAfterExpungeMoveAndRedelivery() throws {
        try fill()
        let inbox = try mailbox(alice, "INBOX"), archive = try mailbox(alice, "Archive")
        // Move a third to Archive, expunge some of what is left.
        _ = try store.copy(user: alice.id, from: inbox, uids: Array(stride(from: 2, through: UInt32(count), by: 3)), to: archive, move: true)
        _ = try store.storeFlags(user: alice.id, mailbox: inbox, uids: Array(stride(from: 1, through: UInt32(count), by: 4)),
                                 operation: .add, flags: [.deleted], keywords: [], unchangedSince: nil)
        _ = try store.expunge(user: alice.id, mailbox: inbox, uids: nil)
        // The same bodies to bob: one index row each, shared.
        let indexedBefore = try store.searchIndexCounts().indexed
        for i in stride(from: 0, to: count, by: 2) { _ = try deliverSync(store, "s@x.org", ["bob@example.org"], SearchCorpus.message(i)) }
        XCTAssertLessThanOrEqual(try store.searchIndexCounts().indexed, indexedBefore + count / 2)
        try assertSame([alice, bob], "moved, expunged, redelivered")
        // bob sees only his own hits: alice's Archive-only bodies are not his.
        let bobInbox = try mailbox(bob, "INBOX")
        XCTAssertEqual(try store.search(user: bob.id, mailbox: bobInbox, query: .text("zebracorn")),
                       try store.search(user: bob.id, mailbox: bobInbox, query: .text("zebracorn"), useIndex: false))
        // alice expunges everything: the rows of bodies only she had are gone from the index.
        for m in try store.mailboxes(user: alice.id) {
            let uids = try store.view(user: alice.id, mailbox: m.id).entries.map(\.uid)
            _ = try store.expunge(user: alice.id, mailbox: m.id, uids: uids, force: true)
        }
        let rows = try store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM search_index WHERE rowid NOT IN (SELECT id FROM messages)")!
        }
        XCTAssertEqual(rows, 0)
        XCTAssertEqual(try store.searchIndexCounts().indexed, try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM messages")! })
        try assertSame([bob], "alice emptied")
    }

    func testReindexAfterWipeGivesTheSameAnswers() throws {
        try fill()
        let inbox = try mailbox(alice, "INBOX")
        let before = try SearchCorpus.queries(day: 0).map { try store.search(user: alice.id, mailbox: inbox, query: $0) }
        try store.pool.write { db in
            try db.execute(sql: "DELETE FROM search_index; INSERT OR IGNORE INTO search_pending (message_id) SELECT id FROM messages")
        }
        // Unindexed bodies are candidates: still the same answers, by scanning them.
        try assertSame([alice], "wiped")
        var reports: [(Int, Int)] = []
        XCTAssertEqual(try store.reindex(user: alice.id) { reports.append(($0, $1)) }, count)
        XCTAssertEqual(reports.first?.0, 0)
        XCTAssertEqual(reports.last?.0, count)
        XCTAssertEqual(reports.last?.1, count)
        XCTAssertEqual(try store.searchIndexCounts().pending, 0)
        let after = try SearchCorpus.queries(day: 0).map { try store.search(user: alice.id, mailbox: inbox, query: $0) }
        XCTAssertEqual(after, before)
        XCTAssertEqual(try store.reindex(user: nil), count)
        try assertSame([alice], "reindexed")
    }

    /// `search_index = false`: nothing is indexed, new bodies wait in search_pending, answers
    /// stay the scan's; turned on again, old bodies are scanned until reindexed.
    func testIndexOffKeepsBodiesPending() throws {
        store = nil
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 2048, searchIndex: false, clock: { conformanceNow })
        try fill()
        XCTAssertEqual(try store.searchIndexCounts().indexed, 0)
        XCTAssertEqual(try store.searchIndexCounts().pending, count)
        store = nil
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 2048, clock: { conformanceNow })
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], SearchCorpus.message(count))
        XCTAssertEqual(try store.searchIndexCounts().indexed, 1)
        try assertSame([alice], "half indexed")
    }

    func testPlanOnlyWhereTheIndexCanAnswer() throws {
        func plan(_ q: SearchQuery) -> SearchIndexPlan? { SearchIndexPlan(PreparedSearch(q)) }
        XCTAssertEqual(plan(.text("Zebra")), .contains([.hdr, .body], "*zebra*"))
        XCTAssertEqual(plan(.header("Subject", "a*b?[c")), .contains([.top], "*a[*]b[?][[]c*"))
        XCTAssertEqual(plan(.body("STRASSE")), .contains([.body], "*strasse*"))
        XCTAssertNil(plan(.text("ab")))                 // two characters: no trigram
        XCTAssertNil(plan(.text("東京")))
        XCTAssertNotNil(plan(.text("東京会")))
        XCTAssertNil(plan(.header("x", "")))
        XCTAssertNil(plan(.not(.text("zebra"))))
        XCTAssertNil(plan(.or(.text("zebra"), .flags(.seen, set: true))))
        XCTAssertNil(plan(.text("a\u{0}bc")))
        XCTAssertEqual(plan(.and([.flags(.seen, set: true), .text("zebra"), .text("ab")])), .contains([.hdr, .body], "*zebra*"))
        XCTAssertEqual(plan(.or(.text("zebra"), .body("delta"))), .or(.contains([.hdr, .body], "*zebra*"), .contains([.body], "*delta*")))
    }
}

/// `postern reindex` over the RPC (types 86/87): the admin role only, progress from 0 to the
/// total, batch by batch, then the final count; an unknown user is `.notFound`.
/// Which keys an indexed candidate no longer checks: TEXT/BODY of ≥ 3 characters on the
/// conjunction path from the root; never below OR or NOT, never HEADER, short needles or a
/// needle with U+FFFD (the column's stand-in for NUL and invalid UTF-8).
final class SearchIndexExactKeyTests: XCTestCase {
    func stillReadsContent(_ q: SearchQuery) -> Bool {
        PreparedSearch(root: SearchIndexPlan.withoutExactKeys(PreparedSearch(q).root)).needsContent
    }

    func testExactKeysAreDroppedOnlyWhereTheConditionDecides() {
        XCTAssertFalse(stillReadsContent(.text("zebracorn")))
        XCTAssertFalse(stillReadsContent(.body("Zèbre")))
        XCTAssertFalse(stillReadsContent(.and([.text("abc"), .flags(.seen, set: true), .body("def")])))
        XCTAssertTrue(stillReadsContent(.or(.text("abc"), .text("def"))))
        XCTAssertTrue(stillReadsContent(.not(.text("abc"))))
        XCTAssertTrue(stillReadsContent(.and([.text("abc"), .or(.body("def"), .flags(.seen, set: true))])))
        XCTAssertTrue(stillReadsContent(.text("ab")))
        XCTAssertTrue(stillReadsContent(.text("a\u{FFFD}bc")))
        XCTAssertTrue(stillReadsContent(.header("subject", "abc")))
        XCTAssertTrue(stillReadsContent(.and([.text("abc"), .header("from", "def")])))
    }
}

final class ReindexRPCTests: XCTestCase {
    func testReindexStreamsProgress() throws {
        let instance = try InProcessStore()
        _ = try StoreConformance(instance.store)
        let n = SearchIndexLimits.reindexBatch + 10
        for i in 0..<n { _ = try deliverSync(instance.store, "s@x.org", ["alice@example.org"], "Subject: m\(i)\r\n\r\nbody \(i)\r\n") }
        try instance.store.pool.write { try $0.execute(sql: "DELETE FROM search_index; INSERT INTO search_pending SELECT id FROM messages") }
        let admin = try instance.connect(.admin)
        var seen: [ReindexProgress] = []
        let end = try admin.stream(Reindex(user: "alice@example.org")) { seen.append($0) }
        XCTAssertEqual(seen, [ReindexProgress(done: 0, total: UInt64(n)), ReindexProgress(done: UInt64(SearchIndexLimits.reindexBatch), total: UInt64(n)),
                              ReindexProgress(done: UInt64(n), total: UInt64(n))])
        XCTAssertEqual(end, ReindexProgress(done: UInt64(n), total: UInt64(n)))
        XCTAssertEqual(try instance.store.searchIndexCounts().pending, 0)
        XCTAssertThrowsError(try admin.stream(Reindex(user: "nobody@example.org")) { _ in }) { XCTAssertEqual(($0 as? RPCError)?.code, .notFound) }
        let imapd = try instance.connect(.imapd)
        XCTAssertThrowsError(try imapd.stream(Reindex(user: "")) { _ in }) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
    }
}
