// One HTTP/1.1 exchange with rspamd over SwiftNIO's NIOHTTP1: connect, POST or GET with the
// given header fields, read the whole reply (bounded), close. The deadline covers all of it;
// the returned future always completes, with a reply or an RspamdError, never hanging.
import NIOCore
import NIOHTTP1
import NIOPosix

public enum RspamdError: Error, Equatable, CustomStringConvertible {
    case timeout
    case connect(String)
    case closedEarly
    case replyTooLarge
    case badReply(String)
    case http(status: Int)

    public var description: String {
        switch self {
        case .timeout: return "timed out"
        case .connect(let e): return "cannot connect: \(e)"
        case .closedEarly: return "connection closed before the reply ended"
        case .replyTooLarge: return "reply larger than \(RspamdHTTP.maxReplyBytes) bytes"
        case .badReply(let why): return "bad reply: \(why)"
        case .http(let status): return "HTTP status \(status)"
        }
    }
}

public struct RspamdHTTPReply: Sendable {
    public var status: Int
    public var body: ByteBuffer
}

public enum RspamdHTTP {
    /// rspamd's replies are a few KiB of JSON (symbols with options); anything far larger is no
    /// rspamd and is not buffered.
    public static let maxReplyBytes = 4 << 20

    /// One request on a fresh connection (rspamd's workers are on loopback: a connect costs less
    /// than the scan). `body` nil: GET.
    public static func exchange(group: EventLoopGroup, endpoint: RspamdEndpoint, path: String,
                                headers: [(String, String)], body: ByteBuffer?, timeout: TimeAmount) -> EventLoopFuture<RspamdHTTPReply> {
        let loop = group.next()
        let promise = loop.makePromise(of: RspamdHTTPReply.self)
        let collector = ReplyCollector(promise: promise)
        let deadline = loop.scheduleTask(in: timeout) { collector.fail(RspamdError.timeout) }
        promise.futureResult.whenComplete { _ in deadline.cancel() }

        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMap { channel.pipeline.addHandler(collector) }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { result in
                switch result {
                case .failure(let e):
                    collector.fail(RspamdError.connect("\(e)"))
                case .success(let channel):
                    collector.channel = channel
                    var head = HTTPRequestHead(version: .http1_1, method: body == nil ? .GET : .POST, uri: endpoint.path(path))
                    head.headers.add(name: "Host", value: endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host)
                    head.headers.add(name: "Connection", value: "close")
                    head.headers.add(name: "Content-Length", value: "\(body?.readableBytes ?? 0)")
                    for (name, value) in headers { head.headers.add(name: name, value: value) }
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { collector.fail($0) }
                    if collector.isDone { channel.close(promise: nil) }   // the deadline passed while connecting
                }
            }
        return promise.futureResult
    }
}

/// Collects one response; completes the promise exactly once (reply, error, timeout or EOF).
final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: EventLoopPromise<RspamdHTTPReply>
    private var status = 0
    private var body = ByteBuffer()
    private(set) var isDone = false
    /// Set on the event loop once connected; closed when the exchange ends.
    var channel: Channel?

    init(promise: EventLoopPromise<RspamdHTTPReply>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var chunk):
            guard body.readableBytes + chunk.readableBytes <= RspamdHTTP.maxReplyBytes else { return fail(RspamdError.replyTooLarge) }
            body.writeBuffer(&chunk)
        case .end:
            finish(.success(RspamdHTTPReply(status: status, body: body)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { fail(error) }
    func channelInactive(context: ChannelHandlerContext) { fail(RspamdError.closedEarly) }

    func fail(_ error: Error) { finish(.failure(error)) }

    private func finish(_ result: Result<RspamdHTTPReply, Error>) {
        guard !isDone else { return }
        isDone = true
        promise.completeWith(result)
        channel?.close(promise: nil)
    }
}
