// The real store service in the test process: a SQLite store in a temporary directory behind
// StoreService, reached over socketpairs exactly as the master connects workers, with the
// role given by the test. Clients: the blocking one (CLI-style) and the NIO one (worker-style).
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailIPC
import MailStore
import StoreServer

public final class InProcessStore {
    public let dir: TempDir
    public let store: SQLiteMailStore
    public let service: StoreService
    public let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool

    /// `maxBuffered`: body bytes one connection may have queued for writing to staged files
    /// before the store stops reading it (StoreService's back-pressure threshold).
    /// `authBudget`: its logins' budget.
    public init(maxDelivery: Int = 1 << 20, maxBuffered: Int = 2 << 20, inlineMax: Int = 64 * 1024,
                authBudget: AuthBudget = AuthBudget(maxFailures: 10, window: 600),
                clock: @escaping @Sendable () -> Date = { Date() }) throws {
        dir = TempDir()
        store = try SQLiteMailStore(dataDir: dir.path, fsync: false, inlineMax: inlineMax, clock: clock)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        service = StoreService(store: store, group: group, pool: pool, maxDelivery: maxDelivery, maxFrame: RPCLimits.defaultMaxFrame,
                               maxBuffered: maxBuffered, authBudget: authBudget, logger: Logger(label: "store"))
    }

    deinit {
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    /// A connected socketpair whose far end the store has adopted with `role`.
    func socket(_ role: Role) throws -> Int32 {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw RPCError("socketpair: \(errno)")
        }
        _ = try service.adopt(fd: pair[1], role: role).wait()
        return pair[0]
    }

    /// A blocking client with `role` (receive timeout 5 s); greeted unless `hello` is false.
    public func connect(_ role: Role, hello: Bool = true) throws -> BlockingRPCConnection {
        let fd = try socket(role)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let c = BlockingRPCConnection(fd: fd)
        if hello { try c.hello(client: "test") }
        return c
    }

    /// The NIO client a worker uses, with its events routed to `onEvent`.
    public func nioClient(_ role: Role, onEvent: @escaping @Sendable (any RPCMessage) -> Void = { _ in }) throws -> RPCClient {
        try RPCClient.connect(fd: try socket(role), group: group, client: "test", onEvent: onEvent).wait()
    }
}
