// POP3 family (types 400–449): what only pop3d asks of the store (DESIGN §2, §4). The maildrop
// itself is read with the mailbox family (MailboxSelect/DetailsGet/MessageRead on INBOX only).
//
//   request                              → reply                              roles
//   Pop3Lock(session)                    → OK, or ErrorReply(.exists) when    pop3d
//                                          another session holds the lock
//   Pop3Delete(session, mailbox, uids)   → UIDList(expunged)                  pop3d
//   Pop3Read(session, mailbox, uids ≤ 64,→ Pop3Bodies([(uid, bytes)])          pop3d
//            maxSize)                      (whole bodies of at most maxSize bytes, in UID
//                                           order, cut where the reply would outgrow a frame)
//
// The lock (RFC 1939 §8: exclusive-access lock on the maildrop) lives in the store server's
// memory, per user: released by SessionEnd or when the worker connection closes, and a store
// restart frees every lock. Pop3Delete expunges exactly those UIDs, whatever their flags, in one
// transaction (RFC 1939 §6: the UPDATE state), so a crash leaves all of them or none.
// Pop3Read lets pop3d read the next small messages ahead in one round trip (clients RETR in order).
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

/// Whole bodies of small messages, for pop3d to read ahead. UIDs that are gone or larger than
/// `maxSize` are left out; the store stops before the reply would outgrow a frame.
public struct Pop3Read: SessionRequest {
    public typealias Reply = Pop3Bodies
    public static let type = MessageType.pop3Read
    public static let roles: Set<Role> = [.pop3d]
    /// UIDs one request names.
    public static let maxUIDs = 64
    public var session: UInt64, mailbox: Int64, uids: [UInt32], maxSize: UInt32
    public init(session: UInt64, mailbox: Int64, uids: [UInt32], maxSize: UInt32) {
        self.session = session; self.mailbox = mailbox; self.uids = uids; self.maxSize = maxSize
    }
    public init(reading r: inout WireReader) throws {
        session = try r.u64(); mailbox = try r.i64()
        uids = try r.list(minElementBytes: WireSize.u32, max: Self.maxUIDs) { try $0.u32() }
        maxSize = try r.u32()
        guard Int(maxSize) <= MailboxLimits.maxReadLength else { throw WireError.badValue("maxSize \(maxSize)") }
    }
    public func write(to w: inout WireWriter) { w.u64(session); w.i64(mailbox); w.list(uids) { $0.u32($1) }; w.u32(maxSize) }
}

/// One message's whole body.
public struct Pop3Body: Sendable, Equatable {
    public var uid: UInt32, bytes: ByteBuffer
    public init(uid: UInt32, bytes: ByteBuffer) { self.uid = uid; self.bytes = bytes }
}

public struct Pop3Bodies: RPCMessage {
    public static let type = MessageType.pop3Bodies
    public var bodies: [Pop3Body]
    /// The payload as `Builder` wrote it (the bodies are slices of it), sent without a copy.
    public private(set) var encodedPayload: ByteBuffer?
    public init(_ bodies: [Pop3Body]) { self.bodies = bodies }
    public init(reading r: inout WireReader) throws {
        bodies = try r.list(minElementBytes: WireSize.u32 + WireSize.bytes, max: Pop3Read.maxUIDs) { Pop3Body(uid: try $0.u32(), bytes: try $0.bytes()) }
    }
    public func write(to w: inout WireWriter) { w.list(bodies) { $0.u32($1.uid); $0.bytes($1.bytes) } }
    /// Up to a frame of bodies: the list's count, then per body its UID, length and bytes.
    public var payloadCapacity: Int { bodies.reduce(WireSize.u32) { $0 + WireSize.u32 + WireSize.bytes + $1.bytes.readableBytes } }
    /// Equal bodies are equal messages, however they were built.
    public static func == (a: Pop3Bodies, b: Pop3Bodies) -> Bool { a.bodies == b.bodies }

    /// Writes the wire form as bodies come (each copied once, into it): the store's read-ahead
    /// reply, built on its thread pool, then framed and sent as it is.
    public struct Builder {
        private var buffer: ByteBuffer
        private var spans: [(uid: UInt32, at: Int, count: Int)] = []
        public init(capacity: Int) {
            buffer = ByteBufferAllocator().buffer(capacity: WireSize.u32 + capacity)
            buffer.writeInteger(UInt32(0), endianness: .big)          // the count, set by `build`
        }
        public var count: Int { spans.count }
        public mutating func append(uid: UInt32, bytes: UnsafeRawBufferPointer) {
            precondition(spans.count < Pop3Read.maxUIDs, "more bodies than a Pop3Bodies carries")
            buffer.writeInteger(uid, endianness: .big)
            buffer.writeInteger(UInt32(bytes.count), endianness: .big)
            spans.append((uid, buffer.writerIndex, bytes.count))
            buffer.writeBytes(bytes)
        }
        /// The message (its bodies slices of the payload); the builder is spent.
        public consuming func build() -> Pop3Bodies {
            buffer.setInteger(UInt32(spans.count), at: buffer.readerIndex, endianness: .big)
            let payload = buffer
            var m = Pop3Bodies(spans.map { Pop3Body(uid: $0.uid, bytes: payload.getSlice(at: $0.at, length: $0.count)!) })
            m.encodedPayload = payload
            return m
        }
    }
}
