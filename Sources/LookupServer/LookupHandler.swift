// NIO glue for one lookup connection (tcp_table or socketmap): decode requests in order, ask
// the store with a deadline (no answer in time → temporary failure, so Postfix defers rather
// than bounces), encode replies. Protocol logic lives in LookupProtocol.
import Foundation
import NIOCore
import Logging
import MailIPC
import LookupProtocol

enum LookupListenerKind: Equatable {
    case tcpTable(String)     // one map
    case socketmap            // maps by name

    /// Listener names in the fd contract: "socketmap@ADDR" or "tcp_table:MAP@ADDR".
    init?(listenerName: String) {
        let kind = listenerName.split(separator: "@", maxSplits: 1).first.map(String.init) ?? ""
        if kind == "socketmap" { self = .socketmap; return }
        if kind.hasPrefix("tcp_table:") { self = .tcpTable(String(kind.dropFirst(10))); return }
        return nil
    }
}

struct LookupSettings {
    var limits: LookupLimits
    var requestTimeout: TimeAmount
    var idleTimeout: TimeAmount
}

final class LookupHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let kind: LookupListenerKind
    let settings: LookupSettings
    let rpc: RPCClient
    var logger: Logger
    private var input: [UInt8] = []
    private var busy = false             // one request at a time keeps replies in order
    private var closing = false
    private var idle: Scheduled<Void>?
    private var discarding = false       // inside an over-long tcp_table line
    private var inputClosed = false      // half-closed by the client: answer what it sent, then close

    init(kind: LookupListenerKind, settings: LookupSettings, rpc: RPCClient, logger: Logger) {
        self.kind = kind; self.settings = settings; self.rpc = rpc; self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) { arm(context) }
    func channelInactive(context: ChannelHandlerContext) { idle?.cancel(); closing = true; context.fireChannelInactive() }
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
        inputClosed = true
        next(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        input.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        arm(context)
        next(context)
    }

    private func arm(_ context: ChannelHandlerContext) {
        idle?.cancel()
        idle = context.eventLoop.scheduleTask(in: settings.idleTimeout) { [self] in
            logger.debug("idle timeout"); closing = true; context.close(promise: nil)
        }
    }

    private func send(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        var b = context.channel.allocator.buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(b), promise: nil)
    }

    /// Handles buffered requests one after another.
    private func next(_ context: ChannelHandlerContext) {
        guard !busy, !closing else { return }
        defer {
            if inputClosed && !busy && !closing {
                closing = true
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in context.close(promise: nil) }
            }
        }
        switch kind {
        case .tcpTable(let map):
            switch TCPTable.decode(&input, discarding: &discarding, limits: settings.limits) {
            case .needMoreBytes: return
            case .invalid(let why):
                logger.notice("tcp_table \(map): bad request: \(why)")
                send(context, TCPTable.encode(.permanent(why)))
                next(context)
            case .request(.put):
                send(context, TCPTable.encode(.permanent("read-only table")))
                next(context)
            case .request(.get(let key)):
                guard let m = LookupMap(rawValue: map) else {
                    send(context, TCPTable.encode(.permanent("no such map: \(map)")))
                    return next(context)
                }
                ask(context, map: m, key: key) { [self] a in send(context, TCPTable.encode(a)) }
            }
        case .socketmap:
            switch SocketMap.decode(&input, limits: settings.limits) {
            case .needMoreBytes: return
            case .invalid(let why):
                // The netstring stream cannot be resynchronised: answer, then close.
                logger.notice("socketmap: bad request: \(why)")
                send(context, SocketMap.encode(.permanent(why)))
                closing = true
                context.close(promise: nil)
            case .request(let r):
                guard let m = LookupMap(rawValue: r.map) else {
                    send(context, SocketMap.encode(.permanent("no such map: \(r.map)")))
                    return next(context)
                }
                ask(context, map: m, key: r.key) { [self] a in send(context, SocketMap.encode(a)) }
            }
        }
    }

    private func ask(_ context: ChannelHandlerContext, map: LookupMap, key: String, reply: @escaping (LookupAnswer) -> Void) {
        busy = true
        let loop = context.eventLoop
        let promise = loop.makePromise(of: LookupAnswer.self)
        let deadline = loop.scheduleTask(in: settings.requestTimeout) {
            promise.succeed(.temporary("store did not answer in time"))
        }
        rpc.call(Lookup(map: map, key: key)).hop(to: loop).whenComplete { r in
            deadline.cancel()
            switch r {
            case .success(let v) where v.found: promise.succeed(.found(v.value))
            case .success: promise.succeed(.notFound)
            case .failure(let e as RPCError) where e.code == .invalid: promise.succeed(.permanent(e.message))
            case .failure(let e): promise.succeed(.temporary("store unavailable: \(e)"))
            }
        }
        promise.futureResult.whenSuccess { [self] a in
            if case .temporary(let why) = a { logger.warning("lookup \(map): temporary failure: \(why)", metadata: ["key": "\(key)"]) }
            busy = false
            guard !closing else { return }
            reply(a)
            next(context)
        }
    }
}
