// Where the agent gets its OutboundQueue over the store connection: RPCOutboundQueue, with the
// store's QueueChanged events (request id 0) routed to its watch.
import MailIPC

extension OutboundWorker {
    /// The queue over the store RPC with role outbound.
    public static func storeQueue(_ rpc: RPCClient, _ events: RPCEventTap) -> (any OutboundQueue)? {
        let queueEvents = QueueEvents()
        events.set { queueEvents.route($0) }
        return RPCOutboundQueue(rpc: rpc, events: queueEvents)
    }
}
