// Where the agent gets its OutboundQueue over the store connection. When RPCOutboundQueue is
// merged the body becomes:
//     let queueEvents = QueueEvents(); events.set(queueEvents.route)
//     return RPCOutboundQueue(rpc: rpc, events: queueEvents)
import MailIPC

extension OutboundWorker {
    /// The queue over the store RPC with role outbound; nil until RPCOutboundQueue is merged.
    public static func storeQueue(_ rpc: RPCClient, _ events: RPCEventTap) -> (any OutboundQueue)? {
        nil
    }
}
