// Authenticated state (RFC 9051 §6.3): SELECT/EXAMINE (CONDSTORE, QRESYNC), CREATE, DELETE,
// RENAME, SUBSCRIBE, LIST (LIST-EXTENDED, SPECIAL-USE, LIST-STATUS), LSUB, STATUS, APPEND
// (MULTIAPPEND, APPENDUID) and IDLE; plus the selected mailbox's updates (announce).
import Foundation
import IMAPProtocol
import MailModel

extension IMAPSession {
    // MARK: names and flags

    /// A mailbox name from the wire, validated and normalised (MailboxName).
    func validName(_ raw: String) throws -> String {
        switch MailboxName.validate(raw) {
        case .success(let n): return n
        case .failure(let e): throw IMAPServiceError(.invalid, "Invalid mailbox name: \(e)")
        }
    }

    static let systemFlagNames: [(SystemFlags, String)] = [
        (.answered, "\\Answered"), (.flagged, "\\Flagged"), (.deleted, "\\Deleted"), (.seen, "\\Seen"), (.draft, "\\Draft"),
    ]

    func flagNames(_ e: ViewEntry, in sel: SelectedMailbox) -> [String] {
        Self.systemFlagNames.filter { e.flags.contains($0.0) }.map(\.1) + sel.keywordNames(e.keywords)
    }

    /// System flags and keywords of a flag list; `\Recent` is ignored (it cannot be set,
    /// RFC 3501 §2.3.2), unknown backslash flags are refused.
    func split(_ flags: [Flag]) throws -> (SystemFlags, [String]) {
        var f: SystemFlags = [], k: [String] = []
        for x in flags {
            switch x {
            case .seen: f.insert(.seen)
            case .answered: f.insert(.answered)
            case .flagged: f.insert(.flagged)
            case .deleted: f.insert(.deleted)
            case .draft: f.insert(.draft)
            case .recent: break
            case .keyword(let s): if !k.contains(where: { $0.caseInsensitiveCompare(s) == .orderedSame }) { k.append(s) }
            case .extension(let s): throw IMAPServiceError(.invalid, "Cannot store flag \(s)")
            }
        }
        return (f, k)
    }

    func writeFlags(_ keywords: [String]) async {
        let names = Self.systemFlagNames.map(\.1) + keywords.filter { !$0.isEmpty }
        var w = writer()
        w.raw("* FLAGS "); w.flags(names); w.crlf()
        w.raw("* OK [PERMANENTFLAGS ")
        w.flags(names + (keywords.count < maxKeywordsPerMailbox ? ["\\*"] : []))
        w.raw("] Flags permitted"); w.crlf()
        await emit(w)
    }

    // MARK: SELECT / EXAMINE / CLOSE

    func deselect(announceClosed: Bool) async {
        watch?.cancel(); watch = nil
        selected = nil
        notified = 0
        saved = nil
        state = .authenticated
        // RFC 7162 §3.2.11 / RFC 9051 §7.1: a selected mailbox closed by SELECT/EXAMINE.
        if announceClosed { await emit("* OK [CLOSED] Previous mailbox closed") }
    }

    func select(_ raw: String, _ p: SelectParameters, readOnly: Bool) async throws -> Completion {
        if selected != nil { await deselect(announceClosed: true) }
        if p.qresync != nil && !qresync { return .bad("QRESYNC is not enabled") }
        if p.condstore { condstore = true }
        let name: String
        do { name = try validName(raw) } catch { return .no("Mailbox does not exist", code: "NONEXISTENT") }
        let view: MailboxView
        let post = self.post
        do {
            let r = try await services.selectWatching(name) { m in post?(.mailboxChanged(m)) }
            view = r.0; watch = r.1
        } catch let e as IMAPServiceError where e.kind == .notFound {
            return .no("Mailbox does not exist", code: "NONEXISTENT")
        }
        var sel = SelectedMailbox(view: view, readOnly: readOnly)
        await writeFlags(sel.keywords)
        await emit("* \(sel.count) EXISTS")
        if !rev2 {
            await emit("* 0 RECENT")
            if let i = sel.entries.firstIndex(where: { !$0.flags.contains(.seen) }) { await emit("* OK [UNSEEN \(i + 1)] First unseen") }
        }
        await emit("* OK [UIDVALIDITY \(sel.uidValidity)] UIDs valid")
        await emit("* OK [UIDNEXT \(sel.uidNext)] Predicted next UID")
        await emit("* OK [HIGHESTMODSEQ \(sel.highestModSeq)] Highest")
        if rev2 { var w = writer(); w.raw("* LIST () \"/\" "); w.mailbox(name); w.crlf(); await emit(w) }
        // RFC 7162 §3.2.5.2: a QRESYNC SELECT reports what changed since the client's MODSEQ.
        if let q = p.qresync, q.uidValidity == sel.uidValidity {
            var gone = try await services.vanishedUIDs(mailbox: sel.id, since: q.modSeq)
            if let known = q.knownUIDs, case .ranges(let rs) = known {
                gone = gone.filter { u in rs.contains { $0.contains(u) || ($0.upperBound == SequenceSet.star && u >= $0.lowerBound) } }
            }
            if !gone.isEmpty { var w = writer(); w.raw("* VANISHED (EARLIER) "); w.uidSet(gone); w.crlf(); await emit(w) }
            for (i, e) in sel.entries.enumerated() where e.modSeq > q.modSeq {
                var w = writer()
                w.raw("* \(i + 1) FETCH (UID \(e.uid) FLAGS "); w.flags(flagNames(e, in: sel)); w.raw(" MODSEQ (\(e.modSeq)))"); w.crlf()
                await emit(w)
            }
        }
        _ = sel.announce(expunges: false, vanished: false)
        selected = sel
        state = .selected(readOnly: readOnly)
        return .ok("\(readOnly ? "Examine" : "Select") completed", code: readOnly ? "READ-ONLY" : "READ-WRITE")
    }

    func close(expunge: Bool) async throws -> Completion {
        guard let sel = selected else { return .bad("No mailbox selected") }
        // RFC 9051 §6.4.1: CLOSE expunges silently (not in a read-only mailbox).
        if expunge && !sel.readOnly { _ = try? await services.expunge(mailbox: sel.id, uids: nil) }
        await deselect(announceClosed: false)
        return .ok(expunge ? "Close completed" : "Unselect completed")
    }

    // MARK: updates of the selected mailbox

    /// Pulls what changed (when the store said something did, or `pull`) and writes what may be
    /// written now.
    func announce(expunges: Bool, pull: Bool) async {
        guard var sel = selected else { return }
        if pull || notified > sel.pulledModSeq {
            var rounds = 0
            while rounds < 1000, let d = try? await services.delta(mailbox: sel.id, since: sel.pulledModSeq, limit: 2000) {
                sel.absorb(d); rounds += 1
                if d.complete { break }
            }
        }
        let updates = sel.announce(expunges: expunges, vanished: qresync)
        selected = sel
        await write(updates, sel)
    }

    func write(_ updates: [SelectedMailbox.Update], _ sel: SelectedMailbox) async {
        for u in updates {
            var w = writer()
            switch u {
            case .expunge(let s): w.raw("* \(s) EXPUNGE")
            case .vanished(let uids): w.raw("* VANISHED "); w.uidSet(uids)
            case .exists(let n): w.raw("* \(n) EXISTS")
            case .flags(let s, let e):
                w.raw("* \(s) FETCH (")
                if qresync { w.raw("UID \(e.uid) ") }
                w.raw("FLAGS "); w.flags(flagNames(e, in: sel))
                if condstore { w.raw(" MODSEQ (\(e.modSeq))") }
                w.raw(")")
            case .keywords(let k):
                await writeFlags(k)
                continue
            }
            w.crlf()
            await emit(w)
        }
    }

    // MARK: IDLE (RFC 2177, RFC 9051 §6.3.13)

    /// Answers the continuation and what is pending, then leaves the session idling: the run
    /// loop hands the next inputs to `idleInput` (IMAPSession+Shallow: no task of its own waits
    /// while the client idles) until DONE, whose tagged response ends the command.
    func idle(_ tag: String) async throws -> Completion {
        // The continuation first (as Dovecot and RFC 2177's examples do), then what is pending.
        var w = writer(); w.continuation("idling"); await emit(w)
        await announce(expunges: true, pull: true)
        idling = tag
        return .alreadyWritten
    }

    /// One input while IDLE is in progress (`idling` holds its tag).
    func idleInput(_ tag: String, _ input: IMAPSessionInput) async {
        switch input {
        case .framed(.unit(let bytes)):
            idling = nil
            let word = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            // As any command's end (IMAPSession.command): updates first, then the tagged response.
            if !finished, selected != nil { await announce(expunges: true, pull: false) }
            await tagged(tag, word.uppercased() == "DONE" ? .ok("IDLE terminated") : .bad("Expected DONE"))
        case .mailboxChanged(let m):
            notified = max(notified, m)
            await announce(expunges: true, pull: false)
        case .framed(.continuationNeeded):
            break
        default:
            await handle(input)
        }
    }

    // MARK: CREATE DELETE RENAME SUBSCRIBE

    func create(_ raw: String, specialUse: [String]) async throws -> Completion {
        let name = try validName(raw)
        if name == "INBOX" { return .no("INBOX always exists", code: "ALREADYEXISTS") }
        let allowed = ["\\Drafts", "\\Sent", "\\Junk", "\\Trash", "\\Archive", "\\Flagged", "\\All"]
        var use: [String] = []
        for u in specialUse {
            guard let a = allowed.first(where: { $0.caseInsensitiveCompare(u) == .orderedSame }) else {
                return .no("Unsupported special use \(u)", code: "USEATTR")
            }
            use.append(a)
        }
        // RFC 6154 §5.1 allows several; the store keeps one attribute per mailbox.
        guard use.count <= 1 else { return .no("One special use per mailbox", code: "USEATTR") }
        try await services.createMailbox(name, specialUse: use.first ?? "")
        return .ok("Create completed")
    }

    func delete(_ raw: String) async throws -> Completion {
        let name = try validName(raw)
        if name == "INBOX" { return .no("INBOX cannot be deleted", code: "CANNOT") }
        if let sel = selected, sel.name == name { await deselect(announceClosed: false) }
        try await services.deleteMailbox(name)
        return .ok("Delete completed")
    }

    func rename(_ from: String, _ to: String) async throws -> Completion {
        let a = try validName(from), b = try validName(to)
        if b == "INBOX" || b.hasPrefix("INBOX/") && a == "INBOX" { return .no("Cannot rename to INBOX", code: "CANNOT") }
        try await services.renameMailbox(from: a, to: b)
        return .ok("Rename completed")
    }

    func subscribe(_ raw: String, _ on: Bool) async throws -> Completion {
        let name = try validName(raw)
        try await services.setSubscribed(name, on)
        return .ok(on ? "Subscribe completed" : "Unsubscribe completed")
    }

    // MARK: LIST / LSUB (RFC 9051 §6.3.9, RFC 5258, RFC 6154, RFC 5819)

    func list(_ l: ListCommand) async throws -> Completion {
        if l.patterns.allSatisfy({ $0.isEmpty }) && l.selection.isEmpty {
            // RFC 9051 §6.3.9: the hierarchy delimiter and root.
            await emit("* LIST (\\Noselect) \"/\" \"\"")
            return .ok("List completed")
        }
        let boxes = try await services.mailboxes()
        let subscribed = Set(try await services.subscriptions())
        var byName: [String: MailboxSummary] = [:]
        for b in boxes { byName[b.name] = b }
        let existing = Set(byName.keys)
        let selectSubscribed = l.selection.contains(.subscribed)
        let candidates = selectSubscribed ? subscribed : existing
        let all = existing.union(subscribed)
        func hasChildren(_ n: String) -> Bool { existing.contains { $0.hasPrefix(n + "/") } }
        var listed: [(String, [String])] = []
        var seen = Set<String>()
        for pattern in l.patterns {
            let full = MailboxName.combine(reference: l.reference, pattern: pattern)
            for n in candidates where MailboxName.matches(n, pattern: full) && !seen.contains(n) {
                if l.selection.contains(.specialUse), (byName[n]?.specialUse ?? "").isEmpty { continue }
                seen.insert(n)
                var attrs: [String] = []
                if !existing.contains(n) { attrs.append("\\NonExistent") }
                else { attrs.append(hasChildren(n) ? "\\HasChildren" : "\\HasNoChildren") }
                if let u = byName[n]?.specialUse, !u.isEmpty { attrs.append(u) }
                if (selectSubscribed || l.returns.contains(.subscribed)) && subscribed.contains(n) { attrs.append("\\Subscribed") }
                listed.append((n, attrs))
            }
            // A "%" stops at a level: parents that exist only as a path of deeper names.
            if !selectSubscribed && full.contains("%") {
                for n in all {
                    var parts = n.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
                    while parts.count > 1 {
                        parts.removeLast()
                        let parent = parts.joined(separator: "/")
                        if !existing.contains(parent) && !seen.contains(parent) && MailboxName.matches(parent, pattern: full) {
                            seen.insert(parent)
                            listed.append((parent, [l.returns.isEmpty && l.selection.isEmpty ? "\\Noselect" : "\\NonExistent", "\\HasChildren"]))
                        }
                    }
                }
            }
        }
        listed.sort { a, b in a.0 == "INBOX" ? b.0 != "INBOX" : (b.0 == "INBOX" ? false : a.0 < b.0) }
        for (n, attrs) in listed {
            var w = writer()
            w.raw("* LIST ("); w.raw(attrs.joined(separator: " ")); w.raw(") \"/\" "); w.mailbox(n); w.crlf()
            await emit(w)
            if !l.statusItems.isEmpty, existing.contains(n), let st = try await services.status(n) {
                await writeStatus(n, st, l.statusItems)
            }
        }
        return .ok("List completed")
    }

    func lsub(reference: String, pattern: String) async throws -> Completion {
        let subscribed = try await services.subscriptions()
        let full = MailboxName.combine(reference: reference, pattern: pattern)
        for n in subscribed.sorted() where MailboxName.matches(n, pattern: full) {
            var w = writer(); w.raw("* LSUB () \"/\" "); w.mailbox(n); w.crlf(); await emit(w)
        }
        return .ok("Lsub completed")
    }

    // MARK: STATUS (RFC 9051 §6.3.11)

    func status(_ raw: String, _ items: [StatusItem]) async throws -> Completion {
        let name: String
        do { name = try validName(raw) } catch { return .no("Mailbox does not exist", code: "NONEXISTENT") }
        guard let st = try await services.status(name) else { return .no("Mailbox does not exist", code: "NONEXISTENT") }
        if items.contains(.highestModSeq) { condstore = true }
        await writeStatus(name, st, items)
        return .ok("Status completed")
    }

    func writeStatus(_ name: String, _ st: MailboxStatus, _ items: [StatusItem]) async {
        var w = writer()
        w.raw("* STATUS "); w.mailbox(name); w.raw(" (")
        var parts: [String] = []
        for i in items {
            switch i {
            case .messages: parts.append("MESSAGES \(st.summary.messages)")
            case .uidNext: parts.append("UIDNEXT \(st.summary.uidNext)")
            case .uidValidity: parts.append("UIDVALIDITY \(st.summary.uidValidity)")
            case .unseen: parts.append("UNSEEN \(st.unseen)")
            case .deleted: parts.append("DELETED \(st.deleted)")
            case .size: parts.append("SIZE \(st.size)")
            case .recent: parts.append("RECENT 0")
            case .highestModSeq: parts.append("HIGHESTMODSEQ \(st.summary.highestModSeq)")
            case .appendLimit: parts.append("APPENDLIMIT \(config.limits.maxAppend)")
            }
        }
        w.raw(parts.joined(separator: " ")); w.raw(")"); w.crlf()
        await emit(w)
    }

    // MARK: APPEND (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID)

    func append(_ raw: String, _ messages: [AppendMessage]) async throws -> Completion {
        let name: String
        do { name = try validName(raw) } catch { return .no("Mailbox does not exist", code: "TRYCREATE") }
        var uids: [UInt32] = []
        var validity: UInt32 = 0
        for m in messages {
            guard !m.data.isEmpty else { return .no("Cannot append an empty message", code: "CANNOT") }
            guard m.data.count <= config.limits.maxAppend else { return .no("Message too large", code: "TOOBIG") }
            let (flags, keywords) = try split(m.flags)
            do {
                let r = try await services.append(to: name, flags: flags, keywords: keywords, internalDate: m.internalDate ?? now(), body: m.data)
                uids.append(r.uid); validity = r.uidValidity
                config.spamLearning?.appended(services, to: name, body: m.data, user: user)
            } catch let e as IMAPServiceError where e.kind == .notFound {
                return .no("Mailbox does not exist", code: "TRYCREATE")
            }
        }
        if let sel = selected, sel.name == name { await announce(expunges: true, pull: true) }
        var w = IMAPWriter(utf8: false)
        w.uidSet(uids)
        return .ok("Append completed", code: "APPENDUID \(validity) \(String(decoding: w.bytes, as: UTF8.self))")
    }
}
