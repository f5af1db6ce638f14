// The sending end of a streamed reply (DESIGN §2): items are produced on a thread pool in
// batches no larger than the credit the receiver has granted, written with the `more` flag,
// then one final reply. Nothing blocks a pool thread waiting for the peer, and the sender
// never holds more than `window` frames the receiver has not consumed.
import NIOCore
import NIOPosix

public final class RPCStreamSender: @unchecked Sendable {
    /// Produces the next items, at most `max` of them; returns nil when there are no more.
    /// Runs on the thread pool, one call at a time.
    public typealias Produce = (_ max: Int) throws -> [any RPCStreamItem]?
    let id: UInt32
    let channel: Channel
    let pool: NIOThreadPool
    let produce: Produce
    let finish: () throws -> any RPCMessage
    let onError: (Error) -> any RPCMessage
    let onDone: () -> Void
    private var credit: UInt32
    private var producing = false
    private var done = false
    /// Items sent and not yet credited back: never above the window (tests read it).
    public private(set) var inFlight: UInt32 = 0
    public private(set) var maxInFlight: UInt32 = 0

    /// `finish` makes the final reply; `onError` turns a thrown error into the reply to send
    /// instead; `onDone` runs on the event loop once the final frame is written.
    public init(id: UInt32, channel: Channel, pool: NIOThreadPool, window: UInt32, produce: @escaping Produce,
                finish: @escaping () throws -> any RPCMessage, onError: @escaping (Error) -> any RPCMessage, onDone: @escaping () -> Void = {}) {
        self.id = id; self.channel = channel; self.pool = pool; self.credit = max(1, window)
        self.produce = produce; self.finish = finish; self.onError = onError; self.onDone = onDone
    }

    /// Call on the channel's event loop.
    public func start() { pump() }

    /// The receiver consumed `frames` items (a StreamCredit); call on the event loop.
    public func grant(_ frames: UInt32) {
        inFlight -= min(inFlight, frames)
        credit &+= frames
        pump()
    }

    private func pump() {
        guard !producing, !done, credit > 0, channel.isActive else { return }
        producing = true
        let max = Int(credit)
        pool.runIfActive(eventLoop: channel.eventLoop) { [produce] in try produce(max) }.whenComplete { [self] r in
            producing = false
            switch r {
            case .success(let items?):
                for item in items.prefix(max) {
                    channel.write(item.frame(requestID: id, flags: .more), promise: nil)
                }
                let n = UInt32(min(items.count, max))
                credit -= n; inFlight += n; maxInFlight = Swift.max(maxInFlight, inFlight)
                channel.flush()
                if items.isEmpty { return end() }   // nothing produced and not finished: treat as the end
                pump()
            case .success(nil): end()
            case .failure(let e): send(onError(e))
            }
        }
    }

    private func end() {
        producing = true
        pool.runIfActive(eventLoop: channel.eventLoop) { [finish] in try finish() }.whenComplete { [self] r in
            switch r {
            case .success(let m): send(m)
            case .failure(let e): send(onError(e))
            }
        }
    }

    private func send(_ m: any RPCMessage) {
        done = true
        channel.writeAndFlush(m.frame(requestID: id, flags: []), promise: nil)
        onDone()
    }
}
