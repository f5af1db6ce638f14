// A loopback TLS server for tests, speaking a tiny line protocol, with a recorder of the TLS
// events and errors its handlers saw and a MailTLS client to drive it. Listens on 127.0.0.1 only.
import Foundation
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import MailTLS

/// Collects what server-side handlers saw, from any event loop.
public final class Recorder: @unchecked Sendable {
    private let lock = NIOLock()
    private var _sessions: [TLSSessionInfo] = []
    private var _errors: [Error] = []

    public func session(_ s: TLSSessionInfo) { lock.withLock { _sessions.append(s) } }
    public func error(_ e: Error) { lock.withLock { _errors.append(e) } }
    public var sessions: [TLSSessionInfo] { lock.withLock { _sessions } }
    public var errors: [Error] { lock.withLock { _errors } }
    public var tlsErrors: [TLSError] { errors.compactMap { $0 as? TLSError } }

    /// Polls `condition` until it holds or `timeout` seconds pass.
    @discardableResult
    public func wait(_ timeout: Double = 5, _ condition: (Recorder) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if condition(self) { return true }
            usleep(10_000)
        }
        return condition(self)
    }
}

// MARK: the test protocol

/// A line protocol for tests, spoken inside TLS:
///   "RAWECHO"    → every later byte is echoed back as is
///   "SINK n"     → read n bytes that must follow the pattern `i % 251`; reply "OK n" or "BAD k"
///   "SOURCE n"   → send n pattern bytes, then close (close_notify)
///   "QUIT"       → "BYE", then close
///   anything else → echoed as a line
public final class ServiceHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public enum Mode { case lines, rawEcho, sink(remaining: Int, offset: Int), source }
    public let recorder: Recorder
    public var mode = Mode.lines
    public var line = ByteBuffer()
    public var sourceRemaining = 0
    public var sourceOffset = 0

    public init(recorder: Recorder) { self.recorder = recorder }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSEvent.handshakeCompleted(let info)? = event as? TLSEvent { recorder.session(info) }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        recorder.error(error)
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buf = unwrapInboundIn(data)
        while buf.readableBytes > 0 {
            switch mode {
            case .rawEcho:
                context.write(wrapOutboundOut(buf), promise: nil)
                return
            case .sink(let remaining, let offset):
                let n = min(remaining, buf.readableBytes)
                let bad = buf.readSlice(length: n)!.withUnsafeReadableBytes { patternMismatch($0, offset: offset) }
                if let bad {
                    reply(context, "BAD \(offset + bad)")
                    mode = .lines
                    return
                }
                if remaining - n == 0 {
                    reply(context, "OK \(offset + n)")
                    mode = .lines
                } else {
                    mode = .sink(remaining: remaining - n, offset: offset + n)
                }
            case .source:
                return
            case .lines:
                guard let nl = buf.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                    line.writeBuffer(&buf)
                    return
                }
                var chunk = buf.readSlice(length: nl - buf.readerIndex + 1)!
                line.writeBuffer(&chunk)
                let text = String(buffer: line).trimmingCharacters(in: .whitespacesAndNewlines)
                line.clear()
                handle(context, text)
            }
        }
    }

    public func handle(_ context: ChannelHandlerContext, _ text: String) {
        let words = text.split(separator: " ")
        switch words.first.map(String.init) ?? "" {
        case "RAWECHO":
            mode = .rawEcho
        case "SINK":
            let n = Int(words.dropFirst().first ?? "") ?? 0
            mode = .sink(remaining: n, offset: 0)
            if n == 0 { reply(context, "OK 0"); mode = .lines }
        case "SOURCE":
            sourceRemaining = Int(words.dropFirst().first ?? "") ?? 0
            mode = .source
            pump(context)
        case "QUIT":
            reply(context, "BYE")
            context.close(promise: nil)
        default:
            reply(context, text)
        }
    }

    public func reply(_ context: ChannelHandlerContext, _ s: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: s + "\r\n")), promise: nil)
    }

    public func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .source = mode, context.channel.isWritable { pump(context) }
    }

    /// Writes the pattern while the channel is writable (back-pressure), then closes.
    public func pump(_ context: ChannelHandlerContext) {
        while sourceRemaining > 0 && context.channel.isWritable {
            let n = min(sourceRemaining, 32_768)
            var b = context.channel.allocator.buffer(capacity: n)
            b.writeBytes(pattern(n, offset: sourceOffset))
            sourceOffset += n
            sourceRemaining -= n
            context.write(wrapOutboundOut(b), promise: nil)
        }
        context.flush()
        if sourceRemaining == 0 {
            sourceRemaining = -1
            context.close(promise: nil)
        }
    }
}

// MARK: server

/// An implicit-TLS server (RFC 8314 §3) on 127.0.0.1 with an ephemeral port.
public final class TestServer {
    public let group: MultiThreadedEventLoopGroup
    public let channel: Channel
    public let recorder = Recorder()
    public let tls: TLSServerContext
    public var port: Int { channel.localAddress!.port! }

    public init(tls: TLSServerContext, threads: Int = 2,
         makeHandlers: (@Sendable (Recorder) -> [ChannelHandler])? = nil) throws {
        self.tls = tls
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let recorder = self.recorder
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1_024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    if let makeHandlers {
                        try ch.pipeline.syncOperations.addHandlers(makeHandlers(recorder))
                    } else {
                        try ch.pipeline.syncOperations.addHandler(tls.makeHandler())
                        try ch.pipeline.syncOperations.addHandler(ServiceHandler(recorder: recorder))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

// MARK: NIO client

/// Client side of the test protocol: collects bytes, resolves when `expected` bytes arrived.
public final class CollectingClient: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public let received: EventLoopPromise<ByteBuffer>
    public let handshake: EventLoopPromise<TLSSessionInfo>
    public let expected: Int
    public var buffer = ByteBuffer()

    public init(expected: Int, received: EventLoopPromise<ByteBuffer>, handshake: EventLoopPromise<TLSSessionInfo>) {
        self.expected = expected
        self.received = received
        self.handshake = handshake
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSEvent.handshakeCompleted(let info)? = event as? TLSEvent { handshake.succeed(info) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        buffer.writeBuffer(&b)
        if buffer.readableBytes >= expected { received.succeed(buffer) }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        handshake.fail(error)
        received.fail(error)
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.ioOnClosedChannel)
        received.fail(ChannelError.ioOnClosedChannel)
    }
}

public struct ClientConnection {
    public let channel: Channel
    public let handshake: EventLoopFuture<TLSSessionInfo>
    public let received: EventLoopFuture<ByteBuffer>
}

/// Connects a MailTLS client (verification off unless a context is given).
public func connectClient(group: EventLoopGroup, port: Int, serverName: String? = nil, expected: Int = .max,
                   client: TLSClientContext? = nil) throws -> ClientConnection {
    let ctx = try client ?? TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
    let loop = group.next()
    let received = loop.makePromise(of: ByteBuffer.self)
    let handshake = loop.makePromise(of: TLSSessionInfo.self)
    let channel = try ClientBootstrap(group: loop)
        .channelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(ctx.makeHandler(serverName: serverName))
                try ch.pipeline.syncOperations.addHandler(CollectingClient(expected: expected, received: received, handshake: handshake))
            }
        }
        .connect(host: "127.0.0.1", port: port).wait()
    return ClientConnection(channel: channel, handshake: handshake.futureResult, received: received.futureResult)
}

/// `i % 251` repeated: a pattern whose every byte position is checkable.
public let patternBlock: [UInt8] = (0..<(251 * 512)).map { UInt8($0 % 251) }

/// `n` bytes of the pattern starting at stream position `offset`.
public func pattern(_ n: Int, offset: Int = 0) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(n)
    var pos = offset
    while out.count < n {
        let start = pos % 251
        let take = min(n - out.count, patternBlock.count - start)
        out.append(contentsOf: patternBlock[start..<(start + take)])
        pos += take
    }
    return out
}

/// Index of the first byte of `bytes` that breaks the pattern at `offset`, or nil.
public func patternMismatch(_ bytes: UnsafeRawBufferPointer, offset: Int) -> Int? {
    var done = 0
    while done < bytes.count {
        let start = (offset + done) % 251
        let take = min(bytes.count - done, patternBlock.count - start)
        let equal = patternBlock.withUnsafeBytes { memcmp(bytes.baseAddress! + done, $0.baseAddress! + start, take) == 0 }
        if !equal {
            for i in 0..<take where bytes[done + i] != patternBlock[start + i] { return done + i }
        }
        done += take
    }
    return nil
}
