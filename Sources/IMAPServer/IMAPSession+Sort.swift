// SORT and THREAD (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 5267 ESORT): the search keys
// become the same store query as SEARCH's, the store sorts or threads (DESIGN §9) and answers
// with UIDs, which are written as UIDs or sequence numbers; messages the client has not been
// told of yet are left out.
import IMAPProtocol
import MailModel

extension IMAPSession {
    /// RFC 5256 §3: "the server MUST support US-ASCII and UTF-8" (the only ones Postern takes).
    static let sortCharsets: Set<String> = ["UTF-8", "US-ASCII"]

    func sort(_ s: SortCommand, uid: Bool, tag: String) async throws -> Completion {
        guard let sel = selected else { return .bad("No mailbox selected") }
        guard Self.sortCharsets.contains(s.charset) else { return .no("Unsupported charset", code: "BADCHARSET (UTF-8 US-ASCII)") }
        var usesModSeq = false
        let q = try query(s.key, usesModSeq: &usesModSeq)
        if usesModSeq { condstore = true }
        let known = sel.known(try await services.sort(mailbox: sel.id, criteria: s.criteria, query: q))
        let found = known.map(\.uid), numbers = uid ? found : known.map { UInt32($0.sequence) }
        // RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the messages found.
        let modseq = usesModSeq ? known.map { sel.entries[$0.sequence - 1].modSeq }.max() : nil
        var returns = s.returns
        if returns?.contains(.save) == true {
            // RFC 5182 §2.4 with RFC 5267: the result saved is the set of messages found.
            saved = found.sorted()
            returns!.remove(.save)
            if returns!.isEmpty { return .ok("Sort completed") }
        }
        await emit(searchResponse("SORT", tag: tag, uid: uid, returns: returns, numbers: numbers, modseq: modseq))
        return .ok("Sort completed")
    }

    func thread(_ t: ThreadCommand, uid: Bool) async throws -> Completion {
        guard let sel = selected else { return .bad("No mailbox selected") }
        guard Self.sortCharsets.contains(t.charset) else { return .no("Unsupported charset", code: "BADCHARSET (UTF-8 US-ASCII)") }
        var usesModSeq = false
        let q = try query(t.key, usesModSeq: &usesModSeq)
        if usesModSeq { condstore = true }
        let forest = try await services.thread(mailbox: sel.id, algorithm: t.algorithm, query: q)
        var lists = writer()
        lists.threads(forest) { u in
            guard let n = sel.sequence(of: u) else { return nil }
            return uid ? u : UInt32(n)
        }
        // thread-data = "THREAD" [SP 1*thread-list]
        var w = writer()
        w.raw("* THREAD")
        if !lists.bytes.isEmpty { w.sp(); w.raw(lists.bytes) }
        w.crlf()
        await emit(w)
        return .ok("Thread completed")
    }
}
