// Shared worker plumbing: serve inherited listening sockets, cap connections per process and
// per listener role (with stress mode per role), bound every session's unsent output
// (OutboundBackPressure), route the store's events to sessions, stop gracefully on SIGTERM
// (every live session is told, WorkerSessionEvent.shuttingDown), and exit EX_TEMPFAIL (75) if
// the store connection goes away (until then, new clients get the protocol's "service
// unavailable" refusal, not silence).
import Foundation
import NIOCore
import NIOPosix
import Logging
import CMailShims
import MailIPC
import MailPrivsep

public final class WorkerServer: @unchecked Sendable {
    let group: EventLoopGroup
    let logger: Logger
    let grace: Double
    /// Every session's unsent-output bound (`max_unsent_bytes`): reads stop above it.
    let maxUnsentBytes: Int
    private let lock = NSLock()
    private var accounting: ListenerAccounting
    private var live: [ObjectIdentifier: (channel: Channel, role: String)] = [:]
    /// The store's events for this process's sessions.
    public let events = EventRouter()
    private var draining = false
    private var storeGone = false
    private var exitCode: Int32 = 0
    private let done = DispatchSemaphore(value: 0)
    private var signalSource: DispatchSourceSignal?

    /// `maxConnections`: per process, every listener together; `roleCaps`: per listener role
    /// ("mta", ...: the listener name before "@"); `stress`: stress mode for the capped roles.
    public init(group: EventLoopGroup, logger: Logger, maxConnections: Int, grace: Double,
                maxUnsentBytes: Int = OutboundBackPressure.defaultMaxUnsentBytes,
                roleCaps: [String: Int] = [:], stress: StressPolicy? = nil) {
        self.group = group; self.logger = logger; self.grace = grace; self.maxUnsentBytes = maxUnsentBytes
        accounting = ListenerAccounting(maxTotal: maxConnections, roleCaps: roleCaps, stress: stress)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        s.setEventHandler { [weak self] in self?.drain(code: 0, why: "SIGTERM") }
        s.resume()
        signalSource = s
    }

    /// Serves one inherited listener. Several worker processes share it, so accepting is done
    /// here rather than by NIO's server channel: each process polls and accepts without
    /// blocking, and the ones that lose the race just see EAGAIN (NIO's server channel asserts
    /// on that). Accepted sockets join the event loops as ordinary channels.
    /// `refusal`: the bytes a client gets when the process is full; `unavailable`: when the
    /// store is gone (default: `refusal`).
    public func listen(fd: Int32, name: String, refusal: [UInt8], unavailable: [UInt8]? = nil,
                       makeHandlers: @escaping () -> [ChannelHandler]) throws {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw ListenError(name: name, errno: errno)
        }
        let t = Thread { [self] in acceptLoop(fd: fd, name: name, refusal: refusal, unavailable: unavailable ?? refusal, makeHandlers: makeHandlers) }
        t.name = "accept \(name)"
        t.start()
        logger.debug("serving \(name)")
    }

    struct ListenError: Error, CustomStringConvertible {
        var name: String, errno: Int32
        var description: String { "listener \(name): \(String(cString: strerror(errno)))" }
    }

    private func acceptLoop(fd: Int32, name: String, refusal: [UInt8], unavailable: [UInt8], makeHandlers: @escaping () -> [ChannelHandler]) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            // Without the store, keep accepting until the exit, to tell clients so.
            lock.lock(); let stop = draining && !storeGone; lock.unlock()
            if stop { return }
            pfd.revents = 0
            if poll(&pfd, 1, 250) <= 0 { continue }
            // Draining began while we waited: leave the connection in the listener's backlog,
            // where the next process takes it (a restart under socket activation, issue 15),
            // instead of accepting it only to refuse it with "shutting down".
            lock.lock(); let stopNow = draining && !storeGone; lock.unlock()
            if stopNow { return }
            let conn = mail_accept_cloexec(fd)
            if conn < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    logger.error("accept on \(name): \(String(cString: strerror(errno))); pausing")
                    usleep(100_000); continue
                default:
                    logger.error("accept on \(name): \(String(cString: strerror(errno))); listener closed")
                    return
                }
            }
            let role = listenerRole(name)
            lock.lock()
            let admitted: Result<ListenerAccounting.StressChange, ListenerAccounting.RefusalError>
            let stopping = draining, lost = storeGone
            admitted = stopping ? .failure(.init(refusal: .process(0))) : accounting.admit(role)
            lock.unlock()
            let stressChange: ListenerAccounting.StressChange
            switch admitted {
            case .success(let change): stressChange = change
            case .failure(let e):
                let why: String
                switch e.refusal {
                case _ where lost: why = "store unavailable"
                case _ where stopping: why = "shutting down"
                case .process(let n): why = "connection limit \(n) reached"
                case .role(let n): why = "\(role) connection limit \(n) reached"
                }
                logger.warning("refusing connection on \(name): \(why)")
                // Empty on implicit-TLS listeners: closed without a plaintext byte (RFC 8314 §3).
                let bytes = lost ? unavailable : refusal
                if !bytes.isEmpty { _ = bytes.withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) } }
                close(conn)
                continue
            }
            announceStress(role, stressChange)
            ClientBootstrap(group: group)
                // A client may pipeline and then half-close (shutdown SHUT_WR): answer it all first.
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                // Unwritable above the bound: OutboundBackPressure then holds reads.
                .channelOption(ChannelOptions.writeBufferWaterMark, value: OutboundBackPressure.waterMark(maxUnsentBytes: maxUnsentBytes))
                // One socket read per read(), so "what one read brings" is one buffer, not four.
                .channelOption(ChannelOptions.maxMessagesPerRead, value: OutboundBackPressure.readsPerRead)
                .channelOption(ChannelOptions.recvAllocator, value: OutboundBackPressure.recvAllocator)
                .channelInitializer { [self] ch in
                    let key = ObjectIdentifier(ch)
                    lock.lock(); live[key] = (ch, role); let stressed = accounting.isStressed(role); lock.unlock()
                    ch.closeFuture.whenComplete { [self] _ in
                        lock.lock(); live[key] = nil; lock.unlock()
                        connectionClosed(role)
                    }
                    do {
                        let sync = ch.pipeline.syncOperations
                        try sync.addHandler(OutboundBackPressure())
                        try sync.addHandlers(makeHandlers())
                        // Under stress from the start: the session hears it before channelActive.
                        if stressed { sync.fireUserInboundEventTriggered(ListenerStressEvent(on: true)) }
                        return ch.eventLoop.makeSucceededVoidFuture()
                    } catch {
                        return ch.eventLoop.makeFailedFuture(error)
                    }
                }
                .withConnectedSocket(conn)
                .whenFailure { [self] e in
                    logger.error("cannot adopt connection: \(e)")
                    close(conn)
                    connectionClosed(role)
                }
        }
    }

    /// After the grace period, how long sessions have to say goodbye before the process exits.
    public static let goodbyeTime = 1.0

    /// Sessions open now (tests, status).
    public var liveSessions: Int { lock.lock(); defer { lock.unlock() }; return live.count }

    /// The connection counts now (tests, status).
    public var connections: ListenerAccounting { lock.lock(); defer { lock.unlock() }; return accounting }

    private func connectionClosed(_ role: String) {
        lock.lock()
        let change = accounting.release(role)
        let finished = draining && accounting.total == 0
        lock.unlock()
        announceStress(role, change)
        if finished { done.signal() }
    }

    /// Logs a role's stress mode beginning or ending and tells its live sessions.
    private func announceStress(_ role: String, _ change: ListenerAccounting.StressChange) {
        guard let on = change else { return }
        lock.lock()
        let sessions = live.values.filter { $0.role == role }.map(\.channel)
        let n = accounting.byRole[role, default: 0], cap = accounting.roleCaps[role] ?? accounting.maxTotal
        lock.unlock()
        if on {
            logger.notice("stress: \(role) has \(n) of \(cap) connections; idle timeouts shortened", metadata: ["role": "\(role)"])
        } else {
            logger.notice("stress ended: \(role) has \(n) of \(cap) connections", metadata: ["role": "\(role)"])
        }
        for ch in sessions { ch.pipeline.fireUserInboundEventTriggered(ListenerStressEvent(on: on)) }
    }

    public func storeLost() {
        lock.lock(); storeGone = true; lock.unlock()
        drain(code: ExitStatus.tempFail.rawValue, why: "store connection lost")
    }

    private func drain(code: Int32, why: String) {
        lock.lock()
        if draining { lock.unlock(); return }
        draining = true; exitCode = code
        let idle = accounting.total == 0
        let sessions = live.values.map(\.channel)
        lock.unlock()
        logger.notice("\(why): no new connections, finishing open sessions (up to \(grace)s)")
        // Tell every live session, so each can finish and say goodbye in its protocol's words.
        for ch in sessions { ch.pipeline.fireUserInboundEventTriggered(WorkerSessionEvent.draining) }
        if idle { done.signal() }
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in
            // RFC 5321 §3.8: a server that is shut down should send 421 before it closes.
            lock.lock(); let left = live.values.map(\.channel); lock.unlock()
            for ch in left { ch.pipeline.fireUserInboundEventTriggered(WorkerSessionEvent.shuttingDown) }
            DispatchQueue.global().asyncAfter(deadline: .now() + (left.isEmpty ? 0 : Self.goodbyeTime)) { [self] in done.signal() }
        }
    }

    public func waitForever() -> Never {
        done.wait()
        logger.info("exiting", metadata: ["code": "\(exitCode)"])
        exit(exitCode)
    }
}

extension WorkerServer {
    /// The rest of every worker's start: the store connection on the inherited fd (EX_TEMPFAIL if
    /// it cannot be had; the master retries once the store is up), every inherited listener
    /// served with the handlers `handlers(rpc, listenerName)` makes per connection, then run
    /// until SIGTERM or the store goes away. `storeTimeout` (seconds, 0: none): the deadline
    /// of every store request (RPCClient.timeout). `unavailable`: the refusal once the store is gone.
    /// `implicitTLS(listenerName)`: the listener speaks TLS from the first byte, so a refused
    /// connection is closed without a plaintext refusal (a handshake would cost an overloaded
    /// worker the most; the client sees a failed connection and retries).
    public func run(process: String, listeners: [(fd: Int32, name: String)], refusal: [UInt8], unavailable: [UInt8]? = nil,
                    storeTimeout: Double = 0, readyMetadata: Logger.Metadata = [:],
                    implicitTLS: @escaping (String) -> Bool = { _ in false },
                    handlers: @escaping (RPCClient, String) -> () -> [ChannelHandler]) -> Never {
        do {
            let timeout: TimeAmount? = storeTimeout > 0 ? .nanoseconds(Int64(storeTimeout * 1e9)) : nil
            let rpc = try RPCClient.connect(fd: FDContract.storeFD, group: group, client: "\(process)[\(getpid())]", timeout: timeout,
                                            onEvent: { [events] in events.route($0) }, onClose: { [self] in storeLost() }).wait()
            for (fd, raw) in listeners {
                let name = FDContract.decodeName(raw)
                try listen(fd: fd, name: name, refusal: implicitTLS(name) ? [] : refusal,
                           unavailable: implicitTLS(name) ? [] : unavailable, makeHandlers: handlers(rpc, name))
            }
        } catch {
            logger.critical("cannot start: \(error)"); exit(ExitStatus.tempFail)
        }
        var m = readyMetadata
        m["listeners"] = "\(listeners.count)"; m["uid"] = "\(getuid())"
        logger.info("\(process) ready", metadata: m)
        waitForever()
    }
}
