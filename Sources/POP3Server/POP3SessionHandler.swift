// NIO glue for one POP3 connection (DESIGN §4): bytes → POP3LineFramer → the session's inputs,
// handed over one at a time as the session asks for them; its writes, STLS and close carried
// out. No policy here. Guarantees: a connection holds at most `maxQueuedLines` lines plus what
// one read brings, and nothing the client pipelined after STLS ever reaches the session.
import Foundation
import NIOCore
import Logging
import MailCore
import MailTLS
import MailWorker
import POP3Protocol

/// The fixed lines the glue itself sends (the session says everything else).
enum POP3GlueReply {
    /// The process is full (WorkerServer's refusal).
    static let tooManyConnections = Array("-ERR [SYS/TEMP] Too many connections\r\n".utf8)
    static let tooManyConnectionsFromClient = Array("-ERR [SYS/TEMP] Too many connections from your address\r\n".utf8)
    /// The worker lost its store and is restarting.
    static let unavailable = Array("-ERR [SYS/TEMP] Service temporarily unavailable\r\n".utf8)
}

/// What one listener's connections are given (POP3DWorker builds it from [pop3]).
struct POP3ConnectionSettings {
    var session: POP3SessionConfig
    var timers: POP3Timers
    var tls: TLSServerContext?            // STLS on pop3 listeners, the handshake on pop3s
    var implicitTLS = false               // pop3s: a TLSHandler precedes this one; the session starts after the handshake
    var limiter: ClientLimiter?
    var listener = "pop3"
}

enum POP3GlueError: Error, CustomStringConvertible {
    case closed, noTLS
    var description: String { self == .closed ? "the connection is closed" : "TLS is not available or already active" }
}

/// One connection: a ChannelInboundHandler, and the POP3Connection its session writes through.
/// Event-loop state is touched only on the channel's loop; the session's calls hop there.
final class POP3SessionHandler: ChannelInboundHandler, POP3Connection, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Lines waiting for the session; at this many the glue stops reading (RFC 2449 PIPELINING).
    static let maxQueuedLines = 16
    static let loopback = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]

    let settings: POP3ConnectionSettings
    let makeServices: () -> any POP3Services
    var logger: Logger
    let sessionID = newSessionID()

    // On the event loop:
    private var loop: EventLoop!
    private var context: ChannelHandlerContext?
    private var framer: POP3LineFramer
    private var queue = CircularBuffer<POP3SessionInput>(initialCapacity: POP3SessionHandler.maxQueuedLines)
    private var waiter: CheckedContinuation<POP3SessionInput?, Never>?
    private var ended = false
    private var inputClosed = false
    private var discardingPlaintext = false
    private var startTLSHanded = false
    private var readingPaused = false
    private var tlsWaiter: CheckedContinuation<Void, Error>?
    private var idleTimer: Scheduled<Void>?
    private var lastTraffic = NIODeadline.now()
    private var sessionStarted = false
    /// The running session (for the fast path); let go when it closes the connection.
    private var session: POP3Session?
    private var user: String?
    private var clientAddress = "unknown"
    private var heldSlot = false
    private let tlsLock = NSLock()
    private var tlsOn = false

    init(settings: POP3ConnectionSettings, makeServices: @escaping () -> any POP3Services, logger: Logger) {
        self.settings = settings; self.makeServices = makeServices; self.logger = logger
        framer = POP3LineFramer(maxLine: settings.session.engine.limits.maxLine)
        tlsOn = settings.implicitTLS
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    // MARK: the channel

    func handlerAdded(context: ChannelHandlerContext) { self.context = context; loop = context.eventLoop }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress
        clientAddress = remote?.ipAddress ?? "localhost"
        logger.info("connect from \(clientAddress)", metadata: ["listener": "\(settings.listener)"])
        if let l = settings.limiter, remote?.ipAddress != nil {
            guard l.connect(clientAddress) else {
                logger.warning("refusing \(clientAddress): more than \(l.maxConnectionsPerClient) connections from it")
                ended = true
                send(context, POP3GlueReply.tooManyConnectionsFromClient).whenComplete { _ in context.close(promise: nil) }
                return
            }
            heldSlot = true
        }
        armIdleTimer()
        // Implicit TLS (RFC 8314 §3.3): the greeting waits for the handshake.
        if !settings.implicitTLS { startSession(context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel(); idleTimer = nil
        releaseSlot()
        session = nil        // no fast path without a channel; the task keeps its session to the end
        if !ended { queue.removeAll(); finish() }
        tlsWaiter?.resume(throwing: POP3GlueError.closed)
        tlsWaiter = nil
        logger.info("disconnect from \(clientAddress)")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ended, !discardingPlaintext, sessionStarted else { return }
        armIdleTimer()
        unwrapInboundIn(data).withUnsafeReadableBytes { framer.feed($0) }
        refill()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if sessionStarted { refill() } else { context.close(promise: nil) }
            return
        }
        if case WorkerSessionEvent.draining = event { return }
        if case WorkerSessionEvent.shuttingDown = event {
            guard sessionStarted else { return context.close(promise: nil) }
            if !ended { enqueue(.shutdown) }
            return
        }
        if event is ListenerStressEvent { return }
        guard case TLSEvent.handshakeCompleted(let info) = event else { return context.fireUserInboundEventTriggered(event) }
        logger.info("TLS established", metadata: ["version": "\(info.protocolVersion)", "cipher": "\(info.cipher)",
                                                  "sni": "\(info.serverName ?? "-")", "resumed": "\(info.resumed)"])
        tlsLock.withLock { tlsOn = true }
        if let w = tlsWaiter {
            tlsWaiter = nil
            w.resume()
        } else if !sessionStarted && !ended {
            startSession(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? TLSError, e == .uncleanShutdown || e == .closedDuringHandshake {
            logger.debug("TLS: \(e)")
        } else {
            logger.notice("connection error from \(clientAddress): \(error)")
        }
        tlsWaiter?.resume(throwing: error)
        tlsWaiter = nil
        context.close(promise: nil)
    }

    // MARK: the session

    private func startSession(_ context: ChannelHandlerContext) {
        sessionStarted = true
        let loopback = context.channel.remoteAddress?.ipAddress == nil || IPNetwork.contains(Self.loopback, clientAddress)
        let session = POP3Session(config: settings.session, services: makeServices(), connection: self, client: clientAddress,
                                  clientIsLoopback: loopback, logger: logger)
        self.session = session
        if let limiter = settings.limiter {
            session.recordAuthFailure = { [clientAddress] in limiter.recordFailure(clientAddress) }
        }
        // Pulled, not pushed: the glue knows what the session has taken, so it can stop reading
        // and, at STLS, drop what was pipelined behind the command.
        let inputs = AsyncStream<POP3SessionInput>(unfolding: { [self] in await nextInput() })
        // The session runs on this channel's event loop: its hops to the glue (each input, each
        // write) stay on one thread instead of waking another one per command.
        let executor = EventLoopTaskExecutor(loop)
        session.taskExecutor = executor
        Task(executorPreference: executor) { [self] in
            await session.run(inputs)
            await close()
        }
    }

    private func nextInput() async -> POP3SessionInput? {
        await withCheckedContinuation { cont in
            // The session task runs on this loop (no hop); from elsewhere (tests) it hops.
            if loop.inEventLoop { takeInput(cont) } else { loop.execute { [self] in takeInput(cont) } }
        }
    }

    /// On the loop: the next input now, or when it comes.
    private func takeInput(_ cont: CheckedContinuation<POP3SessionInput?, Never>) {
        // The session is past an STLS it did not accept: read on.
        if startTLSHanded && tlsWaiter == nil && !discardingPlaintext {
            startTLSHanded = false
            setAutoRead(true)
            refill()
        }
        if let next = queue.popFirst() {
            hand(next, to: cont)
            refill()
        } else if ended {
            cont.resume(returning: nil)
        } else {
            waiter = cont
        }
    }

    private func enqueue(_ input: POP3SessionInput) {
        if let w = waiter { waiter = nil; hand(input, to: w) } else { queue.append(input) }
    }

    /// Gives the session its next input. At STLS nothing more is read until the TLSHandler is
    /// in place (or the session refused it): the client's handshake may follow the reply at once.
    private func hand(_ input: POP3SessionInput, to cont: CheckedContinuation<POP3SessionInput?, Never>) {
        if case .line(.line(let l)) = input, Self.isSTLS(l) {
            startTLSHanded = true
            setAutoRead(false)
            updateReading()
        }
        cont.resume(returning: input)
    }

    static func isSTLS(_ line: [UInt8]) -> Bool { line.count == 4 && String(decoding: line, as: UTF8.self).uppercased() == "STLS" }

    private func finish() {
        ended = true
        idleTimer?.cancel(); idleTimer = nil
        enqueue(.closed)
    }

    private func refill() {
        var drained = false
        while !ended, !startTLSHanded, queue.count < Self.maxQueuedLines {
            guard let event = framer.next() else { drained = true; break }
            if receiveNow(event) { continue }
            enqueue(.line(event))
        }
        if inputClosed && !ended && drained { finish() }
        updateReading()
    }

    /// The fast path: while the session's task waits for input with nothing queued before
    /// this line, and the client is taking what it is sent, the session handles the line here
    /// on the loop (a RETR read ahead is one write, no task wake-up); whatever must wait goes
    /// to the task next, in order.
    private func receiveNow(_ event: POP3LineFramer.Event) -> Bool {
        guard waiter != nil, queue.isEmpty, let session, let context, context.channel.isWritable,
              let rest = session.receiveNow(event) else { return false }
        if !rest.isEmpty { enqueue(.perform(rest)) }
        return true
    }

    private func updateReading() {
        guard let context else { return }
        let pause = queue.count >= Self.maxQueuedLines || ended || startTLSHanded
        guard pause != readingPaused else { return }
        readingPaused = pause
        context.triggerUserOutboundEvent(pause ? SessionReading.pause : SessionReading.resume, promise: nil)
        if !pause { context.read() }
    }

    // MARK: timers

    /// Traffic: the idle timeout counts from now. Only the time is noted (two per command);
    /// the one timer, when it fires early, sleeps again for the rest.
    private func armIdleTimer() {
        lastTraffic = .now()
        if idleTimer == nil { scheduleIdleTimer() }
    }

    private var idleTimeout: TimeAmount { user == nil ? settings.timers.login : settings.timers.autologout }

    private func scheduleIdleTimer() {
        guard let context, !ended else { return }
        idleTimer?.cancel()
        idleTimer = context.eventLoop.scheduleTask(deadline: lastTraffic + idleTimeout) { [self] in
            idleTimer = nil
            guard !ended else { return }
            let t = idleTimeout
            if NIODeadline.now() < lastTraffic + t { return scheduleIdleTimer() }
            logger.notice("no traffic for \(t.nanoseconds / 1_000_000_000)s \(user == nil ? "before login" : "after login") from \(clientAddress)")
            guard sessionStarted else { return context.close(promise: nil) }
            enqueue(.timeout)
        }
    }

    private func releaseSlot() {
        if heldSlot { settings.limiter?.disconnect(clientAddress); heldSlot = false }
    }

    private func send(_ context: ChannelHandlerContext, _ bytes: [UInt8]) -> EventLoopFuture<Void> {
        var b = context.channel.allocator.buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        return context.writeAndFlush(wrapOutboundOut(b))
    }

    private func setAutoRead(_ on: Bool) {
        try? context?.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: on)
    }

    // MARK: POP3Connection (called from the session's task)

    var isTLS: Bool { tlsLock.withLock { tlsOn } }

    func write(_ bytes: ByteBuffer) async {
        // The session runs on this loop: the write is queued and flushed at once, and the
        // session goes on unless that left the channel over its unsent-bytes bound.
        if loop.inEventLoop {
            guard let context, context.channel.isActive else { return }
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            armIdleTimer()
            if context.channel.isWritable { return }
            // An empty write completes after everything before it is out.
            return await withCheckedContinuation { cont in send(context, []).whenComplete { _ in cont.resume() } }
        }
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                guard let context, context.channel.isActive else { return cont.resume() }
                let done = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(wrapOutboundOut(bytes), promise: done)
                done.futureResult.whenComplete { [self] _ in
                    armIdleTimer()
                    cont.resume()
                }
            }
        }
    }

    /// The idle timer was armed by the read that brought the line (no second clock read).
    func writeNow(_ bytes: ByteBuffer) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    func startTLS() async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            loop.execute { [self] in
                guard let context, context.channel.isActive, !ended else { return cont.resume(throwing: POP3GlueError.closed) }
                guard let tls = settings.tls, !isTLS, tlsWaiter == nil else { return cont.resume(throwing: POP3GlueError.noTLS) }
                // RFC 2595 §4 (and CVE-2011-0411): what the client pipelined after STLS is dropped.
                queue.removeAll { if case .line = $0 { return true } else { return false } }
                framer.reset()
                discardingPlaintext = true
                tlsWaiter = cont
                updateReading()
                MailTLS.startTLS(from: context, context: tls, reply: context.channel.allocator.buffer(capacity: 0), logger: logger)
                    .whenComplete { [self] r in
                        discardingPlaintext = false
                        startTLSHanded = false
                        updateReading()
                        guard case .failure(let e) = r else { return }
                        logger.notice("STLS failed for \(clientAddress): \(e)")
                        tlsWaiter?.resume(throwing: e)
                        tlsWaiter = nil
                        context.close(promise: nil)
                    }
            }
        }
    }

    func close() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                releaseSlot()
                session = nil
                guard let context, context.channel.isActive else { return cont.resume() }
                send(context, []).whenComplete { _ in
                    context.close().whenComplete { _ in cont.resume() }
                }
            }
        }
    }

    func authenticated(user: String) {
        loop.execute { [self] in
            self.user = user
            logger[metadataKey: "user"] = "\(user)"
            lastTraffic = .now()
            scheduleIdleTimer()          // the autologout timeout from now on
        }
    }
}
