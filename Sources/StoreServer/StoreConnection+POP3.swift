// POP3 family handlers (DESIGN §2, §4): the per-user maildrop lock (RFC 1939 §8), held in this
// process's memory only — SessionEnd or the worker connection's close releases it, and a store
// restart frees every lock — and the UPDATE-state delete (RFC 1939 §6) in one transaction.
// The pop3d role is confined to its user's INBOX: any other mailbox is `.denied`.
import Foundation
import NIOCore
import MailIPC
import MailStore

/// Which session holds each user's maildrop; shared by every connection of the store.
final class Pop3LockTable: @unchecked Sendable {
    struct Holder: Equatable { var connection: ObjectIdentifier, session: UInt64 }
    private let lock = NSLock()
    private var holders: [Int64: Holder] = [:]
    /// Each user's INBOX id, once looked up: INBOX is never deleted and keeps its id when
    /// renamed (its messages move), so the id stays right for as long as the user exists.
    private var inboxes: [Int64: Int64] = [:]

    /// Takes the lock of `user` for `holder`; false when another session holds it.
    func acquire(user: Int64, _ holder: Holder) -> Bool {
        lock.withLock {
            if let h = holders[user], h != holder { return false }
            holders[user] = holder
            return true
        }
    }

    func release(session: UInt64, connection: ObjectIdentifier) {
        lock.withLock { holders = holders.filter { $0.value != Holder(connection: connection, session: session) } }
    }

    /// The worker connection closed: every lock its sessions held goes.
    func release(connection: ObjectIdentifier) {
        lock.withLock { holders = holders.filter { $0.value.connection != connection } }
    }

    var count: Int { lock.withLock { holders.count } }

    func inbox(of user: Int64, lookup: () throws -> Int64?) rethrows -> Int64? {
        if let id = lock.withLock({ inboxes[user] }) { return id }
        guard let id = try lookup() else { return nil }
        lock.withLock { inboxes[user] = id }
        return id
    }
}

/// Mailbox-family requests that name a mailbox by id (what pop3d may name is checked).
protocol MailboxIDRequest { var mailbox: Int64 { get } }
extension DetailsGet: MailboxIDRequest {}
extension MessageRead: MailboxIDRequest {}
extension MessagesExpunge: MailboxIDRequest {}
extension Pop3Delete: MailboxIDRequest {}
extension Pop3Read: MailboxIDRequest {}

extension StoreConnectionHandler {
    /// RFC 1939 §4: "the POP3 server then acquires an exclusive-access lock on the maildrop".
    func pop3Lock(_ id: UInt32, _ m: Pop3Lock) {
        do {
            let u = try requireSession(m.session)
            guard pop3Locks.acquire(user: u.id, .init(connection: owner, session: m.session)) else {
                return reply(id, ErrorReply(.exists, "maildrop already locked by another session"))
            }
            reply(id, OK())
        } catch { reply(id, errorReply(error)) }
    }

    /// RFC 1939 §6: exactly the marked UIDs, whatever their flags, all or none. Only the holder
    /// of the lock may delete; IMAP watchers hear of the expunges before pop3d hears OK.
    func pop3Delete(_ m: Pop3Delete, user: Int64) throws -> UIDList {
        guard pop3Locks.acquire(user: user, .init(connection: owner, session: m.session)) else {
            throw ErrorReply(.exists, "maildrop locked by another session")
        }
        let (uids, changes) = try store.expunge(user: user, mailbox: m.mailbox, uids: m.uids, force: true)
        notify(changes)
        return try fitting(UIDList(uids))
    }

    /// Whole small bodies for pop3d's read-ahead, in UID order, cut before a frame overflows.
    /// With a POP3BodyReader the bytes go from the row straight into the reply's wire form,
    /// copied once (Pop3Bodies.Builder; the frame goes out without another copy).
    func pop3Read(_ m: Pop3Read, user: Int64) throws -> Pop3Bodies {
        guard let reader = store as? any POP3BodyReader else {
            var out: [Pop3Body] = [], size = Self.pop3BodiesOverhead
            for b in try store.bodies(user: user, mailbox: m.mailbox, uids: m.uids, maxSize: Int(m.maxSize)) {
                size += Self.pop3BodyOverhead + b.bytes.count
                if size > Self.maxReplyBytes { break }
                out.append(Pop3Body(uid: b.uid, bytes: ByteBuffer(bytes: b.bytes)))
            }
            return Pop3Bodies(out)
        }
        var built = Pop3Bodies.Builder(capacity: min(Self.maxReplyBytes, m.uids.count * Self.pop3BodyGuess))
        var size = Self.pop3BodiesOverhead
        try reader.pop3Bodies(user: user, mailbox: m.mailbox, uids: m.uids, maxSize: Int(m.maxSize)) { uid, bytes in
            size += Self.pop3BodyOverhead + bytes.count
            if size > Self.maxReplyBytes { return false }
            built.append(uid: uid, bytes: bytes)
            return true
        }
        return built.build()
    }

    /// A Pop3Bodies reply's bytes besides the bodies: the frame and list header, and per body.
    static let pop3BodiesOverhead = 64
    static let pop3BodyOverhead = 8
    /// The buffer's first capacity per body asked for (it grows past it).
    static let pop3BodyGuess = 8 * 1024

    /// The pop3d role reaches its user's INBOX only (DESIGN §2: each role its own set).
    func confine(_ m: any RPCMessage, user: Int64) throws {
        guard role == .pop3d else { return }
        if let m = m as? MailboxSelect {
            guard m.name.uppercased() == SQLiteMailStore.inbox else { throw ErrorReply(.denied, "pop3d reaches INBOX only") }
        } else if let m = m as? MailboxIDRequest {
            let inbox = try pop3Locks.inbox(of: user) { try store.mailbox(user: user, name: SQLiteMailStore.inbox)?.id }
            guard let inbox, inbox == m.mailbox else {
                throw ErrorReply(.denied, "pop3d reaches INBOX only")
            }
        }
    }
}
