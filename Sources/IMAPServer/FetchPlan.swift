// FETCH batches made ready ahead of their writing (DESIGN §9): one details request per batch,
// the per-message info decoded only when an item needs it, and the small byte ranges the items
// read requested all at once, so their round trips to the store overlap. Bounded: at most
// `prefetchBudget` bytes a batch, no range over `maxPrefetch` (larger ones are streamed).
import IMAPProtocol
import MailIPC
import MailModel
import MIME

/// A byte range `[start, end)` of one message that a FETCH item reads.
struct FetchRead: Hashable, Sendable {
    var uid: UInt32, start: Int, end: Int
}

/// The header fields a FETCH of one HEADER.FIELDS[.NOT] item has the store keep (lowercase,
/// each once, as MailboxLimits allows), so only they cross the RPC.
public struct HeaderFieldSelection: Sendable, Equatable {
    public var names: [String], not: Bool
    public init(names: [String], not: Bool) { self.names = names; self.not = not }

    /// The selection for `names` when the wire can carry it (else the header comes whole).
    init?(_ names: [String], not: Bool) {
        var seen: [String] = []
        for n in names.map({ $0.lowercased() }) where !seen.contains(n) { seen.append(n) }
        guard !seen.isEmpty, seen.count <= MailboxLimits.maxHeaderFieldNames,
              seen.allSatisfy({ !$0.isEmpty && $0.utf8.count <= MailboxLimits.maxHeaderFieldName && $0 == $0.lowercased() }) else { return nil }
        self.init(names: seen, not: not)
    }
}

/// What the store said of one message of a batch.
struct FetchedMessage: Sendable {
    var details: MessageDetails
    var info: MessageInfo?
    /// With a header-only plan: the message's top-level header (its info is then not decoded),
    /// already kept to the plan's `fields` when it has them.
    var header: [UInt8]?
}

/// One batch of a FETCH, ready to write: what the store said of its messages.
struct FetchBatch: Sendable {
    var uids: [UInt32]
    /// Ascending by UID, as `uids` (walked alongside them while writing: no lookup per message);
    /// a message expunged meanwhile is missing.
    var found: [FetchedMessage] = []
    /// Ranges read ahead; a range missing here is read while writing (or fails there).
    var bytes: [FetchRead: [UInt8]] = [:]
}

/// What the items of one FETCH need from the store.
struct FetchPlan: Sendable {
    let attrs: [FetchAttribute]
    /// Some item needs more than the view (UID, FLAGS, MODSEQ, and RFC822.SIZE when the view has
    /// every message's size): dates, info, bytes.
    let needsDetails: Bool
    /// Some item needs the parsed message (ENVELOPE, BODYSTRUCTURE, sections, header, text).
    let needsInfo: Bool
    /// ENVELOPE is asked for: the only item that reads the top-level envelope (the rest of the
    /// info decodes without making its strings).
    let needsEnvelope: Bool
    /// The bytes items read come along with the details: none, the top-level header, or the
    /// whole message (each when at most `maxPrefix`).
    let prefix: MessagePart
    enum MessagePart: Sendable { case none, header, whole }
    /// The only items that need the parsed message are top-level header sections: the header
    /// bytes answer them, and the info is decoded only for a message whose header did not come.
    let headerOnly: Bool
    /// A header-only plan whose one header item is a top-level HEADER.FIELDS[.NOT]: the store
    /// filters each header (`FetchBatch.headers` are the answers, before any partial).
    let fields: HeaderFieldSelection?
    /// `BODY[section]<origin> ` of each body-section item, written once per FETCH (by index in `attrs`).
    let labels: [[UInt8]?]
    /// The field names of each HEADER.FIELDS(.NOT) item, lowercased once (by index in `attrs`).
    let fieldNames: [[[UInt8]]?]
    /// Messages per batch: one details request (and one more ahead while a batch is written).
    /// Headers alone are small (and the store cuts a reply at a frame): larger batches.
    var batchSize: Int { prefix == .none ? MailboxLimits.detailsPerRequest : headerOnly ? Self.headerBatch : Self.prefixBatch }
    /// Batches asked for ahead of the one being written: two when the store has work to do per
    /// message (it answers them on two threads), so at most three batches' bytes are held.
    var lookahead: Int { needsDetails ? 2 : 1 }
    /// Largest prefix brought along with the details (a larger header is read by range).
    var prefixLimit: Int { headerOnly ? Self.maxHeaderPrefix : Self.maxPrefix }
    /// With bytes along: at most prefixBatch × maxPrefix (headerBatch × maxHeaderPrefix) bytes a batch.
    static let prefixBatch = 128
    static let maxPrefix = 16 * 1024
    static let headerBatch = 512
    static let maxHeaderPrefix = 8 * 1024
    /// Largest range read ahead on its own; larger ones stream in `maxReadChunk` pieces as
    /// they are written.
    static let maxPrefetch = 64 * 1024
    /// Bytes one batch reads ahead on its own at most.
    static let prefetchBudget = 1 << 20

    /// `sizesInView`: the view has the size of every message fetched (`ViewEntry.size`).
    init(_ attrs: [FetchAttribute], sizesInView: Bool = false) {
        self.attrs = attrs
        needsDetails = attrs.contains { a in
            switch a {
            case .uid, .flags, .modSeq: return false
            case .rfc822Size: return !sizesInView
            default: return true
            }
        }
        needsInfo = attrs.contains { a in
            switch a {
            case .uid, .flags, .modSeq, .internalDate, .rfc822Size, .rfc822: return false
            case .bodySection(let s, _, _): return !Self.isWholeMessage(s)
            default: return true
            }
        }
        needsEnvelope = attrs.contains { if case .envelope = $0 { return true }; return false }
        var part = MessagePart.none
        for a in attrs {
            switch a {
            case .rfc822, .rfc822Text: part = .whole
            case .rfc822Header: if part == .none { part = .header }
            case .bodySection(let s, _, _):
                switch s.text {
                case .header?, .headerFields?, .headerFieldsNot?:
                    if !s.part.isEmpty { part = .whole } else if part == .none { part = .header }
                default: part = .whole
                }
            default: break
            }
        }
        prefix = part
        headerOnly = part == .header && attrs.allSatisfy { a in
            switch a {
            case .uid, .flags, .modSeq, .internalDate, .rfc822Size, .rfc822Header: return true
            case .bodySection(let s, _, _): return s.part.isEmpty
            default: return false
            }
        }
        var headerItems: [Section.Text?] = []
        for a in attrs {
            switch a {
            case .rfc822Header: headerItems.append(.header)
            case .bodySection(let s, _, _): headerItems.append(s.text)
            default: break
            }
        }
        switch (headerOnly, headerItems.first) {
        case (true, .headerFields(let names)??) where headerItems.count == 1: fields = HeaderFieldSelection(names, not: false)
        case (true, .headerFieldsNot(let names)??) where headerItems.count == 1: fields = HeaderFieldSelection(names, not: true)
        default: fields = nil
        }
        fieldNames = attrs.map { a in
            guard case .bodySection(let section, _, _) = a else { return nil }
            switch section.text {
            case .headerFields(let names)?, .headerFieldsNot(let names)?: return SectionLocator.fieldNames(names)
            default: return nil
            }
        }
        labels = attrs.map { a in
            guard case .bodySection(let section, let partial, _) = a else { return nil }
            var w = IMAPWriter()
            w.raw("BODY[\(IMAPSession.sectionSpec(section))]")
            if let p = partial { w.raw("<\(p.offset)>") }
            w.raw(" ")
            return w.bytes
        }
    }

    /// BODY[] (RFC 9051 §6.4.5: the whole message, header and text): located by its size alone,
    /// with no parsed message to decode.
    static func isWholeMessage(_ s: Section) -> Bool { s.part.isEmpty && s.text == nil }

    func prepare(_ uids: [UInt32], mailbox: Int64, services: any IMAPServices) async throws -> FetchBatch {
        var b = FetchBatch(uids: uids)
        guard needsDetails else { return b }
        b.found.reserveCapacity(uids.count)
        var got = try await services.details(mailbox: mailbox, uids: uids, info: needsInfo && !headerOnly, withPrefix: prefix != .none,
                                             whole: prefix == .whole, prefixLimit: prefixLimit, fields: fields)
        if headerOnly {
            var rest: [UInt32] = []
            for (d, bytes) in got {
                if let bytes { b.found.append(FetchedMessage(details: d, header: bytes)) } else { rest.append(d.uid) }
            }
            guard !rest.isEmpty else { return b }
            got = try await services.details(mailbox: mailbox, uids: rest).map { ($0, nil) }   // with info: read by range
        }
        var reads: [FetchRead] = [], budget = Self.prefetchBudget
        for (d, bytes) in got {
            let info = needsInfo ? try MessageInfo(encoded: d.info, envelope: needsEnvelope) : nil
            b.found.append(FetchedMessage(details: d, info: info))
            let have = bytes.map { prefix == .whole && $0.count == Int(d.size) || prefix == .header && $0.count == info?.headerSize } ?? false
            for r in ranges(uid: d.uid, size: Int(d.size), info: info) {
                if have, let bytes, r.end <= bytes.count {
                    b.bytes[r] = r.start == 0 && r.end == bytes.count ? bytes : Array(bytes[r.start..<r.end])
                    continue
                }
                let n = r.end - r.start
                guard n > 0, n <= Self.maxPrefetch, n <= budget else { continue }
                budget -= n
                reads.append(r)
            }
        }
        // the headers read by range come after the others: back in UID order
        if headerOnly && b.found.count > got.count { b.found.sort { $0.details.uid < $1.details.uid } }
        guard !reads.isEmpty else { return b }
        let fetched = await withTaskGroup(of: (FetchRead, [UInt8]?).self) { g in
            for r in reads {
                g.addTask { (r, try? await services.read(mailbox: mailbox, uid: r.uid, offset: r.start, length: r.end - r.start)) }
            }
            var out: [FetchRead: [UInt8]] = [:]
            for await (r, bytes) in g { if let bytes { out[r] = bytes } }
            return out
        }
        b.bytes.merge(fetched) { a, _ in a }
        return b
    }

    /// The ranges `IMAPSession.writeFetch` reads for one message: RFC822, RFC822.HEADER,
    /// RFC822.TEXT and BODY[section]<partial> (BINARY decodes, and is read as it is written).
    func ranges(uid: UInt32, size: Int, info: MessageInfo?) -> [FetchRead] {
        var out: [FetchRead] = []
        for a in attrs {
            switch a {
            case .rfc822: out.append(FetchRead(uid: uid, start: 0, end: size))
            case .rfc822Header: if let info { out.append(FetchRead(uid: uid, start: 0, end: info.headerSize)) }
            case .rfc822Text: if let info { out.append(FetchRead(uid: uid, start: info.headerSize, end: size)) }
            case .bodySection(let section, let partial, _):
                if Self.isWholeMessage(section) {
                    let (o, l) = SectionLocator.applyPartial(partial, toLength: size)
                    out.append(FetchRead(uid: uid, start: o, end: o + l))
                    continue
                }
                guard let info else { continue }
                switch SectionLocator.locate(section, in: info) {
                case .range(let s, let e)?:
                    let (o, l) = SectionLocator.applyPartial(partial, toLength: max(0, e - s))
                    out.append(FetchRead(uid: uid, start: s + o, end: s + o + l))
                case .headerFields(let s, let e, _, _)?:
                    out.append(FetchRead(uid: uid, start: s, end: min(e, s + IMAPSession.maxHeaderRead)))
                default: break
                }
            default: break
            }
        }
        return out
    }
}

extension IMAPServices {
    /// Details only, for services without a batched read: the items' bytes are read by range.
    public func details(mailbox: Int64, uids: [UInt32], info: Bool, withPrefix: Bool, whole: Bool,
                        prefixLimit: Int, fields: HeaderFieldSelection?) async throws -> [(MessageDetails, [UInt8]?)] {
        try await details(mailbox: mailbox, uids: uids).map { ($0, nil) }
    }
}

/// The rendered `(\\Seen $Junk)` list of each flags-and-keywords combination met in one FETCH
/// (a mailbox has few: each is built once, then copied).
struct FlagLists {
    struct Key: Hashable { var flags: UInt32, keywords: UInt64 }
    private var lists: [Key: [UInt8]] = [:]

    mutating func list(_ e: ViewEntry, render: (inout IMAPWriter) -> Void) -> [UInt8] {
        let k = Key(flags: e.flags.rawValue, keywords: e.keywords)
        if let l = lists[k] { return l }
        var w = IMAPWriter()
        render(&w)
        lists[k] = w.bytes
        return w.bytes
    }
}
