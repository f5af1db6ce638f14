// NIO glue for one IMAP connection (DESIGN §4): bytes → IMAPFramer → the session's inputs, handed
// over one at a time as the session asks for them; its writes, STARTTLS and close carried out.
// No policy here. Guarantees: a connection holds at most `maxQueuedUnits` framed units plus what
// one read brings, nothing the client pipelined after STARTTLS ever reaches the session, and
// what it sent after an accepted COMPRESS reaches it inflated (CompressionHandler.swift).
import Foundation
import NIOCore
import Logging
import MailCore
import MailTLS
import MailWorker
import IMAPProtocol

/// The fixed lines the glue itself sends (the session says everything else).
enum IMAPGlueReply {
    /// RFC 9051 §7.5: the continuation request for a synchronizing literal the framer accepted.
    static let literalContinuation = Array("+ Ready for literal data\r\n".utf8)
    /// RFC 9051 §7.1.5: the process is full (WorkerServer's refusal).
    static let tooManyConnections = Array("* BYE Too many connections\r\n".utf8)
    /// This client address already has `max_connections_per_client` connections.
    static let tooManyConnectionsFromClient = Array("* BYE Too many connections from your address\r\n".utf8)
    /// RFC 5530 UNAVAILABLE: the worker lost its store and is restarting.
    static let unavailable = Array("* BYE [UNAVAILABLE] Service temporarily unavailable\r\n".utf8)
}

/// What one listener's connections are given (IMAPDWorker builds it from [imap]).
struct IMAPConnectionSettings {
    var session: IMAPSessionConfig
    var timers: IMAPTimers
    var tls: TLSServerContext?            // STARTTLS on imap listeners, the handshake on imaps
    var implicitTLS = false               // imaps: a TLSHandler precedes this one; the session starts after the handshake
    var limiter: ClientLimiter?
    var listener = "imap"
}

/// Why the glue could not do what the session asked.
enum IMAPGlueError: Error, CustomStringConvertible {
    case closed
    case noTLS
    case noCompression
    var description: String {
        switch self {
        case .closed: return "the connection is closed"
        case .noTLS: return "TLS is not available or already active"
        case .noCompression: return "compression is already active or no COMPRESS command is pending"
        }
    }
}

/// One connection: a ChannelInboundHandler, and the IMAPConnection its session writes through.
/// Event-loop state is touched only on the channel's loop; the session's calls hop there.
final class IMAPSessionHandler: ChannelInboundHandler, IMAPConnection, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Framed units waiting for the session; at this many the glue stops reading.
    static let maxQueuedUnits = 4
    /// Clients on these networks are loopback clients (plaintext_auth_on_loopback).
    static let loopback = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]

    /// Runs a session over this connection and its inputs (tests drive the glue with their own).
    typealias SessionRunner = @Sendable (IMAPSessionHandler, AsyncStream<IMAPSessionInput>) async -> Void

    let settings: IMAPConnectionSettings
    let makeServices: () -> any IMAPServices
    let runSession: SessionRunner?
    var logger: Logger
    let sessionID = newSessionID()

    // On the event loop:
    private var loop: EventLoop!
    private var context: ChannelHandlerContext?
    private var framer: IMAPFramer
    private var queue = CircularBuffer<IMAPSessionInput>(initialCapacity: IMAPSessionHandler.maxQueuedUnits)
    private var waiter: CheckedContinuation<IMAPSessionInput?, Never>?
    private var ended = false                 // `.closed` is queued: the inputs end after it
    private var framerStopped = false         // a fatal framing error: nothing more is framed
    private var inputClosed = false           // the client half-closed: `.closed` after its last unit
    private var discardingPlaintext = false   // STARTTLS under way: bytes before the TLSHandler are dropped
    private var startTLSHanded = false        // the session has a STARTTLS command: no read until it is done with it
    private var compressHeld = false          // a COMPRESS unit is framed: what follows may be compressed, so nothing more is framed
    private var compressHanded = false        // … and the session has it: framing resumes once it asks for more
    private var readingPaused = false
    private var continuationsQueued = 0       // literal continuations the session has not taken (not sent yet)
    private var tlsWaiter: CheckedContinuation<Void, Error>?
    private var idleTimer: Scheduled<Void>?
    private var commandTimer: Scheduled<Void>?
    private var sessionStarted = false
    private var user: String?
    private var clientAddress = "unknown"
    private var heldSlot = false
    // Read from the session's task:
    private let tlsLock = NSLock()
    private var tlsOn = false
    private var compressionOn = false

    /// `runSession`: nil runs IMAPSession with the services `makeServices` gives.
    init(settings: IMAPConnectionSettings, makeServices: @escaping () -> any IMAPServices, logger: Logger,
         runSession: SessionRunner? = nil) {
        self.settings = settings; self.makeServices = makeServices; self.logger = logger; self.runSession = runSession
        framer = IMAPFramer(limits: settings.session.limits)
        tlsOn = settings.implicitTLS
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    // MARK: the channel

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop = context.eventLoop
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress
        clientAddress = remote?.ipAddress ?? "localhost"   // a unix-socket peer is local
        logger.info("connect from \(clientAddress)", metadata: ["listener": "\(settings.listener)"])
        if let l = settings.limiter, remote?.ipAddress != nil {
            guard l.connect(clientAddress) else {
                logger.warning("refusing \(clientAddress): more than \(l.maxConnectionsPerClient) connections from it")
                ended = true
                // On imaps the TLSHandler holds this until its handshake is done.
                send(context, IMAPGlueReply.tooManyConnectionsFromClient).whenComplete { _ in context.close(promise: nil) }
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
        stopTimers()
        releaseSlot()
        if !ended {
            // Nothing queued can be answered any more.
            queue.removeAll()
            continuationsQueued = 0
            finish()
        }
        tlsWaiter?.resume(throwing: IMAPGlueError.closed)
        tlsWaiter = nil
        logger.info("disconnect from \(clientAddress)")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ended, !framerStopped, !discardingPlaintext, sessionStarted else { return }
        let bytes = unwrapInboundIn(data)
        armIdleTimer()
        framer.feed(Array(bytes.readableBytesView))
        // A byte came: a stalled command's clock starts again (`refill` arms it if still partial).
        commandTimer?.cancel(); commandTimer = nil
        refill()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if sessionStarted { refill() } else { context.close(promise: nil) }
            return
        }
        // Draining: sessions carry on until the grace period is over.
        if case WorkerSessionEvent.draining = event { return }
        if case WorkerSessionEvent.shuttingDown = event {
            // Implicit TLS before its handshake: nothing may be said in plaintext.
            guard sessionStarted else { return context.close(promise: nil) }
            if !ended { enqueue(.shutdown) }
            return
        }
        if event is ListenerStressEvent { return }
        if let f = event as? DeflateFailure {
            // RFC 4978: nothing after it can be read; the session says BYE (compressed) and closes.
            logger.notice("COMPRESS from \(clientAddress): \(f.error)")
            framerStopped = true
            enqueue(.framed(.fatal(tag: nil, reason: f.byeText)))
            updateReading()
            return
        }
        guard case TLSEvent.handshakeCompleted(let info) = event else { return context.fireUserInboundEventTriggered(event) }
        logger.info("TLS established", metadata: ["version": "\(info.protocolVersion)", "cipher": "\(info.cipher)",
                                                  "sni": "\(info.serverName ?? "-")", "resumed": "\(info.resumed)"])
        setTLS()
        if let w = tlsWaiter {
            tlsWaiter = nil
            w.resume()
        } else if !sessionStarted && !ended {
            startSession(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? TLSError {
            // A peer closing without close_notify is common and harmless for a line protocol.
            if e == .uncleanShutdown || e == .closedDuringHandshake { logger.debug("TLS: \(e)") } else { logger.notice("TLS error from \(clientAddress): \(e)") }
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
        let run: SessionRunner
        if let runSession {
            run = runSession
        } else {
            let loopback = context.channel.remoteAddress?.ipAddress == nil || IPNetwork.contains(Self.loopback, clientAddress)
            let session = IMAPSession(config: settings.session, services: makeServices(), connection: self, client: clientAddress,
                                      clientIsLoopback: loopback, logger: logger)
            // A watch's notifications join the one pulled stream; failed logins are counted per
            // client address across this process's sessions (the fail2ban line's `failures=`).
            session.post = { [weak self] input in self?.post(input) }
            if let limiter = settings.limiter {
                session.recordAuthFailure = { [clientAddress] in limiter.recordFailure(clientAddress) }
            }
            run = { _, inputs in await session.run(inputs) }
        }
        // Pulled, not pushed: the glue knows what the session has taken, so it can stop reading
        // and, at STARTTLS, drop what was pipelined behind the command.
        let inputs = AsyncStream<IMAPSessionInput>(unfolding: { [self] in await nextInput() })
        Task { [self] in
            await run(self, inputs)
            await close()
        }
    }

    private func nextInput() async -> IMAPSessionInput? {
        await withCheckedContinuation { cont in
            loop.execute { [self] in
                // The session is past a STARTTLS it did not accept: read on.
                if startTLSHanded && tlsWaiter == nil && !discardingPlaintext {
                    startTLSHanded = false
                    setAutoRead(true)
                    refill()
                }
                // The session is past a COMPRESS (the handler is in place if it accepted it): frame on.
                if compressHanded {
                    compressHanded = false
                    compressHeld = false
                    refill()
                }
                if let next = queue.popFirst() {
                    if case .framed(.continuationNeeded) = next { continuationsQueued -= 1 }
                    hand(next, to: cont)
                    refill()
                } else if ended {
                    cont.resume(returning: nil)
                } else {
                    waiter = cont
                }
            }
        }
    }

    private func enqueue(_ input: IMAPSessionInput) {
        if let w = waiter {
            waiter = nil
            hand(input, to: w)
        } else {
            if case .framed(.continuationNeeded) = input { continuationsQueued += 1 }
            queue.append(input)
        }
    }

    /// Gives the session its next input. A synchronizing literal's continuation request goes
    /// out as the session takes that unit (RFC 9051 §4.3: the client sends the literal only
    /// after it): the session is between responses then, so the line never lands inside one.
    private func hand(_ input: IMAPSessionInput, to cont: CheckedContinuation<IMAPSessionInput?, Never>) {
        if case .framed(.continuationNeeded) = input, let context, context.channel.isActive {
            _ = send(context, IMAPGlueReply.literalContinuation)
        }
        // The session flushes its OK before it calls `startTLS`, and the client's TLS handshake
        // may follow at once: from now until the TLSHandler is in place nothing may be read,
        // or those bytes would be taken for (and dropped as) pipelined plaintext. Holding
        // `read()` is not enough (a read already requested stays armed): autoRead goes off,
        // as MailTLS's upgrade turns it off, and that upgrade turns it on again.
        if case .framed(.unit(let unit)) = input, Self.isStartTLS(unit) {
            startTLSHanded = true
            setAutoRead(false)
            updateReading()
        }
        if case .framed(.unit(let unit)) = input, Self.isCompress(unit) { compressHanded = true }
        cont.resume(returning: input)
    }

    /// `tag SP "STARTTLS" CRLF` (RFC 9051 §6.2.1), any case; whether the session accepts it is its business.
    static func isStartTLS(_ unit: [UInt8]) -> Bool {
        var line = unit[...]
        if line.last == UInt8(ascii: "\n") { line = line.dropLast() }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), space > line.startIndex else { return false }
        return String(decoding: line[(space + 1)...], as: UTF8.self).uppercased() == "STARTTLS"
    }

    /// `tag SP "COMPRESS" SP …` (RFC 4978 §5), any case and mechanism: framing stops behind it.
    static func isCompress(_ unit: [UInt8]) -> Bool {
        guard let space = unit.firstIndex(of: UInt8(ascii: " ")), space > unit.startIndex else { return false }
        let word = unit[(space + 1)...].prefix(9)
        return word.count == 9 && String(decoding: word, as: UTF8.self).uppercased() == "COMPRESS "
    }

    /// The last input: the connection is gone (or the client sent all it will).
    private func finish() {
        ended = true
        stopTimers()
        enqueue(.closed)
    }

    /// Moves framed units to the session while it has room for them; answers a synchronizing
    /// literal's continuation request at once; then reads on or stops reading.
    private func refill() {
        var drained = false
        while !framerStopped, !ended, !startTLSHanded, !compressHeld, queue.count < Self.maxQueuedUnits {
            guard let event = framer.next() else { drained = true; break }
            if case .fatal(_, let reason) = event {
                logger.notice("unrecoverable input from \(clientAddress): \(reason)")
                framerStopped = true
            }
            // RFC 4978 §3: what follows an accepted COMPRESS is compressed; it stays raw in the framer.
            if case .unit(let unit) = event, Self.isCompress(unit) { compressHeld = true }
            enqueue(.framed(event))
        }
        if inputClosed && !ended && (drained || framerStopped) { finish() }
        // A unit begun and not complete, and no continuation request of ours outstanding: it
        // may stall `timers.command` after its last byte.
        if drained && !ended && framer.buffered > 0 && continuationsQueued == 0 {
            if commandTimer == nil { armCommandTimer() }
        } else {
            commandTimer?.cancel(); commandTimer = nil
        }
        updateReading()
    }

    /// Holds reads while the session has enough queued (or nothing more will be framed); the
    /// unsent-output bound is OutboundBackPressure's, through the same gate.
    private func updateReading() {
        guard let context else { return }
        let pause = queue.count >= Self.maxQueuedUnits || framerStopped || ended || startTLSHanded || compressHeld
        guard pause != readingPaused else { return }
        readingPaused = pause
        context.triggerUserOutboundEvent(pause ? SessionReading.pause : SessionReading.resume, promise: nil)
        if !pause { context.read() }
    }

    // MARK: timers

    private func armIdleTimer() {
        guard let context, !ended else { return }
        idleTimer?.cancel()
        let t = user == nil ? settings.timers.login : settings.timers.autologout
        idleTimer = context.eventLoop.scheduleTask(in: t) { [self] in
            idleTimer = nil
            guard !ended else { return }
            logger.notice("no traffic for \(t.nanoseconds / 1_000_000_000)s \(user == nil ? "before login" : "after login") from \(clientAddress)")
            // imaps before its handshake has no session to tell, and may say nothing in plaintext.
            guard sessionStarted else { return context.close(promise: nil) }
            enqueue(.timeout)
        }
    }

    private func armCommandTimer() {
        guard let context else { return }
        let t = settings.timers.command
        commandTimer = context.eventLoop.scheduleTask(in: t) { [self] in
            commandTimer = nil
            guard !ended else { return }
            logger.notice("command incomplete \(t.nanoseconds / 1_000_000_000)s after its last byte from \(clientAddress)")
            enqueue(.timeout)
        }
    }

    private func stopTimers() {
        idleTimer?.cancel(); idleTimer = nil
        commandTimer?.cancel(); commandTimer = nil
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

    private func setTLS() { tlsLock.lock(); tlsOn = true; tlsLock.unlock() }

    // MARK: IMAPConnection (called from the session's task)

    var isTLS: Bool { tlsLock.lock(); defer { tlsLock.unlock() }; return tlsOn }

    func write(_ bytes: [UInt8]) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                guard let context, context.channel.isActive else { return cont.resume() }
                // Completes once the bytes are handed to the socket: a client that does not read
                // stalls its own session here, and nothing else.
                send(context, bytes).whenComplete { [self] _ in
                    armIdleTimer()
                    cont.resume()
                }
            }
        }
    }

    func startTLS() async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            loop.execute { [self] in
                guard let context, context.channel.isActive, !ended else { return cont.resume(throwing: IMAPGlueError.closed) }
                guard let tls = settings.tls, !isTLS, tlsWaiter == nil else { return cont.resume(throwing: IMAPGlueError.noTLS) }
                // RFC 9051 §6.2.1 (and RFC 3207 §4.2's CVE-2011-0411): what the client pipelined
                // after STARTTLS is dropped — the units not taken, the framer's bytes, and any
                // plaintext read before the TLSHandler is in place.
                queue.removeAll { if case .framed = $0 { return true } else { return false } }
                continuationsQueued = 0
                framer.reset()
                commandTimer?.cancel(); commandTimer = nil
                discardingPlaintext = true
                tlsWaiter = cont
                updateReading()
                MailTLS.startTLS(from: context, context: tls, reply: context.channel.allocator.buffer(capacity: 0), logger: logger)
                    .whenComplete { [self] r in
                        discardingPlaintext = false
                        // The TLSHandler is first now: what is read goes through it.
                        startTLSHanded = false
                        updateReading()
                        guard case .failure(let e) = r else { return }
                        logger.notice("STARTTLS failed for \(clientAddress): \(e)")
                        tlsWaiter?.resume(throwing: e)
                        tlsWaiter = nil
                        context.close(promise: nil)
                    }
            }
        }
    }

    var isCompressed: Bool { tlsLock.lock(); defer { tlsLock.unlock() }; return compressionOn }

    func startCompression(reply: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            loop.execute { [self] in
                guard let context, context.channel.isActive, !ended else { return cont.resume(throwing: IMAPGlueError.closed) }
                guard !isCompressed, compressHeld else { return cont.resume(throwing: IMAPGlueError.noCompression) }
                // RFC 4978 §3: the tagged OK leaves uncompressed (the handler is not there yet,
                // and a write passes down the pipeline at once); every later byte is compressed,
                // in both directions — also what the client sent behind the command.
                _ = send(context, reply)
                do {
                    var parameters = DeflateParameters()
                    parameters.expansionAllowance = settings.session.limits.maxCommand
                    let handler = try DeflateHandler(parameters: parameters, readingPaused: readingPaused, pending: framer.takeRemaining())
                    try context.pipeline.syncOperations.addHandler(handler, position: .before(self))
                } catch {
                    logger.error("COMPRESS: \(error)")
                    return cont.resume(throwing: error)
                }
                tlsLock.lock(); compressionOn = true; tlsLock.unlock()
                cont.resume()
            }
        }
    }

    func close() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                releaseSlot()
                guard let context, context.channel.isActive else { return cont.resume() }
                // Everything written is flushed first (through TLS, with its close_notify).
                send(context, []).whenComplete { _ in
                    context.close().whenComplete { _ in cont.resume() }
                }
            }
        }
    }

    /// Queues an input that does not come from the client — a watched mailbox changed
    /// (`IMAPServices.watch`'s `onChange` → `.mailboxChanged`) — behind what is queued now
    /// (IMAPSession.post).
    func post(_ input: IMAPSessionInput) {
        loop.execute { [self] in
            guard !ended else { return }
            enqueue(input)
            updateReading()
        }
    }

    func authenticated(user: String) {
        loop.execute { [self] in
            self.user = user
            logger[metadataKey: "user"] = "\(user)"
            armIdleTimer()     // from login_timeout to autologout
        }
    }
}
