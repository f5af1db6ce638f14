// NIO glue for one SMTP-family session (lmtpd and smtpd): bytes into the SMTPSession state
// machine, its actions carried out — replies, SMTPServices questions, STARTTLS, delays,
// deliveries — and the answers fed back. No protocol logic lives here; policy is the engine's.
// A message body streams to the services as it arrives: a session holds about one chunk.
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
    /// RFC 5321 §3.8, RFC 3463 4.3.0: the worker lost its store and is restarting; new clients are told so.
    static let storeUnavailable = SMTPReply(code: 421, enhanced: "4.3.0", lines: ["Service temporarily unavailable, try again later"])
}

struct SessionSettings {
    var config: SMTPSessionConfig
    var commandTimeout: TimeAmount
    var dataTimeout: TimeAmount
    var maxSessionTime: TimeAmount = .hours(1)  // then SMTPSession.sessionTimeExceeded
    var tls: TLSServerContext? = nil          // STARTTLS / implicit TLS
    var implicitTLS = false                   // smtps: the pipeline starts with a TLSHandler
    var submission = false                    // authenticated mail gets Message-ID/Date if missing
    var showAuthUser = false                  // Received: names the authenticated sender
    var limiter: ClientLimiter? = nil
    var listener = "lmtp"
    var loopbackIsTrusted = true              // AUTH before TLS allowed from 127.0.0.1 / ::1
    var stressCommandTimeout: TimeAmount? = nil   // while the role is under stress (ListenerStressEvent)
    var trustedNetworks = SMTPConfig().trustedNetworks   // may send as our domains without AUTH
    var spam: SpamHook? = nil                 // rspamd scans the message before the final reply
    var spamLearn: SpamLearnHook? = nil       // [spam] learn_*_address: learned, not delivered
}

final class SMTPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let settings: SessionSettings
    let services: SMTPServices
    var logger: Logger
    let sessionID = newSessionID()
    var session: SMTPSession!
    // The message in transfer, streamed to the store as it arrives (never held whole):
    var delivery: (any SMTPDelivery)? = nil
    var outgoing: ByteBuffer? = nil           // not yet handed on; sent at `deliveryChunkSize`
    var headerScan: HeaderScanner? = nil      // submission fix-ups: the header section is held
    var heldHeader: ByteBuffer? = nil         //   back until scanned (at most the scan's 1 MiB cap)
    var messageSize = 0
    var sendsInFlight = 0                     // while > 0 nothing more is read from the client
    var envelope: SMTPEnvelope? = nil
    var idleTimer: Scheduled<Void>? = nil
    var sessionTimer: Scheduled<Void>? = nil
    var closed = false
    /// "user\naddress" pairs the store said this login may send as: the next MAIL FROM of the
    /// connection with the same sender needs no lookup (the store checks again at delivery).
    var ownedSenders: Set<String> = []
    var greeted = false
    var clientAddress = "unknown"
    var heldSlot = false
    var storeSession: UInt64 = 0              // after a successful AUTH
    var inputClosed = false                   // the client half-closed: answer what it sent, then close
    var stressed = false                      // the listener role is under stress: short command timeout
    var replies: ByteBuffer? = nil            // replies of the current batch of actions, not yet written

    /// Body bytes handed to the services at a time (the store RPC's chunk size).
    static let deliveryChunkSize = 256 * 1024

    init(settings: SessionSettings, services: SMTPServices, logger: Logger) {
        self.settings = settings; self.services = services; self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress
        clientAddress = remote?.ipAddress ?? "localhost"   // unix socket peers are local
        // A unix-socket peer is local; a TCP loopback peer counts as local only if configured so.
        let loopback: Bool? = remote?.ipAddress == nil ? true : (settings.loopbackIsTrusted ? nil : false)
        session = SMTPSession(config: settings.config, clientAddress: clientAddress, clientIsLoopback: loopback,
                              clientIsTrusted: remote?.ipAddress == nil || IPNetwork.contains(settings.trustedNetworks, clientAddress))
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
        let limit = settings.maxSessionTime
        sessionTimer = context.eventLoop.scheduleTask(in: limit) { [self] in
            guard !closed else { return }
            logger.notice("session longer than \(limit.nanoseconds / 1_000_000_000)s from \(clientAddress): closing")
            guard greeted else { return flushAndClose(context) }   // implicit TLS: no plaintext
            perform(context, session.sessionTimeExceeded())
            context.flush()
        }
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
        sessionTimer?.cancel()
        if heldSlot { settings.limiter?.disconnect(clientAddress); heldSlot = false }
        if storeSession != 0 { services.endSession(storeSession); storeSession = 0 }
        abortMessage()                        // a body in transfer is discarded by the store
        logger.info("disconnect from \(clientAddress)")
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            closeIfDone(context)
            return
        }
        if let e = event as? ListenerStressEvent {
            stressed = e.on
            if !closed && context.channel.isActive { armTimer(context) }
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
        // RFC 3207 §4.2: STARTTLS discarded the authentication; its store session goes too.
        if storeSession != 0, session.authenticatedUser == nil { services.endSession(storeSession); storeSession = 0 }
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
        // Under stress (Postfix smtpd_timeout = ${stress?{10}:{300}}) a command is awaited less long.
        let command = stressed ? min(settings.stressCommandTimeout ?? settings.commandTimeout, settings.commandTimeout) : settings.commandTimeout
        let t = inData ? settings.dataTimeout : command
        idleTimer = context.eventLoop.scheduleTask(in: t) { [self] in
            guard !closed else { return }
            logger.notice("timeout after \(t.nanoseconds / 1_000_000_000)s \(inData ? "in DATA" : "waiting for a command") from \(clientAddress)")
            perform(context, session.timedOut())
            context.flush()
        }
    }

    /// While the engine waits (store, delay), stop reading so a pipelining client cannot make us
    /// buffer without bound. The worker's OutboundBackPressure holds the reads (autoRead stays on),
    /// so this never re-enables reading while the unsent output is over its bound.
    func setReading(_ context: ChannelHandlerContext, _ on: Bool) {
        context.triggerUserOutboundEvent(on ? SessionReading.resume : SessionReading.pause, promise: nil)
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
        writeReplies(context)
        closed = true
        idleTimer?.cancel()
        sessionTimer?.cancel()
        // Free the client's slot now: it may reconnect as soon as it reads our last reply.
        if heldSlot { settings.limiter?.disconnect(clientAddress); heldSlot = false }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Queues a reply; the replies of one batch of actions go out as one write (`writeReplies`),
    /// so the unsent-output bound (max_unsent_bytes) is not dwarfed by per-write overhead.
    func send(_ context: ChannelHandlerContext, _ r: SMTPReply) {
        if replies == nil { replies = context.channel.allocator.buffer(capacity: 256) }
        replies?.writeBytes(r.encoded())
    }

    func writeReplies(_ context: ChannelHandlerContext) {
        guard let b = replies else { return }
        replies = nil
        context.write(wrapOutboundOut(b), promise: nil)
    }

    func perform(_ context: ChannelHandlerContext, _ actions: [SMTPAction]) {
        defer { writeReplies(context) }
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
                lookUpRecipient(context, path.address, settings.spamLearn?.lookup(path.address, user: session.authenticatedUser, services: services)
                                                          ?? services.checkRecipient(path.address, declaredSize: session.envelope?.declaredSize))
            case .checkPostmaster:
                lookUpRecipient(context, "postmaster", services.checkPostmaster())
            case .checkSender(let path):
                setReading(context, false)
                let user = session.authenticatedUser ?? ""
                let key = "\(user)\n\(path?.address ?? "")"
                let check = ownedSenders.contains(key) ? context.eventLoop.makeSucceededFuture(true) : services.checkSender(path?.address, user: user)
                check.hop(to: context.eventLoop).whenComplete { [self] r in
                    guard case .success(let allowed) = r else {
                        logger.error("sender check failed: \(r)", metadata: ["client": "\(clientAddress)"])
                        return resume(context, session.senderCheckFailed())
                    }
                    if allowed { ownedSenders.insert(key) } else { logger.notice("sender <\(path?.address ?? "")> not owned by \(user)", metadata: ["client": "\(clientAddress)"]) }
                    resume(context, session.senderChecked(allowed: allowed))
                }
            case .checkSenderDomain(let domain):
                setReading(context, false)
                services.isLocalDomain(domain).hop(to: context.eventLoop).whenComplete { [self] r in
                    let local = try? r.get()
                    if local == true { logger.notice("unauthenticated sender in local domain \(domain) from an untrusted client", metadata: envelopeMetadata()) }
                    resume(context, session.senderDomainLookedUp(isLocal: local))
                }
            case .authenticate(let user, let password):
                setReading(context, false)
                // The store keeps the per-address budget (DESIGN §5) and refuses without a check.
                services.authenticate(user: user, password: password, client: clientAddress).hop(to: context.eventLoop).whenComplete { [self] r in
                    let result: AuthResult
                    switch r {
                    case .success(.success(let canonical, let sid)):
                        storeSession = sid
                        logger.info("authenticated", metadata: ["client": "\(clientAddress)", "user": "\(canonical)"])
                        result = .success(canonical)
                    case .success(.failure): result = .failure
                    case .success(.blocked):
                        AuthLog.refused(logger: logger, client: clientAddress, user: user)
                        result = .failure
                    case .success(.tempFail): result = .tempFail
                    case .failure(let e):
                        logger.error("authentication could not be checked: \(e)", metadata: ["client": "\(clientAddress)"])
                        result = .tempFail
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
                writeReplies(context)      // the 220 goes out in plaintext, before TLS
                guard let tls = settings.tls else { closed = true; context.close(promise: nil); return }
                startTLS(from: context, context: tls, reply: context.channel.allocator.buffer(capacity: 0), logger: logger)
                    .whenFailure { [self] e in
                        logger.notice("STARTTLS failed for \(clientAddress): \(e)")
                        context.close(promise: nil)
                    }
            case .beginMessage(let env):
                envelope = env
                beginMessage(context, env)
            case .messageChunk(let bytes):
                messageBytes(context, bytes)
            case .abortMessage:
                abortMessage()
            case .endMessage:
                armTimer(context)
                guard let env = envelope, let d = delivery else {
                    perform(context, session.deliveryAnswered(.failed))
                    continue
                }
                endMessage(context, env, d)
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

    /// DATA or the first BDAT chunk: the delivery starts, the trace fields lead the body.
    func beginMessage(_ context: ChannelHandlerContext, _ env: SMTPEnvelope) {
        abortMessage()
        let sid = env.authenticatedUser != nil ? storeSession : 0
        delivery = makeDelivery(context, env, storeSession: sid)
        var b = context.channel.allocator.buffer(capacity: 8192)
        b.writeBytes(session.traceHeaders(for: env, id: sessionID, showAuthUser: settings.showAuthUser, date: Date()))
        outgoing = b
        messageSize = 0
        if session.needsSubmissionHeaders(for: env, submission: settings.submission) {
            headerScan = HeaderScanner()
            heldHeader = context.channel.allocator.buffer(capacity: 8192)
        }
    }

    func messageBytes(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        guard delivery != nil else { return }
        messageSize += bytes.count
        if headerScan != nil {
            headerScan!.feed(bytes)
            heldHeader!.writeBytes(bytes)
            if headerScan!.isDone { releaseHeader(context) }
            return
        }
        outgoing!.writeBytes(bytes)
        if outgoing!.readableBytes >= Self.deliveryChunkSize { sendOutgoing(context) }
    }

    /// RFC 6409 §8.2, §8.3: the header section is scanned; a missing Message-ID or Date goes
    /// after the trace fields, before the message.
    func releaseHeader(_ context: ChannelHandlerContext) {
        guard let scan = headerScan?.result, var held = heldHeader else { return }
        headerScan = nil; heldHeader = nil
        outgoing!.writeBytes(session.submissionHeaders(scan: scan, date: Date()))
        outgoing!.writeBuffer(&held)
        if outgoing!.readableBytes >= Self.deliveryChunkSize { sendOutgoing(context) }
    }

    /// Hands the pending bytes on; reading from the client pauses until they are written, so a
    /// session holds about one chunk, whatever the message size.
    func sendOutgoing(_ context: ChannelHandlerContext) {
        guard let d = delivery, let b = outgoing, b.readableBytes > 0 else { return }
        outgoing = context.channel.allocator.buffer(capacity: 8192)
        sendsInFlight += 1
        setReading(context, false)
        d.send(b).hop(to: context.eventLoop).whenComplete { [self] _ in
            // A failed send is answered at the end: the delivery's `end` says why.
            sendsInFlight -= 1
            if sendsInFlight == 0, !closed, !session.isAwaitingExternal { setReading(context, true) }
        }
    }

    /// The message will not be delivered: the store discards what it received.
    func abortMessage() {
        delivery?.abort()
        delivery = nil; outgoing = nil; headerScan = nil; heldHeader = nil
    }

    func endMessage(_ context: ChannelHandlerContext, _ env: SMTPEnvelope, _ d: any SMTPDelivery) {
        if headerScan != nil { releaseHeader(context) }     // the message ended inside its header section
        sendOutgoing(context)
        delivery = nil; outgoing = nil
        setReading(context, false)
        let size = messageSize
        let rcpts = env.deliveryAddresses
        d.end().hop(to: context.eventLoop).whenComplete { [self] r in
            let answer: DeliveryAnswer
            switch r {
            case .success(let statuses):
                answer = .statuses(statuses)
                let queued = env.remoteIndices.sorted().map { rcpts[$0] }
                logger.info("accepted", metadata: ["from": "<\(env.sender?.address ?? "")>", "to": "\(rcpts.joined(separator: ","))", "size": "\(size)",
                                                   "client": "\(clientAddress)", "status": "\(statuses.map { "\($0)" }.joined(separator: ","))",
                                                   "queued": "\(queued.joined(separator: ","))"])
            case .failure(let e as SpamRefusal):
                logger.notice("refused by the spam filter: \(e.reply.code)", metadata: envelopeMetadata())
                envelope = nil
                return resume(context, session.deliveryFinished(Array(repeating: .failed(e.reply), count: rcpts.count)))
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
