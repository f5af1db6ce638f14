// SEARCH (RFC 9051 §6.4.4): the client's keys become a store query over UIDs (sequence numbers
// and `$` resolved against the view), the store evaluates it (DESIGN §9), and the answer is
// written as SEARCH (IMAP4rev1) or ESEARCH (RFC 4731; always under IMAP4rev2) with SAVE
// (RFC 5182) and CONDSTORE's MODSEQ (RFC 7162 §3.1.5).
import Foundation
import IMAPProtocol
import MailModel

extension IMAPSession {
    static let none = SearchQuery.not(.all)

    static func ranges(_ uids: [UInt32]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for u in uids.sorted() {
            if let last = out.last, last.upperBound &+ 1 == u { out[out.count - 1] = last.lowerBound...u } else { out.append(u...u) }
        }
        return out
    }

    func query(_ k: SearchKey, usesModSeq: inout Bool) throws -> SearchQuery {
        switch k {
        case .all: return .all
        case .and(let ks): return .and(try ks.map { try query($0, usesModSeq: &usesModSeq) })
        case .or(let a, let b): return .or(try query(a, usesModSeq: &usesModSeq), try query(b, usesModSeq: &usesModSeq))
        case .not(let a): return .not(try query(a, usesModSeq: &usesModSeq))
        case .sequences(let s): return .uids(Self.ranges(try resolve(s, uid: false)))
        case .uids(let s): return .uids(Self.ranges(try resolve(s, uid: true)))
        case .flag(let f, let set):
            switch f {
            case .seen: return .flags(.seen, set: set)
            case .answered: return .flags(.answered, set: set)
            case .flagged: return .flags(.flagged, set: set)
            case .deleted: return .flags(.deleted, set: set)
            case .draft: return .flags(.draft, set: set)
            case .recent: return set ? Self.none : .all   // Postern keeps no \Recent (RFC 9051 dropped it)
            case .keyword(let s): return .keyword(s, set: set)
            case .extension: return set ? Self.none : .all
            }
        case .new: return Self.none
        case .old: return .all
        case .recent: return Self.none
        case .before(let d): return .internalDate(.before, day: d)
        case .on(let d): return .internalDate(.on, day: d)
        case .since(let d): return .internalDate(.since, day: d)
        case .sentBefore(let d): return .sentDate(.before, day: d)
        case .sentOn(let d): return .sentDate(.on, day: d)
        case .sentSince(let d): return .sentDate(.since, day: d)
        case .larger(let n): return .larger(n)
        case .smaller(let n): return .smaller(n)
        case .header(let name, let s): return .header(name, s)
        case .from(let s): return .header("From", s)
        case .to(let s): return .header("To", s)
        case .cc(let s): return .header("Cc", s)
        case .bcc(let s): return .header("Bcc", s)
        case .subject(let s): return .header("Subject", s)
        case .body(let s): return .body(s)
        case .text(let s): return .text(s)
        case .modSeq(let n): usesModSeq = true; return .modSeq(n)
        }
    }

    func search(_ s: SearchCommand, uid: Bool, tag: String) async throws -> Completion {
        guard let sel = selected else { return .bad("No mailbox selected") }
        if let cs = s.charset, !["UTF-8", "US-ASCII"].contains(cs.uppercased()) {
            return .no("Unsupported charset", code: "BADCHARSET (UTF-8 US-ASCII)")
        }
        var usesModSeq = false
        let q = try query(s.key, usesModSeq: &usesModSeq)
        if usesModSeq { condstore = true }
        // Only what the client knows: messages not yet announced are not reported.
        let known = sel.known(try await services.search(mailbox: sel.id, query: q))
        let found = known.map(\.uid)
        let modseq = usesModSeq ? known.map { sel.entries[$0.sequence - 1].modSeq }.max() : nil
        let numbers: [UInt32] = uid ? found : known.map { UInt32($0.sequence) }.sorted()
        var returns = s.returns
        if returns?.contains(.save) == true {
            saved = found
            returns!.remove(.save)
            // RFC 5182 §2.4: SAVE alone returns nothing.
            if returns!.isEmpty { return .ok("Search completed") }
        }
        // IMAP4rev2 has only ESEARCH.
        await emit(searchResponse("SEARCH", tag: tag, uid: uid, returns: returns ?? (rev2 ? [] : nil), numbers: numbers, modseq: modseq))
        return .ok("Search completed")
    }

    /// `* SEARCH n…` / `* SORT n…` (`returns` nil), else ESEARCH (RFC 4731, RFC 5267 for
    /// ESORT): MIN and MAX are the first and last of `numbers` (ascending for SEARCH, in sort
    /// order for SORT), ALL keeps their order.
    func searchResponse(_ name: String, tag: String, uid: Bool, returns: Set<SearchReturn>?, numbers: [UInt32], modseq: UInt64?) -> IMAPWriter {
        var w = writer()
        if let returns {
            let r = returns.isEmpty ? Set([SearchReturn.all]) : returns
            w.raw("* ESEARCH (TAG "); w.string(tag); w.raw(")")
            if uid { w.raw(" UID") }
            if r.contains(.min), let m = numbers.first { w.raw(" MIN \(m)") }
            if r.contains(.max), let m = numbers.last { w.raw(" MAX \(m)") }
            if r.contains(.all), !numbers.isEmpty { w.raw(" ALL "); w.uidSet(numbers) }
            if r.contains(.count) { w.raw(" COUNT \(numbers.count)") }
            if let modseq, !numbers.isEmpty { w.raw(" MODSEQ \(modseq)") }
        } else {
            w.raw("* " + name)
            for n in numbers { w.sp(); w.number(n) }
            if let modseq, !numbers.isEmpty { w.raw(" (MODSEQ \(modseq))") }
        }
        w.crlf()
        return w
    }
}
