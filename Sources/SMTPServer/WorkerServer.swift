// Shared worker plumbing: serve inherited listening sockets, cap connections per process,
// stop gracefully on SIGTERM (stop accepting, let sessions finish within the grace period),
// and exit 75 if the store connection goes away.
import Foundation
import NIOCore
import NIOPosix
import Logging

public final class WorkerServer: @unchecked Sendable {
    let group: EventLoopGroup
    let logger: Logger
    let maxConnections: Int
    let grace: Double
    private let lock = NSLock()
    private var servers: [Channel] = []
    private var active = 0
    private var draining = false
    private var exitCode: Int32 = 0
    private let done = DispatchSemaphore(value: 0)
    private var signalSource: DispatchSourceSignal?

    public init(group: EventLoopGroup, logger: Logger, maxConnections: Int, grace: Double) {
        self.group = group; self.logger = logger; self.maxConnections = maxConnections; self.grace = grace
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        s.setEventHandler { [weak self] in self?.drain(code: 0, why: "SIGTERM") }
        s.resume()
        signalSource = s
    }

    public func listen(fd: Int32, name: String, makeHandler: @escaping () -> ChannelHandler) throws {
        let ch = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 511)
            .childChannelOption(ChannelOptions.autoRead, value: true)
            .childChannelInitializer { [self] ch in
                lock.lock()
                let refused = draining || active >= maxConnections
                if !refused { active += 1 }
                lock.unlock()
                ch.closeFuture.whenComplete { [self] _ in if !refused { connectionClosed() } }
                if refused {
                    logger.warning("refusing connection: \(draining ? "shutting down" : "connection limit \(maxConnections) reached")")
                    var b = ch.allocator.buffer(capacity: 64)
                    b.writeString("421 4.7.0 Too many connections, try again later\r\n")
                    return ch.writeAndFlush(b).flatMap { ch.close() }
                }
                return ch.pipeline.addHandler(makeHandler())
            }
            .withBoundSocket(fd).wait()
        lock.lock(); servers.append(ch); lock.unlock()
        logger.debug("serving \(name)")
    }

    private func connectionClosed() {
        lock.lock()
        active -= 1
        let finished = draining && active == 0
        lock.unlock()
        if finished { done.signal() }
    }

    public func storeLost() { drain(code: 75, why: "store connection lost") }

    private func drain(code: Int32, why: String) {
        lock.lock()
        if draining { lock.unlock(); return }
        draining = true; exitCode = code
        let s = servers, idle = active == 0
        lock.unlock()
        logger.notice("\(why): no new connections, finishing open sessions (up to \(grace)s)")
        for c in s { c.close(promise: nil) }
        if idle { done.signal() }
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in done.signal() }
    }

    public func waitForever() -> Never {
        done.wait()
        logger.info("exiting", metadata: ["code": "\(exitCode)"])
        exit(exitCode)
    }
}
