// Queue family (types 450–499): the outbound queue. Today the admin listing; the outbound
// agent's claim / read / report / bounce requests join here (DESIGN §4).
//
//   request     → reply                        roles
//   QueueList   → QueueEntries([QueueEntry])   admin
import NIOCore

public struct QueueEntry: Sendable, Equatable {
    /// `created`: seconds since the epoch; `lastError` empty before the first attempt.
    public var id: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: UInt32, lastError: String
    public init(id: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: UInt32, lastError: String) {
        self.id = id; self.sender = sender; self.recipient = recipient; self.created = created
        self.nextAttempt = nextAttempt; self.attempts = attempts; self.lastError = lastError
    }
    static let minBytes = WireSize.u64 * 3 + WireSize.string * 3 + WireSize.u32
}

public struct QueueList: RPCRequest, EmptyMessage {
    public typealias Reply = QueueEntries
    public static let type = MessageType.queueList
    public static let roles: Set<Role> = .adminOnly
    public init() {}
}

public struct QueueEntries: RPCMessage {
    public static let type = MessageType.queueEntries
    public var entries: [QueueEntry]
    public init(_ entries: [QueueEntry]) { self.entries = entries }
    public init(reading r: inout WireReader) throws {
        entries = try r.list(minElementBytes: QueueEntry.minBytes) { r in
            QueueEntry(id: try r.i64(), sender: try r.string(), recipient: try r.string(), created: try r.i64(),
                       nextAttempt: try r.i64(), attempts: try r.u32(), lastError: try r.string())
        }
    }
    public func write(to w: inout WireWriter) {
        w.list(entries) { w, e in
            w.i64(e.id); w.string(e.sender); w.string(e.recipient); w.i64(e.created); w.i64(e.nextAttempt); w.u32(e.attempts); w.string(e.lastError)
        }
    }
}
