// FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED). Flags, UIDs and
// MODSEQ come from the view; ENVELOPE, BODYSTRUCTURE, sizes and dates from the per-message info
// computed at delivery (fetched in batches); bodies and sections are read from the store by
// range and streamed out (DESIGN §9: imapd never holds a whole large message — BINARY of a
// transfer-encoded part is the exception: the decoded part is held while it is written).
import Foundation
import IMAPProtocol
import MailModel
import MIME

/// BINARY of a part whose Content-Transfer-Encoding the server cannot undo. RFC 3516 §4.2: the
/// server "MUST fail the request and issue a NO response that contains the UNKNOWN-CTE extended
/// response code".
struct UnknownTransferEncoding: Error {
    static let completion = Completion.no("Unknown Content-Transfer-Encoding", code: "UNKNOWN-CTE")
}

extension IMAPSession {
    func fetch(_ f: FetchCommand, uid: Bool) async throws -> Completion {
        guard var sel = selected else { return .bad("No mailbox selected") }
        var uids = try resolve(f.sequences, uid: uid)
        var attrs = f.attributes
        if uid && !attrs.contains(.uid) { attrs.insert(.uid, at: 0) }
        if f.changedSince != nil || attrs.contains(.modSeq) { condstore = true }
        if f.changedSince != nil && !attrs.contains(.modSeq) { attrs.append(.modSeq) }
        // RFC 7162 §3.2.6: VANISHED (EARLIER) for expunged UIDs of the set since CHANGEDSINCE.
        if f.vanished {
            guard uid, qresync, let since = f.changedSince else { return .bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE") }
            if case .ranges(let rs) = f.sequences {
                let last = sel.entries.last?.uid ?? 0
                let gone = try await services.vanishedUIDs(mailbox: sel.id, since: since).filter { u in rs.contains { r in
                    let hi = r.upperBound == SequenceSet.star ? max(last, u) : r.upperBound
                    return u >= min(r.lowerBound, hi) && u <= max(r.lowerBound, hi)
                } }
                if !gone.isEmpty { var w = writer(); w.raw("* VANISHED (EARLIER) "); w.uidSet(gone); w.crlf(); await emit(w) }
            }
        }
        if let since = f.changedSince { uids = uids.filter { (sel.entry(uid: $0)?.modSeq ?? 0) > since } }
        guard !uids.isEmpty else { return .ok("Fetch completed") }

        // RFC 9051 §6.4.5: BODY[...] (not .PEEK), RFC822, RFC822.TEXT and BINARY set \Seen.
        let setsSeen = !sel.readOnly && attrs.contains { a in
            switch a {
            case .rfc822, .rfc822Text: return true
            case .bodySection(_, _, let peek), .binary(_, _, let peek): return !peek
            default: return false
            }
        }
        var flagsChanged = Set<UInt32>()
        if setsSeen {
            let unseen = uids.filter { !(sel.entry(uid: $0)?.flags.contains(.seen) ?? true) }
            if !unseen.isEmpty {
                let u = try await services.storeFlags(mailbox: sel.id, uids: unseen, operation: .add, flags: .seen, keywords: [],
                                                      unchangedSince: nil)
                flagsChanged = Set(sel.apply(u.changed, keywords: u.keywords, highestModSeq: u.highestModSeq).map { $0.1.uid })
                selected = sel
            }
        }
        let plan = FetchPlan(attrs, sizesInView: attrs.contains(.rfc822Size) && Self.sizesKnown(uids, in: sel.entries))
        // Batches k+1 … k+lookahead are made ready (details, info, small reads: their store round
        // trips overlap, the store reads them on several threads) while batch k is written.
        let services = self.services, mailbox = sel.id, all = uids
        var issued = 0
        func prepare() -> Task<FetchBatch, Error>? {
            guard issued < all.count else { return nil }
            let batch = Array(all[issued..<min(issued + plan.batchSize, all.count)])
            issued += batch.count
            return Task { try await plan.prepare(batch, mailbox: mailbox, services: services) }
        }
        var pending: [Task<FetchBatch, Error>] = []
        while pending.count < plan.lookahead, let t = prepare() { pending.append(t) }
        defer { for t in pending { t.cancel() } }
        var flagLists = FlagLists()
        var w = fetchWriter()
        var index = 0   // UIDs ascend, as the view does: their sequence numbers are found walking it
        let entries = sel.entries
        while !pending.isEmpty {
            let b = try await pending[0].value
            pending.removeFirst()
            if let t = prepare() { pending.append(t) }
            var at = 0   // b.found ascends as b.uids do
            for u in b.uids {
                while index < entries.count && entries[index].uid < u { index += 1 }
                guard index < entries.count, entries[index].uid == u else { continue }
                let seq = index + 1, e = entries[index]
                while at < b.found.count && b.found[at].details.uid < u { at += 1 }
                let found = at < b.found.count && b.found[at].details.uid == u
                if plan.needsDetails && !found { continue }   // expunged meanwhile: nothing to say
                var items = attrs
                if !flagsChanged.isEmpty && flagsChanged.contains(u) && !items.contains(.flags) { items.append(.flags) }
                try await writeFetch(&w, seq: seq, entry: e, details: found ? b.found[at].details : nil, info: found ? b.found[at].info : nil,
                                     items: items, sel: sel, ready: b.bytes, header: found ? b.found[at].header : nil,
                                     headerFiltered: plan.fields != nil, labels: plan.labels, fieldNames: plan.fieldNames, flagLists: &flagLists)
                if w.bytes.count >= Self.emitSize { await emit(w); w = fetchWriter() }
            }
        }
        await emit(w)
        return .ok("Fetch completed")
    }

    /// Whether the view has the size of every message of `uids` (ascending, as `entries`).
    static func sizesKnown(_ uids: [UInt32], in entries: [ViewEntry]) -> Bool {
        var index = 0
        for u in uids {
            while index < entries.count && entries[index].uid < u { index += 1 }
            if index < entries.count, entries[index].uid == u, entries[index].size == ViewEntry.unknownSize { return false }
        }
        return true
    }

    /// Responses are gathered into writes of about this many bytes (a FETCH of a whole mailbox:
    /// one socket write, and one wake-up of the connection's event loop, each).
    static let emitSize = 256 * 1024
    /// Room a FETCH writer has past `emitSize` before it grows (a line of a header-only FETCH fits).
    static let emitSlack = 16 * 1024

    /// A writer with room for one `emitSize` write: it never grows (and copies) on the way.
    func fetchWriter() -> IMAPWriter {
        var w = writer()
        w.bytes.reserveCapacity(Self.emitSize + Self.emitSlack)
        return w
    }

    /// The fixed bytes of every FETCH response, written as bytes (no String per message).
    static let untagged = Array("* ".utf8), fetchOpen = Array(" FETCH (".utf8), fetchClose = Array(")\r\n".utf8), uidItem = Array("UID ".utf8)

    /// Appends one `* n FETCH (…)` response to `w` (a streamed literal may emit part of it).
    func writeFetch(_ w: inout IMAPWriter, seq: Int, entry e: ViewEntry, details d: MessageDetails?, info: MessageInfo?,
                    items: [FetchAttribute], sel: SelectedMailbox, ready: [FetchRead: [UInt8]] = [:],
                    header: [UInt8]? = nil, headerFiltered: Bool = false, labels: [[UInt8]?] = [], fieldNames: [[[UInt8]]?] = [],
                    flagLists: inout FlagLists) async throws {
        w.raw(Self.untagged); w.number(seq); w.raw(Self.fetchOpen)
        var first = true
        for (i, a) in items.enumerated() {
            if !first { w.sp() }
            first = false
            switch a {
            case .uid: w.raw(Self.uidItem); w.number(e.uid)
            case .flags: w.raw("FLAGS "); w.raw(flagLists.list(e) { w2 in w2.flags(flagNames(e, in: sel)) })
            case .modSeq: w.raw("MODSEQ ("); w.number(e.modSeq); w.raw(")")
            case .internalDate: w.raw("INTERNALDATE \"\(IMAPDate.format(d!.internalDate))\"")
            case .rfc822Size: w.raw("RFC822.SIZE "); if e.size != ViewEntry.unknownSize { w.number(e.size) } else { w.number(d!.size) }
            case .envelope: w.raw("ENVELOPE "); w.envelope(info!.envelope)
            case .bodyStructure: w.raw("BODYSTRUCTURE "); w.bodyStructure(info!.body, extensible: true)
            case .body: w.raw("BODY "); w.bodyStructure(info!.body, extensible: false)
            case .rfc822:
                w.raw("RFC822 ")
                try await streamRange(&w, uid: e.uid, mailbox: sel.id, 0, Int(d!.size), ready: ready)
            case .rfc822Header:
                w.raw("RFC822.HEADER ")
                if info == nil, let header { w.literal(header); continue }
                try await streamRange(&w, uid: e.uid, mailbox: sel.id, 0, info!.headerSize, ready: ready)
            case .rfc822Text:
                w.raw("RFC822.TEXT ")
                try await streamRange(&w, uid: e.uid, mailbox: sel.id, info!.headerSize, Int(d!.size), ready: ready)
            case .bodySection(let section, let partial, _):
                if i < labels.count, let label = labels[i] { w.raw(label) } else {
                    w.raw("BODY[\(Self.sectionSpec(section))]")
                    if let p = partial { w.raw("<\(p.offset)>") }
                    w.raw(" ")
                }
                if info == nil, let header, section.part.isEmpty {
                    Self.writeHeaderSection(&w, headerFiltered ? nil : section.text, partial, header,
                                            fieldNames: i < fieldNames.count ? fieldNames[i] : nil)
                    continue
                }
                if FetchPlan.isWholeMessage(section), let d {
                    let (o, l) = SectionLocator.applyPartial(partial, toLength: Int(d.size))
                    try await streamRange(&w, uid: e.uid, mailbox: sel.id, o, o + l, ready: ready)
                    continue
                }
                try await writeSection(&w, section: section, partial: partial, uid: e.uid, mailbox: sel.id, info: info!, ready: ready)
            case .binary(let part, let partial, _):
                guard let data = try await binaryPart(part, uid: e.uid, mailbox: sel.id, info: info!) else {
                    throw UnknownTransferEncoding()
                }
                w.raw("BINARY[\(part.map(String.init).joined(separator: "."))]")
                if let p = partial { w.raw("<\(p.offset)>") }
                let (o, l) = SectionLocator.applyPartial(partial, toLength: data.count)
                let slice = Array(data[o..<(o + l)])
                w.raw(" ")
                w.literalHeader(count: slice.count, binary: slice.contains(0))
                w.raw(slice)
            case .binarySize(let part):
                guard let data = try await binaryPart(part, uid: e.uid, mailbox: sel.id, info: info!) else {
                    throw UnknownTransferEncoding()
                }
                w.raw("BINARY.SIZE[\(part.map(String.init).joined(separator: "."))] \(data.count)")
            }
        }
        w.raw(Self.fetchClose)
    }

    /// A top-level HEADER, HEADER.FIELDS or HEADER.FIELDS.NOT section from the header's bytes
    /// (as `writeSection` answers it from the message: RFC 9051 §6.4.5); `text` nil: `header` is
    /// the answer already (the store filtered it).
    static func writeHeaderSection(_ w: inout IMAPWriter, _ text: Section.Text?, _ partial: Partial?, _ header: [UInt8],
                                   fieldNames: [[UInt8]]? = nil) {
        let bytes: [UInt8]
        switch text {
        case .headerFields(let names)?: bytes = SectionLocator.filterHeader(header, fieldNames: fieldNames ?? SectionLocator.fieldNames(names), not: false)
        case .headerFieldsNot(let names)?: bytes = SectionLocator.filterHeader(header, fieldNames: fieldNames ?? SectionLocator.fieldNames(names), not: true)
        default: bytes = header
        }
        let (o, l) = SectionLocator.applyPartial(partial, toLength: bytes.count)
        w.literal(o == 0 && l == bytes.count ? bytes : Array(bytes[o..<(o + l)]))
    }

    /// RFC 9051 §9 `section-spec` as the response repeats it.
    static func sectionSpec(_ s: Section) -> String {
        var parts = s.part.map(String.init)
        switch s.text {
        case nil: break
        case .header: parts.append("HEADER")
        case .text: parts.append("TEXT")
        case .mime: parts.append("MIME")
        case .headerFields(let names): parts.append("HEADER.FIELDS (\(names.map { $0.uppercased() }.joined(separator: " ")))")
        case .headerFieldsNot(let names): parts.append("HEADER.FIELDS.NOT (\(names.map { $0.uppercased() }.joined(separator: " ")))")
        }
        return parts.joined(separator: ".")
    }

    /// Header sections are filtered in memory; no more than this much of a header is read.
    static let maxHeaderRead = 1 << 20

    func writeSection(_ w: inout IMAPWriter, section: Section, partial: Partial?, uid: UInt32, mailbox: Int64, info: MessageInfo,
                      ready: [FetchRead: [UInt8]] = [:]) async throws {
        guard let plan = SectionLocator.locate(section, in: info) else { w.raw("\"\""); return }
        switch plan {
        case .empty: w.raw("\"\"")
        case .range(let s, let e):
            let (o, l) = SectionLocator.applyPartial(partial, toLength: max(0, e - s))
            try await streamRange(&w, uid: uid, mailbox: mailbox, s + o, s + o + l, ready: ready)
        case .headerFields(let s, let e, let names, let not):
            let end = min(e, s + Self.maxHeaderRead)
            var header: [UInt8]
            if let r = ready[FetchRead(uid: uid, start: s, end: end)] { header = r } else { header = try await readAll(uid: uid, mailbox: mailbox, s, end) }
            let filtered = SectionLocator.filterHeader(header, names: names, not: not)
            let (o, l) = SectionLocator.applyPartial(partial, toLength: filtered.count)
            w.literal(Array(filtered[o..<(o + l)]))
        }
    }

    func readAll(uid: UInt32, mailbox: Int64, _ start: Int, _ end: Int) async throws -> [UInt8] {
        var out: [UInt8] = []
        var at = start
        while at < end {
            let chunk = try await services.read(mailbox: mailbox, uid: uid, offset: at, length: min(maxReadChunk, end - at))
            if chunk.isEmpty { break }
            out += chunk; at += chunk.count
        }
        return out
    }

    /// Writes `[start, end)` of a message as a literal, reading it from the store in chunks and
    /// passing each on before the next is read.
    func streamRange(_ w: inout IMAPWriter, uid: UInt32, mailbox: Int64, _ start: Int, _ end: Int,
                     ready: [FetchRead: [UInt8]] = [:]) async throws {
        let count = max(0, end - start)
        if let bytes = ready[FetchRead(uid: uid, start: start, end: end)], bytes.count == count {
            w.literal(bytes)
            return
        }
        w.literalHeader(count: count, binary: false)
        var at = start, sent = 0
        while sent < count {
            let chunk = try await services.read(mailbox: mailbox, uid: uid, offset: at, length: min(maxReadChunk, count - sent))
            if chunk.isEmpty {
                // The literal's length is promised: a body shorter than its record is padded
                // (never a desynchronised stream) and logged.
                logger.error("message shorter than recorded", metadata: ["uid": "\(uid)", "missing": "\(count - sent)"])
                w.raw([UInt8](repeating: UInt8(ascii: " "), count: count - sent))
                break
            }
            w.literalContent(chunk); at += chunk.count; sent += chunk.count
            if w.bytes.count >= 64 * 1024 {
                await emit(w)
                w = writer()
            }
        }
    }

    /// The decoded content of a part (RFC 3516 §4.2: transfer encoding undone); nil when the
    /// encoding is unknown ([UNKNOWN-CTE]).
    func binaryPart(_ part: [Int], uid: UInt32, mailbox: Int64, info: MessageInfo) async throws -> [UInt8]? {
        guard let plan = SectionLocator.locate(Section(part: part), in: info) else { return [] }
        // The entity the part path names, by the same walk as BODY[part] (into a message/rfc822
        // whose body is a single part, too: its encoding is the one to undo).
        let p = SectionLocator.part(part, in: info) ?? info.body
        guard var decoder = TransferDecoder(encoding: part.isEmpty ? "7bit" : p.encoding) else { return nil }
        guard case .range(let s, let e) = plan else { return [] }
        var out: [UInt8] = []
        var at = s
        while at < e {
            let chunk = try await services.read(mailbox: mailbox, uid: uid, offset: at, length: min(maxReadChunk, e - at))
            if chunk.isEmpty { break }
            out += decoder.decode(chunk); at += chunk.count
        }
        out += decoder.finish()
        return out
    }
}
