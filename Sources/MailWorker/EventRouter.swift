// Routes the store's unsolicited events (request id 0, DESIGN §2) to the sessions that asked
// for them: one table from watch id to the session's callback, shared by a worker process.
// A notification for a watch nobody holds any more is dropped; the store re-notifies only
// after the next pull, so nothing piles up here either.
import Foundation
import MailIPC

public final class EventRouter: @unchecked Sendable {
    public typealias Handler = @Sendable (MailboxChanged) -> Void
    private let lock = NSLock()
    private var watches: [UInt64: Handler] = [:]
    public private(set) var dropped = 0

    public init() {}

    /// The session holding `watch` gets its notifications (hop to its event loop in `handler`).
    public func register(watch: UInt64, _ handler: @escaping Handler) {
        lock.lock(); watches[watch] = handler; lock.unlock()
    }

    public func unregister(watch: UInt64) {
        lock.lock(); watches[watch] = nil; lock.unlock()
    }

    public var count: Int { lock.lock(); defer { lock.unlock() }; return watches.count }

    /// The RPC client's `onEvent`.
    public func route(_ event: any RPCMessage) {
        guard let m = event as? MailboxChanged else { lock.lock(); dropped += 1; lock.unlock(); return }
        lock.lock()
        let h = watches[m.watch]
        if h == nil { dropped += 1 }
        lock.unlock()
        h?(m)
    }
}
