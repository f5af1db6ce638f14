// Mailbox family (types 200–399): what imapd (and later pop3d) asks of the store, every request
// scoped to a `session` an Authenticate on this connection created (the store maps it to the user).
// UID sets travel as canonical ranges; lists are bounded (MailboxLimits), so every reply fits a frame.
//
//   request                                           → reply                                     roles
//   MailboxSummaries(session)                         → SummaryList([MailboxSummary])             imapd pop3d
//   MailboxCreate(session, name, specialUse)          → OK                                        imapd
//   MailboxDelete(session, name)                      → OK                                        imapd
//   MailboxRename(session, from, to)                  → OK                                        imapd
//   SubscriptionList(session)                         → Names                                     imapd
//   SubscriptionSet(session, name, subscribed)        → OK                                        imapd
//   MailboxStatusGet(session, name)                   → MailboxStatusReply(status?)               imapd
//   MailboxSelect(session, name, known?, watch)       ⇒ stream: ViewHeader(summary, keywords,     imapd pop3d
//                                                       since, vanished, watch), ViewChunk([ViewEntry])*,
//                                                       then ViewEnd(count)  (since ≠ 0: the chunks
//                                                       are the changes since the `known` view)
//   MailboxDeltaGet(session, mailbox, since, limit,   → DeltaReply(delta)  (ask again from the    imapd
//                   watch)                              last MODSEQ while !complete; re-arms `watch`)
//   DetailsGet(session, mailbox, uids ≤ 1024, want,    → DetailsReply(details, through,            imapd pop3d
//              prefixLimit, fields?)                   prefixes)  (want: info and/or the header
//                                                      or whole message of each, up to prefixLimit;
//                                                      with fields: the header kept to those fields)
//   MessageRead(session, mailbox, uid, offset, length)→ MessageBytes(bytes ≤ maxReadLength)       imapd pop3d
//   FlagsStore(session, mailbox, uids, op, flags,     → FlagUpdateReply(update)                   imapd
//              keywords, unchangedSince?)
//   MessagesCopy(session, mailbox, uids, to, move)    → CopyReply(result)                         imapd
//   MessagesExpunge(session, mailbox, uids?)          → UIDList(expunged)                         imapd pop3d
//   SearchRun(session, mailbox, query)                → UIDList(matching)                         imapd
//   SortRun(session, mailbox, criteria, query)        → UIDList(matching, in sort order)          imapd
//   ThreadRun(session, mailbox, algorithm, query)     → ThreadReply(forest)                       imapd
//   AppendBegin(session, mailbox, flags, keywords,    ┐ one request id; the body follows in DeliverChunk
//               date?, size)                          │ frames, then DeliverEnd → AppendReply(uidValidity, uid),
//   DeliverChunk(bytes)* DeliverEnd | DeliverAbort    ┘ sent once the message is durable    imapd
//   QuotaGet(session)                                 → QuotaReply(usage)  (the session's own   imapd
//                                                       user; RFC 9208 GETQUOTA/GETQUOTAROOT)
// (MailboxWatchByID, the watch on a selected mailbox, is in Messages+Events.swift.)
import NIOCore
import MailModel

/// The bounds of the mailbox family's lists: decoders refuse more, so the services layer
/// batches or refuses before sending (a refused frame would close the whole worker connection).
public enum MailboxLimits {
    /// UIDs one UID set may expand to (a STORE/COPY/EXPUNGE over a whole large mailbox fits).
    /// A 42-byte frame may name this many, so it bounds what one frame costs the decoder
    /// (4 MiB and a few ms at 2^20; fuzz-rpc flagged 2^22 as a slow unit under ASan).
    public static let maxUIDs = 1 << 20
    /// Ranges one UID set may have (8 bytes each: well inside a frame).
    public static let maxUIDRanges = 100_000
    /// View entries per ViewChunk frame (28 bytes each: 112 KiB a frame).
    public static let entriesPerChunk = 4096
    /// Changed entries one DeltaReply carries (also the largest `limit` honoured).
    public static let maxDeltaEntries = 10_000
    /// UIDs one DetailsGet names (a reply that would outgrow a frame is cut: `through`).
    public static let detailsPerRequest = 1024
    /// Field names one DetailsGet filters headers to, and the length of each.
    public static let maxHeaderFieldNames = 256
    public static let maxHeaderFieldName = 998
    /// UIDs one FlagsStore names: its reply lists every changed entry (28 bytes each).
    public static let flagsPerRequest = 10_000
    /// Bytes one MessageRead returns at most.
    public static let maxReadLength = RPCLimits.chunkSize
    /// Keyword names one request or reply carries.
    public static let maxKeywords = maxKeywordsPerMailbox
    /// SEARCH program bounds: nesting depth and nodes in all.
    public static let searchMaxDepth = 32
    public static let searchMaxNodes = 4096
    /// Sort criteria one SortRun carries (RFC 5256 has nine keys; REVERSE doubles them).
    public static let maxSortCriteria = 32
}

// MARK: wire forms of the MailModel values

/// Sorted, disjoint, non-adjacent UID ranges: the one canonical form of a UID set.
public func uidRanges(_ uids: [UInt32]) -> [ClosedRange<UInt32>] {
    var out: [ClosedRange<UInt32>] = []
    for u in uids.sorted() {
        if let last = out.last, u <= last.upperBound { continue }
        if let last = out.last, last.upperBound < UInt32.max, u == last.upperBound + 1 {
            out[out.count - 1] = last.lowerBound...u
        } else {
            out.append(u...u)
        }
    }
    return out
}

extension WireWriter {
    /// A UID set (order and duplicates are not kept: it is a set) as canonical ranges.
    mutating func uidSet(_ uids: [UInt32]) { list(uidRanges(uids)) { $0.u32($1.lowerBound); $0.u32($1.upperBound) } }
    mutating func optUIDSet(_ uids: [UInt32]?) { bool(uids != nil); if let uids { uidSet(uids) } }
    /// UIDs in the order given, runs of consecutive ascending UIDs as one range (a repeated UID
    /// is dropped): for an ascending list the same bytes as `uidSet`.
    mutating func orderedUIDs(_ uids: [UInt32]) {
        // An ascending list (SEARCH's answer) has no UID twice: nothing to find them with.
        let ascending = zip(uids, uids.dropFirst()).allSatisfy { $0 < $1 }
        var seen = UIDSeen(ascending ? [] : uids)
        var runs: [ClosedRange<UInt32>] = []
        for u in uids where ascending || seen.insert(u) {
            if let last = runs.last, last.upperBound < UInt32.max, u == last.upperBound + 1 { runs[runs.count - 1] = last.lowerBound...u }
            else { runs.append(u...u) }
        }
        list(runs) { $0.u32($1.lowerBound); $0.u32($1.upperBound) }
    }
    mutating func flags(_ f: SystemFlags) { u32(f.rawValue) }
    mutating func summary(_ s: MailboxSummary) {
        i64(s.id); string(s.name); string(s.specialUse); u32(s.uidValidity); u32(s.uidNext)
        u64(s.highestModSeq); u32(s.messages); bool(s.subscribed)
    }
    /// A view chunk (4096 entries of 28 bytes): the room is made once, then each entry written
    /// as `list` would (count, then uid, modseq, flags, keywords, size each big-endian).
    mutating func entries(_ e: [ViewEntry]) {
        u32(UInt32(e.count))
        let size = WireSize.u32 * 3 + WireSize.u64 * 2
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: e.count * size) { p in
            var o = 0
            for x in e {
                p.storeBytes(of: x.uid.bigEndian, toByteOffset: o, as: UInt32.self)
                p.storeBytes(of: x.modSeq.bigEndian, toByteOffset: o + 4, as: UInt64.self)
                p.storeBytes(of: x.flags.rawValue.bigEndian, toByteOffset: o + 12, as: UInt32.self)
                p.storeBytes(of: x.keywords.bigEndian, toByteOffset: o + 16, as: UInt64.self)
                p.storeBytes(of: x.size.bigEndian, toByteOffset: o + 24, as: UInt32.self)
                o += size
            }
            return o
        }
    }
}

extension WireReader {
    /// A UID set in canonical ranges (anything else is refused, so decoding re-encodes exactly),
    /// expanding to at most `max` UIDs.
    mutating func uidSet(max: Int = MailboxLimits.maxUIDs) throws -> [UInt32] {
        try uidRuns(max: max, ordered: false)
    }
    mutating func optUIDSet() throws -> [UInt32]? { try bool() ? try uidSet() : nil }
    /// The inverse of `WireWriter.orderedUIDs`: ranges in any order, but no UID twice and no
    /// range that continues the one before it (it would have been one run).
    mutating func orderedUIDs(max: Int = MailboxLimits.maxUIDs) throws -> [UInt32] {
        try uidRuns(max: max, ordered: true)
    }
    /// Ranges (lo ≤ hi) expanded in their order: ascending and apart unless `ordered`, where
    /// only a range continuing the one before it, or one overlapping another, is refused.
    private mutating func uidRuns(max: Int, ordered: Bool) throws -> [UInt32] {
        let ranges = try list(minElementBytes: 2 * WireSize.u32, max: MailboxLimits.maxUIDRanges) { r -> ClosedRange<UInt32> in
            let lo = try r.u32(), hi = try r.u32()
            guard lo <= hi else { throw WireError.badValue("UID range \(lo):\(hi)") }
            return lo...hi
        }
        var total = 0
        for (i, r) in ranges.enumerated() {
            if i > 0 {
                let next = Int(ranges[i - 1].upperBound) + 1
                if ordered ? Int(r.lowerBound) == next : Int(r.lowerBound) <= next { throw WireError.badValue("UID ranges not canonical") }
            }
            total += Int(r.upperBound - r.lowerBound) + 1
            guard total <= max else { throw WireError.badValue("UID set over \(max) UIDs") }
        }
        if ordered, ranges.count > 1 {
            var seen = UIDSeen(lo: ranges.lazy.map(\.lowerBound).min()!, hi: ranges.lazy.map(\.upperBound).max()!, count: total)
            for r in ranges {
                for u in r where !seen.insert(u) { throw WireError.badValue("UID \(u) twice in a UID list") }
            }
        }
        var out: [UInt32] = []; out.reserveCapacity(total)
        for r in ranges { out.append(contentsOf: r) }
        return out
    }
    mutating func flags() throws -> SystemFlags {
        let v = try u32()
        guard SystemFlags(rawValue: v).isSubset(of: .all) else { throw WireError.badValue("flags \(v)") }
        return SystemFlags(rawValue: v)
    }
    mutating func summary() throws -> MailboxSummary {
        MailboxSummary(id: try i64(), name: try string(), specialUse: try string(), uidValidity: try u32(), uidNext: try u32(),
                       highestModSeq: try u64(), messages: try u32(), subscribed: try bool())
    }
    /// The inverse of `WireWriter.entries`, in one pass over the bytes (count checked first).
    mutating func entries(max: Int) throws -> [ViewEntry] {
        let size = WireSize.u32 * 3 + WireSize.u64 * 2
        let n = Int(try u32())
        guard n <= buffer.readableBytes / size else { throw WireError.truncated }
        guard n <= max else { throw WireError.badValue("\(n) elements, at most \(max) allowed") }
        var bad: UInt32? = nil
        let out = buffer.readWithUnsafeReadableBytes { p -> (Int, [ViewEntry]) in
            var out: [ViewEntry] = []
            out.reserveCapacity(n)
            for i in 0..<n {
                let o = i * size
                let flags = SystemFlags(rawValue: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o + 12, as: UInt32.self)))
                if !flags.isSubset(of: .all) { bad = flags.rawValue; return (0, []) }
                out.append(ViewEntry(uid: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)),
                                     modSeq: UInt64(bigEndian: p.loadUnaligned(fromByteOffset: o + 4, as: UInt64.self)),
                                     flags: flags, keywords: UInt64(bigEndian: p.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self)),
                                     size: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o + 24, as: UInt32.self))))
            }
            return (n * size, out)
        }
        if let bad { throw WireError.badValue("flags \(bad)") }
        return out
    }
    mutating func keywords() throws -> [String] { try strings(max: MailboxLimits.maxKeywords) }
}

// MARK: SEARCH programs

/// SearchQuery on the wire: a tag byte per node, children in order. Decoding is bounded in
/// depth and node count (a malformed or over-deep query is a protocol error, never a crash).
enum SearchCodec {
    enum Tag: UInt8 {
        case all = 0, and, or, not, uids, flags, keyword, internalDate, sentDate, larger, smaller, header, body, text, modSeq
    }

    /// Why `query` cannot travel (too deep, too many nodes, a flag the store does not keep), or nil.
    static func problem(_ query: SearchQuery) -> String? {
        var nodes = 0
        func walk(_ q: SearchQuery, _ depth: Int) -> Bool {
            nodes += 1
            guard depth <= MailboxLimits.searchMaxDepth, nodes <= MailboxLimits.searchMaxNodes else { return false }
            switch q {
            case .and(let qs): return qs.allSatisfy { walk($0, depth + 1) }
            case .or(let a, let b): return walk(a, depth + 1) && walk(b, depth + 1)
            case .not(let a): return walk(a, depth + 1)
            case .flags(let f, _): return f.isSubset(of: .all)
            default: return true
            }
        }
        return walk(query, 1) ? nil : "search program over \(MailboxLimits.searchMaxDepth) levels or \(MailboxLimits.searchMaxNodes) keys, or an unknown flag"
    }

    static func write(_ q: SearchQuery, to w: inout WireWriter) {
        switch q {
        case .all: w.u8(Tag.all.rawValue)
        case .and(let qs): w.u8(Tag.and.rawValue); w.list(qs) { write($1, to: &$0) }
        case .or(let a, let b): w.u8(Tag.or.rawValue); write(a, to: &w); write(b, to: &w)
        case .not(let a): w.u8(Tag.not.rawValue); write(a, to: &w)
        case .uids(let rs): w.u8(Tag.uids.rawValue); w.list(rs) { $0.u32($1.lowerBound); $0.u32($1.upperBound) }
        case .flags(let f, let set): w.u8(Tag.flags.rawValue); w.flags(f); w.bool(set)
        case .keyword(let k, let set): w.u8(Tag.keyword.rawValue); w.string(k); w.bool(set)
        case .internalDate(let rel, let day): w.u8(Tag.internalDate.rawValue); w.u8(rel.rawValue); w.i64(Int64(day))
        case .sentDate(let rel, let day): w.u8(Tag.sentDate.rawValue); w.u8(rel.rawValue); w.i64(Int64(day))
        case .larger(let n): w.u8(Tag.larger.rawValue); w.u64(n)
        case .smaller(let n): w.u8(Tag.smaller.rawValue); w.u64(n)
        case .header(let name, let value): w.u8(Tag.header.rawValue); w.string(name); w.string(value)
        case .body(let s): w.u8(Tag.body.rawValue); w.string(s)
        case .text(let s): w.u8(Tag.text.rawValue); w.string(s)
        case .modSeq(let m): w.u8(Tag.modSeq.rawValue); w.u64(m)
        }
    }

    static func read(_ r: inout WireReader) throws -> SearchQuery {
        var nodes = 0
        return try read(&r, depth: 1, nodes: &nodes)
    }

    private static func read(_ r: inout WireReader, depth: Int, nodes: inout Int) throws -> SearchQuery {
        nodes += 1
        guard depth <= MailboxLimits.searchMaxDepth else { throw WireError.badValue("search program deeper than \(MailboxLimits.searchMaxDepth)") }
        guard nodes <= MailboxLimits.searchMaxNodes else { throw WireError.badValue("search program over \(MailboxLimits.searchMaxNodes) keys") }
        switch try r.enumU8(Tag.self) {
        case .all: return .all
        case .and:
            var n = nodes
            let qs = try r.list(minElementBytes: WireSize.u8, max: MailboxLimits.searchMaxNodes) { try read(&$0, depth: depth + 1, nodes: &n) }
            nodes = n
            return .and(qs)
        case .or:
            let a = try read(&r, depth: depth + 1, nodes: &nodes)
            return .or(a, try read(&r, depth: depth + 1, nodes: &nodes))
        case .not: return .not(try read(&r, depth: depth + 1, nodes: &nodes))
        case .uids:
            return .uids(try r.list(minElementBytes: 2 * WireSize.u32) { r -> ClosedRange<UInt32> in
                let lo = try r.u32(), hi = try r.u32()
                guard lo <= hi else { throw WireError.badValue("UID range \(lo):\(hi)") }
                return lo...hi
            })
        case .flags: return .flags(try r.flags(), set: try r.bool())
        case .keyword: return .keyword(try r.string(), set: try r.bool())
        case .internalDate: return .internalDate(try r.enumU8(SearchQuery.DateRelation.self), day: try day(&r))
        case .sentDate: return .sentDate(try r.enumU8(SearchQuery.DateRelation.self), day: try day(&r))
        case .larger: return .larger(try r.u64())
        case .smaller: return .smaller(try r.u64())
        case .header: return .header(try r.string(), try r.string())
        case .body: return .body(try r.string())
        case .text: return .text(try r.string())
        case .modSeq: return .modSeq(try r.u64())
        }
    }

    private static func day(_ r: inout WireReader) throws -> Int {
        let d = try r.i64()
        guard let day = Int(exactly: d) else { throw WireError.badValue("day \(d)") }
        return day
    }
}

// MARK: requests naming a session and a mailbox

/// The session-scoped requests: the store checks `session` against this connection first.
public protocol SessionRequest: RPCRequest {
    var session: UInt64 { get }
}

/// Requests that carry only the session.
public protocol SessionOnlyRequest: SessionRequest {
    init(session: UInt64)
}
extension SessionOnlyRequest {
    public init(reading r: inout WireReader) throws { self.init(session: try r.u64()) }
    public func write(to w: inout WireWriter) { w.u64(session) }
}

/// Requests that carry the session and one mailbox name.
public protocol SessionNameRequest: SessionRequest {
    var name: String { get }
    init(session: UInt64, name: String)
}
extension SessionNameRequest {
    public init(reading r: inout WireReader) throws { self.init(session: try r.u64(), name: try r.string()) }
    public func write(to w: inout WireWriter) { w.u64(session); w.string(name) }
}

/// Every mailbox of the session's user with its id and counters (LIST, LIST-STATUS).
public struct MailboxSummaries: SessionOnlyRequest {
    public typealias Reply = SummaryList
    public static let type = MessageType.mailboxSummaries
    public static let roles: Set<Role> = .mailboxRoles
    public var session: UInt64
    public init(session: UInt64) { self.session = session }
}

public struct SummaryList: RPCMessage {
    public static let type = MessageType.summaryList
    public var summaries: [MailboxSummary]
    public init(_ summaries: [MailboxSummary]) { self.summaries = summaries }
    static let minBytes = WireSize.u64 * 2 + WireSize.string * 2 + WireSize.u32 * 3 + WireSize.bool
    public init(reading r: inout WireReader) throws { summaries = try r.list(minElementBytes: Self.minBytes) { try $0.summary() } }
    public func write(to w: inout WireWriter) { w.list(summaries) { $0.summary($1) } }
}

public struct MailboxCreate: SessionRequest {
    public typealias Reply = OK
    public static let type = MessageType.mailboxCreate
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, name: String, specialUse: String
    public init(session: UInt64, name: String, specialUse: String = "") { self.session = session; self.name = name; self.specialUse = specialUse }
    public init(reading r: inout WireReader) throws { session = try r.u64(); name = try r.string(); specialUse = try r.string() }
    public func write(to w: inout WireWriter) { w.u64(session); w.string(name); w.string(specialUse) }
}

public struct MailboxDelete: SessionNameRequest {
    public typealias Reply = OK
    public static let type = MessageType.mailboxDelete
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, name: String
    public init(session: UInt64, name: String) { self.session = session; self.name = name }
}

public struct MailboxRename: SessionRequest {
    public typealias Reply = OK
    public static let type = MessageType.mailboxRename
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, from: String, to: String
    public init(session: UInt64, from: String, to: String) { self.session = session; self.from = from; self.to = to }
    public init(reading r: inout WireReader) throws { session = try r.u64(); from = try r.string(); to = try r.string() }
    public func write(to w: inout WireWriter) { w.u64(session); w.string(from); w.string(to) }
}

public struct SubscriptionList: SessionOnlyRequest {
    public typealias Reply = Names
    public static let type = MessageType.subscriptionList
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64
    public init(session: UInt64) { self.session = session }
}

public struct SubscriptionSet: SessionRequest {
    public typealias Reply = OK
    public static let type = MessageType.subscriptionSet
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, name: String, subscribed: Bool
    public init(session: UInt64, name: String, subscribed: Bool) { self.session = session; self.name = name; self.subscribed = subscribed }
    public init(reading r: inout WireReader) throws { session = try r.u64(); name = try r.string(); subscribed = try r.bool() }
    public func write(to w: inout WireWriter) { w.u64(session); w.string(name); w.bool(subscribed) }
}

/// STATUS (RFC 9051 §6.3.11) of a mailbox by name.
public struct MailboxStatusGet: SessionNameRequest {
    public typealias Reply = MailboxStatusReply
    public static let type = MessageType.mailboxStatusGet
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, name: String
    public init(session: UInt64, name: String) { self.session = session; self.name = name }
}

/// `status` nil: no such mailbox.
public struct MailboxStatusReply: RPCMessage {
    public static let type = MessageType.mailboxStatusReply
    public var status: MailboxStatus?
    public init(_ status: MailboxStatus?) { self.status = status }
    public init(reading r: inout WireReader) throws {
        status = try r.bool() ? MailboxStatus(summary: try r.summary(), unseen: try r.u32(), deleted: try r.u32(), size: try r.u64()) : nil
    }
    public func write(to w: inout WireWriter) {
        w.bool(status != nil)
        if let s = status { w.summary(s.summary); w.u32(s.unseen); w.u32(s.deleted); w.u64(s.size) }
    }
}

// MARK: SELECT as a stream

/// A view the worker already holds (from an earlier SELECT): which mailbox, and as of which
/// UIDVALIDITY and HIGHESTMODSEQ.
public struct ViewStamp: Sendable, Equatable, Hashable {
    public var mailbox: Int64, uidValidity: UInt32, highestModSeq: UInt64
    public init(mailbox: Int64, uidValidity: UInt32, highestModSeq: UInt64) {
        self.mailbox = mailbox; self.uidValidity = uidValidity; self.highestModSeq = highestModSeq
    }
}

/// SELECT (RFC 9051 §6.3.2): the whole view, streamed with credit so a large mailbox never
/// needs one large frame (DESIGN §9). With `known`, the store may answer with only the changes
/// since that view (ViewHeader.since ≠ 0) when it is the same mailbox and UIDVALIDITY.
/// `watch` (imapd's view memo, DESIGN §2): 0 none; else this connection's detached watch on
/// the mailbox to re-arm before the view is read, or `newWatch` (or one that is not usable) for
/// a new one when the mailbox has at least `memoMinMessages` (smaller views are read whole each
/// time), armed before the view is read, its events sent only after the stream; ViewHeader.watch
/// says which watch now stands for the view (0: none).
public struct MailboxSelect: RPCStreamRequest, SessionNameRequest {
    public typealias Reply = ViewEnd
    public typealias Item = MailboxViewItem
    public static let type = MessageType.mailboxSelect
    public static let roles: Set<Role> = .mailboxRoles
    public static let newWatch = UInt64.max
    public static let memoMinMessages: UInt32 = 256
    public var session: UInt64, name: String, known: ViewStamp?, watch: UInt64
    public init(session: UInt64, name: String) { self.init(session: session, name: name, known: nil) }
    public init(session: UInt64, name: String, known: ViewStamp?, watch: UInt64 = 0) {
        self.session = session; self.name = name; self.known = known; self.watch = watch
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); name = try r.string()
        known = try r.bool() ? ViewStamp(mailbox: try r.i64(), uidValidity: try r.u32(), highestModSeq: try r.u64()) : nil
        watch = try r.u64()
    }
    public func write(to w: inout WireWriter) {
        w.u64(session); w.string(name); w.bool(known != nil)
        if let k = known { w.i64(k.mailbox); w.u32(k.uidValidity); w.u64(k.highestModSeq) }
        w.u64(watch)
    }
}

/// The first item of a SELECT stream. `watch`: the detached watch armed for this view (re-armed
/// or new), 0 when none was asked or possible.
public struct ViewHeader: RPCMessage, RPCStreamItem {
    public static let type = MessageType.viewHeader
    public var summary: MailboxSummary, keywords: [String], since: UInt64, vanished: [UInt32], watch: UInt64
    public init(summary: MailboxSummary, keywords: [String], since: UInt64 = 0, vanished: [UInt32] = [], watch: UInt64 = 0) {
        self.summary = summary; self.keywords = keywords; self.since = since; self.vanished = vanished; self.watch = watch
    }
    public init(reading r: inout WireReader) throws {
        summary = try r.summary(); keywords = try r.keywords(); since = try r.u64(); vanished = try r.uidSet(); watch = try r.u64()
        guard since != 0 || vanished.isEmpty else { throw WireError.badValue("vanished UIDs in a whole view") }
    }
    public func write(to w: inout WireWriter) { w.summary(summary); w.strings(keywords); w.u64(since); w.uidSet(vanished); w.u64(watch) }
}

/// Entries of the view in UID order (with their sizes), at most `MailboxLimits.entriesPerChunk` a frame.
public struct ViewChunk: RPCMessage, RPCStreamItem {
    public static let type = MessageType.viewChunk
    public var entries: [ViewEntry]
    public init(_ entries: [ViewEntry]) { self.entries = entries }
    public init(reading r: inout WireReader) throws { entries = try r.entries(max: MailboxLimits.entriesPerChunk) }
    public func write(to w: inout WireWriter) { w.entries(entries) }
}

/// The end of a SELECT stream: how many entries were sent (the receiver checks it).
public struct ViewEnd: RPCMessage {
    public static let type = MessageType.viewEnd
    public var count: UInt32
    public init(count: UInt32) { self.count = count }
    public init(reading r: inout WireReader) throws { count = try r.u32() }
    public func write(to w: inout WireWriter) { w.u32(count) }
}

public enum MailboxViewItem: RPCStreamItem, Equatable {
    case header(ViewHeader), chunk([ViewEntry])
    public static func decode(_ frame: Frame) throws -> MailboxViewItem {
        switch frame.type {
        case ViewHeader.type.rawValue: return .header(try ViewHeader.decode(frame))
        case ViewChunk.type.rawValue: return .chunk(try ViewChunk.decode(frame).entries)
        default: throw WireError.unexpectedType(frame.type)
        }
    }
    public func frame(requestID: UInt32, flags: FrameFlags) -> Frame {
        switch self {
        case .header(let h): return h.frame(requestID: requestID, flags: flags)
        case .chunk(let e): return ViewChunk(e).frame(requestID: requestID, flags: flags)
        }
    }
}

// MARK: keeping a view current, reading messages

/// Changes since a MODSEQ (DESIGN §2 notify, then pull). `watch` (0: none) is this session's
/// watch on the mailbox: pulling re-arms its notification before the store is read.
public struct MailboxDeltaGet: SessionRequest {
    public typealias Reply = DeltaReply
    public static let type = MessageType.mailboxDeltaGet
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64, since: UInt64, limit: UInt32, watch: UInt64
    public init(session: UInt64, mailbox: Int64, since: UInt64, limit: UInt32 = UInt32(MailboxLimits.maxDeltaEntries), watch: UInt64 = 0) {
        self.session = session; self.mailbox = mailbox; self.since = since; self.limit = limit; self.watch = watch
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64(); since = try r.u64(); limit = try r.u32(); watch = try r.u64()
    }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.u64(since); w.u32(limit); w.u64(watch) }
}

public struct DeltaReply: RPCMessage {
    public static let type = MessageType.deltaReply
    public var delta: MailboxDelta
    public init(_ delta: MailboxDelta) { self.delta = delta }
    public init(reading r: inout WireReader) throws {
        let s = try r.summary(), k = try r.keywords(), c = try r.entries(max: MailboxLimits.maxDeltaEntries)
        let v = try r.uidSet()
        delta = MailboxDelta(summary: s, keywords: k, changed: c, vanished: v, complete: try r.bool())
    }
    public func write(to w: inout WireWriter) {
        w.summary(delta.summary); w.strings(delta.keywords); w.entries(delta.changed); w.uidSet(delta.vanished); w.bool(delta.complete)
    }
}

/// FETCH's per-message details of up to `MailboxLimits.detailsPerRequest` UIDs.
/// What a DetailsGet asks for beyond UID, internal date and size.
public struct DetailsWant: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The encoded MessageInfo (ENVELOPE, BODYSTRUCTURE, part offsets); else `info` is empty.
    public static let info = DetailsWant(rawValue: 1)
    /// The message's top-level header as a prefix (FETCH BODY[HEADER.FIELDS …] of many messages).
    public static let header = DetailsWant(rawValue: 2)
    /// The whole message as a prefix (FETCH BODY[] of many small messages); implies `header`.
    public static let message = DetailsWant(rawValue: 4)
    /// With `header`: each header kept to `DetailsGet.fields` (RFC 9051 §6.4.5 HEADER.FIELDS[.NOT])
    /// by the store, so only those fields cross.
    public static let fields = DetailsWant(rawValue: 8)
    public static let known: DetailsWant = [.info, .header, .message, .fields]
    public var wantsPrefix: Bool { !isDisjoint(with: [.header, .message]) }
}

public struct DetailsGet: SessionRequest {
    public typealias Reply = DetailsReply
    public static let type = MessageType.detailsGet
    public static let roles: Set<Role> = .mailboxRoles
    public var session: UInt64, mailbox: Int64, uids: [UInt32]
    public var want: DetailsWant
    /// A prefix longer than this is left out (its message is read by range instead).
    public var prefixLimit: UInt32
    /// With `want` `.fields` (on the wire only then): the header fields kept, lowercase, or with
    /// `fieldsNot` the ones dropped; a prefix is the filtered header (its limit still applies to
    /// the whole header, or to the fields the store keeps per message when it answers from them).
    public var fields: [String], fieldsNot: Bool
    public init(session: UInt64, mailbox: Int64, uids: [UInt32], want: DetailsWant = .info, prefixLimit: UInt32 = 0,
                fields: [String] = [], fieldsNot: Bool = false) {
        self.session = session; self.mailbox = mailbox; self.uids = uids; self.want = want; self.prefixLimit = prefixLimit
        self.fields = fields; self.fieldsNot = fieldsNot
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64(); uids = try r.uidSet(max: MailboxLimits.detailsPerRequest)
        want = DetailsWant(rawValue: try r.u8())
        guard DetailsWant.known.isSuperset(of: want) else { throw WireError.badValue("unknown details wanted: \(want.rawValue)") }
        guard !want.contains(.fields) || (want.contains(.header) && !want.contains(.message)) else {
            throw WireError.badValue("fields wanted without a header prefix")
        }
        prefixLimit = try r.u32()
        guard prefixLimit <= UInt32(MailboxLimits.maxReadLength) else { throw WireError.badValue("prefix limit \(prefixLimit)") }
        fields = []; fieldsNot = false
        if want.contains(.fields) {
            fields = try r.strings(max: MailboxLimits.maxHeaderFieldNames)
            guard fields.allSatisfy({ !$0.isEmpty && $0.utf8.count <= MailboxLimits.maxHeaderFieldName && $0 == $0.lowercased() }) else {
                throw WireError.badValue("header field names")
            }
            fieldsNot = try r.bool()
        }
    }
    public func write(to w: inout WireWriter) {
        w.u64(session); w.i64(mailbox); w.uidSet(uids); w.u8(want.rawValue); w.u32(prefixLimit)
        if want.contains(.fields) { w.strings(fields); w.bool(fieldsNot) }
    }
}

/// `through`: the highest UID asked for that this reply accounts for (present or gone). The
/// store stops early when the reply would outgrow a frame; ask again for the UIDs above it.
/// `prefixes`: with a prefix wanted, one per entry of `details` (empty: over the limit), else none.
public struct DetailsReply: RPCMessage {
    public static let type = MessageType.detailsReply
    public var details: [MessageDetails], through: UInt32
    public var prefixes: [[UInt8]]
    public init(_ details: [MessageDetails], through: UInt32, prefixes: [[UInt8]] = []) {
        self.details = details; self.through = through; self.prefixes = prefixes
    }
    public static let minBytes = WireSize.u32 + WireSize.u64 * 2 + WireSize.bytes
    public init(reading r: inout WireReader) throws {
        details = try r.list(minElementBytes: Self.minBytes, max: MailboxLimits.detailsPerRequest) {
            MessageDetails(uid: try $0.u32(), internalDate: try $0.i64(), size: try $0.u64(), info: Array(try $0.bytes().readableBytesView))
        }
        through = try r.u32()
        prefixes = try r.list(minElementBytes: WireSize.bytes, max: MailboxLimits.detailsPerRequest) { Array(try $0.bytes().readableBytesView) }
        guard prefixes.isEmpty || prefixes.count == details.count else { throw WireError.badValue("\(prefixes.count) prefixes for \(details.count) details") }
    }
    public func write(to w: inout WireWriter) {
        w.list(details) { $0.u32($1.uid); $0.i64($1.internalDate); $0.u64($1.size); $0.bytes($1.info) }
        w.u32(through)
        w.list(prefixes) { $0.bytes($1) }
    }
}

/// Bytes `[offset, offset + length)` of a message (DESIGN §2: bodies are read by range).
public struct MessageRead: SessionRequest {
    public typealias Reply = MessageBytes
    public static let type = MessageType.messageRead
    public static let roles: Set<Role> = .mailboxRoles
    public var session: UInt64, mailbox: Int64, uid: UInt32, offset: UInt64, length: UInt32
    public init(session: UInt64, mailbox: Int64, uid: UInt32, offset: UInt64, length: UInt32) {
        self.session = session; self.mailbox = mailbox; self.uid = uid; self.offset = offset; self.length = length
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64(); uid = try r.u32(); offset = try r.u64(); length = try r.u32()
    }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.u32(uid); w.u64(offset); w.u32(length) }
}

/// Fewer bytes than asked: the message ends there.
public struct MessageBytes: RPCMessage {
    public static let type = MessageType.messageBytes
    public var bytes: ByteBuffer
    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
    public init(reading r: inout WireReader) throws {
        bytes = try r.bytes()
        guard bytes.readableBytes <= MailboxLimits.maxReadLength else { throw WireError.badValue("read of \(bytes.readableBytes) bytes") }
    }
    public func write(to w: inout WireWriter) { w.bytes(bytes) }
}

// MARK: changing messages

/// STORE (RFC 9051 §6.4.6; UNCHANGEDSINCE RFC 7162 §3.1.3) on at most `flagsPerRequest` UIDs.
public struct FlagsStore: SessionRequest {
    public typealias Reply = FlagUpdateReply
    public static let type = MessageType.flagsStore
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags
    public var keywords: [String], unchangedSince: UInt64?
    public init(session: UInt64, mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags, keywords: [String], unchangedSince: UInt64?) {
        self.session = session; self.mailbox = mailbox; self.uids = uids; self.operation = operation; self.flags = flags
        self.keywords = keywords; self.unchangedSince = unchangedSince
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64(); uids = try r.uidSet(max: MailboxLimits.flagsPerRequest)
        operation = try r.enumU8(FlagOperation.self); flags = try r.flags(); keywords = try r.keywords()
        unchangedSince = try r.bool() ? try r.u64() : nil
    }
    public func write(to w: inout WireWriter) {
        w.u64(session); w.i64(mailbox); w.uidSet(uids); w.u8(operation.rawValue); w.flags(flags); w.strings(keywords)
        w.bool(unchangedSince != nil); if let u = unchangedSince { w.u64(u) }
    }
}

public struct FlagUpdateReply: RPCMessage {
    public static let type = MessageType.flagUpdateReply
    public var update: FlagUpdate
    public init(_ update: FlagUpdate) { self.update = update }
    public init(reading r: inout WireReader) throws {
        let c = try r.entries(max: MailboxLimits.flagsPerRequest), m = try r.uidSet(max: MailboxLimits.flagsPerRequest)
        update = FlagUpdate(changed: c, modified: m, keywords: try r.keywords(), highestModSeq: try r.u64())
    }
    public func write(to w: inout WireWriter) {
        w.entries(update.changed); w.uidSet(update.modified); w.strings(update.keywords); w.u64(update.highestModSeq)
    }
}

/// COPY/MOVE (RFC 9051 §6.4.7, RFC 6851) to a mailbox by name (`.notFound` → [TRYCREATE]).
public struct MessagesCopy: SessionRequest {
    public typealias Reply = CopyReply
    public static let type = MessageType.messagesCopy
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64, uids: [UInt32], to: String, move: Bool
    public init(session: UInt64, mailbox: Int64, uids: [UInt32], to: String, move: Bool) {
        self.session = session; self.mailbox = mailbox; self.uids = uids; self.to = to; self.move = move
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64(); uids = try r.uidSet(); to = try r.string(); move = try r.bool()
    }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.uidSet(uids); w.string(to); w.bool(move) }
}

/// COPYUID (RFC 4315 §3): both UID lists ascending, pairwise. Empty lists when they would not
/// fit a frame (the COPYUID code is then left out; RFC 4315 allows it).
public struct CopyReply: RPCMessage {
    public static let type = MessageType.copyReply
    public var result: CopyResult
    public init(_ result: CopyResult) { self.result = result }
    public init(reading r: inout WireReader) throws {
        result = CopyResult(uidValidity: try r.u32(), sourceUIDs: try r.uidSet(), destinationUIDs: try r.uidSet())
    }
    public func write(to w: inout WireWriter) { w.u32(result.uidValidity); w.uidSet(result.sourceUIDs); w.uidSet(result.destinationUIDs) }
}

/// EXPUNGE / UID EXPUNGE (RFC 4315 §2.1): `uids` nil expunges every `\Deleted` message.
public struct MessagesExpunge: SessionRequest {
    public typealias Reply = UIDList
    public static let type = MessageType.messagesExpunge
    public static let roles: Set<Role> = .mailboxRoles
    public var session: UInt64, mailbox: Int64, uids: [UInt32]?
    public init(session: UInt64, mailbox: Int64, uids: [UInt32]?) { self.session = session; self.mailbox = mailbox; self.uids = uids }
    public init(reading r: inout WireReader) throws { session = try r.u64(); mailbox = try r.i64(); uids = try r.optUIDSet() }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.optUIDSet(uids) }
}

/// SEARCH in the store (DESIGN §9); imapd has turned sequence numbers into UIDs.
public struct SearchRun: SessionRequest {
    public typealias Reply = UIDList
    public static let type = MessageType.searchRun
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64, query: SearchQuery
    public init(session: UInt64, mailbox: Int64, query: SearchQuery) { self.session = session; self.mailbox = mailbox; self.query = query }
    public init(reading r: inout WireReader) throws { session = try r.u64(); mailbox = try r.i64(); query = try SearchCodec.read(&r) }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); SearchCodec.write(query, to: &w) }
    /// Why `query` cannot be sent (over the depth or node limit), or nil: check before sending.
    public static func problem(_ query: SearchQuery) -> String? { SearchCodec.problem(query) }
}

/// UIDs: ascending (expunged, or matching a search), or in the order a SORT gave them. On the
/// wire, runs of consecutive ascending UIDs as ranges in the order given, so an ascending list
/// is the canonical UID set; a UID appears once.
public struct UIDList: RPCMessage {
    public static let type = MessageType.uidList
    public var uids: [UInt32]
    public init(_ uids: [UInt32]) { self.uids = uids }
    public init(reading r: inout WireReader) throws { uids = try r.orderedUIDs() }
    public func write(to w: inout WireWriter) { w.orderedUIDs(uids) }
}

// MARK: SORT and THREAD (RFC 5256, RFC 5957)

/// SORT in the store (DESIGN §9): the UIDs matching `query`, ordered by `criteria`.
public struct SortRun: SessionRequest {
    public typealias Reply = UIDList
    public static let type = MessageType.sortRun
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64, criteria: [SortCriterion], query: SearchQuery
    public init(session: UInt64, mailbox: Int64, criteria: [SortCriterion], query: SearchQuery) {
        self.session = session; self.mailbox = mailbox; self.criteria = criteria; self.query = query
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64()
        criteria = try r.list(minElementBytes: 2 * WireSize.u8, max: MailboxLimits.maxSortCriteria) {
            SortCriterion(try $0.enumU8(SortCriterion.Key.self), reverse: try $0.bool())
        }
        guard !criteria.isEmpty else { throw WireError.badValue("SORT without criteria") }
        query = try SearchCodec.read(&r)
    }
    public func write(to w: inout WireWriter) {
        w.u64(session); w.i64(mailbox)
        w.list(criteria) { $0.u8($1.key.rawValue); $0.bool($1.reverse) }
        SearchCodec.write(query, to: &w)
    }
}

/// THREAD in the store: the UIDs matching `query` as threads.
public struct ThreadRun: SessionRequest {
    public typealias Reply = ThreadReply
    public static let type = MessageType.threadRun
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery
    public init(session: UInt64, mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery) {
        self.session = session; self.mailbox = mailbox; self.algorithm = algorithm; self.query = query
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64(); algorithm = try r.enumU8(ThreadAlgorithm.self); query = try SearchCodec.read(&r)
    }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.u8(algorithm.rawValue); SearchCodec.write(query, to: &w) }
}

/// A thread forest in preorder: (uid, 0 for a dummy parent; number of children) per node.
/// The decoder checks the shape (every child count filled, nothing over) and that no UID
/// appears twice.
public struct ThreadReply: RPCMessage {
    public static let type = MessageType.threadReply
    public var forest: ThreadForest
    public init(_ forest: ThreadForest) { self.forest = forest }
    public init(reading r: inout WireReader) throws {
        let nodes = try r.list(minElementBytes: 2 * WireSize.u32, max: MailboxLimits.maxUIDs) {
            ThreadForest.Node(uid: try $0.u32(), children: try $0.u32())
        }
        forest = ThreadForest(nodes)
        guard forest.isWellFormed else { throw WireError.badValue("thread forest not well formed") }
        var seen = Set<UInt32>()
        for n in nodes where n.uid != ThreadForest.dummy {
            guard seen.insert(n.uid).inserted else { throw WireError.badValue("UID \(n.uid) twice in a thread forest") }
        }
    }
    public func write(to w: inout WireWriter) { w.list(forest.nodes) { $0.u32($1.uid); $0.u32($1.children) } }
}

// MARK: APPEND

/// APPEND (RFC 9051 §6.3.12) to a mailbox by name; the body (`size` bytes) follows under the
/// same request id in DeliverChunk frames, then DeliverEnd. The reply comes once the message
/// is durable (DESIGN §3); a refusal is answered at DeliverEnd.
public struct AppendBegin: SessionRequest {
    public typealias Reply = AppendReply
    public static let type = MessageType.appendBegin
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: String, flags: SystemFlags, keywords: [String], internalDate: Int64?, size: UInt64
    public init(session: UInt64, mailbox: String, flags: SystemFlags, keywords: [String], internalDate: Int64?, size: UInt64) {
        self.session = session; self.mailbox = mailbox; self.flags = flags; self.keywords = keywords; self.internalDate = internalDate; self.size = size
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.string(); flags = try r.flags(); keywords = try r.keywords()
        internalDate = try r.bool() ? try r.i64() : nil; size = try r.u64()
    }
    public func write(to w: inout WireWriter) {
        w.u64(session); w.string(mailbox); w.flags(flags); w.strings(keywords)
        w.bool(internalDate != nil); if let d = internalDate { w.i64(d) }
        w.u64(size)
    }
}

/// APPENDUID (RFC 4315 §3).
public struct AppendReply: RPCMessage {
    public static let type = MessageType.appendReply
    public var result: AppendResult
    public init(_ result: AppendResult) { self.result = result }
    public init(reading r: inout WireReader) throws { result = AppendResult(uidValidity: try r.u32(), uid: try r.u32()) }
    public func write(to w: inout WireWriter) { w.u32(result.uidValidity); w.u32(result.uid) }
}

// MARK: QUOTA (RFC 9208)

/// The quota of the session's own user: no other user's is reachable from imapd.
public struct QuotaGet: SessionOnlyRequest {
    public typealias Reply = QuotaReply
    public static let type = MessageType.quotaGet
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64
    public init(session: UInt64) { self.session = session }
}

/// Limits (absent: none) and usage; also the reply to the admin's UserQuota.
public struct QuotaReply: RPCMessage {
    public static let type = MessageType.quotaReply
    public var usage: QuotaUsage
    public init(_ usage: QuotaUsage) { self.usage = usage }
    public init(reading r: inout WireReader) throws {
        usage = QuotaUsage(bytes: try r.u64(), messages: try r.u64(), storageLimit: try r.optU64(), messageLimit: try r.optU64())
    }
    public func write(to w: inout WireWriter) { w.u64(usage.bytes); w.u64(usage.messages); w.optU64(usage.storageLimit); w.optU64(usage.messageLimit) }
}

/// A set of UIDs as one bit a UID over their span when that is dense (a whole mailbox's SORT
/// answer: thousands of UIDs over a span not much larger), else a hash set.
struct UIDSeen {
    private var lo: UInt32 = 0, bits: [UInt64] = [], hashed: Set<UInt32>?

    init(lo: UInt32, hi: UInt32, count: Int) {
        let span = UInt64(hi - lo) + 1
        if span <= UInt64(Swift.max(count, 1)) * 64 {
            self.lo = lo
            bits = [UInt64](repeating: 0, count: Int((span + 63) / 64))
        } else {
            hashed = Set(minimumCapacity: count)
        }
    }

    init(_ uids: [UInt32]) {
        guard let lo = uids.min(), let hi = uids.max() else { self.init(lo: 0, hi: 0, count: 0); return }
        self.init(lo: lo, hi: hi, count: uids.count)
    }

    /// Whether `u` (within the span given) was not in yet; it is now.
    mutating func insert(_ u: UInt32) -> Bool {
        if hashed != nil { return hashed!.insert(u).inserted }
        let o = Int(u - lo), m = UInt64(1) << UInt64(o & 63)
        if bits[o >> 6] & m != 0 { return false }
        bits[o >> 6] |= m
        return true
    }
}
