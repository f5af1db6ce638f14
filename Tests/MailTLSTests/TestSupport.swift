// Fixtures for MailTLS tests: temporary certificates, a loopback TLS server running a tiny
// test protocol, a recorder of TLS events and errors, and subprocess runners for real peers
// (openssl s_client, python3 ssl). Everything listens on 127.0.0.1 only.
import Foundation
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import XCTest
@testable import MailTLS

// MARK: files

/// A temporary directory removed at deinit.
final class TempDir {
    let path: String
    init() {
        var template = Array("/tmp/mailtls-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// A self-signed pair for `host` at `<name>.crt` / `<name>.key` (our own generator).
    func pair(_ name: String, host: String) throws -> (cert: String, key: String) {
        let c = file("\(name).crt"), k = file("\(name).key")
        XCTAssertTrue(try TLSServerContext.ensureSelfSigned(certPath: c, keyPath: k, hostname: host))
        return (c, k)
    }
}

func writeFile(_ path: String, _ text: String, mode: Int = 0o644) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

// MARK: recorder

/// Collects what server-side handlers saw, from any event loop.
final class Recorder: @unchecked Sendable {
    private let lock = NIOLock()
    private var _sessions: [TLSSessionInfo] = []
    private var _errors: [Error] = []

    func session(_ s: TLSSessionInfo) { lock.withLock { _sessions.append(s) } }
    func error(_ e: Error) { lock.withLock { _errors.append(e) } }
    var sessions: [TLSSessionInfo] { lock.withLock { _sessions } }
    var errors: [Error] { lock.withLock { _errors } }
    var tlsErrors: [TLSError] { errors.compactMap { $0 as? TLSError } }

    /// Polls `condition` until it holds or `timeout` seconds pass.
    @discardableResult
    func wait(_ timeout: Double = 5, _ condition: (Recorder) -> Bool) -> Bool {
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
final class ServiceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode { case lines, rawEcho, sink(remaining: Int, offset: Int), source }
    let recorder: Recorder
    var mode = Mode.lines
    var line = ByteBuffer()
    var sourceRemaining = 0
    var sourceOffset = 0

    init(recorder: Recorder) { self.recorder = recorder }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSEvent.handshakeCompleted(let info)? = event as? TLSEvent { recorder.session(info) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        recorder.error(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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

    func handle(_ context: ChannelHandlerContext, _ text: String) {
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

    func reply(_ context: ChannelHandlerContext, _ s: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: s + "\r\n")), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .source = mode, context.channel.isWritable { pump(context) }
    }

    /// Writes the pattern while the channel is writable (back-pressure), then closes.
    func pump(_ context: ChannelHandlerContext) {
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
final class TestServer {
    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    let recorder = Recorder()
    let tls: TLSServerContext
    var port: Int { channel.localAddress!.port! }

    init(tls: TLSServerContext, threads: Int = 2,
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

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

// MARK: NIO client

/// Client side of the test protocol: collects bytes, resolves when `expected` bytes arrived.
final class CollectingClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let received: EventLoopPromise<ByteBuffer>
    let handshake: EventLoopPromise<TLSSessionInfo>
    let expected: Int
    var buffer = ByteBuffer()

    init(expected: Int, received: EventLoopPromise<ByteBuffer>, handshake: EventLoopPromise<TLSSessionInfo>) {
        self.expected = expected
        self.received = received
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSEvent.handshakeCompleted(let info)? = event as? TLSEvent { handshake.succeed(info) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        buffer.writeBuffer(&b)
        if buffer.readableBytes >= expected { received.succeed(buffer) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        handshake.fail(error)
        received.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.ioOnClosedChannel)
        received.fail(ChannelError.ioOnClosedChannel)
    }
}

struct ClientConnection {
    let channel: Channel
    let handshake: EventLoopFuture<TLSSessionInfo>
    let received: EventLoopFuture<ByteBuffer>
}

/// Connects a MailTLS client (verification off unless a context is given).
func connectClient(group: EventLoopGroup, port: Int, serverName: String? = nil, expected: Int = .max,
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
let patternBlock: [UInt8] = (0..<(251 * 512)).map { UInt8($0 % 251) }

/// `n` bytes of the pattern starting at stream position `offset`.
func pattern(_ n: Int, offset: Int = 0) -> [UInt8] {
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
func patternMismatch(_ bytes: UnsafeRawBufferPointer, offset: Int) -> Int? {
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

// MARK: subprocesses

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }
}

/// Runs a real peer with `stdin` fed in `chunks` (a pause before each after the first), output
/// captured through files. Killed after `timeout` seconds.
func runPeer(_ argv: [String], stdin chunks: [String] = [], pause: Double = 0.3, timeout: Double = 20) throws -> ProcessResult {
    let dir = TempDir()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    _ = FileManager.default.createFile(atPath: dir.file("out"), contents: nil)
    _ = FileManager.default.createFile(atPath: dir.file("err"), contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("out")))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("err")))
    p.standardOutput = out
    p.standardError = err
    let input = Pipe()
    p.standardInput = input
    try p.run()
    let writer = input.fileHandleForWriting
    let feeder = Thread {
        for (i, c) in chunks.enumerated() {
            if i > 0 { Thread.sleep(forTimeInterval: pause) }
            do { try writer.write(contentsOf: Data(c.utf8)) } catch { break }   // the peer exited
        }
        try? writer.close()
    }
    feeder.start()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    p.waitUntilExit()
    killer.cancel()
    try? out.close()
    try? err.close()
    let o = (try? String(contentsOfFile: dir.file("out"), encoding: .utf8)) ?? ""
    let e = (try? String(contentsOfFile: dir.file("err"), encoding: .utf8)) ?? ""
    return ProcessResult(status: p.terminationStatus, stdout: o, stderr: e)
}

/// Runs a Python script (`python3 -c`) with arguments.
func python(_ script: String, _ args: [String], timeout: Double = 30) throws -> ProcessResult {
    try runPeer(["python3", "-c", script] + args, timeout: timeout)
}

/// `openssl s_client` against 127.0.0.1:port with extra flags.
func sClient(_ port: Int, _ flags: [String], stdin: [String] = [], timeout: Double = 10) throws -> ProcessResult {
    try runPeer(["openssl", "s_client", "-connect", "127.0.0.1:\(port)"] + flags, stdin: stdin, timeout: timeout)
}
