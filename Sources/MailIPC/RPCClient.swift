// The worker side of the store connection on NIO: one table of pending requests keyed by
// request id, typed replies (`call(x)` returns `X.Reply`), deliveries streamed as their body
// arrives (RPCDelivery), streamed replies received with a credit window, events (id 0) to a
// callback, and every pending request failed if the store goes. With a `timeout`, every call and
// delivery also fails (.temporary) when the store does not answer in time; its id leaves the
// pending table, so a late reply is dropped.
import NIOCore
import NIOPosix

public final class RPCClient: @unchecked Sendable {
    public let channel: Channel
    fileprivate let handler: RPCClientHandler
    /// How long `call` and `deliver` wait for the reply (nil: for ever), counted from the
    /// request's first frame (for `deliver` it covers the body's transfer too). Streams are
    /// paced by their consumer and have none.
    public let timeout: TimeAmount?

    init(channel: Channel, handler: RPCClientHandler, timeout: TimeAmount?) {
        self.channel = channel; self.handler = handler; self.timeout = timeout
    }

    /// What a call fails with when the store does not answer within `timeout`.
    public static let timedOut = RPCError("store did not answer in time", code: .temporary)

    /// Adopts an inherited connected socket and performs the version handshake.
    public static func connect(fd: Int32, group: EventLoopGroup, client: String, maxFrame: Int = RPCLimits.defaultMaxFrame,
                               timeout: TimeAmount? = nil,
                               onEvent: @escaping @Sendable (any RPCMessage) -> Void = { _ in },
                               onClose: @escaping @Sendable () -> Void = {}) -> EventLoopFuture<RPCClient> {
        ClientBootstrap(group: group)
            .channelInitializer { ch in ch.pipeline.addHandlers(handlers(maxFrame: maxFrame, onEvent: onEvent, onClose: onClose)) }
            .withConnectedSocket(fd)
            .flatMap { ch in adopt(ch, timeout: timeout) }
            .flatMap { c in
                c.call(Hello(client: client)).flatMapThrowing { r in
                    guard r.major == ProtocolVersion.major else { throw RPCError("store speaks protocol \(r.major), we speak \(ProtocolVersion.major)") }
                    return c
                }
            }
    }

    /// The client's pipeline: framing, then the table of pending requests. `adopt` a channel
    /// built with these (tests build them on an EmbeddedChannel).
    public static func handlers(maxFrame: Int = RPCLimits.defaultMaxFrame, onEvent: @escaping @Sendable (any RPCMessage) -> Void = { _ in },
                                onClose: @escaping @Sendable () -> Void = {}) -> [ChannelHandler] {
        [ByteToMessageHandler(FrameToMessageDecoder(maxFrame: maxFrame)), FrameEncoder(),
         RPCClientHandler(onEvent: onEvent, onClose: onClose)]
    }

    /// Wraps a channel whose pipeline ends in an RPCClientHandler (tests build such channels).
    public static func adopt(_ ch: Channel, timeout: TimeAmount? = nil) -> EventLoopFuture<RPCClient> {
        ch.pipeline.handler(type: RPCClientHandler.self).map { RPCClient(channel: ch, handler: $0, timeout: timeout) }
    }

    public var isActive: Bool { channel.isActive }

    /// Sends one request; the future has its typed reply, or fails with RPCError for an error
    /// reply, a reply of the wrong type, or a lost connection.
    public func call<R: RPCRequest>(_ request: R) -> EventLoopFuture<R.Reply> {
        send([request.frame(requestID: 0)]).flatMapThrowing { try RPCError.reply($0, as: R.Reply.self) }
    }

    /// A request whose body follows under the same id in DeliverChunk frames (at most
    /// RPCLimits.chunkSize each), then DeliverEnd (APPEND, Messages+Mailbox.swift): its typed reply.
    public func call<R: RPCRequest>(_ begin: R, body: ByteBuffer) -> EventLoopFuture<R.Reply> {
        var frames = [begin.frame(requestID: 0)], b = body
        while b.readableBytes > 0 { frames.append(DeliverChunk(b.readSlice(length: min(RPCLimits.chunkSize, b.readableBytes))!).frame(requestID: 0)) }
        frames.append(DeliverEnd().frame(requestID: 0))
        return send(frames).flatMapThrowing { try RPCError.reply($0, as: R.Reply.self) }
    }

    /// Delivers one message: begin, the body in chunks, end; returns a status per recipient.
    public func deliver(_ begin: DeliverBegin, body: ByteBuffer) -> EventLoopFuture<[RecipientStatus]> {
        let d = beginDelivery(begin)
        _ = d.send(body)
        return d.end()
    }

    /// Starts a delivery whose body is sent as it arrives (DESIGN §2: bulk bytes stream as
    /// begin/chunk/end under one request id); see RPCDelivery.
    public func beginDelivery(_ begin: DeliverBegin) -> RPCDelivery {
        let d = RPCDelivery(client: self, recipients: begin.recipients.count)
        d.onLoop { [handler, channel] in
            guard channel.isActive else { return d.promise.fail(RPCError.connectionLost) }
            d.id = handler.register(.single(d.promise))
            channel.writeAndFlush(begin.frame(requestID: d.id), promise: nil)
        }
        return d
    }

    /// With a `timeout`: request `id` fails (and is forgotten) if `promise` is not answered in
    /// time. Call on the channel's loop.
    fileprivate func armDeadline(_ id: UInt32, _ promise: EventLoopPromise<Frame>) {
        guard let timeout else { return }
        let handler = self.handler
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { handler.expire(id, promise) }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
    }

    /// Forgets a pending request (its reply, if one comes, is ignored); returns whether it was pending.
    fileprivate func forget(_ id: UInt32) -> Bool { handler.unregister(id) }

    /// A streamed request: `onItem` gets every item in order; the future it returns says when
    /// the item has been consumed, and only consumed items free window for more (DESIGN §2),
    /// so a slow consumer holds at most `window` items here and the store produces no more.
    public func stream<R: RPCStreamRequest>(_ request: R, window: UInt32 = RPCLimits.defaultWindow,
                                            onItem: @escaping (R.Item) -> EventLoopFuture<Void>) -> EventLoopFuture<R.Reply> {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: Frame.self)
        loop.execute { [handler, channel] in
            guard channel.isActive else { return promise.fail(RPCError.connectionLost) }
            let id = handler.register(.stream(StreamReceiver(window: window, promise: promise, channel: channel) { frame in
                let item: R.Item
                do { item = try R.Item.decode(frame) } catch { return loop.makeFailedFuture(RPCError("bad stream item: \(error)", code: .internal)) }
                return onItem(item)
            }))
            channel.writeAndFlush(request.frame(requestID: id), promise: nil)
        }
        return promise.futureResult.flatMapThrowing { try RPCError.reply($0, as: R.Reply.self) }
    }

    /// Sends frames under one fresh request id (their ids are replaced) and waits for the reply
    /// frame, up to `timeout`.
    private func send(_ frames: [Frame]) -> EventLoopFuture<Frame> {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: Frame.self)
        loop.execute { [handler, channel] in
            guard channel.isActive else { return promise.fail(RPCError.connectionLost) }
            let id = handler.register(.single(promise))
            self.armDeadline(id, promise)
            for (i, var f) in frames.enumerated() {
                f.requestID = id
                channel.write(f, promise: nil)
                if i % 16 == 15 { channel.flush() }
            }
            channel.flush()
        }
        return promise.futureResult
    }

    public func close() { channel.close(promise: nil) }
}

/// One delivery in progress: `send` body bytes in order, then `end` (or `abort`). Calls may come
/// from any thread; the calls of one delivery must come from one thread (they keep their order).
public final class RPCDelivery: @unchecked Sendable {
    let client: RPCClient
    let recipients: Int
    let promise: EventLoopPromise<Frame>
    var id: UInt32 = 0                    // 0 until registered, on the client's loop
    private var finished = false          // the store answered, or the delivery was aborted
    private var ended = false             // DeliverEnd sent: the outcome is the store's now

    init(client: RPCClient, recipients: Int) {
        self.client = client; self.recipients = recipients
        promise = client.channel.eventLoop.makePromise(of: Frame.self)
        promise.futureResult.whenComplete { [self] _ in finished = true }
    }

    func onLoop(_ f: @escaping () -> Void) {
        let loop = client.channel.eventLoop
        if loop.inEventLoop { f() } else { loop.execute(f) }
    }

    /// Sends body bytes (in frames of at most RPCLimits.chunkSize). The future completes when
    /// they are written to the socket — the caller's back-pressure: read no more from the
    /// client until it completes. It fails once the store has answered (refused) or the
    /// connection is gone; `end` then tells why.
    public func send(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        let written = client.channel.eventLoop.makePromise(of: Void.self)
        onLoop { [self] in
            guard !finished, id != 0, client.channel.isActive else { return written.fail(RPCError.connectionLost) }
            var b = bytes
            guard b.readableBytes > 0 else { return written.succeed(()) }
            while b.readableBytes > 0 {
                let chunk = DeliverChunk(b.readSlice(length: min(RPCLimits.chunkSize, b.readableBytes))!)
                client.channel.write(chunk.frame(requestID: id), promise: b.readableBytes == 0 ? written : nil)
            }
            client.channel.flush()
        }
        return written.futureResult
    }

    /// Ends the body; the store answers with one status per recipient, after the message is durable.
    /// The client's deadline (`RPCClient.timeout`) runs from here: the body's transfer, paced by
    /// the client, does not count against the store's answer.
    public func end() -> EventLoopFuture<[RecipientStatus]> {
        onLoop { [self] in
            guard !finished, !ended, id != 0 else { return }
            ended = true
            client.channel.writeAndFlush(DeliverEnd().frame(requestID: id), promise: nil)
            client.armDeadline(id, promise)
        }
        let n = recipients
        return promise.futureResult.flatMapThrowing { f in
            let r = try RPCError.reply(f, as: DeliverResult.self)
            guard r.statuses.count == n else { throw RPCError("delivery reply has \(r.statuses.count) statuses for \(n) recipients", code: .internal) }
            return r.statuses
        }
    }

    /// Gives the delivery up: the store discards what it received. Does nothing after `end`.
    public func abort() {
        onLoop { [self] in
            guard id != 0, !ended, client.forget(id) else { return }
            client.channel.writeAndFlush(DeliverAbort().frame(requestID: id), promise: nil)
            promise.fail(RPCError("delivery aborted", code: .internal))
        }
    }
}

/// The receiving end of one streamed reply: hands items on, grants credit as they are consumed.
final class StreamReceiver {
    let window: UInt32
    let promise: EventLoopPromise<Frame>
    let channel: Channel
    let onItem: (Frame) -> EventLoopFuture<Void>
    var consumed: UInt32 = 0          // consumed since the last credit we granted
    var outstanding = 0               // items handed on, not yet consumed
    var final: Frame? = nil           // the reply, held until every item is consumed
    var failed = false
    init(window: UInt32, promise: EventLoopPromise<Frame>, channel: Channel, onItem: @escaping (Frame) -> EventLoopFuture<Void>) {
        self.window = max(1, window); self.promise = promise; self.channel = channel; self.onItem = onItem
    }

    func item(_ f: Frame, id: UInt32) {
        guard !failed else { return }
        outstanding += 1
        onItem(f).whenComplete { [self] r in
            outstanding -= 1
            if case .failure(let e) = r { if !failed { failed = true; promise.fail(e) }; return }
            if outstanding == 0, let f = final { final = nil; return promise.succeed(f) }
            consumed += 1
            // Grant credit in batches of half the window: fewer frames, never a stall.
            if consumed >= (window + 1) / 2 {
                channel.writeAndFlush(StreamCredit(frames: consumed).frame(requestID: id), promise: nil)
                consumed = 0
            }
        }
    }

    /// The last frame: the reply (or an error), answered once every item is consumed.
    func end(_ f: Frame) {
        guard !failed else { return }
        if outstanding == 0 { promise.succeed(f) } else { final = f }
    }
}

final class RPCClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    enum Pending { case single(EventLoopPromise<Frame>), stream(StreamReceiver) }
    private var pending: [UInt32: Pending] = [:]
    private var nextID: UInt32 = 1
    let onEvent: @Sendable (any RPCMessage) -> Void
    let onClose: @Sendable () -> Void

    init(onEvent: @escaping @Sendable (any RPCMessage) -> Void, onClose: @escaping @Sendable () -> Void) {
        self.onEvent = onEvent; self.onClose = onClose
    }

    func register(_ p: Pending) -> UInt32 {
        repeat { nextID &+= 1 } while nextID == 0 || pending[nextID] != nil
        pending[nextID] = p
        return nextID
    }

    func unregister(_ id: UInt32) -> Bool { pending.removeValue(forKey: id) != nil }
    /// The deadline of request `id` passed: forget it (a late reply is dropped) and fail it.
    func expire(_ id: UInt32, _ promise: EventLoopPromise<Frame>) {
        guard case .single(let p)? = pending[id], p.futureResult === promise.futureResult else { return }
        pending[id] = nil
        promise.fail(RPCClient.timedOut)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let f = unwrapInboundIn(data)
        if f.requestID == 0 {
            guard let m = try? decodeAnyMessage(f) else { context.close(promise: nil); return }
            onEvent(m); return
        }
        switch pending[f.requestID] {
        case .single(let p): pending[f.requestID] = nil; p.succeed(f)
        case .stream(let s):
            if f.more && f.type != ErrorReply.type.rawValue { s.item(f, id: f.requestID) }
            else { pending[f.requestID] = nil; s.end(f) }
        case nil: break      // a reply to a request nobody waits for any more
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let p = pending; pending.removeAll()
        for (_, x) in p {
            switch x {
            case .single(let promise): promise.fail(RPCError.connectionLost)
            case .stream(let s): s.promise.fail(RPCError.connectionLost)
            }
        }
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
