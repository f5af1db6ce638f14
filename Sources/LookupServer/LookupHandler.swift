// NIO glue for one lookup connection (tcp_table or socketmap): decode requests in order, ask
// the store (its RPC client has the deadline: no answer in time → temporary failure, so Postfix
// defers rather than bounces), encode replies. Protocol logic lives in LookupProtocol. Pipelined
// input is bounded: reading pauses while the buffer holds a whole request (LookupInput).
import MailWorker
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
    var idleTimeout: TimeAmount
}

final class LookupHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let kind: LookupListenerKind
    let settings: LookupSettings
    let rpc: RPCClient
    var logger: Logger
    private var input: LookupInput
    private var busy = false             // one request at a time keeps replies in order
    private var closing = false
    private var idle: Scheduled<Void>?
    private var discarding = false       // inside an over-long tcp_table line
    private var inputClosed = false      // half-closed by the client: answer what it sent, then close

    init(kind: LookupListenerKind, settings: LookupSettings, rpc: RPCClient, logger: Logger) {
        self.kind = kind; self.settings = settings; self.rpc = rpc; self.logger = logger
        input = LookupInput(limits: settings.limits)
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
        var b = unwrapInboundIn(data)
        input.append(&b)
        arm(context)
        next(context)
        pace(context)
    }

    /// Holds reads (OutboundBackPressure) while the buffer is full, lets them go once it is not.
    private func pace(_ context: ChannelHandlerContext) {
        guard !closing, let change = input.readingChange() else { return }
        context.triggerUserOutboundEvent(change, promise: nil)
        if change == .resume { context.read() }
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
            switch input.next({ TCPTable.decode(prefixOf: $0, discarding: &discarding, limits: settings.limits) }) {
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
            switch input.next({ SocketMap.decode(prefixOf: $0, limits: settings.limits) }) {
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
        rpc.call(Lookup(map: map, key: key)).hop(to: loop).whenComplete { r in
            switch r {
            case .success(let v) where v.found: promise.succeed(.found(v.value))
            case .success: promise.succeed(.notFound)
            case .failure(let e as RPCError) where e.code == .invalid: promise.succeed(.permanent(e.message))
            case .failure(let e as RPCError) where e == RPCClient.timedOut: promise.succeed(.temporary(e.message))
            case .failure(let e): promise.succeed(.temporary("store unavailable: \(e)"))
            }
        }
        promise.futureResult.whenSuccess { [self] a in
            if case .temporary(let why) = a { logger.warning("lookup \(map): temporary failure: \(why)", metadata: ["key": "\(key)"]) }
            busy = false
            guard !closing else { return }
            reply(a)
            next(context)
            pace(context)
        }
    }
}

/// A lookup connection's pipelined input: a ByteBuffer consumed from the front by moving its
/// reader index (no copying per request; read bytes are discarded once they outweigh the rest).
/// Bounded: `readingChange` says to stop reading once it holds `maxBufferedRequest` bytes — a
/// whole request, so decoding always moves on — and so it holds at most that plus one read.
struct LookupInput {
    let limits: LookupLimits
    private(set) var buffer = ByteBuffer()
    private var paused = false

    init(limits: LookupLimits) { self.limits = limits }

    var count: Int { buffer.readableBytes }

    mutating func append(_ bytes: inout ByteBuffer) { buffer.writeBuffer(&bytes) }

    /// Decodes one request from the front with `decode` and drops the bytes it used.
    mutating func next<T>(_ decode: (ByteBufferView) -> (DecodeResult<T>, consumed: Int)) -> DecodeResult<T> {
        let (result, consumed) = decode(buffer.readableBytesView)
        buffer.moveReaderIndex(forwardBy: consumed)
        if buffer.readerIndex > buffer.readableBytes { buffer.discardReadBytes() }
        return result
    }

    /// Whether reading should pause (the buffer is full) or resume (it is not), when that changes.
    mutating func readingChange() -> SessionReading? {
        let full = count >= limits.maxBufferedRequest
        guard full != paused else { return nil }
        paused = full
        return full ? .pause : .resume
    }
}
