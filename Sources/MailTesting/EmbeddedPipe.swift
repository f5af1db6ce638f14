// A handler under test in an EmbeddedChannel: feed it bytes, read back what it wrote as a
// string, and see what reached the end of the pipeline (data, errors, TLS events, close).
// Single-threaded and clock-injected (EmbeddedEventLoop), so nothing here sleeps.
import MailTLS
import NIOCore
import NIOEmbedded

/// Records what reaches the end of an embedded pipeline.
public final class InboundSink: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public var errors: [Error] = []
    public var events: [TLSEvent] = []
    public var data = ByteBuffer()
    public var inactive = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        self.data.writeBuffer(&b)
    }
    public func errorCaught(context: ChannelHandlerContext, error: Error) { errors.append(error) }
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSEvent { events.append(e) }
    }
    public func channelInactive(context: ChannelHandlerContext) { inactive = true }
}

public final class EmbeddedPipe {
    public let channel: EmbeddedChannel
    public let sink = InboundSink()

    /// `handlers` then the sink, on a channel connected from 127.0.0.1 (on `channel`'s loop,
    /// which a FakeStorePeer can share).
    public init(channel: EmbeddedChannel = EmbeddedChannel(), _ handlers: [ChannelHandler]) throws {
        self.channel = channel
        try channel.pipeline.syncOperations.addHandlers(handlers)
        try channel.pipeline.syncOperations.addHandler(sink)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    public convenience init(_ handler: ChannelHandler) throws { try self.init([handler]) }

    /// Delivers `bytes` inbound, in pieces of `step` bytes (all at once by default).
    public func feed(_ bytes: [UInt8], step: Int = .max) throws {
        var i = 0
        while i < bytes.count && channel.isActive {
            let end = min(bytes.count, i + max(step, 1))
            try channel.writeInbound(ByteBuffer(bytes: bytes[i..<end]))
            i = end
        }
    }

    public func feed(_ text: String, step: Int = .max) throws { try feed(Array(text.utf8), step: step) }

    /// Everything the handlers wrote since the last call.
    public func writtenBytes() throws -> [UInt8] {
        var out: [UInt8] = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += b.readableBytesView }
        return out
    }

    /// `writtenBytes` as (lossy) UTF-8.
    public func written() throws -> String { String(decoding: try writtenBytes(), as: UTF8.self) }
}
