// POP3 family (types 400–449): what only pop3d asks of the store (DESIGN §2, §4). The maildrop
// itself is read with the mailbox family (MailboxSelect/DetailsGet/MessageRead on INBOX only).
//
//   request                              → reply                              roles
//   Pop3Lock(session)                    → OK, or ErrorReply(.exists) when    pop3d
//                                          another session holds the lock
//   Pop3Delete(session, mailbox, uids)   → UIDList(expunged)                  pop3d
//
// The lock (RFC 1939 §8: exclusive-access lock on the maildrop) lives in the store server's
// memory, per user: released by SessionEnd or when the worker connection closes, and a store
// restart frees every lock. Pop3Delete expunges exactly those UIDs, whatever their flags, in one
// transaction (RFC 1939 §6: the UPDATE state), so a crash leaves all of them or none.
import NIOCore

/// RFC 1939 §4: the maildrop lock of the session's user.
public struct Pop3Lock: SessionRequest, SessionOnlyRequest {
    public typealias Reply = OK
    public static let type = MessageType.pop3Lock
    public static let roles: Set<Role> = [.pop3d]
    public var session: UInt64
    public init(session: UInt64) { self.session = session }
}

/// RFC 1939 §6: the messages marked deleted, removed at QUIT in one transaction.
public struct Pop3Delete: SessionRequest {
    public typealias Reply = UIDList
    public static let type = MessageType.pop3Delete
    public static let roles: Set<Role> = [.pop3d]
    public var session: UInt64, mailbox: Int64, uids: [UInt32]
    public init(session: UInt64, mailbox: Int64, uids: [UInt32]) { self.session = session; self.mailbox = mailbox; self.uids = uids }
    public init(reading r: inout WireReader) throws { session = try r.u64(); mailbox = try r.i64(); uids = try r.uidSet() }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.uidSet(uids) }
}
