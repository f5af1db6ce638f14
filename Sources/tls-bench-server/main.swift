// tls-bench-server: an implicit-TLS sink/source server for bench/tls_bench.py, built on MailTLS.
// Not a daemon (no privilege drop, no config file); it exists to measure TLSHandler against
// `openssl s_server` on the same certificate and cipher.
//
// Protocol, chosen so one client can drive both this and `openssl s_server`:
//   - a connection whose first bytes are "GET " gets "HTTP/1.0 200 ok" and --source-bytes
//     bytes, then close_notify (what `s_server -WWW` does for a file of that size);
//   - any other connection is a sink: everything is read and dropped until the client's
//     close_notify, which is answered with ours (what plain `s_server` does).
//
// Usage: tls-bench-server --cert C --key K [--host 127.0.0.1] [--port 0] [--threads 1]
//        [--cipher LIST] [--ciphersuites LIST] [--groups LIST] [--source-bytes N]
// Prints "listening on PORT" once ready.
import NIOCore
import NIOPosix
import MailTLS
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "127.0.0.1"
    var port = 0
    var threads = 1
    var cert = ""
    var key = ""
    var cipherList = TLSDefaults.cipherList
    var cipherSuites = TLSDefaults.cipherSuites
    var groups = TLSDefaults.groups
    var sourceBytes = 200_000_000

    init(_ args: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { usage("missing value for \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--host": host = value()
            case "--port": port = Int(value()) ?? 0
            case "--threads": threads = max(1, Int(value()) ?? 1)
            case "--cert": cert = value()
            case "--key": key = value()
            case "--cipher": cipherList = value()
            case "--ciphersuites": cipherSuites = value()
            case "--groups": groups = value()
            case "--source-bytes": sourceBytes = Int(value()) ?? sourceBytes
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(args[i])")
            }
            i += 1
        }
        if cert.isEmpty || key.isEmpty { usage("--cert and --key are required") }
    }
}

/// Unbuffered output (stdout is a pipe when the benchmark runs us).
func say(_ fd: Int32, _ text: String) {
    var t = text
    t.withUTF8 { p in _ = write(fd, p.baseAddress, p.count) }
}

func usage(_ error: String?) -> Never {
    if let error { say(2, "tls-bench-server: \(error)\n") }
    say(2, "usage: tls-bench-server --cert C --key K [--host H] [--port P] [--threads N] [--cipher L] [--ciphersuites L] [--groups L] [--source-bytes N]\n")
    exit(error == nil ? 0 : 2)
}

/// Sink or source, decided by the first bytes after the handshake.
final class BenchHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode { case undecided, sink, source }
    var mode = Mode.undecided
    var remaining: Int
    let chunk: ByteBuffer

    init(sourceBytes: Int, chunk: ByteBuffer) {
        remaining = sourceBytes
        self.chunk = chunk
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard mode == .undecided else { return }
        let buf = unwrapInboundIn(data)
        if buf.readableBytesView.starts(with: Array("GET ".utf8)) {
            mode = .source
            var header = context.channel.allocator.buffer(capacity: 64)
            header.writeString("HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n")
            context.write(wrapOutboundOut(header), promise: nil)
            pump(context)
        } else {
            mode = .sink
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if mode == .source && context.channel.isWritable { pump(context) }
        context.fireChannelWritabilityChanged()
    }

    /// Writes while the channel is writable: back-pressure through TLSHandler to the socket.
    func pump(_ context: ChannelHandlerContext) {
        while remaining > 0 && context.channel.isWritable {
            let n = min(remaining, chunk.readableBytes)
            context.write(wrapOutboundOut(chunk.getSlice(at: chunk.readerIndex, length: n)!), promise: nil)
            remaining -= n
        }
        context.flush()
        if remaining == 0 {
            remaining = -1
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
signal(SIGPIPE, SIG_IGN)
let tls: TLSServerContext
do {
    tls = try TLSServerContext(configuration: TLSConfiguration(
        certificatePath: options.cert, privateKeyPath: options.key,
        cipherList: options.cipherList, cipherSuites: options.cipherSuites, groups: options.groups))
} catch {
    say(2, "tls-bench-server: \(error)\n")
    exit(1)
}
var block = ByteBufferAllocator().buffer(capacity: 65_536)
block.writeRepeatingByte(UInt8(ascii: "x"), count: 65_536)
let chunk = block
let sourceBytes = options.sourceBytes

let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
let channel: Channel
do {
    channel = try ServerBootstrap(group: group)
        .serverChannelOption(ChannelOptions.backlog, value: 4_096)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(tls.makeHandler())
                try ch.pipeline.syncOperations.addHandler(BenchHandler(sourceBytes: sourceBytes, chunk: chunk))
            }
        }
        .bind(host: options.host, port: options.port).wait()
} catch {
    say(2, "tls-bench-server: cannot listen on \(options.host):\(options.port): \(error)\n")
    exit(1)
}
say(1, "listening on \(channel.localAddress?.port ?? options.port)\n")
try channel.closeFuture.wait()
