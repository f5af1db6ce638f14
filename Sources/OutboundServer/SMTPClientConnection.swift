// The NIO glue of the SMTP client: one TCP connection carrying SMTPClientSession's actions out
// (bytes, STARTTLS with MailTLS's client context, the one RFC 5321 §4.5.3.2 timer, the body
// streamed from MessageBody one piece in flight at a time). Policy lives in the session; this
// file only moves bytes and verdicts. Several messages may follow on one connection.
import Logging
import MailTLS
import NIOCore
import NIOPosix
import OutboundProtocol
import SMTPProtocol

/// The client contexts for the two ways of using TLS (chosen per connection by its policy).
public struct TLSClientContexts: Sendable {
    /// verify: chain and host name checked against `ca_file` or the system store.
    public var verifying: TLSClientContext
    /// opportunistic/required: encrypts whatever certificate the server shows (RFC 7435).
    public var encrypting: TLSClientContext

    public init(verifying: TLSClientContext, encrypting: TLSClientContext) {
        self.verifying = verifying; self.encrypting = encrypting
    }

    /// The contexts for `caFile` ("" the system store).
    public init(caFile: String, handshakeTimeout: TimeAmount = .seconds(30)) throws {
        verifying = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: true, caFile: caFile.isEmpty ? nil : caFile,
                                                                               handshakeTimeout: handshakeTimeout))
        encrypting = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false, handshakeTimeout: handshakeTimeout))
    }
}

/// The end of one message on one connection.
public struct ConnectionDelivery: Sendable {
    public var outcome: SMTPClientOutcome
    /// The server offered DSN (RFC 3461): it owns later notifications.
    public var serverSpeaksDSN: Bool
    /// A TLS description for the log ("TLSv1.3 TLS_AES_256_GCM_SHA384"), nil in plaintext.
    public var tls: String?
}

public final class SMTPClientConnection: @unchecked Sendable {
    public let target: RouteTarget
    let channel: Channel
    let handler: SMTPClientHandler

    init(target: RouteTarget, channel: Channel, handler: SMTPClientHandler) {
        self.target = target; self.channel = channel; self.handler = handler
    }

    /// Connects to `target` (at most `timeout`); throws when the TCP connection fails.
    public static func connect(to target: RouteTarget, group: EventLoopGroup, timeout: TimeAmount, tls: TLSClientContexts,
                               logger: Logger) async throws -> SMTPClientConnection {
        let handler = SMTPClientHandler(serverName: target.host, tls: tls, logger: logger)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture(withResultOf: { try ch.pipeline.syncOperations.addHandler(handler) }) }
            .connect(host: target.address, port: target.port).get()
        return SMTPClientConnection(target: target, channel: channel, handler: handler)
    }

    /// The connection can take another message (`SMTPClientConfig.reuseConnection` and the
    /// last transaction ended cleanly).
    public var isReusable: Bool {
        get async { (try? await channel.eventLoop.submit { self.handler.reusable }.get()) ?? false }
    }

    /// One message over this connection: the first starts the session with `config`, later ones
    /// continue it. nil when the connection cannot take it (closed meanwhile).
    public func deliver(_ envelope: OutboundEnvelope, config: SMTPClientConfig, body: MessageBody) async -> ConnectionDelivery? {
        let promise = channel.eventLoop.makePromise(of: ConnectionDelivery?.self)
        channel.eventLoop.execute { self.handler.deliver(envelope, config: config, body: body, promise: promise) }
        return try? await promise.futureResult.get()
    }

    /// QUIT after the last message (RFC 5321 §4.1.1.10), then close; does not wait for the reply.
    public func quit() {
        channel.eventLoop.execute { self.handler.quit() }
    }

    /// Closes at once.
    public func close() {
        channel.close(promise: nil)
    }
}

/// Carries one session's actions out. Event-loop confined.
final class SMTPClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let serverName: String
    let tls: TLSClientContexts
    let logger: Logger
    private var context: ChannelHandlerContext?
    private var session: SMTPClientSession?
    private var body: MessageBody?
    private var useSevenBit = false
    private var promise: EventLoopPromise<ConnectionDelivery?>?
    private var timer: Scheduled<Void>?
    private var lastWrite: EventLoopFuture<Void>?
    private var closed = false
    private(set) var reusable = false
    private var tlsDescription: String?
    /// Bytes that arrived before the first message started the session (the greeting may
    /// come before `deliver` runs).
    private var early: [UInt8] = []

    /// A greeting longer than this before the session starts is cut (the reply parser's own
    /// limits apply after).
    static let earlyLimit = 64 * 1024

    init(serverName: String, tls: TLSClientContexts, logger: Logger) {
        self.serverName = serverName; self.tls = tls; self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func deliver(_ envelope: OutboundEnvelope, config: SMTPClientConfig, body: MessageBody, promise: EventLoopPromise<ConnectionDelivery?>) {
        guard !closed, self.promise == nil else { promise.succeed(nil); return }
        self.promise = promise
        self.body = body
        useSevenBit = false
        reusable = false
        if var s = session {
            let actions = s.nextMessage(envelope)
            session = s
            if actions.isEmpty { self.promise = nil; promise.succeed(nil); return }
            run(actions)
        } else {
            var s = SMTPClientSession(config: config, envelope: envelope)
            var actions = s.start()
            if !early.isEmpty {
                actions += s.receive(early)
                early = []
            }
            session = s
            run(actions)
        }
    }

    func quit() {
        reusable = false
        guard var s = session, !closed else { context?.close(promise: nil); return }
        let actions = s.quit()
        session = s
        if actions.isEmpty { context?.close(promise: nil) } else { run(actions) }
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard let bytes = buffer.readBytes(length: buffer.readableBytes) else { return }
        guard session != nil else {
            if early.count < Self.earlyLimit { early += bytes }
            return
        }
        step { $0.receive(bytes) }
    }

    /// One session input, then its actions carried out. Nothing before the first message.
    private func step(_ input: (inout SMTPClientSession) -> [SMTPClientAction]) {
        guard var s = session else { return }
        let actions = input(&s)
        session = s
        run(actions)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        reusable = false
        timer?.cancel()
        step { $0.connectionClosed() }
        if let p = promise { promise = nil; p.succeed(nil) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("\(serverName): \(error)")
        context.close(promise: nil)
    }

    // MARK: actions

    private func run(_ actions: [SMTPClientAction]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .send(let bytes, _):
                var buffer = context.channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                lastWrite = context.writeAndFlush(wrapOutboundOut(buffer))
            case .startTLS:
                startTLS(context)
            case .needsDowngrade:
                downgrade(context)
            case .sendBody:
                pumpBody(context)
            case .armTimer(_, let duration):
                timer?.cancel()
                let (s, atto) = duration.components
                timer = context.eventLoop.scheduleTask(in: .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)) { [self] in
                    step { $0.timedOut() }
                }
            case .finished(let outcome):
                if let p = promise {
                    promise = nil
                    p.succeed(ConnectionDelivery(outcome: outcome, serverSpeaksDSN: session?.capabilities.dsn ?? false, tls: tlsDescription))
                }
            case .readyForNextMessage:
                reusable = true
            case .close:
                reusable = false
                context.close(promise: nil)
            }
        }
        if session?.timer == nil { timer?.cancel(); timer = nil }
    }

    /// RFC 3207: a client TLSHandler first in the pipeline, then the session hears how it went.
    private func startTLS(_ context: ChannelHandlerContext) {
        let verify = session?.config.tlsPolicy == .verify
        let sni = serverName
        MailTLS.startTLS(on: context.channel, client: verify ? tls.verifying : tls.encrypting, serverName: sni, logger: logger)
            .whenComplete { [self] result in
                switch result {
                case .success(let info):
                    tlsDescription = "\(info.protocolVersion) \(info.cipherStandardName)"
                    step { $0.tlsEstablished(verified: info.peerVerified) }
                case .failure(let error):
                    logger.info("TLS with \(sni) failed: \(error)")
                    step { $0.tlsFailed() }
                }
            }
    }

    private func downgrade(_ context: ChannelHandlerContext) {
        guard let body else { return }
        let loop = context.eventLoop
        Task {
            let size = await body.downgrade()
            loop.execute { [self] in
                if let size {
                    useSevenBit = true
                    step { $0.downgraded(size: size) }
                } else {
                    step { $0.downgradeFailed() }
                }
            }
        }
    }

    /// Streams the body one piece at a time: the next is read only once the last was written.
    private func pumpBody(_ context: ChannelHandlerContext) {
        guard let body else { return }
        let loop = context.eventLoop
        let sevenBit = useSevenBit
        Task {
            var index = 0
            do {
                while let piece = try await body.piece(index, sevenBit: sevenBit) {
                    index += 1
                    let write: EventLoopFuture<Void>? = try await loop.submit { [self] () -> EventLoopFuture<Void>? in
                        guard session?.outcome == nil, !closed else { return nil }
                        lastWrite = nil
                        step { $0.bodyChunk(piece) }
                        return lastWrite ?? loop.makeSucceededVoidFuture()
                    }.get()
                    guard let write else { return }
                    try await write.get()
                }
                loop.execute { [self] in step { $0.bodyFinished() } }
            } catch {
                // The store could not give the rest (or the write failed): the message must not
                // end with a final dot, so the connection goes (a temporary failure).
                logger.warning("body of the message to \(serverName) not sent: \(error)")
                loop.execute { [self] in self.context?.close(promise: nil) }
            }
        }
    }
}
