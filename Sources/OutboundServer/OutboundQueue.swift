// What the outbound agent asks of the store (DESIGN §4: claim with a lease, read by range,
// report results with the DSN to store, watch for new work), in the queue domain's terms
// (MailModel). RPCOutboundQueue answers over the store RPC with the `outbound` role; tests run
// the same agent over the real store in-process. Errors are OutboundQueueError.
import MailModel

public struct OutboundQueueError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound       // the message left the queue (another agent, an administrator)
        case temporary      // the store is unreachable or did not answer in time
        case invalid
    }
    public var kind: Kind, message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

public protocol OutboundQueue: AnyObject, Sendable {
    /// Claims due work for `lease` seconds: at most `limit` messages.
    func claim(lease: Int64, limit: Int) async throws -> QueueClaim
    /// A range of a claimed message's body as it is sent (no leading Return-Path).
    func read(message: Int64, offset: Int, length: Int) async throws -> [UInt8]
    /// Durable when it returns (QueueStore.reportQueue).
    func report(_ results: [QueueResult], notice: QueueNotice?) async throws
    /// Calls `onChange` (coalesced) whenever rows become due now: new mail queued, a flush, a
    /// release. The agent also wakes on its own at `QueueClaim.nextDue`.
    func watch(onChange: @escaping @Sendable () -> Void) async throws
}
