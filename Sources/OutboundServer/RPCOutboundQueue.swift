// OutboundQueue over the store RPC with the `outbound` role (DESIGN §2, §4): claim, read by range
// in frames of at most QueueLimits.maxReadLength, report (durable on return), and QueueChanged
// events to `onChange`. RPC errors become OutboundQueueError; a lost or silent store is `.temporary`.
import Foundation
import NIOCore
import MailIPC
import MailModel

public final class RPCOutboundQueue: OutboundQueue, @unchecked Sendable {
    let rpc: RPCClient
    private let events: QueueEvents

    /// The store's events go to `route` (pass it as the RPC client's `onEvent`), or use `connect`.
    public init(rpc: RPCClient, events: QueueEvents) { self.rpc = rpc; self.events = events }

    /// Connects over an inherited store socket with the handshake; events routed here.
    public static func connect(fd: Int32, group: EventLoopGroup, client: String = "outbound", timeout: TimeAmount? = .seconds(60),
                               onClose: @escaping @Sendable () -> Void = {}) -> EventLoopFuture<RPCOutboundQueue> {
        let events = QueueEvents()
        return RPCClient.connect(fd: fd, group: group, client: client, timeout: timeout, onEvent: events.route, onClose: onClose)
            .map { RPCOutboundQueue(rpc: $0, events: events) }
    }

    static func queueError(_ e: Error) -> OutboundQueueError {
        if let e = e as? OutboundQueueError { return e }
        guard let r = e as? RPCError, let code = r.code else { return OutboundQueueError(.temporary, "store unavailable: \(e)") }
        switch code {
        case .notFound: return OutboundQueueError(.notFound, r.message)
        case .invalid, .denied: return OutboundQueueError(.invalid, r.message)
        default: return OutboundQueueError(.temporary, r.message)
        }
    }

    func call<R: RPCRequest>(_ request: R) async throws -> R.Reply {
        do { return try await rpc.call(request).get() } catch { throw Self.queueError(error) }
    }

    public func claim(lease: Int64, limit: Int) async throws -> QueueClaim {
        let lease = UInt32(clamping: max(1, lease)), limit = UInt32(clamping: min(max(0, limit), QueueLimits.maxClaim))
        return try await call(QueueClaimRequest(lease: lease, limit: limit)).claim
    }

    /// Asks in pieces the store can answer in one frame, until `length` bytes or the end.
    public func read(message: Int64, offset: Int, length: Int) async throws -> [UInt8] {
        guard offset >= 0, length >= 0 else { throw OutboundQueueError(.invalid, "read of \(length) bytes at \(offset)") }
        var out: [UInt8] = []
        out.reserveCapacity(min(length, 1 << 20))
        while out.count < length {
            let want = min(length - out.count, QueueLimits.maxReadLength)
            let got = try await call(QueueRead(message: message, offset: UInt64(offset + out.count), length: UInt32(want))).bytes
            out.append(contentsOf: got.readableBytesView)
            if got.readableBytes < want { break }
        }
        return out
    }

    /// A notice larger than one frame is refused here (the store would close the connection).
    public func report(_ results: [QueueResult], notice: QueueNotice?) async throws {
        if let n = notice, n.body.count > QueueLimits.maxNoticeBytes {
            throw OutboundQueueError(.invalid, "notice of \(n.body.count) bytes exceeds \(QueueLimits.maxNoticeBytes)")
        }
        guard results.count <= QueueLimits.maxRecipients else { throw OutboundQueueError(.invalid, "\(results.count) results in one report") }
        _ = try await call(QueueReport(results: results, notice: notice))
    }

    /// The handler is in place before the store knows of the watch: no event is missed.
    public func watch(onChange: @escaping @Sendable () -> Void) async throws {
        events.set(onChange)
        _ = try await call(QueueWatch())
    }
}

/// Where the store's QueueChanged events go (the RPC client's `onEvent`); others are dropped.
public final class QueueEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var handler: (@Sendable () -> Void)?
    public init() {}
    func set(_ h: @escaping @Sendable () -> Void) { lock.withLock { handler = h } }
    public func route(_ event: any RPCMessage) {
        guard event is QueueChanged else { return }
        lock.withLock { handler }?()
    }
}
