// Streamed replies with a credit window (DESIGN §2), over a real socketpair: the sender never
// has more than the window in flight, so a slow reader does not grow the sender's memory, and
// the client sees every item in order, then the final reply.
import XCTest
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers

@testable import MailIPC

/// A peer that answers Hello, and answers an Export with `count` chunks of `size` bytes.
final class StreamingPeer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    let pool: NIOThreadPool, count: Int, size: Int, window: UInt32
    let produced = NIOLockedValueBox(0)
    var sender: RPCStreamSender?
    init(pool: NIOThreadPool, count: Int, size: Int, window: UInt32) { self.pool = pool; self.count = count; self.size = size; self.window = window }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let f = unwrapInboundIn(data)
        switch try? decodeAnyMessage(f) {
        case is Hello: context.writeAndFlush(NIOAny(HelloOK(role: "test").frame(requestID: f.requestID)), promise: nil)
        case let c as StreamCredit: sender?.grant(c.frames)
        case is Export:
            let count = self.count, size = self.size, produced = self.produced
            sender = RPCStreamSender(id: f.requestID, channel: context.channel, pool: pool, window: window, produce: { max in
                let n = min(max, count - produced.withLockedValue { $0 })
                guard n > 0 else { return nil }
                produced.withLockedValue { $0 += n }
                return (0..<n).map { _ in ExportItem.chunk(ByteBuffer(repeating: 0x61, count: size)) }
            }, finish: { ExportEnd(count: UInt32(count)) }, onError: { ErrorReply(.internal, "\($0)") })
            sender!.start()
        default: context.close(promise: nil)
        }
    }
}

final class StreamTests: XCTestCase {
    func testASlowReaderHoldsTheSenderToTheWindow() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let pool = NIOThreadPool(numberOfThreads: 2); pool.start()
        defer { try? pool.syncShutdownGracefully(); try? group.syncShutdownGracefully() }
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        let window: UInt32 = 4, count = 200
        let peer = StreamingPeer(pool: pool, count: count, size: 64 * 1024, window: window)
        _ = try ClientBootstrap(group: group).channelInitializer { ch in
            ch.pipeline.addHandlers([ByteToMessageHandler(FrameToMessageDecoder(maxFrame: 1 << 20)), FrameEncoder(), peer])
        }.withConnectedSocket(pair[1]).wait()
        let client = try RPCClient.connect(fd: pair[0], group: group, client: "test").wait()
        let loop = client.channel.eventLoop
        nonisolated(unsafe) var consumed = 0, worstAhead = 0
        let end = try client.stream(Export(user: "x"), window: window) { item in
            guard case .chunk(let b) = item, b.readableBytes == 64 * 1024 else { return loop.makeFailedFuture(RPCError("bad item")) }
            // The reader is slow: every item takes a millisecond to consume.
            return loop.scheduleTask(in: .milliseconds(1)) {
                consumed += 1
                worstAhead = max(worstAhead, peer.produced.withLockedValue { $0 } - consumed)
            }.futureResult
        }.wait()
        XCTAssertEqual(end.count, UInt32(count))
        XCTAssertEqual(consumed, count)
        XCTAssertLessThanOrEqual(worstAhead, Int(window), "the sender ran ahead of the reader")
        XCTAssertLessThanOrEqual(peer.sender!.maxInFlight, window)
    }
}
