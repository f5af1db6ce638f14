// NIO glue for one SMTP-family session: bytes into the SMTPSession state machine, its
// actions carried out (replies, store lookups, deliveries). No protocol logic lives here.
import Foundation
import NIOCore
import Logging
import MailIPC
import SMTPProtocol

extension SMTPReply {
    /// RFC 5321 §4.2.3: 421 service not available, closing — too many connections.
    static let tooManyConnections = SMTPReply(code: 421, enhanced: "4.7.0", lines: ["Too many connections, try again later"])
}

struct SessionSettings {
    var config: SMTPSessionConfig
    var commandTimeout: TimeAmount
    var dataTimeout: TimeAmount
}

final class SMTPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let settings: SessionSettings
    let rpc: RPCClient
    var logger: Logger
    let sessionID = newSessionIDString()
    var session: SMTPSession!
    var body: ByteBuffer? = nil
    var envelope: SMTPEnvelope? = nil
    var inData = false
    var idleTimer: Scheduled<Void>? = nil
    var closed = false
    var clientAddress = "unknown"

    init(settings: SessionSettings, rpc: RPCClient, logger: Logger) {
        self.settings = settings; self.rpc = rpc; self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    func channelActive(context: ChannelHandlerContext) {
        if let a = context.channel.remoteAddress, let ip = a.ipAddress { clientAddress = ip }
        else { clientAddress = "localhost" }   // unix socket peer
        session = SMTPSession(config: settings.config, clientAddress: clientAddress)
        logger.info("connect from \(clientAddress)")
        perform(context, session.greeting())
        context.flush()
        armTimer(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        idleTimer?.cancel()
        logger.info("disconnect from \(clientAddress)")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buf = unwrapInboundIn(data)
        armTimer(context)
        perform(context, session.receive(Array(buf.readableBytesView)))
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.notice("connection error: \(error)")
        context.close(promise: nil)
    }

    func armTimer(_ context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let t = inData ? settings.dataTimeout : settings.commandTimeout
        idleTimer = context.eventLoop.scheduleTask(in: t) { [self] in
            guard !closed else { return }
            logger.notice("timeout after \(t.nanoseconds / 1_000_000_000)s \(inData ? "in DATA" : "waiting for a command")")
            perform(context, session.timedOut())
            context.flush()
        }
    }

    /// While the engine waits for the store, stop reading so a pipelining client cannot make us buffer without bound.
    func setReading(_ context: ChannelHandlerContext, _ on: Bool) {
        context.channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
        if on { context.read() }
    }

    func perform(_ context: ChannelHandlerContext, _ actions: [SMTPAction]) {
        for a in actions {
            guard !closed else { return }
            switch a {
            case .reply(let r):
                if r.code >= 400 { logger.notice("reply \(r.code) \(r.enhanced ?? "") \(r.lines.first ?? "")", metadata: envelopeMetadata()) }
                var b = context.channel.allocator.buffer(capacity: 64)
                b.writeBytes(r.encoded())
                context.write(wrapOutboundOut(b), promise: nil)
            case .checkRecipient(let path):
                setReading(context, false)
                let address = path.address
                rpc.call(.lookupRecipient(address)).hop(to: context.eventLoop).whenComplete { [self] r in
                    let check: RecipientCheck
                    switch r {
                    case .success(.recipient(.ok, _)): check = .accept
                    case .success(.recipient(.unknownUser, _)): check = .unknown
                    case .success(.recipient(.notLocal, _)): check = .relayDenied
                    case .success: check = .tempFail
                    case .failure(let e): logger.error("recipient lookup failed: \(e)"); check = .tempFail
                    }
                    if case .accept = check {} else { logger.notice("recipient <\(address)> refused: \(check)") }
                    guard !closed else { return }
                    perform(context, session.recipientChecked(check))
                    context.flush()
                    if !session.isAwaitingExternal && !closed { setReading(context, true) }
                }
            case .beginMessage(let env):
                envelope = env
                inData = true
                var b = context.channel.allocator.buffer(capacity: 8192)
                b.writeBytes(TraceHeaders.returnPath(env.sender))
                b.writeBytes(TraceHeaders.received(from: env.helo, clientAddress: clientAddress, by: settings.config.hostname,
                                                   with: session.receivedProtocol(), id: sessionID,
                                                   for: env.recipients.count == 1 ? env.recipients[0] : nil, date: Date()))
                body = b
            case .messageChunk(let bytes):
                body?.writeBytes(bytes)
            case .abortMessage:
                body = nil
            case .endMessage:
                inData = false
                armTimer(context)
                guard let env = envelope, let b = body else {
                    perform(context, session.deliveryFinished(Array(repeating: .failed(.localError), count: envelope?.recipients.count ?? 1)))
                    continue
                }
                body = nil
                setReading(context, false)
                let size = b.readableBytes
                let rcpts = env.recipients.map(\.address)
                rpc.deliver(sender: env.sender?.address ?? "", recipients: rcpts, body: b).hop(to: context.eventLoop).whenComplete { [self] r in
                    var results: [DeliveryResult]
                    switch r {
                    case .success(let statuses):
                        results = statuses.map {
                            switch $0 {
                            case .ok: return .delivered
                            case .unknownUser: return .failed(.mailboxUnknown)
                            case .notLocal: return .failed(.relayDenied)
                            case .overQuota: return .failed(.mailboxFull)
                            case .tempFail, .rejected: return .failed(.localError)
                            }
                        }
                        logger.info("delivered", metadata: ["from": "<\(env.sender?.address ?? "")>", "to": "\(rcpts.joined(separator: ","))", "size": "\(size)",
                                                            "status": "\(statuses.map { "\($0)" }.joined(separator: ","))"])
                    case .failure(let e):
                        logger.error("delivery failed, answering 451: \(e)", metadata: envelopeMetadata())
                        results = Array(repeating: .failed(.localError), count: rcpts.count)
                    }
                    if settings.config.dialect == .smtp && results.count > 1 {
                        results = [results.allSatisfy { if case .delivered = $0 { return true }; return false } ? .delivered : .failed(.localError)]
                    }
                    envelope = nil
                    guard !closed else { return }
                    perform(context, session.deliveryFinished(results))
                    context.flush()
                    if !session.isAwaitingExternal && !closed { setReading(context, true) }
                }
            case .startTLS, .authenticate, .authFailed, .delay, .checkSender:
                break   // smtpd-only actions; lmtpd's configuration never produces them
            case .close:
                closed = true
                idleTimer?.cancel()
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }

    func envelopeMetadata() -> Logger.Metadata {
        var m: Logger.Metadata = ["client": "\(clientAddress)"]
        if let e = envelope ?? session.envelope {
            m["from"] = "<\(e.sender?.address ?? "")>"
            m["to"] = "\(e.recipients.map(\.address).joined(separator: ","))"
        }
        return m
    }
}

func newSessionIDString() -> String {
    String(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff, radix: 36).uppercased()
}
