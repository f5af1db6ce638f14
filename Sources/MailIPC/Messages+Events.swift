// Events family (types 90–109): notify, then pull (DESIGN §2). A worker watches a mailbox of
// a session; the store keeps at most one pending notification per watch — a second change
// before the worker pulls only raises the MODSEQ it will report — so a slow worker costs the
// store one flag per watch, never a queue. The worker pulls what changed since the MODSEQ it saw.
//
//   request                                   → reply                                   roles
//   MailboxWatch(session, mailbox)            → Watching(watch, state)                  imapd
//   MailboxWatchByID(session, mailbox id)     → Watching(watch, state)                  imapd  (a selected mailbox)
//   MailboxUnwatch(watch)                     → OK                                      imapd
//   MailboxChanges(watch, sinceModSeq, limit) → Changes(state, messages, complete)      imapd
// Unsolicited (request id 0, store → worker):
//   MailboxChanged(watch, highestModSeq)      at most one outstanding per watch until the next MailboxChanges
import NIOCore

/// A mailbox's counters as the store sees them now.
public struct MailboxState: Sendable, Equatable {
    public var uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, messages: UInt32
    public init(uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, messages: UInt32) {
        self.uidValidity = uidValidity; self.uidNext = uidNext; self.highestModSeq = highestModSeq; self.messages = messages
    }
    static let bytes = WireSize.u32 * 3 + WireSize.u64
    init(reading r: inout WireReader) throws {
        uidValidity = try r.u32(); uidNext = try r.u32(); highestModSeq = try r.u64(); messages = try r.u32()
    }
    func write(to w: inout WireWriter) { w.u32(uidValidity); w.u32(uidNext); w.u64(highestModSeq); w.u32(messages) }
}

public struct MailboxWatch: RPCRequest {
    public typealias Reply = Watching
    public static let type = MessageType.mailboxWatch
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: String
    public init(session: UInt64, mailbox: String) { self.session = session; self.mailbox = mailbox }
    public init(reading r: inout WireReader) throws { session = try r.u64(); mailbox = try r.string() }
    public func write(to w: inout WireWriter) { w.u64(session); w.string(mailbox) }
}

/// The watch on a mailbox by its id (IMAPServices.watch after SELECT): a mailbox that is not
/// the session's user's is `.notFound`, like one that does not exist.
public struct MailboxWatchByID: SessionRequest {
    public typealias Reply = Watching
    public static let type = MessageType.mailboxWatchByID
    public static let roles: Set<Role> = [.imapd]
    public var session: UInt64, mailbox: Int64
    public init(session: UInt64, mailbox: Int64) { self.session = session; self.mailbox = mailbox }
    public init(reading r: inout WireReader) throws { session = try r.u64(); mailbox = try r.i64() }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox) }
}

public struct Watching: RPCMessage {
    public static let type = MessageType.watching
    public var watch: UInt64, state: MailboxState
    public init(watch: UInt64, state: MailboxState) { self.watch = watch; self.state = state }
    public init(reading r: inout WireReader) throws { watch = try r.u64(); state = try MailboxState(reading: &r) }
    public func write(to w: inout WireWriter) { w.u64(watch); state.write(to: &w) }
}

public struct MailboxUnwatch: RPCRequest {
    public typealias Reply = OK
    public static let type = MessageType.mailboxUnwatch
    public static let roles: Set<Role> = [.imapd]
    public var watch: UInt64
    public init(watch: UInt64) { self.watch = watch }
    public init(reading r: inout WireReader) throws { watch = try r.u64() }
    public func write(to w: inout WireWriter) { w.u64(watch) }
}

/// The event: something in the watched mailbox changed, up to `highestModSeq`.
public struct MailboxChanged: RPCMessage {
    public static let type = MessageType.mailboxChanged
    public var watch: UInt64, highestModSeq: UInt64
    public init(watch: UInt64, highestModSeq: UInt64) { self.watch = watch; self.highestModSeq = highestModSeq }
    public init(reading r: inout WireReader) throws { watch = try r.u64(); highestModSeq = try r.u64() }
    public func write(to w: inout WireWriter) { w.u64(watch); w.u64(highestModSeq) }
}

public struct MailboxChanges: RPCRequest {
    public typealias Reply = Changes
    public static let type = MessageType.mailboxChanges
    public static let roles: Set<Role> = [.imapd]
    /// Most messages one reply carries; ask again from the last MODSEQ when `complete` is false.
    public static let maxLimit: UInt32 = 10_000
    public var watch: UInt64, sinceModSeq: UInt64, limit: UInt32
    public init(watch: UInt64, sinceModSeq: UInt64, limit: UInt32 = MailboxChanges.maxLimit) {
        self.watch = watch; self.sinceModSeq = sinceModSeq; self.limit = limit
    }
    public init(reading r: inout WireReader) throws { watch = try r.u64(); sinceModSeq = try r.u64(); limit = try r.u32() }
    public func write(to w: inout WireWriter) { w.u64(watch); w.u64(sinceModSeq); w.u32(limit) }
}

/// A message whose MODSEQ is above the one asked for: new, or its flags changed.
public struct ChangedMessage: Sendable, Equatable {
    public var uid: UInt32, modSeq: UInt64, flags: UInt32
    public init(uid: UInt32, modSeq: UInt64, flags: UInt32) { self.uid = uid; self.modSeq = modSeq; self.flags = flags }
    static let bytes = WireSize.u32 * 2 + WireSize.u64
}

public struct Changes: RPCMessage {
    public static let type = MessageType.changes
    /// `messages` in MODSEQ order; `complete` false when `limit` cut the list short.
    public var state: MailboxState, messages: [ChangedMessage], complete: Bool
    public init(state: MailboxState, messages: [ChangedMessage], complete: Bool) { self.state = state; self.messages = messages; self.complete = complete }
    public init(reading r: inout WireReader) throws {
        state = try MailboxState(reading: &r)
        messages = try r.list(minElementBytes: ChangedMessage.bytes, max: Int(MailboxChanges.maxLimit)) {
            ChangedMessage(uid: try $0.u32(), modSeq: try $0.u64(), flags: try $0.u32())
        }
        complete = try r.bool()
    }
    public func write(to w: inout WireWriter) {
        state.write(to: &w)
        w.list(messages) { $0.u32($1.uid); $0.u64($1.modSeq); $0.u32($1.flags) }
        w.bool(complete)
    }
}
