// The worker plumbing other daemons build on: events routed to the session that watches, and
// a draining worker telling every live session (WorkerSessionEvent.shuttingDown).
import XCTest
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import Logging
import MailIPC
@testable import MailWorker

final class EventRouterTests: XCTestCase {
    func testEventsGoToTheirWatchAndUnknownOnesAreDropped() {
        let r = EventRouter()
        let got = NIOLockedValueBox<[UInt64]>([])
        r.register(watch: 1) { m in got.withLockedValue { $0.append(m.highestModSeq) } }
        r.route(MailboxChanged(watch: 1, highestModSeq: 10))
        r.route(MailboxChanged(watch: 2, highestModSeq: 11))     // nobody holds watch 2
        r.route(OK())                                            // not an event
        r.unregister(watch: 1)
        r.route(MailboxChanged(watch: 1, highestModSeq: 12))
        XCTAssertEqual(got.withLockedValue { $0 }, [10])
        XCTAssertEqual(r.dropped, 3)
        XCTAssertEqual(r.count, 0)
    }
}

final class ShutdownRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let seen: NIOLockedValueBox<[WorkerSessionEvent]>
    init(_ seen: NIOLockedValueBox<[WorkerSessionEvent]>) { self.seen = seen }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let e = event as? WorkerSessionEvent else { return }
        seen.withLockedValue { $0.append(e) }
        if case .shuttingDown = e {
            var b = context.channel.allocator.buffer(capacity: 8); b.writeString("BYE\r\n")
            context.writeAndFlush(NIOAny(b)).whenComplete { _ in context.close(promise: nil) }
        }
    }
}

final class WorkerServerTests: XCTestCase {
    /// Draining first (sessions may finish), then, when the grace period is over, shutting down.
    func testDrainingTellsEveryLiveSession() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = WorkerServer(group: group, logger: Logger(label: "test"), maxConnections: 10, grace: 0.3)
        // A listener on loopback, as the master would pass it.
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in(); addr.sin_family = sa_family_t(AF_INET); addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lfd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, 0)
        XCTAssertEqual(listen(lfd, 16), 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(lfd, $0, &len) } }
        let seen = NIOLockedValueBox<[WorkerSessionEvent]>([])
        try server.listen(fd: lfd, name: "test", refusal: []) { [ShutdownRecorder(seen)] }
        var clients: [Int32] = []
        for _ in 0..<3 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, 0)
            clients.append(c)
        }
        let deadline = Date().addingTimeInterval(5)
        while server.liveSessions < 3 && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(server.liveSessions, 3)
        server.storeLost()
        for c in clients {
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buf = [UInt8](repeating: 0, count: 16)
            let n = recv(c, &buf, 16, 0)
            XCTAssertEqual(String(decoding: buf.prefix(max(0, n)), as: UTF8.self), "BYE\r\n")
            close(c)
        }
        let events = seen.withLockedValue { $0 }.map { "\($0)" }
        XCTAssertEqual(events.filter { $0 == "draining" }.count, 3)
        XCTAssertEqual(events.filter { $0 == "shuttingDown" }.count, 3)
        XCTAssertEqual(events.firstIndex(of: "shuttingDown").map { events[..<$0].count }, 3, "every session hears draining before shuttingDown")
    }
}
