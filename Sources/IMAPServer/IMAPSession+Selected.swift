// Selected state (RFC 9051 §6.4): EXPUNGE and UID EXPUNGE (RFC 4315), SEARCH (ESEARCH RFC 4731,
// SEARCHRES RFC 5182, CONDSTORE MODSEQ), STORE (UNCHANGEDSINCE, RFC 7162 §3.1.3), COPY and
// MOVE (COPYUID RFC 4315, RFC 6851). Sequence numbers are resolved against the session's view;
// the store works on UIDs.
import Foundation
import IMAPProtocol
import MailModel

extension IMAPSession {
    func resolve(_ set: SequenceSet, uid: Bool) throws -> [UInt32] {
        guard let sel = selected else { return [] }
        do { return try sel.resolve(set, uid: uid, saved: saved) } catch SelectedMailbox.ResolveError.noSavedResult {
            throw IMAPServiceError(.invalid, "No saved search result")
        } catch {
            throw BadCommand("Invalid message sequence number")
        }
    }

    // MARK: EXPUNGE

    func expunge(uids set: SequenceSet?) async throws -> Completion {
        guard var sel = selected else { return .bad("No mailbox selected") }
        let only = try set.map { try resolve($0, uid: true) }
        if let only, only.isEmpty { return .ok("Expunge completed") }
        let gone = try await services.expunge(mailbox: sel.id, uids: only)
        let updates = sel.remove(gone, vanished: qresync)
        selected = sel
        await write(updates, sel)
        return .ok("Expunge completed")
    }

    // MARK: STORE

    func store(_ s: StoreCommand, uid: Bool) async throws -> Completion {
        guard selected != nil else { return .bad("No mailbox selected") }
        let uids = try resolve(s.sequences, uid: uid)
        if s.unchangedSince != nil { condstore = true }
        let (flags, keywords) = try split(s.flags)
        let op: FlagOperation = s.operation == .add ? .add : s.operation == .remove ? .remove : .replace
        var update = FlagUpdate(changed: [], modified: [], keywords: selected!.keywords, highestModSeq: selected!.highestModSeq)
        if !uids.isEmpty {
            do {
                update = try await services.storeFlags(mailbox: selected!.id, uids: uids, operation: op, flags: flags, keywords: keywords,
                                                       unchangedSince: s.unchangedSince)
            } catch let e as IMAPServiceError where e.kind == .invalid || e.kind == .limit {
                return .no(e.message, code: "LIMIT")
            }
        }
        config.spamLearning?.stored(services, mailbox: selected!.id, uids: uids, operation: op, keywords: keywords, user: user)
        var sel = selected!
        let changed = sel.apply(update.changed, keywords: update.keywords, highestModSeq: update.highestModSeq)
        selected = sel
        await announce(expunges: false, pull: false)   // FLAGS first if keywords grew
        sel = selected!
        let changedUIDs = Set(changed.map { $0.1.uid })
        let modified = Set(update.modified)
        // RFC 9051 §6.4.6: the new flags of each message (unless .SILENT); RFC 7162 §3.1.3: with
        // CONDSTORE, changed messages report their MODSEQ even when silent.
        for u in uids where !modified.contains(u) {
            guard let seq = sel.sequence(of: u) else { continue }
            let e = sel.entries[seq - 1]
            let didChange = changedUIDs.contains(u)
            if s.silent && !(condstore && didChange && s.unchangedSince != nil) { continue }
            var w = writer()
            w.raw("* \(seq) FETCH (")
            if uid { w.raw("UID \(u) ") }
            if !s.silent { w.raw("FLAGS "); w.flags(flagNames(e, in: sel)) }
            if condstore { if !s.silent { w.raw(" ") }; w.raw("MODSEQ (\(e.modSeq))") }
            w.raw(")"); w.crlf()
            await emit(w)
        }
        if !modified.isEmpty {
            var set: [UInt32] = []
            if uid { set = update.modified.sorted() } else { set = update.modified.compactMap { sel.sequence(of: $0).map(UInt32.init) }.sorted() }
            var w = IMAPWriter(utf8: false); w.uidSet(set)
            return .ok("Conditional store completed", code: "MODIFIED \(String(decoding: w.bytes, as: UTF8.self))")
        }
        return .ok("Store completed")
    }

    // MARK: COPY / MOVE

    func copy(_ set: SequenceSet, to raw: String, uid: Bool, move: Bool) async throws -> Completion {
        guard var sel = selected else { return .bad("No mailbox selected") }
        if move && sel.readOnly { return .no("Mailbox is read-only", code: "READ-ONLY") }
        let uids = try resolve(set, uid: uid)
        let name: String
        do { name = try validName(raw) } catch { return .no("Mailbox does not exist", code: "TRYCREATE") }
        guard !uids.isEmpty else { return .ok(move ? "Move completed" : "Copy completed") }
        let r: CopyResult
        do { r = try await services.copy(mailbox: sel.id, uids: uids, to: name, move: move) } catch let e as IMAPServiceError where e.kind == .notFound {
            return .no("Mailbox does not exist", code: "TRYCREATE")
        }
        config.spamLearning?.copied(services, from: sel.name, to: name, uids: r.destinationUIDs, move: move, user: user)
        var src = IMAPWriter(utf8: false), dst = IMAPWriter(utf8: false)
        src.uidSet(r.sourceUIDs); dst.uidSet(r.destinationUIDs)
        let code = "COPYUID \(r.uidValidity) \(String(decoding: src.bytes, as: UTF8.self)) \(String(decoding: dst.bytes, as: UTF8.self))"
        if !move { return .ok("Copy completed", code: code) }
        // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK.
        await emit("* OK [\(code)] Moved")
        let updates = sel.remove(r.sourceUIDs, vanished: qresync)
        selected = sel
        await write(updates, sel)
        return .ok("Move completed")
    }
}

/// A command that turned out malformed after parsing (an invalid sequence number): BAD.
struct BadCommand: Error { var message: String; init(_ m: String) { message = m } }
