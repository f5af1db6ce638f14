// Where the agent gets its OutboundQueue over the store connection: RPCOutboundQueue (the queue
// family's RPC client, built with the store side) replaces the body of `storeQueue` when merged.
import MailIPC

extension OutboundWorker {
    /// The queue over the store RPC with role outbound; nil until RPCOutboundQueue is merged.
    public static func storeQueue(_ rpc: RPCClient, _ events: RPCEventTap) -> (any OutboundQueue)? {
        nil
    }
}
