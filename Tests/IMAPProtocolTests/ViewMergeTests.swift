// MailboxView.merging (ViewMerge.swift): a kept view plus the changes since its MODSEQ equals the
// view as it is now, over random mailbox histories (adds, flag changes, expunges); and a
// disagreeing count or another mailbox is refused. Sizes come along with new entries and stay
// when a change came without one (a STORE's reply); SelectedMailbox keeps them the same way.
import XCTest
import MailModel
@testable import IMAPProtocol

final class ViewMergeTests: XCTestCase {
    /// A mailbox's rows and tombstones, changed the way the store changes them.
    struct History {
        var rng: UInt64
        var entries: [UInt32: ViewEntry] = [:]
        var tombstones: [UInt32: UInt64] = [:]
        var uidNext: UInt32 = 1, modSeq: UInt64 = 1

        mutating func next(_ n: Int) -> Int {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int((rng >> 33) % UInt64(n))
        }
        mutating func step() {
            modSeq += 1
            let live = entries.keys.sorted()
            switch next(10) {
            case 0...3:
                for _ in 0...next(5) {
                    entries[uidNext] = ViewEntry(uid: uidNext, modSeq: modSeq, flags: [], keywords: 0, size: 1000 + uidNext * 7); uidNext += 1
                }
            case 4...6 where !live.isEmpty:
                for _ in 0...next(8) {
                    let u = live[next(live.count)]
                    entries[u] = ViewEntry(uid: u, modSeq: modSeq, flags: SystemFlags(rawValue: UInt32(next(32))), keywords: UInt64(next(4)),
                                           size: entries[u]!.size)
                }
            case 7...9 where !live.isEmpty:
                for _ in 0...next(4) {
                    let u = live[next(live.count)]
                    if entries.removeValue(forKey: u) != nil { tombstones[u] = modSeq }
                }
            default: break
            }
        }
        var summary: MailboxSummary {
            MailboxSummary(id: 5, name: "INBOX", specialUse: "", uidValidity: 42, uidNext: uidNext, highestModSeq: modSeq,
                           messages: UInt32(entries.count), subscribed: true)
        }
        var view: MailboxView { MailboxView(summary: summary, keywords: ["a", "b"], entries: entries.values.sorted { $0.uid < $1.uid }) }
        /// What the store's delta answers: rows above `since` by MODSEQ, tombstones above it.
        func changes(since: UInt64) -> (changed: [ViewEntry], vanished: [UInt32]) {
            (entries.values.filter { $0.modSeq > since }.sorted { ($0.modSeq, $0.uid) < ($1.modSeq, $1.uid) },
             tombstones.filter { $0.value > since }.keys.sorted())
        }
    }

    func testKeptViewPlusChangesIsTheFreshView() {
        for seed in 1...300 {
            var h = History(rng: UInt64(seed))
            for _ in 0..<h.next(40) { h.step() }
            let kept = h.view
            for _ in 0..<h.next(30) { h.step() }
            let (changed, vanished) = h.changes(since: kept.summary.highestModSeq)
            let merged = kept.merging(summary: h.summary, keywords: ["a", "b"], changed: changed, vanished: vanished)
            XCTAssertEqual(merged, h.view, "seed \(seed)")
        }
    }

    func testUnchangedViewComesBackAsIs() {
        var h = History(rng: 7)
        for _ in 0..<20 { h.step() }
        let v = h.view
        XCTAssertEqual(v.merging(summary: v.summary, keywords: v.keywords, changed: [], vanished: []), v)
    }

    func testDisagreementsAreRefused() {
        var h = History(rng: 9)
        for _ in 0..<20 { h.step() }
        let v = h.view
        var s = v.summary
        s.messages += 1
        XCTAssertNil(v.merging(summary: s, keywords: [], changed: [], vanished: []), "a change the merge did not see")
        s = v.summary; s.uidValidity += 1
        XCTAssertNil(v.merging(summary: s, keywords: [], changed: [], vanished: []), "another UIDVALIDITY")
        s = v.summary; s.id += 1
        XCTAssertNil(v.merging(summary: s, keywords: [], changed: [], vanished: []), "another mailbox")
    }

    func testRepeatedUIDTakesTheHigherModSeq() {
        let s = MailboxSummary(id: 1, name: "INBOX", specialUse: "", uidValidity: 1, uidNext: 3, highestModSeq: 9, messages: 2, subscribed: false)
        let kept = MailboxView(summary: s, keywords: [], entries: [ViewEntry(uid: 1, modSeq: 1, flags: []), ViewEntry(uid: 2, modSeq: 2, flags: [])])
        let merged = kept.merging(summary: s, keywords: [], changed: [ViewEntry(uid: 2, modSeq: 9, flags: .seen), ViewEntry(uid: 2, modSeq: 5, flags: .deleted)], vanished: [7])
        XCTAssertEqual(merged?.entries, [ViewEntry(uid: 1, modSeq: 1, flags: []), ViewEntry(uid: 2, modSeq: 9, flags: .seen)])
    }

    func testChangesWithoutSizesKeepTheViewsSizes() {
        let s = MailboxSummary(id: 1, name: "INBOX", specialUse: "", uidValidity: 1, uidNext: 4, highestModSeq: 9, messages: 3, subscribed: false)
        let kept = MailboxView(summary: s, keywords: [], entries: [ViewEntry(uid: 1, modSeq: 1, flags: [], size: 100),
                                                                   ViewEntry(uid: 2, modSeq: 2, flags: [], size: 200)])
        let merged = kept.merging(summary: s, keywords: [], changed: [ViewEntry(uid: 1, modSeq: 8, flags: .seen),
                                                                      ViewEntry(uid: 3, modSeq: 9, flags: [], size: 300)], vanished: [])
        XCTAssertEqual(merged?.entries.map(\.size), [100, 200, 300])
        XCTAssertEqual(merged?.entries.first?.flags, .seen)
        // a change that does carry a size is taken as it is
        let other = kept.merging(summary: s, keywords: [], changed: [ViewEntry(uid: 2, modSeq: 8, flags: .seen, size: 200),
                                                                     ViewEntry(uid: 3, modSeq: 9, flags: [])], vanished: [])
        XCTAssertEqual(other?.entries.map(\.size), [100, 200, ViewEntry.unknownSize])
    }

    func testSelectedMailboxKeepsSizesThroughDeltasAndStores() {
        let s = MailboxSummary(id: 1, name: "INBOX", specialUse: "", uidValidity: 1, uidNext: 3, highestModSeq: 2, messages: 2, subscribed: false)
        var sel = SelectedMailbox(view: MailboxView(summary: s, keywords: [], entries: [ViewEntry(uid: 1, modSeq: 1, flags: [], size: 100),
                                                                                       ViewEntry(uid: 2, modSeq: 2, flags: [], size: 200)]),
                                  readOnly: false)
        // STORE's own reply: no size
        let applied = sel.apply([ViewEntry(uid: 1, modSeq: 3, flags: .seen)], keywords: [], highestModSeq: 3)
        XCTAssertEqual(applied.map(\.1.size), [100])
        // a pulled delta: a flag change without a size (announced as FETCH FLAGS), an unchanged
        // entry without one (not announced), and a new message with its size
        var now = s; now.highestModSeq = 6; now.uidNext = 4; now.messages = 3
        sel.absorb(MailboxDelta(summary: now, keywords: [], changed: [ViewEntry(uid: 1, modSeq: 3, flags: .seen),
                                                                      ViewEntry(uid: 2, modSeq: 5, flags: .flagged),
                                                                      ViewEntry(uid: 3, modSeq: 6, flags: [], size: 300)],
                                vanished: [], complete: true))
        let updates = sel.announce(expunges: true, vanished: false)
        XCTAssertEqual(updates, [.flags(sequence: 2, entry: ViewEntry(uid: 2, modSeq: 5, flags: .flagged, size: 200)), .exists(3)])
        XCTAssertEqual(sel.entries.map(\.size), [100, 200, 300])
    }

    /// SEARCH and SORT answers to sequence numbers: the UIDs the client knows, in the order
    /// given, whether ascending (one walk) or not (a lookup each).
    func testKnownUIDsAndTheirSequenceNumbers() {
        let uids: [UInt32] = [2, 3, 7, 10, 11, 20]
        let s = MailboxSummary(id: 1, name: "INBOX", specialUse: "", uidValidity: 1, uidNext: 21, highestModSeq: 1, messages: 6, subscribed: false)
        let sel = SelectedMailbox(view: MailboxView(summary: s, keywords: [], entries: uids.map { ViewEntry(uid: $0, modSeq: 1, flags: []) }),
                                  readOnly: false)
        func pairs(_ a: [UInt32]) -> [[Int]] { sel.known(a).map { [Int($0.uid), $0.sequence] } }
        XCTAssertEqual(pairs([1, 2, 7, 8, 11, 20, 21]), [[2, 1], [7, 3], [11, 5], [20, 6]])
        XCTAssertEqual(pairs([20, 1, 3, 11, 2, 99]), [[20, 6], [3, 2], [11, 5], [2, 1]])
        XCTAssertEqual(pairs([7, 7]), [[7, 3], [7, 3]], "not ascending: each looked up")
        XCTAssertEqual(pairs([]), [])
        XCTAssertEqual(pairs(uids), uids.enumerated().map { [Int($0.element), $0.offset + 1] })
    }

    /// Many UIDs in another order (a SORT answer): a table by UID over dense entries, a lookup
    /// each over sparse ones, the same answer as one sequence(of:) each.
    func testKnownManyUIDsInAnotherOrder() {
        var rng = SystemRandomNumberGenerator()
        for spread in [UInt32(1), 2, 50] {
            let uids = (1...UInt32(3000)).filter { $0 % 7 != 0 }.map { $0 * spread }
            let s = MailboxSummary(id: 1, name: "INBOX", specialUse: "", uidValidity: 1, uidNext: uids.last! + 1, highestModSeq: 1,
                                   messages: UInt32(uids.count), subscribed: false)
            let sel = SelectedMailbox(view: MailboxView(summary: s, keywords: [], entries: uids.map { ViewEntry(uid: $0, modSeq: 1, flags: []) }),
                                      readOnly: false)
            let asked = ((0...UInt32(3100)).map { $0 * spread } + [UInt32.max, 7 * spread]).shuffled(using: &rng)
            let want = asked.compactMap { u in sel.sequence(of: u).map { [Int(u), $0] } }
            XCTAssertEqual(sel.known(asked).map { [Int($0.uid), $0.sequence] }, want, "spread \(spread)")
        }
    }
}
