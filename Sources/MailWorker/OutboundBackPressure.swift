// Back-pressure for every worker session: a session stops reading while its unsent output is
// over the channel's write-buffer high-water mark, and while its protocol handler asks it to
// (waiting for the store). Guarantee: a client that pipelines and never reads costs at most the
// bound plus what one read brings, in every worker (issue 9 point 2).
import NIOCore

/// What a session's protocol handler asks of `OutboundBackPressure`, as a user outbound event
/// (`context.triggerUserOutboundEvent`): hold reads while it waits (store, delay, a full input
/// buffer), then let them go. Reads resume only when neither the session nor the unsent output
/// holds them, so neither re-enables reading behind the other's back.
public enum SessionReading: Sendable, Equatable {
    case pause
    case resume
}

/// The first handler of every worker session's pipeline (`WorkerServer` puts it there). The
/// channel's `writeBufferWaterMark` (`WorkerServer.waterMark`) makes the channel unwritable
/// once more than `high` bytes are queued; from then on this handler holds the channel's
/// `read()` until the queue drains below `low` — the pattern of NIO's `BackPressureHandler`,
/// with autoRead left on (turning autoRead on reads at once, past any handler). The session's
/// own holds (`SessionReading`) go through the same gate.
public final class OutboundBackPressure: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias InboundOut = NIOAny
    public typealias OutboundIn = NIOAny
    public typealias OutboundOut = NIOAny

    /// The default bound of unsent output per session (`max_unsent_bytes`), bytes.
    public static let defaultMaxUnsentBytes = 256 * 1024
    /// Socket reads per `read()` (`ChannelOptions.maxMessagesPerRead`; NIO's default is 4).
    /// The replies to what one read brings (`maxReadSize` of pipelined commands) are written
    /// before writability is looked at again: one read keeps that overshoot to one buffer.
    public static let readsPerRead: UInt = 1
    /// The largest socket read, bytes (NIO's default is 64 KiB). 16 KiB of pipelined `EHLO x`
    /// is some 400 KiB of replies; a TLS record is at most 16 KiB (RFC 8446 §5.1), and Postfix
    /// reads in 4 KiB (VSTREAM_BUFSIZE), so a session loses nothing by it.
    public static let maxReadSize = 16 * 1024
    /// The first socket read, bytes: a command line or a ClientHello. NIO keeps each channel's
    /// last read buffer for the next read, so an idle connection holds one of about this size.
    public static let initialReadSize = 1024
    /// Reads that grow from `initialReadSize` to `maxReadSize` with the traffic, as NIO's default do.
    public static var recvAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: initialReadSize, maximum: maxReadSize)
    }

    private(set) var unwritable = false       // the unsent output is over the mark
    private(set) var sessionPaused = false    // the protocol handler waits for something
    private(set) var readHeld = false         // a read() arrived while holding; issued on release

    /// Whether reads are held now.
    public var holding: Bool { unwritable || sessionPaused }

    public init() {}

    /// The water marks for a bound of `maxUnsentBytes`: unwritable above it, writable again
    /// once half of it has gone out (so reading does not flap at the mark).
    public static func waterMark(maxUnsentBytes: Int) -> ChannelOptions.Types.WriteBufferWaterMark {
        let high = max(maxUnsentBytes, 2)
        return .init(low: high / 2, high: high)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        unwritable = context.channel.isActive && !context.channel.isWritable
    }

    public func read(context: ChannelHandlerContext) {
        if holding { readHeld = true } else { context.read() }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        unwritable = !context.channel.isWritable
        if unwritable { context.flush() } else { release(context) }
        context.fireChannelWritabilityChanged()
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let e = event as? SessionReading else { return context.triggerUserOutboundEvent(event, promise: promise) }
        sessionPaused = e == .pause
        if !sessionPaused { release(context) }
        promise?.succeed(())
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        unwritable = false; sessionPaused = false
        release(context)
    }

    /// Issues the read that was held, once nothing holds reads any more.
    private func release(_ context: ChannelHandlerContext) {
        guard !holding, readHeld else { return }
        readHeld = false
        context.read()
    }
}
