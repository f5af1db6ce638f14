// The worker side of the store connection on NIO: one table of pending requests keyed by
// request id, events (id 0) to a callback, and every pending request failed if the store goes.
import NIOCore
import NIOPosix

public final class RPCClient: @unchecked Sendable {
    public let channel: Channel
    private let handler: RPCClientHandler
    public static let chunkSize = 256 * 1024

    init(channel: Channel, handler: RPCClientHandler) { self.channel = channel; self.handler = handler }

    /// Adopts an inherited connected socket and performs the version handshake.
    public static func connect(fd: Int32, group: EventLoopGroup, client: String, maxFrame: Int = 1 << 20,
                               onEvent: @escaping @Sendable (IPCMessage) -> Void = { _ in },
                               onClose: @escaping @Sendable () -> Void = {}) -> EventLoopFuture<RPCClient> {
        let handler = RPCClientHandler(onEvent: onEvent, onClose: onClose)
        return ClientBootstrap(group: group)
            .channelInitializer { ch in
                ch.pipeline.addHandlers([ByteToMessageHandler(FrameToMessageDecoder(maxFrame: maxFrame)),
                                         MessageToByteHandler(FrameEncoder()), handler])
            }
            .withConnectedSocket(fd)
            .flatMap { ch in
                let c = RPCClient(channel: ch, handler: handler)
                return c.call(.hello(major: ProtocolVersion.major, minor: ProtocolVersion.minor, client: client)).flatMapThrowing { r in
                    guard case .helloOK(let major, _, _) = r, major == ProtocolVersion.major else { throw RPCError("bad handshake reply \(r)") }
                    return c
                }
            }
    }

    public var isActive: Bool { channel.isActive }

    /// Sends one request; the future fails with RPCError for an `.error` reply or a lost connection.
    public func call(_ m: IPCMessage) -> EventLoopFuture<IPCMessage> {
        send([m])
    }

    /// Sends several frames under one request id (e.g. deliverBegin, chunks, deliverEnd) and waits for the reply.
    public func send(_ ms: [IPCMessage]) -> EventLoopFuture<IPCMessage> {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: IPCMessage.self)
        loop.execute { [handler, channel] in
            guard channel.isActive else { return promise.fail(RPCError("store connection lost", code: .temporary)) }
            let id = handler.register(promise)
            for (i, m) in ms.enumerated() {
                channel.write(m.frame(requestID: id), promise: nil)
                if i % 16 == 15 { channel.flush() }
            }
            channel.flush()
        }
        return promise.futureResult.flatMapThrowing { r in
            if case .error(let c, let msg) = r { throw RPCError(msg, code: c) }
            return r
        }
    }

    /// Delivers one message: begin, body in chunks, end; returns a status per recipient.
    public func deliver(sender: String, recipients: [String], body: ByteBuffer, session: UInt64 = 0) -> EventLoopFuture<[RecipientStatus]> {
        var frames: [IPCMessage] = [.deliverBegin(sender: sender, recipients: recipients, session: session)]
        var b = body
        while b.readableBytes > 0 { frames.append(.deliverChunk(b.readSlice(length: min(Self.chunkSize, b.readableBytes))!)) }
        frames.append(.deliverEnd)
        return send(frames).flatMapThrowing { r in
            guard case .deliverResult(let s) = r, s.count == recipients.count else { throw RPCError("bad delivery reply") }
            return s
        }
    }

    public func close() { channel.close(promise: nil) }
}

final class RPCClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    private var pending: [UInt32: EventLoopPromise<IPCMessage>] = [:]
    private var nextID: UInt32 = 1
    let onEvent: @Sendable (IPCMessage) -> Void
    let onClose: @Sendable () -> Void

    init(onEvent: @escaping @Sendable (IPCMessage) -> Void, onClose: @escaping @Sendable () -> Void) {
        self.onEvent = onEvent; self.onClose = onClose
    }

    func register(_ p: EventLoopPromise<IPCMessage>) -> UInt32 {
        repeat { nextID &+= 1 } while nextID == 0 || pending[nextID] != nil
        pending[nextID] = p
        return nextID
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let f = unwrapInboundIn(data)
        guard let m = try? IPCMessage.decode(f) else { context.close(promise: nil); return }
        if f.requestID == 0 { onEvent(m); return }
        // Export replies stream several frames; only single-reply requests use this client.
        pending.removeValue(forKey: f.requestID)?.succeed(m)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let p = pending; pending.removeAll()
        for (_, promise) in p { promise.fail(RPCError("store connection lost", code: .temporary)) }
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
