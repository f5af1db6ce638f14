// The mailbox conformance suite (DESIGN §3): what every MailboxStore must do for IMAP, written
// against the protocols only, with real deliveries into INBOX. SQLite runs it below; a
// PostgreSQL store adds one XCTestCase the same way (a store, and a way to reopen it).
import XCTest
import Foundation
import MIME
import MailStore

func appendSync(_ s: any MailboxStore, user: Int64, mailbox: Int64, flags: SystemFlags = [], keywords: [String] = [],
                internalDate: Int64? = nil, body: [UInt8]) throws -> (AppendResult, [MailboxChange]) {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var out: Result<(AppendResult, [MailboxChange]), Error>!
    s.append(user: user, mailbox: mailbox, flags: flags, keywords: keywords, internalDate: internalDate, body: body) { out = $0; sem.signal() }
    sem.wait()
    return try out.get()
}

/// Asserts `body` fails with `code` (and, when given, exactly `message`).
func assertStoreError<T>(_ code: StoreErrorKind, _ message: String? = nil, _ body: @autoclosure () throws -> T,
                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { e in
        XCTAssertEqual((e as? StoreError)?.code, code, "\(e)", file: file, line: line)
        if let message { XCTAssertEqual((e as? StoreError)?.message, message, file: file, line: line) }
    }
}

final class MailboxConformance {
    let store: any MailStore
    /// The same store opened again from where it keeps its data (durability checks).
    let reopen: () throws -> any MailStore
    let alice: UserRef, bob: UserRef

    init(_ store: any MailStore, reopen: @escaping () throws -> any MailStore) throws {
        self.store = store
        self.reopen = reopen
        _ = try StoreConformance(store)
        alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
        bob = try XCTUnwrap(try store.user(named: "bob@example.org"))
    }

    static func message(_ i: Int, pad: Int = 0) -> String {
        "From: Sender <s@x.org>\r\nSubject: message \(i)\r\n\r\nbody \(i)\r\n" + String(repeating: "x", count: pad)
    }

    func box(_ u: UserRef, _ name: String) throws -> MailboxSummary { try XCTUnwrap(try store.mailbox(user: u.id, name: name), name) }
    func inbox(_ u: UserRef? = nil) throws -> MailboxSummary { try box(u ?? alice, "INBOX") }

    /// Delivers `n` distinct messages to alice (or `to`), each its own transaction.
    func deliver(_ n: Int, to: [String] = ["alice@example.org"], from i0: Int = 1) throws {
        for i in i0..<(i0 + n) { XCTAssertEqual(try deliverSync(store, "s@x.org", to, Self.message(i)).statuses.count, to.count) }
    }

    func uids(_ u: UserRef, _ name: String) throws -> [UInt32] { try store.view(user: u.id, mailbox: try box(u, name).id).entries.map(\.uid) }

    @discardableResult
    func set(_ flags: SystemFlags, _ uids: [UInt32], in mailbox: Int64? = nil, keywords: [String] = [], op: FlagOperation = .add,
             unchangedSince: UInt64? = nil) throws -> (FlagUpdate, [MailboxChange]) {
        try store.storeFlags(user: alice.id, mailbox: mailbox ?? inbox().id, uids: uids, operation: op, flags: flags, keywords: keywords,
                             unchangedSince: unchangedSince)
    }

    // MARK: mailboxes

    func createMailbox() throws {
        let others = try store.mailboxes(user: alice.id)
        let work = try store.createMailbox(user: alice.id, name: "Work", specialUse: "\\Archive")
        XCTAssertEqual(work.name, "Work")
        XCTAssertEqual(work.specialUse, "\\Archive")
        XCTAssertEqual(work.uidNext, 1)
        XCTAssertEqual(work.messages, 0)
        XCTAssertFalse(work.subscribed, "CREATE does not subscribe")
        XCTAssertFalse(others.map(\.uidValidity).contains(work.uidValidity))
        XCTAssertEqual(try store.mailbox(user: alice.id, name: "Work"), work)
        assertStoreError(.exists, nil, try self.store.createMailbox(user: self.alice.id, name: "Work", specialUse: ""))
        _ = try store.createMailbox(user: alice.id, name: "Work/Sub", specialUse: "")
        XCTAssertEqual(try store.mailboxes(user: alice.id).map(\.name).suffix(2), ["Work", "Work/Sub"])
        XCTAssertNil(try store.mailbox(user: bob.id, name: "Work"), "another user's namespace")
    }

    /// RFC 9051 §2.3.1.1: a name deleted and created again never gets its old UIDVALIDITY.
    func recreatedNameGetsANewUIDValidity() throws {
        let first = try store.createMailbox(user: alice.id, name: "Tmp", specialUse: "")
        try store.deleteMailbox(user: alice.id, name: "Tmp")
        let second = try store.createMailbox(user: alice.id, name: "Tmp", specialUse: "")
        XCTAssertNotEqual(first.uidValidity, second.uidValidity)
        let archive = try box(alice, "Archive")   // the newest of the defaults
        try store.deleteMailbox(user: alice.id, name: "Archive")
        XCTAssertNotEqual(try store.createMailbox(user: alice.id, name: "Archive", specialUse: "").uidValidity, archive.uidValidity)
    }

    func deleteMailbox() throws {
        assertStoreError(.denied, nil, try self.store.deleteMailbox(user: self.alice.id, name: "INBOX"))
        assertStoreError(.notFound, nil, try self.store.deleteMailbox(user: self.alice.id, name: "Nope"))
        let p = try store.createMailbox(user: alice.id, name: "P", specialUse: "")
        let c = try store.createMailbox(user: alice.id, name: "P/C", specialUse: "")
        assertStoreError(.denied, "has children", try self.store.deleteMailbox(user: self.alice.id, name: "P"))
        try deliver(2)
        _ = try store.copy(user: alice.id, from: inbox().id, uids: [1, 2], to: c.id, move: false)
        try store.deleteMailbox(user: alice.id, name: "P/C")
        try store.deleteMailbox(user: alice.id, name: "P")
        XCTAssertNil(try store.mailbox(user: alice.id, name: "P/C"))
        assertStoreError(.notFound, nil, try self.store.view(user: self.alice.id, mailbox: c.id))
        assertStoreError(.notFound, nil, try self.store.view(user: self.alice.id, mailbox: p.id))
        XCTAssertEqual(try uids(alice, "INBOX"), [1, 2], "the copies' bodies are still INBOX's")
        XCTAssertEqual(try store.read(user: alice.id, mailbox: inbox().id, uid: 2, offset: 0, length: 1 << 20), Array(Self.message(2).utf8))
        let again = try store.createMailbox(user: alice.id, name: "P/C", specialUse: "")
        XCTAssertEqual(again.messages, 0)
        XCTAssertEqual(try store.delta(user: alice.id, mailbox: again.id, since: 0, limit: 10).vanished, [], "no tombstones of the old one")
    }

    /// RFC 9051 §6.3.6: inferior names move along; the mailbox keeps its id, UIDVALIDITY and mail.
    func renameWithChildren() throws {
        let a = try store.createMailbox(user: alice.id, name: "a", specialUse: "")
        let ab = try store.createMailbox(user: alice.id, name: "a/b", specialUse: "")
        _ = try store.createMailbox(user: alice.id, name: "a/b/c", specialUse: "")
        _ = try store.createMailbox(user: alice.id, name: "ab", specialUse: "")
        try deliver(1)
        _ = try store.copy(user: alice.id, from: inbox().id, uids: [1], to: ab.id, move: false)
        try store.renameMailbox(user: alice.id, from: "a", to: "z")
        let names = try store.mailboxes(user: alice.id).map(\.name)
        XCTAssertEqual(names.filter { !["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"].contains($0) }.sorted(), ["ab", "z", "z/b", "z/b/c"])
        let zb = try box(alice, "z/b")
        XCTAssertEqual(zb.id, ab.id)
        XCTAssertEqual(zb.uidValidity, ab.uidValidity)
        XCTAssertEqual(try uids(alice, "z/b"), [1])
        XCTAssertEqual(try box(alice, "z").id, a.id)
    }

    func renameConflicts() throws {
        for n in ["a", "a/b", "z/b"] { _ = try store.createMailbox(user: alice.id, name: n, specialUse: "") }
        let before = try store.mailboxes(user: alice.id)
        assertStoreError(.exists, nil, try self.store.renameMailbox(user: self.alice.id, from: "a", to: "z"))   // a child's target, z/b, is taken
        assertStoreError(.exists, nil, try self.store.renameMailbox(user: self.alice.id, from: "a", to: "Archive"))
        assertStoreError(.notFound, nil, try self.store.renameMailbox(user: self.alice.id, from: "nope", to: "x"))
        assertStoreError(.invalid, nil, try self.store.renameMailbox(user: self.alice.id, from: "a", to: "a/x"))
        XCTAssertEqual(try store.mailboxes(user: alice.id), before, "nothing renamed")
    }

    /// RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name and leaves it empty.
    func renameInbox() throws {
        try deliver(3)
        try set([.seen], [2], keywords: ["Work"])
        let before = try inbox()
        try store.renameMailbox(user: alice.id, from: "INBOX", to: "Old")
        let old = try box(alice, "Old"), now = try inbox()
        XCTAssertEqual(now.id, before.id)
        XCTAssertEqual(now.uidValidity, before.uidValidity)
        XCTAssertEqual(now.uidNext, before.uidNext)
        XCTAssertEqual(now.messages, 0)
        XCTAssertGreaterThan(now.highestModSeq, before.highestModSeq)
        XCTAssertNotEqual(old.uidValidity, before.uidValidity)
        XCTAssertEqual(old.messages, 3)
        let view = try store.view(user: alice.id, mailbox: old.id)
        XCTAssertEqual(view.entries.map(\.uid), [1, 2, 3])
        XCTAssertEqual(view.entries[1].flags, .seen)
        XCTAssertEqual(view.keywords[Int(view.entries[1].keywords.trailingZeroBitCount)], "Work")
        XCTAssertEqual(try store.read(user: alice.id, mailbox: old.id, uid: 3, offset: 0, length: 1 << 20), Array(Self.message(3).utf8))
        XCTAssertEqual(try store.delta(user: alice.id, mailbox: now.id, since: before.highestModSeq, limit: 10).vanished, [1, 2, 3])
        try deliver(1, from: 4)
        XCTAssertEqual(try uids(alice, "INBOX"), [4], "INBOX's UIDs are never reused")
    }

    /// RFC 9051 §6.3.7: subscriptions are names, apart from mailboxes.
    func subscriptions() throws {
        XCTAssertEqual(try store.subscriptions(user: alice.id), ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"])
        XCTAssertTrue(try box(alice, "Junk").subscribed)
        try store.setSubscribed(user: alice.id, name: "Junk", false)
        try store.setSubscribed(user: alice.id, name: "Ghost", true)
        try store.setSubscribed(user: alice.id, name: "Ghost", true)
        XCTAssertFalse(try box(alice, "Junk").subscribed)
        XCTAssertEqual(try store.subscriptions(user: alice.id), ["Archive", "Drafts", "Ghost", "INBOX", "Sent", "Trash"])
        _ = try store.createMailbox(user: alice.id, name: "Ghost", specialUse: "")
        XCTAssertTrue(try box(alice, "Ghost").subscribed, "a mailbox created under a subscribed name is subscribed")
        XCTAssertEqual(try store.subscriptions(user: bob.id).count, 6, "bob's are his own")
    }

    /// RFC 9051 §6.3.11.
    func status() throws {
        try deliver(3)
        try set([.seen], [1])
        try set([.deleted], [2])
        let s = try XCTUnwrap(try store.status(user: alice.id, name: "INBOX"))
        XCTAssertEqual(s.summary, try inbox())
        XCTAssertEqual(s.unseen, 2)
        XCTAssertEqual(s.deleted, 1)
        XCTAssertEqual(s.size, UInt64((1...3).map { Self.message($0).utf8.count }.reduce(0, +)))
        XCTAssertNil(try store.status(user: alice.id, name: "Nope"))
        XCTAssertEqual(try store.status(user: alice.id, name: "Trash")?.size, 0)
    }

    // MARK: UIDs, MODSEQ, view and delta

    func viewListsEveryMessageInUIDOrder() throws {
        try deliver(4)
        let v = try store.view(user: alice.id, mailbox: inbox().id)
        XCTAssertEqual(v.summary, try inbox())
        XCTAssertEqual(v.entries.map(\.uid), [1, 2, 3, 4])
        XCTAssertEqual(v.entries.map(\.modSeq), v.entries.map(\.modSeq).sorted())
        XCTAssertEqual(v.entries.last?.modSeq, v.summary.highestModSeq)
        XCTAssertEqual(v.keywords, [])
        XCTAssertTrue(v.entries.allSatisfy { $0.flags == [] && $0.keywords == 0 })
    }

    /// RFC 9051 §2.3.1.1: UIDs rise strictly and are never reused, after expunge and re-append too.
    func uidsStrictlyAscendingAndNeverReused() throws {
        try deliver(3)
        try set([.deleted], [2, 3])
        XCTAssertEqual(try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil).0, [2, 3])
        XCTAssertEqual(try appendSync(store, user: alice.id, mailbox: inbox().id, body: Array(Self.message(3).utf8)).0.uid, 4)
        try deliver(1, from: 5)
        XCTAssertEqual(try uids(alice, "INBOX"), [1, 4, 5])
        let archive = try box(alice, "Archive")
        XCTAssertEqual(try store.copy(user: alice.id, from: inbox().id, uids: [1, 4, 5], to: archive.id, move: false).0.destinationUIDs, [1, 2, 3])
        try set([.deleted], [1, 2, 3], in: archive.id)
        _ = try store.expunge(user: alice.id, mailbox: archive.id, uids: nil)
        XCTAssertEqual(try store.copy(user: alice.id, from: inbox().id, uids: [1], to: archive.id, move: false).0.destinationUIDs, [4])
        XCTAssertEqual(try box(alice, "Archive").uidNext, 5)
    }

    /// Every mutation raises HIGHESTMODSEQ, gives the rows it touched that value, and reports it.
    func modSeqRisesWithEveryMutation() throws {
        var seen: [UInt64] = [try inbox().highestModSeq]
        func check(_ changes: [MailboxChange], _ what: String) throws {
            let now = try inbox()
            XCTAssertGreaterThan(now.highestModSeq, seen.last!, what)
            seen.append(now.highestModSeq)
            let c = try XCTUnwrap(changes.first { $0.mailboxID == now.id }, what)
            XCTAssertEqual(c, MailboxChange(user: alice.id, mailboxID: now.id, mailbox: "INBOX", uidNext: now.uidNext, exists: now.messages,
                                            highestModSeq: now.highestModSeq), what)
        }
        try check(try deliverSync(store, "s@x.org", ["alice@example.org"], Self.message(1)).changes, "deliver")
        try check(try deliverSync(store, "s@x.org", ["alice@example.org"], Self.message(2)).changes, "deliver")
        let (update, changes) = try set([.flagged], [1, 2])
        try check(changes, "store")
        XCTAssertEqual(update.changed.map(\.modSeq), [seen.last!, seen.last!], "one MODSEQ for the whole STORE")
        XCTAssertEqual(update.highestModSeq, seen.last!)
        try check(try appendSync(store, user: alice.id, mailbox: inbox().id, body: Array(Self.message(3).utf8)).1, "append")
        try check(try store.copy(user: alice.id, from: inbox().id, uids: [1], to: inbox().id, move: false).1, "copy")
        try check(try store.copy(user: alice.id, from: inbox().id, uids: [2], to: box(alice, "Trash").id, move: true).1, "move")
        try set([.deleted], [1])
        seen.append(try inbox().highestModSeq)
        try check(try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil).1, "expunge")
    }

    func deltaAfterStoreShowsExactlyTheChange() throws {
        try deliver(3)
        let m0 = try inbox().highestModSeq
        XCTAssertEqual(try store.delta(user: alice.id, mailbox: inbox().id, since: m0, limit: 100).changed, [])
        try set([.seen], [2])
        let d = try store.delta(user: alice.id, mailbox: inbox().id, since: m0, limit: 100)
        let size = try XCTUnwrap(try store.details(user: alice.id, mailbox: inbox().id, uids: [2]).first).size
        XCTAssertEqual(d.changed, [ViewEntry(uid: 2, modSeq: m0 + 1, flags: .seen, size: UInt32(size))], "the delta carries the size")
        XCTAssertEqual(d.vanished, [])
        XCTAssertTrue(d.complete)
        XCTAssertEqual(d.summary, try inbox())
    }

    /// RFC 7162 §3.2.10: expunged UIDs come back as VANISHED, from their tombstones' MODSEQ.
    func deltaAfterExpungeShowsVanished() throws {
        try deliver(3)
        let m0 = try inbox().highestModSeq
        try set([.deleted], [1, 3])
        let m1 = try inbox().highestModSeq
        XCTAssertEqual(try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil).0, [1, 3])
        let after = try store.delta(user: alice.id, mailbox: inbox().id, since: m1, limit: 100)
        XCTAssertEqual(after.changed, [])
        XCTAssertEqual(after.vanished, [1, 3])
        XCTAssertEqual(after.summary.messages, 1)
        let all = try store.delta(user: alice.id, mailbox: inbox().id, since: m0, limit: 100)
        XCTAssertEqual(all.changed, [], "rows that are gone are not changes")
        XCTAssertEqual(all.vanished, [1, 3])
        XCTAssertEqual(try store.delta(user: alice.id, mailbox: inbox().id, since: after.summary.highestModSeq, limit: 100).vanished, [])
    }

    func deltaAfterMove() throws {
        try deliver(3)
        let trash = try box(alice, "Trash"), m0 = try inbox().highestModSeq
        let (r, changes) = try store.copy(user: alice.id, from: inbox().id, uids: [3, 1], to: trash.id, move: true)
        XCTAssertEqual(r, CopyResult(uidValidity: trash.uidValidity, sourceUIDs: [1, 3], destinationUIDs: [1, 2]))
        XCTAssertEqual(Set(changes.map(\.mailboxID)), [trash.id, try inbox().id])
        let src = try store.delta(user: alice.id, mailbox: inbox().id, since: m0, limit: 100)
        XCTAssertEqual(src.changed, [])
        XCTAssertEqual(src.vanished, [1, 3])
        let dst = try store.delta(user: alice.id, mailbox: trash.id, since: trash.highestModSeq, limit: 100)
        XCTAssertEqual(dst.changed.map(\.uid), [1, 2])
        XCTAssertEqual(dst.vanished, [])
        XCTAssertEqual(try uids(alice, "INBOX"), [2])
        XCTAssertEqual(try inbox().messages, 1)
        XCTAssertEqual(try box(alice, "Trash").messages, 2)
    }

    /// A limited delta resumes from its last MODSEQ; one MODSEQ is never split across two answers.
    func deltaPagesWithoutSplittingAModSeq() throws {
        let m0 = try inbox().highestModSeq
        try deliver(5)
        let first = try store.delta(user: alice.id, mailbox: inbox().id, since: m0, limit: 2)
        XCTAssertEqual(first.changed.map(\.uid), [1, 2])
        XCTAssertFalse(first.complete)
        let second = try store.delta(user: alice.id, mailbox: inbox().id, since: first.changed.last!.modSeq, limit: 2)
        XCTAssertEqual(second.changed.map(\.uid), [3, 4])
        let third = try store.delta(user: alice.id, mailbox: inbox().id, since: second.changed.last!.modSeq, limit: 2)
        XCTAssertEqual(third.changed.map(\.uid), [5])
        XCTAssertTrue(third.complete)
        let m1 = try inbox().highestModSeq
        try set([.seen], [1, 2, 3, 4, 5])
        let whole = try store.delta(user: alice.id, mailbox: inbox().id, since: m1, limit: 2)
        XCTAssertEqual(whole.changed.map(\.uid), [1, 2, 3, 4, 5], "one STORE's MODSEQ comes whole")
        XCTAssertTrue(whole.complete)
    }

    /// Tombstones come with the changes of their MODSEQ range: an incomplete delta never
    /// reports an expunge that happened after the last change it returns.
    func deltaVanishedFollowItsPage() throws {
        let m0 = try inbox().highestModSeq
        try deliver(3)
        try set([.deleted], [1])
        _ = try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil)
        let first = try store.delta(user: alice.id, mailbox: inbox().id, since: m0, limit: 1)
        XCTAssertEqual(first.changed.map(\.uid), [2])
        XCTAssertEqual(first.vanished, [])
        XCTAssertFalse(first.complete)
        let rest = try store.delta(user: alice.id, mailbox: inbox().id, since: first.changed[0].modSeq, limit: 10)
        XCTAssertEqual(rest.changed.map(\.uid), [3])
        XCTAssertEqual(rest.vanished, [1])
        XCTAssertTrue(rest.complete)
    }

    // MARK: STORE

    /// Keywords get small per-mailbox ids, in order of first use, matched case-insensitively.
    func keywordAllocation() throws {
        try deliver(3)
        let (u1, _) = try set([], [1], keywords: ["$Forwarded", "Work"])
        XCTAssertEqual(u1.keywords, ["$Forwarded", "Work"])
        XCTAssertEqual(u1.changed.map(\.keywords), [0b11])
        let (u2, _) = try set([], [2], keywords: ["work"])
        XCTAssertEqual(u2.keywords, ["$Forwarded", "Work"], "WORK is Work")
        XCTAssertEqual(u2.changed.map(\.keywords), [0b10])
        let (u3, c3) = try set([], [1, 2, 3], keywords: ["Nope"], op: .remove)
        XCTAssertEqual(u3.changed, [])
        XCTAssertEqual(c3, [])
        XCTAssertEqual(u3.keywords, ["$Forwarded", "Work"], "removing an unknown keyword names nothing")
        _ = try set([], [3], keywords: ["Later"])
        let v = try store.view(user: alice.id, mailbox: inbox().id)
        XCTAssertEqual(v.keywords, ["$Forwarded", "Work", "Later"])
        XCTAssertEqual(v.entries.map(\.keywords), [0b11, 0b10, 0b100])
        XCTAssertEqual(try store.view(user: alice.id, mailbox: box(alice, "Archive").id).keywords, [], "keyword ids are per mailbox")
    }

    /// `maxKeywordsPerMailbox` names fit; one more is refused, and nothing of that STORE is done.
    func keywordLimit() throws {
        try deliver(2)
        let names = (0..<maxKeywordsPerMailbox).map { "k\($0)" }
        let (u, _) = try set([.seen], [1], keywords: names)
        XCTAssertEqual(u.keywords, names)
        XCTAssertEqual(u.changed.first?.keywords, UInt64.max)
        let before = try store.view(user: alice.id, mailbox: inbox().id)
        assertStoreError(.invalid, "too many keywords", try self.set([.flagged], [2], keywords: ["one-more"]))
        XCTAssertEqual(try store.view(user: alice.id, mailbox: inbox().id), before)
        let (again, _) = try set([], [2], keywords: ["K63"])
        XCTAssertEqual(again.changed.first?.keywords, 1 << 63, "a known keyword still works")
    }

    /// RFC 7162 §3.1.3: UNCHANGEDSINCE leaves newer messages alone and reports them MODIFIED.
    func unchangedSince() throws {
        try deliver(3)
        let m = try inbox().highestModSeq
        try set([.flagged], [2])
        let (u, _) = try set([.seen], [1, 2, 3], unchangedSince: m)
        XCTAssertEqual(u.modified, [2])
        XCTAssertEqual(u.changed.map(\.uid), [1, 3])
        XCTAssertEqual(try store.view(user: alice.id, mailbox: inbox().id).entries.map(\.flags), [.seen, .flagged, .seen])
        let (none, _) = try set([.answered], [1], unchangedSince: 0)
        XCTAssertEqual(none.modified, [1], "every message has a MODSEQ above 0")
        XCTAssertEqual(none.changed, [])
    }

    /// A STORE that changes nothing keeps MODSEQs, reports nothing and notifies no one.
    func storeThatChangesNothingKeepsModSeq() throws {
        try deliver(2)
        try set([.seen], [1])
        let before = try inbox().highestModSeq
        for (flags, op) in [(SystemFlags.seen, FlagOperation.add), (.flagged, .remove), (.seen, .replace)] {
            let (u, changes) = try set(flags, [1], op: op)
            XCTAssertEqual(u.changed, [], "\(op)")
            XCTAssertEqual(changes, [])
            XCTAssertEqual(u.highestModSeq, before)
        }
        let (gone, _) = try set([.seen], [7, 8])
        XCTAssertEqual(gone.changed, [], "UIDs that are not there are skipped")
        XCTAssertEqual(try inbox().highestModSeq, before)
    }

    func storeReplaceAndRemove() throws {
        try deliver(1)
        try set([.seen, .answered], [1], keywords: ["a", "b"])
        let (r, _) = try set([.flagged], [1], keywords: ["b"], op: .replace)
        XCTAssertEqual(r.changed.first?.flags, .flagged)
        XCTAssertEqual(r.changed.first?.keywords, 0b10)
        let (x, _) = try set([.flagged], [1], keywords: ["b"], op: .remove)
        XCTAssertEqual(x.changed.first?.flags, [])
        XCTAssertEqual(x.changed.first?.keywords, 0)
    }

    // MARK: COPY, MOVE, EXPUNGE

    func copyKeepsFlagsKeywordsAndDate() throws {
        let archive = try box(alice, "Archive")
        _ = try appendSync(store, user: alice.id, mailbox: archive.id, keywords: ["Other"], body: Array("other\r\n".utf8))
        try deliver(2)
        try set([.seen, .flagged], [2], keywords: ["Work"])
        let src = try XCTUnwrap(try store.details(user: alice.id, mailbox: inbox().id, uids: [2]).first)
        let (r, changes) = try store.copy(user: alice.id, from: inbox().id, uids: [2], to: archive.id, move: false)
        XCTAssertEqual(r, CopyResult(uidValidity: archive.uidValidity, sourceUIDs: [2], destinationUIDs: [2]))
        XCTAssertEqual(changes.map(\.mailboxID), [archive.id], "a copy changes only the destination")
        let v = try store.view(user: alice.id, mailbox: archive.id)
        XCTAssertEqual(v.keywords, ["Other", "Work"])
        let copied = try XCTUnwrap(try store.details(user: alice.id, mailbox: archive.id, uids: [2]).first)
        XCTAssertEqual(v.entries.last, ViewEntry(uid: 2, modSeq: v.summary.highestModSeq, flags: [.seen, .flagged], keywords: 0b10,
                                                 size: UInt32(copied.size)))
        XCTAssertEqual(copied.internalDate, src.internalDate)
        XCTAssertEqual(copied.size, src.size)
        XCTAssertEqual(copied.info, src.info)
        XCTAssertEqual(try store.read(user: alice.id, mailbox: archive.id, uid: 2, offset: 0, length: 1 << 20), Array(Self.message(2).utf8))
        XCTAssertEqual(try uids(alice, "INBOX"), [1, 2], "the source stays")
    }

    func copyWithinTheSameMailbox() throws {
        try deliver(2)
        let (r, _) = try store.copy(user: alice.id, from: inbox().id, uids: [1, 2], to: inbox().id, move: false)
        XCTAssertEqual(r.destinationUIDs, [3, 4])
        XCTAssertEqual(try uids(alice, "INBOX"), [1, 2, 3, 4])
        XCTAssertEqual(try inbox().messages, 4)
        XCTAssertEqual(try store.read(user: alice.id, mailbox: inbox().id, uid: 4, offset: 0, length: 100), Array(Self.message(2).utf8))
    }

    func copySkipsMissingUIDs() throws {
        try deliver(2)
        let trash = try box(alice, "Trash")
        let (none, c) = try store.copy(user: alice.id, from: inbox().id, uids: [9], to: trash.id, move: true)
        XCTAssertEqual(none, CopyResult(uidValidity: trash.uidValidity, sourceUIDs: [], destinationUIDs: []))
        XCTAssertEqual(c, [])
        XCTAssertEqual(try box(alice, "Trash"), trash, "nothing changed")
        XCTAssertEqual(try store.copy(user: alice.id, from: inbox().id, uids: [9, 2, 2], to: trash.id, move: false).0.sourceUIDs, [2])
    }

    /// Only \Deleted messages go, among `uids` when given.
    func expungeOnlyDeleted() throws {
        try deliver(4)
        try set([.deleted], [1, 2, 4])
        let (some, _) = try store.expunge(user: alice.id, mailbox: inbox().id, uids: [2, 3])
        XCTAssertEqual(some, [2])
        let (rest, _) = try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil)
        XCTAssertEqual(rest, [1, 4])
        XCTAssertEqual(try uids(alice, "INBOX"), [3])
        XCTAssertEqual(try inbox().messages, 1)
        let m = try inbox().highestModSeq
        let (nothing, changes) = try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil)
        XCTAssertEqual(nothing, [])
        XCTAssertEqual(changes, [])
        XCTAssertEqual(try inbox().highestModSeq, m)
        assertStoreError(.notFound, nil, try self.store.read(user: self.alice.id, mailbox: try self.inbox().id, uid: 1, offset: 0, length: 10))
    }

    /// A body many mailboxes (or users) share survives the expunge of one copy.
    func sharedBodySurvivesExpunge() throws {
        let body = Self.message(42, pad: 300)
        _ = try deliverSync(store, "s@x.org", ["alice@example.org", "bob@example.org"], body)
        _ = try store.copy(user: alice.id, from: inbox().id, uids: [1], to: box(alice, "Archive").id, move: false)
        try set([.deleted], [1])
        _ = try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil)
        XCTAssertEqual(try store.read(user: bob.id, mailbox: inbox(bob).id, uid: 1, offset: 0, length: 1 << 20), Array(body.utf8))
        XCTAssertEqual(try store.read(user: alice.id, mailbox: box(alice, "Archive").id, uid: 1, offset: 0, length: 1 << 20), Array(body.utf8))
        try store.deleteMailbox(user: alice.id, name: "Archive")
        XCTAssertEqual(try store.read(user: bob.id, mailbox: inbox(bob).id, uid: 1, offset: 0, length: 1 << 20), Array(body.utf8))
        try store.sweep()
        XCTAssertEqual(try store.read(user: bob.id, mailbox: inbox(bob).id, uid: 1, offset: 0, length: 1 << 20), Array(body.utf8))
    }

    /// A body queued for a remote recipient survives the expunge of the local copy.
    func queuedBodySurvivesExpunge() throws {
        let body = Self.message(7, pad: 200)
        _ = try deliverSync(store, "alice@example.org", ["alice@example.org", "x@remote.net"], body, submitter: alice)
        try set([.deleted], [1])
        _ = try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil)
        XCTAssertEqual(try store.queue().count, 1)
        try store.sweep()
        _ = try deliverSync(store, "s@x.org", ["bob@example.org"], body)
        XCTAssertEqual(try store.read(user: bob.id, mailbox: inbox(bob).id, uid: 1, offset: 0, length: 1 << 20), Array(body.utf8))
    }

    // MARK: APPEND

    func appendStoresFlagsKeywordsAndDate() throws {
        let drafts = try box(alice, "Drafts")
        let body = Array(Self.message(1).utf8)
        let (r, changes) = try appendSync(store, user: alice.id, mailbox: drafts.id, flags: [.draft, .seen], keywords: ["$MDNSent"],
                                          internalDate: 1_700_000_000, body: body)
        XCTAssertEqual(r, AppendResult(uidValidity: drafts.uidValidity, uid: 1))
        let now = try box(alice, "Drafts")
        XCTAssertEqual(changes, [MailboxChange(user: alice.id, mailboxID: drafts.id, mailbox: "Drafts", uidNext: 2, exists: 1, highestModSeq: now.highestModSeq)])
        let v = try store.view(user: alice.id, mailbox: drafts.id)
        XCTAssertEqual(v.keywords, ["$MDNSent"])
        XCTAssertEqual(v.entries, [ViewEntry(uid: 1, modSeq: now.highestModSeq, flags: [.draft, .seen], keywords: 1, size: UInt32(body.count))])
        let d = try store.details(user: alice.id, mailbox: drafts.id, uids: [1])
        XCTAssertEqual(d.map(\.internalDate), [1_700_000_000])
        XCTAssertEqual(d.map(\.size), [UInt64(body.count)])
        XCTAssertEqual(try store.read(user: alice.id, mailbox: drafts.id, uid: 1, offset: 0, length: 1 << 20), body)
        _ = try appendSync(store, user: alice.id, mailbox: drafts.id, body: Array(Self.message(2).utf8))
        XCTAssertEqual(try store.details(user: alice.id, mailbox: drafts.id, uids: [2]).map(\.internalDate), [Int64(conformanceNow.timeIntervalSince1970)],
                       "no date: now")
    }

    /// DESIGN §3: an APPEND acknowledged is on disk: the store opened again has it.
    func appendIsDurable() throws {
        let body = Array(Self.message(9, pad: 100_000).utf8), small = Array(Self.message(10).utf8)
        let sent = try box(alice, "Sent")
        _ = try appendSync(store, user: alice.id, mailbox: sent.id, flags: .seen, keywords: ["Kept"], body: body)
        _ = try appendSync(store, user: alice.id, mailbox: sent.id, body: small)
        let again = try reopen()
        let v = try again.view(user: alice.id, mailbox: sent.id)
        XCTAssertEqual(v.entries.map(\.uid), [1, 2])
        XCTAssertEqual(v.entries.first?.flags, .seen)
        XCTAssertEqual(v.keywords, ["Kept"])
        XCTAssertEqual(try again.read(user: alice.id, mailbox: sent.id, uid: 1, offset: 0, length: 1 << 20), body)
        XCTAssertEqual(try again.read(user: alice.id, mailbox: sent.id, uid: 2, offset: 0, length: 1 << 20), small)
    }

    func appendFailuresChangeNothing() throws {
        let drafts = try box(alice, "Drafts")
        assertStoreError(.notFound, "no such mailbox", try appendSync(self.store, user: self.bob.id, mailbox: drafts.id, body: Array("x\r\n".utf8)))
        assertStoreError(.notFound, "no such mailbox", try appendSync(self.store, user: self.alice.id, mailbox: -1, body: Array("x\r\n".utf8)))
        let many = (0...maxKeywordsPerMailbox).map { "k\($0)" }
        assertStoreError(.invalid, "too many keywords", try appendSync(self.store, user: self.alice.id, mailbox: drafts.id, keywords: many, body: Array("x\r\n".utf8)))
        XCTAssertEqual(try box(alice, "Drafts"), drafts)
        XCTAssertEqual(try store.view(user: alice.id, mailbox: drafts.id).keywords, [], "no keyword of the failed append was kept")
        XCTAssertEqual(try appendSync(store, user: alice.id, mailbox: drafts.id, body: Array("y\r\n".utf8)).0.uid, 1)
    }

    // MARK: FETCH's reads

    func detailsOfThePresentUIDs() throws {
        try deliver(3)
        try set([.deleted], [2])
        _ = try store.expunge(user: alice.id, mailbox: inbox().id, uids: nil)
        let d = try store.details(user: alice.id, mailbox: inbox().id, uids: [3, 99, 1, 2])
        XCTAssertEqual(d.map(\.uid), [1, 3])
        XCTAssertEqual(d.map(\.size), [1, 3].map { UInt64(Self.message($0).utf8.count) })
        XCTAssertEqual(try MessageInfo(encoded: d[1].info).envelope.subject, "message 3")
        XCTAssertEqual(try store.details(user: alice.id, mailbox: inbox().id, uids: []), [])
    }

    /// Bytes [offset, offset + length), cut at the end of the body.
    func readRanges() throws {
        let big = Self.message(1, pad: 200_000), small = Self.message(2)
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], big)
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], small)
        let id = try inbox().id
        for (uid, body) in [(UInt32(1), Array(big.utf8)), (2, Array(small.utf8))] {
            let n = body.count
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: 0, length: 10), Array(body[0..<10]))
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: 5, length: 7), Array(body[5..<12]))
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: n - 3, length: 100), Array(body[(n - 3)...]))
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: n, length: 10), [])
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: n + 1000, length: 10), [])
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: 3, length: 0), [])
            XCTAssertEqual(try store.read(user: alice.id, mailbox: id, uid: uid, offset: 0, length: Int.max), body)
        }
        assertStoreError(.notFound, nil, try self.store.read(user: self.alice.id, mailbox: id, uid: 3, offset: 0, length: 10))
    }

    func searchAnswersUIDs() throws {
        try deliver(3)
        XCTAssertEqual(try store.search(user: alice.id, mailbox: inbox().id, query: .all), [1, 2, 3])
        XCTAssertEqual(try store.search(user: alice.id, mailbox: box(alice, "Trash").id, query: .all), [])
    }

    // MARK: isolation

    /// Every call by bob on alice's mailbox ids fails exactly like a mailbox that does not exist.
    func crossUserIsolation() throws {
        try deliver(2)
        try set([.deleted], [2])
        let a = try inbox(), archive = try box(alice, "Archive"), mine = try inbox(bob)
        let missing: Int64 = 1 << 40
        let expected = try XCTUnwrap({ () -> StoreError? in
            do { _ = try store.view(user: bob.id, mailbox: missing); return nil } catch { return error as? StoreError }
        }())
        XCTAssertEqual(expected.code, .notFound)
        func denied<T>(_ what: String, _ body: @autoclosure () throws -> T) {
            XCTAssertThrowsError(try body(), what) { XCTAssertEqual($0 as? StoreError, expected, what) }
        }
        for id in [a.id, archive.id, missing] {
            denied("view", try store.view(user: bob.id, mailbox: id))
            denied("delta", try store.delta(user: bob.id, mailbox: id, since: 0, limit: 10))
            denied("details", try store.details(user: bob.id, mailbox: id, uids: [1]))
            denied("read", try store.read(user: bob.id, mailbox: id, uid: 1, offset: 0, length: 10))
            denied("store", try store.storeFlags(user: bob.id, mailbox: id, uids: [1], operation: .add, flags: .seen, keywords: ["x"], unchangedSince: nil))
            denied("copy from", try store.copy(user: bob.id, from: id, uids: [1], to: mine.id, move: true))
            denied("copy to", try store.copy(user: bob.id, from: mine.id, uids: [1], to: id, move: false))
            denied("expunge", try store.expunge(user: bob.id, mailbox: id, uids: nil))
            denied("append", try appendSync(store, user: bob.id, mailbox: id, body: Array("x\r\n".utf8)))
            denied("search", try store.search(user: bob.id, mailbox: id, query: .all))
        }
        XCTAssertEqual(try inbox(), a, "alice's INBOX is untouched")
        XCTAssertEqual(try box(alice, "Archive"), archive)
        XCTAssertEqual(try store.view(user: alice.id, mailbox: a.id).entries.map(\.flags), [[], .deleted])
        XCTAssertEqual(try store.view(user: alice.id, mailbox: a.id).keywords, [])
        XCTAssertEqual(try inbox(bob).messages, 0)
        // by name, each user sees only their own
        _ = try store.createMailbox(user: alice.id, name: "Work", specialUse: "")
        assertStoreError(.notFound, nil, try self.store.deleteMailbox(user: self.bob.id, name: "Work"))
        assertStoreError(.notFound, nil, try self.store.renameMailbox(user: self.bob.id, from: "Work", to: "Mine"))
        XCTAssertNil(try store.status(user: bob.id, name: "Work"))
        XCTAssertNotNil(try store.mailbox(user: alice.id, name: "Work"))
        XCTAssertEqual(try store.status(user: bob.id, name: "INBOX")?.summary.id, mine.id)
    }
}

/// The suite on SQLite with every body a file (inline bodies: SQLiteMailboxTests).
final class SQLiteMailboxConformanceTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = tempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }
    func open() throws -> SQLiteMailStore { try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: 0, clock: { conformanceNow }) }
    func suite() throws -> MailboxConformance { try MailboxConformance(open(), reopen: { try self.open() }) }

    func testCreateMailbox() throws { try suite().createMailbox() }
    func testRecreatedNameGetsANewUIDValidity() throws { try suite().recreatedNameGetsANewUIDValidity() }
    func testDeleteMailbox() throws { try suite().deleteMailbox() }
    func testRenameWithChildren() throws { try suite().renameWithChildren() }
    func testRenameConflicts() throws { try suite().renameConflicts() }
    func testRenameInbox() throws { try suite().renameInbox() }
    func testSubscriptions() throws { try suite().subscriptions() }
    func testStatus() throws { try suite().status() }
    func testViewListsEveryMessageInUIDOrder() throws { try suite().viewListsEveryMessageInUIDOrder() }
    func testUIDsStrictlyAscendingAndNeverReused() throws { try suite().uidsStrictlyAscendingAndNeverReused() }
    func testModSeqRisesWithEveryMutation() throws { try suite().modSeqRisesWithEveryMutation() }
    func testDeltaAfterStoreShowsExactlyTheChange() throws { try suite().deltaAfterStoreShowsExactlyTheChange() }
    func testDeltaAfterExpungeShowsVanished() throws { try suite().deltaAfterExpungeShowsVanished() }
    func testDeltaAfterMove() throws { try suite().deltaAfterMove() }
    func testDeltaPagesWithoutSplittingAModSeq() throws { try suite().deltaPagesWithoutSplittingAModSeq() }
    func testDeltaVanishedFollowItsPage() throws { try suite().deltaVanishedFollowItsPage() }
    func testKeywordAllocation() throws { try suite().keywordAllocation() }
    func testKeywordLimit() throws { try suite().keywordLimit() }
    func testUnchangedSince() throws { try suite().unchangedSince() }
    func testStoreThatChangesNothingKeepsModSeq() throws { try suite().storeThatChangesNothingKeepsModSeq() }
    func testStoreReplaceAndRemove() throws { try suite().storeReplaceAndRemove() }
    func testCopyKeepsFlagsKeywordsAndDate() throws { try suite().copyKeepsFlagsKeywordsAndDate() }
    func testCopyWithinTheSameMailbox() throws { try suite().copyWithinTheSameMailbox() }
    func testCopySkipsMissingUIDs() throws { try suite().copySkipsMissingUIDs() }
    func testExpungeOnlyDeleted() throws { try suite().expungeOnlyDeleted() }
    func testSharedBodySurvivesExpunge() throws { try suite().sharedBodySurvivesExpunge() }
    func testQueuedBodySurvivesExpunge() throws { try suite().queuedBodySurvivesExpunge() }
    func testAppendStoresFlagsKeywordsAndDate() throws { try suite().appendStoresFlagsKeywordsAndDate() }
    func testAppendIsDurable() throws { try suite().appendIsDurable() }
    func testAppendFailuresChangeNothing() throws { try suite().appendFailuresChangeNothing() }
    func testDetailsOfThePresentUIDs() throws { try suite().detailsOfThePresentUIDs() }
    func testReadRanges() throws { try suite().readRanges() }
    func testSearchAnswersUIDs() throws { try suite().searchAnswersUIDs() }
    func testCrossUserIsolation() throws { try suite().crossUserIsolation() }
}
