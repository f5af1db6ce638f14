// SORT's value cache (SQLiteMailStore+Sort.swift SortValueCache): a SORT answered from kept
// values is the SORT computed from every envelope afresh — warm, half warm after new mail and
// expunges, on a subset, after the mailbox was made anew — and the cache stays within its bound.
import XCTest
import GRDB
import MailModel
@testable import MailStore

final class SortValueCacheTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, alice: UserRef!

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 4096, clock: { conformanceNow })
        _ = try StoreConformance(store)
        alice = try store.user(named: "alice@example.org")
    }
    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    static let subjects = ["Re: plans", "plans", "[list] Fwd: Plans", "=?utf-8?q?=C3=A9t=C3=A9?=", "", "Zebra (fwd)", "apple", "Été"]
    static let senders = ["\"Zed\" <z@x.org>", "ann@y.org", "=?utf-8?q?=C3=89mile?= <e@z.org>", "group: a@b.org;", "Bob <bob@a.org>"]

    /// Message `i`: its subject, sender, recipients and date drawn from small sets (many ties).
    static func body(_ i: Int, seed: Int = 0) -> [UInt8] {
        let j = i &* 7 &+ seed
        var h = "From: \(senders[j % senders.count])\r\nTo: \(senders[(j / 3) % senders.count])\r\n"
        if j % 4 != 0 { h += "Cc: \(senders[(j / 2) % senders.count])\r\n" }
        if j % 5 != 0 { h += "Subject: \(subjects[j % subjects.count])\r\n" }
        if j % 6 != 0 { h += "Date: \(j % 9 == 0 ? "not a date" : "Mon, \(1 + j % 27) Jan 2024 10:00:00 +0000")\r\n" }
        return Array((h + "\r\nbody \(i)\r\n").utf8)
    }

    static let criteria: [[SortCriterion]] = [
        [.init(.subject)], [.init(.subject, reverse: true)], [.init(.from), .init(.date)], [.init(.to, reverse: true)],
        [.init(.cc), .init(.size)], [.init(.date)], [.init(.displayFrom), .init(.arrival, reverse: true)], [.init(.displayTo)],
        [.init(.arrival)], [.init(.size, reverse: true), .init(.subject)], [.init(.subject, reverse: true), .init(.from, reverse: true), .init(.cc)],
    ]

    /// SORT from every envelope decoded afresh (what the store did before the cache).
    func expected(_ mailbox: Int64, _ c: [SortCriterion], _ q: SearchQuery = .all) throws -> [UInt32] {
        SortKeys.sort(try store.sortable(user: alice.id, mailbox: mailbox, query: q, envelope: true, headers: false).map(\.0), by: c)
    }

    func assertSortsMatch(_ mailbox: Int64, _ what: String, _ q: SearchQuery = .all, file: StaticString = #filePath, line: UInt = #line) throws {
        for c in Self.criteria {
            XCTAssertEqual(try store.sort(user: alice.id, mailbox: mailbox, criteria: c, query: q), try expected(mailbox, c, q),
                           "\(what): \(c)", file: file, line: line)
        }
    }

    func append(_ mailbox: Int64, _ range: Range<Int>, seed: Int = 0) throws {
        for i in range { _ = try appendSync(store, user: alice.id, mailbox: mailbox, internalDate: 1_700_000_000 + Int64((i * 37) % 11), body: Self.body(i, seed: seed)) }
    }

    func testKeptValuesGiveTheSameOrderAsFreshOnes() throws {
        let box = try store.createMailbox(user: alice.id, name: "Sorted", specialUse: "").id
        try append(box, 0..<60)
        try assertSortsMatch(box, "cold")
        XCTAssertGreaterThan(store.sortValueCache.count, 0, "values kept")
        try assertSortsMatch(box, "warm")
        // New mail and expunges: the kept values of the rest serve, the new ones are computed.
        try append(box, 60..<90)
        _ = try store.expunge(user: alice.id, mailbox: box, uids: [2, 3, 5, 61], force: true)
        try assertSortsMatch(box, "half warm")
        try assertSortsMatch(box, "a subset", .uids([10...40, 70...80]))
    }

    func testAMailboxMadeAnewDoesNotSortByTheOldValues() throws {
        var box = try store.createMailbox(user: alice.id, name: "Again", specialUse: "").id
        try append(box, 0..<40)
        try assertSortsMatch(box, "first")
        try store.deleteMailbox(user: alice.id, name: "Again")
        box = try store.createMailbox(user: alice.id, name: "Again", specialUse: "").id
        try append(box, 0..<40, seed: 3)           // the same UIDs, other subjects and senders
        try assertSortsMatch(box, "made anew")
    }

    func testTheCacheStaysWithinItsBound() {
        let cache = SortValueCache()
        let column = SortValueCache.Column(user: 1, mailbox: 1, uidValidity: 1, key: .subject)
        let value = SortValue.text([UInt8](repeating: 0x41, count: 1000))
        let perBatch = 1000, batches = SortValueCache.maxBytes / (perBatch * (1000 + SortValueCache.entryCost)) + 2
        for b in 0..<batches {
            cache.keep(column, (0..<perBatch).map { (UInt32(b * perBatch + $0), value) })
            XCTAssertLessThanOrEqual(cache.count * (1000 + SortValueCache.entryCost), SortValueCache.maxBytes)
        }
        XCTAssertGreaterThan(cache.count, 0)
        XCTAssertEqual(cache.values(column, [UInt32(batches * perBatch - 1)]).first??.heldBytes, 1000, "the last kept is there")
    }

    /// SEARCH by flags, keywords, UIDs, MODSEQ and internal dates reads the narrow rows only
    /// (searchEntries); with LARGER 0 (true of every message) beside it the same query takes the
    /// wide rows: both must give the same UIDs.
    func testNarrowSearchEqualsTheWideOne() throws {
        let box = try store.createMailbox(user: alice.id, name: "Flags", specialUse: "").id
        try append(box, 0..<50)
        for (i, uid) in (1...50).enumerated() where i % 3 != 0 {
            let flags: SystemFlags = [[.seen], [.seen, .flagged], [.deleted], [.answered, .draft]][i % 4]
            _ = try store.storeFlags(user: alice.id, mailbox: box, uids: [UInt32(uid)], operation: .add, flags: flags,
                                     keywords: i % 5 == 0 ? ["$Junk"] : i % 7 == 0 ? ["work", "$Junk"] : [], unchangedSince: nil)
        }
        let day = Int(1_700_000_000 / 86_400)
        let queries: [SearchQuery] = [
            .all, .flags(.seen, set: false), .flags([.seen, .flagged], set: true), .not(.flags(.deleted, set: true)),
            .keyword("$junk", set: true), .keyword("work", set: false), .keyword("never", set: true),
            .uids([3...9, 20...22]), .modSeq(30), .or(.flags(.answered, set: true), .keyword("work", set: true)),
            .and([.flags(.seen, set: true), .not(.uids([1...10]))]), .internalDate(.on, day: day), .internalDate(.since, day: day + 1),
            .and([.internalDate(.before, day: day + 1), .flags(.draft, set: false), .modSeq(5)]),
        ]
        XCTAssertFalse(try store.search(user: alice.id, mailbox: box, query: .flags(.seen, set: false)).isEmpty)
        for q in queries {
            XCTAssertFalse(SQLiteMailStore.looksAtSize(q))
            let wide = try store.search(user: alice.id, mailbox: box, query: .and([q, .larger(0)]))
            XCTAssertEqual(try store.search(user: alice.id, mailbox: box, query: q), wide, "\(q)")
        }
        XCTAssertTrue(SQLiteMailStore.looksAtSize(.or(.all, .not(.smaller(5)))))
    }
}
