// A fake store at the other end of a real RPCClient, for unit tests of a worker's glue: the
// client's pipeline runs on an EmbeddedChannel on the glue's own EmbeddedEventLoop, and each
// request is answered by a closure (or left unanswered, as a stalled store would). Frames cross
// the real codec both ways, so the glue sees exactly what the NIO client would give it.
import NIOCore
import NIOEmbedded
import MailIPC

public final class FakeStorePeer {
    public let channel: EmbeddedChannel
    public private(set) var rpc: RPCClient!
    /// Every request the client sent, in order.
    public private(set) var requests: [any RPCMessage] = []
    /// The answer to a request; nil leaves it pending (a stalled store).
    public var answer: (any RPCMessage) -> (any RPCMessage)?

    /// `loop`: the glue's EmbeddedEventLoop (EmbeddedPipe's), so one `run()` drives both;
    /// `timeout`: the client's deadline (advance the loop's time to pass it).
    public init(loop: EmbeddedEventLoop, timeout: TimeAmount? = nil, answer: @escaping (any RPCMessage) -> (any RPCMessage)?) throws {
        self.answer = answer
        channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandlers(RPCClient.handlers())
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/store")).wait()
        rpc = try RPCClient.adopt(channel, timeout: timeout).wait()
    }

    /// Runs pending work on the loop and answers every request the client has written,
    /// until nothing more happens.
    public func pump() throws {
        let decoder = FrameDecoder(maxFrame: RPCLimits.defaultMaxFrame)
        var inbound = ByteBuffer()
        repeat {
            channel.embeddedEventLoop.run()
            while let b = try channel.readOutbound(as: ByteBuffer.self) { var c = b; inbound.writeBuffer(&c) }
            var answered = false
            while let f = try decoder.decode(&inbound) {
                let m = try decodeAnyMessage(f)
                requests.append(m)
                if let reply = answer(m) {
                    var out = ByteBuffer()
                    reply.frame(requestID: f.requestID, flags: []).write(into: &out)
                    try channel.writeInbound(out)
                    answered = true
                }
            }
            channel.embeddedEventLoop.run()
            if !answered { break }
        } while true
    }

    /// The store goes away: every pending request fails as with a real lost connection.
    public func disconnect() throws { try channel.close().wait() }
}
