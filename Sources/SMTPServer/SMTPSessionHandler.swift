// NIO glue for one SMTP-family session (lmtpd and smtpd): bytes into the SMTPSession state
// machine, its actions carried out — replies, SMTPServices questions, STARTTLS, delays,
// deliveries — and the answers fed back. No protocol logic lives here; policy is the engine's.
import Foundation
import NIOCore
import Logging
import MailCore
import MailTLS
import MailWorker
import SMTPProtocol

extension SMTPReply {
    /// RFC 5321 §4.2.3 421: too many connections (per process, or from this client).
    static let tooManyConnections = SMTPReply(code: 421, enhanced: "4.7.0", lines: ["Too many connections, try again later"])
    static let tooManyConnectionsFromClient = SMTPReply(code: 421, enhanced: "4.7.0", lines: ["Too many connections from your address, try again later"])
}

struct SessionSettings {
    var config: SMTPSessionConfig
    var commandTimeout: TimeAmount
    var dataTimeout: TimeAmount
    var tls: TLSServerContext? = nil          // STARTTLS / implicit TLS
    var implicitTLS = false                   // smtps: the pipeline starts with a TLSHandler
    var submission = false                    // authenticated mail gets Message-ID/Date if missing
    var showAuthUser = false                  // Received: names the authenticated sender
    var limiter: ClientLimiter? = nil
    var listener = "lmtp"
    var loopbackIsTrusted = true              // AUTH before TLS allowed from 127.0.0.1 / ::1
}

final class SMTPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let settings: SessionSettings
    let services: SMTPServices
    var logger: Logger
    let sessionID = newSessionID()
    var session: SMTPSession!
    var body: ByteBuffer? = nil
    var traceLength = 0                       // bytes of trace headers at the start of `body`
    var envelope: SMTPEnvelope? = nil
    var idleTimer: Scheduled<Void>? = nil
    var closed = false
    var greeted = false
    var clientAddress = "unknown"
    var heldSlot = false
    var storeSession: UInt64 = 0              // after a successful AUTH
    var inputClosed = false                   // the client half-closed: answer what it sent, then close

    init(settings: SessionSettings, services: SMTPServices, logger: Logger) {
        self.settings = settings; self.services = services; self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress
        clientAddress = remote?.ipAddress ?? "localhost"   // unix socket peers are local
        // A unix-socket peer is local; a TCP loopback peer counts as local only if configured so.
        let loopback: Bool? = remote?.ipAddress == nil ? true : (settings.loopbackIsTrusted ? nil : false)
        session = SMTPSession(config: settings.config, clientAddress: clientAddress, clientIsLoopback: loopback)
        logger.info("connect from \(clientAddress)", metadata: ["listener": "\(settings.listener)"])
        if let l = settings.limiter, remote?.ipAddress != nil {
            guard l.connect(clientAddress) else {
                logger.warning("refusing \(clientAddress): more than \(l.maxConnectionsPerClient) connections from it")
                send(context, .tooManyConnectionsFromClient)
                flushAndClose(context)
                return
            }
            heldSlot = true
        }
        armTimer(context)
        // Implicit TLS (RFC 8314 §3.3): the greeting waits for the handshake.
        if !settings.implicitTLS { greet(context) }
    }

    func greet(_ context: ChannelHandlerContext) {
        greeted = true
        perform(context, session.greeting())
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        idleTimer?.cancel()
        if heldSlot { settings.limiter?.disconnect(clientAddress); heldSlot = false }
        if storeSession != 0 { services.endSession(storeSession); storeSession = 0 }
        logger.info("disconnect from \(clientAddress)")
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            closeIfDone(context)
            return
        }
        // Draining: the session carries on (as Postfix's smtpd does across reload and stop).
        if case WorkerSessionEvent.draining = event { return }
        if case WorkerSessionEvent.shuttingDown = event {
            guard !closed else { return }
            // Implicit TLS before its handshake: nothing may be said in plaintext.
            guard greeted else { return flushAndClose(context) }
            perform(context, session.shutdownRequested())
            context.flush()
            return
        }
        guard case TLSEvent.handshakeCompleted(let info) = event else { return context.fireUserInboundEventTriggered(event) }
        logger.info("TLS established", metadata: ["version": "\(info.protocolVersion)", "cipher": "\(info.cipher)",
                                                  "sni": "\(info.serverName ?? "-")", "resumed": "\(info.resumed)"])
        let tls = TLSInfo(version: info.protocolVersion, cipher: info.cipher, bits: info.cipherBits)
        perform(context, session.tlsStarted(info: tls))
        if !greeted { greet(context) }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let buf = unwrapInboundIn(data)
        armTimer(context)
        perform(context, session.receive(Array(buf.readableBytesView)))
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? TLSError {
            // A peer closing without close_notify is common and harmless for a line protocol.
            if e == .uncleanShutdown || e == .closedDuringHandshake { logger.debug("TLS: \(e)") } else { logger.notice("TLS error from \(clientAddress): \(e)") }
        } else {
            logger.notice("connection error from \(clientAddress): \(error)")
        }
        context.close(promise: nil)
    }

    func armTimer(_ context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let inData = session?.isReadingData ?? false
        let t = inData ? settings.dataTimeout : settings.commandTimeout
        idleTimer = context.eventLoop.scheduleTask(in: t) { [self] in
            guard !closed else { return }
            logger.notice("timeout after \(t.nanoseconds / 1_000_000_000)s \(inData ? "in DATA" : "waiting for a command") from \(clientAddress)")
            perform(context, session.timedOut())
            context.flush()
        }
    }

    /// While the engine waits (store, delay), stop reading so a pipelining client cannot make us buffer without bound.
    func setReading(_ context: ChannelHandlerContext, _ on: Bool) {
        context.channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
        if on { context.read() }
    }

    /// Continue after an external answer: carry out the engine's next actions, flush, read on.
    func resume(_ context: ChannelHandlerContext, _ actions: [SMTPAction]) {
        guard !closed else { return }
        perform(context, actions)
        context.flush()
        if !session.isAwaitingExternal && !closed { setReading(context, true) }
        closeIfDone(context)
    }

    /// After a half-close, close once every command the client sent has been answered.
    func closeIfDone(_ context: ChannelHandlerContext) {
        guard inputClosed, !closed, !(session?.isAwaitingExternal ?? false) else { return }
        flushAndClose(context)
    }

    /// Stops the session: no more input is acted on; everything written so far goes out first.
    func flushAndClose(_ context: ChannelHandlerContext) {
        closed = true
        idleTimer?.cancel()
        // Free the client's slot now: it may reconnect as soon as it reads our last reply.
        if heldSlot { settings.limiter?.disconnect(clientAddress); heldSlot = false }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func send(_ context: ChannelHandlerContext, _ r: SMTPReply) {
        var b = context.channel.allocator.buffer(capacity: 64)
        b.writeBytes(r.encoded())
        context.write(wrapOutboundOut(b), promise: nil)
    }

    func perform(_ context: ChannelHandlerContext, _ actions: [SMTPAction]) {
        for a in actions {
            guard !closed else { return }
            switch a {
            case .reply(let r):
                if r.code >= 400 {
                    var m = envelopeMetadata()
                    if !session.lastCommand.isEmpty { m["command"] = "\(session.lastCommand)" }
                    logger.notice("reply \(r.code) \(r.enhanced ?? "") \(r.lines.first ?? "")", metadata: m)
                }
                send(context, r)
            case .checkRecipient(let path):
                lookUpRecipient(context, path.address, services.checkRecipient(path.address))
            case .checkPostmaster:
                lookUpRecipient(context, "postmaster", services.checkPostmaster())
            case .checkSender(let path):
                setReading(context, false)
                let user = session.authenticatedUser ?? ""
                services.checkSender(path?.address, user: user).hop(to: context.eventLoop).whenComplete { [self] r in
                    let allowed = (try? r.get()) ?? false
                    if !allowed { logger.notice("sender <\(path?.address ?? "")> not owned by \(user)", metadata: ["client": "\(clientAddress)"]) }
                    resume(context, session.senderChecked(allowed: allowed))
                }
            case .authenticate(let user, let password):
                setReading(context, false)
                if let l = settings.limiter, l.isBlocked(clientAddress) {
                    AuthLog.refused(logger: logger, client: clientAddress, user: user)
                    resume(context, session.authenticated(.failure))
                    continue
                }
                services.authenticate(user: user, password: password).hop(to: context.eventLoop).whenComplete { [self] r in
                    let result: AuthResult
                    switch r {
                    case .success(.success(let canonical, let sid)):
                        storeSession = sid
                        logger.info("authenticated", metadata: ["client": "\(clientAddress)", "user": "\(canonical)"])
                        result = .success(canonical)
                    case .success(.failure): result = .failure
                    case .success(.tempFail), .failure: result = .tempFail
                    }
                    resume(context, session.authenticated(result))
                }
            case .authFailed(let user, let mechanism, let failures):
                let perClient = settings.limiter?.recordFailure(clientAddress) ?? failures
                // One line per failure, stable for fail2ban (docs/fail2ban.md documents the regex).
                AuthLog.failed(logger: logger, client: clientAddress, user: user, mechanism: mechanism.rawValue, failures: perClient)
            case .delay(let d):
                setReading(context, false)
                let ms = Int64(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
                context.eventLoop.scheduleTask(in: .milliseconds(ms)) { [self] in
                    resume(context, session.delayElapsed())
                }
            case .startTLS:
                guard let tls = settings.tls else { closed = true; context.close(promise: nil); return }
                startTLS(from: context, context: tls, reply: context.channel.allocator.buffer(capacity: 0), logger: logger)
                    .whenFailure { [self] e in
                        logger.notice("STARTTLS failed for \(clientAddress): \(e)")
                        context.close(promise: nil)
                    }
            case .beginMessage(let env):
                envelope = env
                var b = context.channel.allocator.buffer(capacity: 8192)
                b.writeBytes(session.traceHeaders(for: env, id: sessionID, showAuthUser: settings.showAuthUser, date: Date()))
                traceLength = b.readableBytes
                body = b
            case .messageChunk(let bytes):
                body?.writeBytes(bytes)
            case .abortMessage:
                body = nil
            case .endMessage:
                armTimer(context)
                guard let env = envelope, var b = body else {
                    perform(context, session.deliveryAnswered(.failed))
                    continue
                }
                body = nil
                let missing = session.submissionHeaders(for: env, submission: settings.submission,
                                                        message: b.readableBytesView.dropFirst(traceLength), date: Date())
                if !missing.isEmpty {
                    var nb = context.channel.allocator.buffer(capacity: b.readableBytes + missing.count)
                    nb.writeBytes(b.readableBytesView.prefix(traceLength))
                    nb.writeBytes(missing)
                    nb.writeBytes(b.readableBytesView.dropFirst(traceLength))
                    b = nb
                }
                deliver(context, env, b)
            case .close:
                flushAndClose(context)
            }
        }
    }

    /// Asks the services about one RCPT address (or the bare postmaster) and feeds the answer back.
    func lookUpRecipient(_ context: ChannelHandlerContext, _ address: String, _ answer: EventLoopFuture<RecipientLookup>) {
        setReading(context, false)
        answer.hop(to: context.eventLoop).whenComplete { [self] r in
            let lookup: RecipientLookup
            switch r {
            case .success(let l): lookup = l
            case .failure(let e): logger.error("recipient lookup failed: \(e)"); lookup = .tempFail
            }
            let actions = session.recipientLookedUp(lookup)
            if case .reply(let reply)? = actions.first, reply.code >= 400 {
                logger.notice("recipient <\(address)> refused: \(lookup)", metadata: envelopeMetadata())
            }
            resume(context, actions)
        }
    }

    func deliver(_ context: ChannelHandlerContext, _ env: SMTPEnvelope, _ b: ByteBuffer) {
        setReading(context, false)
        let size = b.readableBytes
        let rcpts = env.deliveryAddresses
        let sid = env.authenticatedUser != nil ? storeSession : 0
        services.deliver(sender: env.sender?.address ?? "", recipients: rcpts, body: b, storeSession: sid)
            .hop(to: context.eventLoop).whenComplete { [self] r in
            let answer: DeliveryAnswer
            switch r {
            case .success(let statuses):
                answer = .statuses(statuses)
                let queued = env.remoteIndices.sorted().map { rcpts[$0] }
                logger.info("accepted", metadata: ["from": "<\(env.sender?.address ?? "")>", "to": "\(rcpts.joined(separator: ","))", "size": "\(size)",
                                                   "client": "\(clientAddress)", "status": "\(statuses.map { "\($0)" }.joined(separator: ","))",
                                                   "queued": "\(queued.joined(separator: ","))"])
            case .failure(let e as SMTPServiceError):
                logger.warning("delivery refused by the store: \(e)", metadata: envelopeMetadata())
                answer = .senderDenied
            case .failure(let e):
                logger.error("delivery failed, answering 451: \(e)", metadata: envelopeMetadata())
                answer = .failed
            }
            envelope = nil
            resume(context, session.deliveryAnswered(answer))
        }
    }

    func envelopeMetadata() -> Logger.Metadata {
        var m: Logger.Metadata = ["client": "\(clientAddress)"]
        if let e = envelope ?? session?.envelope {
            m["from"] = "<\(e.sender?.address ?? "")>"
            m["to"] = "\(e.recipients.map(\.address).joined(separator: ","))"
        }
        if let u = session?.authenticatedUser { m["user"] = "\(u)" }
        return m
    }
}
