// The mailbox view of one session (DESIGN §9): messages in sequence order with their flags,
// keywords, MODSEQ and size, kept current from the store's deltas. Changes are absorbed at any time
// but announced only when the session says it may (RFC 9051 §7.5.1): new messages (EXISTS)
// and flag changes at any command end, expunges never during FETCH, STORE or SEARCH by
// sequence number. Pure value; the session writes the updates it returns.
import MailModel

public struct SelectedMailbox: Sendable {
    public let id: Int64
    public let name: String
    public let readOnly: Bool
    public let uidValidity: UInt32
    public private(set) var uidNext: UInt32
    /// The highest MODSEQ the client has been told about (HIGHESTMODSEQ).
    public private(set) var highestModSeq: UInt64
    /// The MODSEQ up to which changes have been pulled from the store.
    public private(set) var pulledModSeq: UInt64
    public private(set) var keywords: [String]
    /// The messages the client knows, in sequence order (UIDs ascending).
    public private(set) var entries: [ViewEntry]
    /// Pulled but not yet announced.
    private var expungedPending: Set<UInt32> = []
    private var addedPending: [ViewEntry] = []
    private var flagsPending: [UInt32: ViewEntry] = [:]
    private var announcedKeywords: Int

    public init(view: MailboxView, readOnly: Bool) {
        id = view.summary.id; name = view.summary.name; self.readOnly = readOnly
        uidValidity = view.summary.uidValidity; uidNext = view.summary.uidNext
        highestModSeq = view.summary.highestModSeq; pulledModSeq = view.summary.highestModSeq
        keywords = view.keywords; entries = view.entries; announcedKeywords = view.keywords.count
    }

    public var count: Int { entries.count }

    /// Sequence number (1-based) of `uid`, nil when the client does not know it.
    public func sequence(of uid: UInt32) -> Int? {
        var lo = 0, hi = entries.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2, u = entries[mid].uid
            if u == uid { return mid + 1 }
            if u < uid { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }

    public func entry(uid: UInt32) -> ViewEntry? { sequence(of: uid).map { entries[$0 - 1] } }

    /// The UIDs of `uids` the client knows, with their sequence numbers (1-based), in the
    /// order given; ascending `uids` (SEARCH's answer) take one walk beside the entries.
    public func known(_ uids: [UInt32]) -> [(uid: UInt32, sequence: Int)] {
        var out: [(uid: UInt32, sequence: Int)] = []
        out.reserveCapacity(uids.count)
        guard zip(uids, uids.dropFirst()).allSatisfy({ $0 < $1 }) else {
            // Many in another order (SORT's answer): a table by UID over the entries' span when
            // it is dense, else a binary search each.
            if uids.count >= 64, let lo = entries.first?.uid, let hi = entries.last?.uid, Int(hi - lo) < entries.count * 4 {
                var at = [Int32](repeating: 0, count: Int(hi - lo) + 1)
                for (i, e) in entries.enumerated() { at[Int(e.uid - lo)] = Int32(i + 1) }
                for u in uids where u >= lo && u <= hi && at[Int(u - lo)] != 0 { out.append((u, Int(at[Int(u - lo)]))) }
                return out
            }
            for u in uids { if let n = sequence(of: u) { out.append((u, n)) } }
            return out
        }
        var i = 0
        for u in uids {
            while i < entries.count && entries[i].uid < u { i += 1 }
            if i < entries.count && entries[i].uid == u { out.append((u, i + 1)) }
        }
        return out
    }

    /// Keyword names of an entry's bits.
    public func keywordNames(_ bits: UInt64) -> [String] {
        guard bits != 0 else { return [] }
        return keywords.indices.filter { $0 < 64 && bits & (1 << UInt64($0)) != 0 && !keywords[$0].isEmpty }.map { keywords[$0] }
    }

    public enum ResolveError: Error, Equatable { case noSavedResult, invalidSequence }

    /// The UIDs a set names, ascending and unique: sequence numbers (`uid` false) must exist
    /// (RFC 9051 §6.4.5: a number past EXISTS is an error — BAD), UID ranges name whatever
    /// exists within them. `*` is the last message (its UID for UID sets; with an empty
    /// mailbox a UID set "*" names nothing). `$` is the saved result (RFC 5182).
    public func resolve(_ set: SequenceSet, uid: Bool, saved: [UInt32]?) throws -> [UInt32] {
        switch set {
        case .saved:
            guard let saved else { throw ResolveError.noSavedResult }
            return saved.filter { sequence(of: $0) != nil }
        case .ranges(let ranges):
            if uid {
                let last = entries.last?.uid ?? 0
                var out: [UInt32] = []
                var seen = Set<UInt32>()
                for r in ranges {
                    var lo = r.lowerBound == SequenceSet.star ? last : r.lowerBound
                    var hi = r.upperBound == SequenceSet.star ? last : r.upperBound
                    if lo > hi { swap(&lo, &hi) }
                    // RFC 9051 §6.4.8: "*" in a UID range is the largest UID in use, so "n:*"
                    // names the last message even when n is above it.
                    if r.upperBound == SequenceSet.star && r.lowerBound != SequenceSet.star && r.lowerBound > last { lo = last; hi = last }
                    guard lo <= hi, !entries.isEmpty else { continue }
                    let start = lowerIndex(uid: lo)
                    var i = start
                    while i < entries.count && entries[i].uid <= hi {
                        if seen.insert(entries[i].uid).inserted { out.append(entries[i].uid) }
                        i += 1
                    }
                }
                return out.sorted()
            }
            let n = UInt32(entries.count)
            // One range (FETCH 1:*, 1:1000): its UIDs in order, no set to deduplicate.
            if ranges.count == 1, let r = ranges.first, n > 0 {
                var lo = r.lowerBound == SequenceSet.star ? n : r.lowerBound
                var hi = r.upperBound == SequenceSet.star ? n : r.upperBound
                if lo > hi { swap(&lo, &hi) }
                guard lo >= 1, hi <= n else { throw ResolveError.invalidSequence }
                return entries[Int(lo - 1)..<Int(hi)].map(\.uid)
            }
            var indices = Set<Int>()
            var out: [UInt32] = []
            for r in ranges {
                // "*" in an empty mailbox names nothing (as Dovecot answers FETCH 1:* there).
                if n == 0 && (r.lowerBound == SequenceSet.star || r.upperBound == SequenceSet.star) { continue }
                var lo = r.lowerBound == SequenceSet.star ? n : r.lowerBound
                var hi = r.upperBound == SequenceSet.star ? n : r.upperBound
                if lo > hi { swap(&lo, &hi) }
                guard lo >= 1, hi <= n else { throw ResolveError.invalidSequence }
                for s in lo...hi where indices.insert(Int(s)).inserted { out.append(entries[Int(s) - 1].uid) }
            }
            return out.sorted()
        }
    }

    private func lowerIndex(uid: UInt32) -> Int {
        var lo = 0, hi = entries.count
        while lo < hi { let mid = (lo + hi) / 2; if entries[mid].uid < uid { lo = mid + 1 } else { hi = mid } }
        return lo
    }

    /// What the client must be told, in the order to write it.
    public enum Update: Sendable, Equatable {
        case expunge(sequence: Int)
        case vanished([UInt32])
        case exists(Int)
        case flags(sequence: Int, entry: ViewEntry)
        /// The keyword list grew: FLAGS and PERMANENTFLAGS again (RFC 9051 §7.3.5).
        case keywords([String])
    }

    /// Takes a delta from the store (pulled since `pulledModSeq`).
    public mutating func absorb(_ d: MailboxDelta) {
        if d.keywords.count > keywords.count { keywords = d.keywords }
        for uid in d.vanished where sequence(of: uid) != nil || addedPending.contains(where: { $0.uid == uid }) {
            if let i = addedPending.firstIndex(where: { $0.uid == uid }) { addedPending.remove(at: i) } else { expungedPending.insert(uid) }
            flagsPending[uid] = nil
        }
        let lastKnown = max(entries.last?.uid ?? 0, addedPending.last?.uid ?? 0)
        for var e in d.changed {
            if let known = entry(uid: e.uid) {
                e = e.keepingSize(of: known)
                if known != e, !expungedPending.contains(e.uid) { flagsPending[e.uid] = e }
            } else if e.uid > lastKnown, !d.vanished.contains(e.uid) {
                if let i = addedPending.firstIndex(where: { $0.uid == e.uid }) { addedPending[i] = e } else { addedPending.append(e) }
            }
        }
        addedPending.sort { $0.uid < $1.uid }
        uidNext = max(uidNext, d.summary.uidNext)
        if let last = d.changed.last?.modSeq, !d.complete { pulledModSeq = max(pulledModSeq, last) } else { pulledModSeq = max(pulledModSeq, d.summary.highestModSeq) }
    }

    /// Whether something pulled waits to be announced.
    public var hasPending: Bool { !expungedPending.isEmpty || !addedPending.isEmpty || !flagsPending.isEmpty }

    /// The updates to write now. `expunges` false during FETCH/STORE/SEARCH by sequence number;
    /// `vanished`: QRESYNC is enabled (VANISHED instead of EXPUNGE, RFC 7162 §3.2.10).
    public mutating func announce(expunges: Bool, vanished: Bool) -> [Update] {
        var out: [Update] = []
        if keywords.count > announcedKeywords {
            announcedKeywords = keywords.count
            out.append(.keywords(keywords))
        }
        for (uid, e) in flagsPending.sorted(by: { $0.key < $1.key }) {
            guard let s = sequence(of: uid) else { continue }
            entries[s - 1] = e
            out.append(.flags(sequence: s, entry: e))
        }
        flagsPending.removeAll()
        if expunges && !expungedPending.isEmpty {
            let gone = expungedPending.sorted()
            out.append(contentsOf: remove(gone, vanished: vanished))
            expungedPending.removeAll()
        }
        if !addedPending.isEmpty {
            entries.append(contentsOf: addedPending)
            addedPending.removeAll()
            out.append(.exists(entries.count))
        }
        // HIGHESTMODSEQ covers only what the client was told (RFC 7162 §3.1.2.1).
        if !hasPending { highestModSeq = max(highestModSeq, pulledModSeq) }
        return out
    }

    /// Removes UIDs the session itself expunged (or moved), returning the responses.
    public mutating func remove(_ uids: [UInt32], vanished: Bool) -> [Update] {
        var seqs: [Int] = []
        var removed: [UInt32] = []
        for u in uids { if let s = sequence(of: u) { seqs.append(s); removed.append(u) } }
        guard !seqs.isEmpty else { return [] }
        let set = Set(removed)
        entries.removeAll { set.contains($0.uid) }
        for u in removed { expungedPending.remove(u); flagsPending[u] = nil }
        if vanished { return [.vanished(removed.sorted())] }
        // Highest first, so each number is still right when the client applies it.
        return seqs.sorted(by: >).map { .expunge(sequence: $0) }
    }

    /// Records entries the session itself changed (STORE), returning their sequence numbers.
    public mutating func apply(_ changed: [ViewEntry], keywords names: [String], highestModSeq h: UInt64) -> [(Int, ViewEntry)] {
        if names.count > keywords.count { keywords = names }
        var out: [(Int, ViewEntry)] = []
        for c in changed {
            // A STORE's reply carries no size: the one the view has stays.
            if let s = sequence(of: c.uid) { let e = c.keepingSize(of: entries[s - 1]); entries[s - 1] = e; flagsPending[e.uid] = nil; out.append((s, e)) }
        }
        highestModSeq = max(highestModSeq, h)
        return out
    }
}
