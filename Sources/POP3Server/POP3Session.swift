// The POP3 engine's driver (DESIGN §4): one per connection, run as one task that takes the
// glue's inputs in order, feeds them to POP3Engine and carries out its actions against
// POP3Services and POP3Connection: logins (delayed, counted and logged in the fail2ban shape),
// the maildrop lock and snapshot, RETR/TOP streamed by range with dot-stuffing (never a whole
// message in memory), and the UPDATE delete. Policy stays in the engine. While the task waits
// for input, the glue may hand a line to `receiveNow` on its event loop: what needs no waiting
// (a reply, RETR of a message read ahead) is written there at once, the rest goes to the task.
import Foundation
import Logging
import NIOCore
import MailCore
import POP3Protocol

/// What the session asks of its connection. Calls come from the session's task, in order.
public protocol POP3Connection: AnyObject, Sendable {
    /// Queues bytes for the client and flushes; suspends while the client is not reading (the
    /// connection is over its unsent-bytes bound) until they are written.
    func write(_ bytes: ByteBuffer) async
    /// Upgrades to TLS after "+OK" to STLS was written; plaintext pipelined after the command
    /// is discarded (RFC 2595 §4). Throws if the handshake fails (the session then ends).
    func startTLS() async throws
    /// On the connection's event loop, from `receiveNow`: queues bytes for the client and
    /// flushes, without waiting (the glue calls `receiveNow` only while the channel is writable).
    func writeNow(_ bytes: ByteBuffer)
    /// Closes the connection after what was written is flushed.
    func close() async
    /// The login succeeded (the glue switches from the login timeout to autologout).
    func authenticated(user: String)
    var isTLS: Bool { get }
}

/// What the glue feeds the session.
public enum POP3SessionInput: Sendable, Equatable {
    case line(POP3LineFramer.Event)
    /// The client closed or the connection failed: nothing is deleted (RFC 1939 §6).
    case closed
    /// The worker is shutting down.
    case shutdown
    /// The login timeout or autologout fired.
    case timeout
    /// What `receiveNow` left for the task to carry out (from the first action that waits).
    case perform([POP3Action])
}

public struct POP3SessionConfig: Sendable {
    public var engine: POP3EngineConfig
    /// Seconds a failed login waits before its answer (DESIGN §5).
    public var authFailureDelay: Double
    /// RETR reads the next small messages ahead (off only to test the ranged path alone).
    public var readAhead: Bool
    public init(engine: POP3EngineConfig, authFailureDelay: Double = 2, readAhead: Bool = true) {
        self.engine = engine; self.authFailureDelay = authFailureDelay; self.readAhead = readAhead
    }
}

public final class POP3Session: @unchecked Sendable {
    let config: POP3SessionConfig
    let services: any POP3Services
    let connection: any POP3Connection
    let client: String
    var logger: Logger
    var engine: POP3Engine
    /// Called after each failed login; returns this client's recent failures (the log line's
    /// `failures=`). Set by the glue (ClientLimiter); nil counts per session.
    public var recordAuthFailure: (@Sendable () -> Int)?
    /// Where the session's own task runs (the glue's event loop); the read-ahead's task runs
    /// there too instead of waking a thread of the global pool per batch. nil: no preference.
    public var taskExecutor: (any TaskExecutor)?
    /// What is queued for the client; reused once the connection has let go of it.
    private var output = ByteBufferAllocator().buffer(capacity: POP3Session.outputCapacity)
    private var finished = false
    /// For the logout line (Dovecot's retr=%r/%b): RETRs and their octets, and how many of them
    /// waited for a read-ahead batch still on its way from the store.
    private var retrieved = 0, retrievedOctets = 0, batchWaits = 0
    /// The next messages' bytes, read ahead in one store round trip while the client is still
    /// taking this one (clients RETR in order). Bounded: one batch in flight, and at most
    /// `readAheadBytes` held (below a store frame, so a batch comes whole).
    private var ready: [UInt32: ByteBuffer] = [:]
    private var batch: (uids: Set<UInt32>, read: Task<[UInt32: ByteBuffer], Error>, arrived: BatchArrival)?
    static let readAheadCount = 64                  // Pop3Read.maxUIDs
    static let readAheadBytes = 768 * 1024
    /// The next batch is asked for when this few read-ahead messages are left: early enough
    /// that the store's batch (~10 µs a message of store CPU, on a machine it shares) is in
    /// before the client has taken them (a RETR from read-ahead costs about twice that), so no
    /// RETR waits for it; the logout line counts the RETRs that did.
    static let readAheadLow = readAheadCount * 3 / 4
    static let outputCapacity = 16 * 1024
    /// Flush when this much output is queued (RETR of a large message goes out in pieces).
    static let flushThreshold = 64 * 1024

    public init(config: POP3SessionConfig, services: any POP3Services, connection: any POP3Connection, client: String,
                clientIsLoopback: Bool, logger: Logger) {
        self.config = config; self.services = services; self.connection = connection; self.client = client; self.logger = logger
        engine = POP3Engine(config: config.engine, tlsActive: connection.isTLS, clientIsLoopback: clientIsLoopback)
    }

    /// Greets, then handles every input until QUIT, `.closed`, `.shutdown` or a fatal error;
    /// returns after closing the connection and the store session (which frees the lock).
    public func run(_ inputs: AsyncStream<POP3SessionInput>) async {
        await start()
        for await input in inputs {
            if await handle(input) { break }
        }
        await end()
    }

    func start() async {
        await perform(engine.greeting())
        await flush()
    }

    /// One input, carried out and flushed; true when the session is over.
    func handle(_ input: POP3SessionInput) async -> Bool {
        switch input {
        case .line(let event): await perform(engine.receive(event))
        case .timeout: await perform(engine.timeout())
        case .shutdown: await perform(engine.shutdown())
        case .perform(let actions): await perform(actions)
        case .closed: finished = true
        }
        await flush()
        return finished
    }

    func end() async {
        if engine.maildrop != nil {
            logger.info("logout", metadata: ["retr": "\(retrieved)/\(retrievedOctets)", "waited-for-read-ahead": "\(batchWaits)"])
        }
        batch?.read.cancel()
        services.close()
        await connection.close()
    }

    /// The fast path, for the glue on the connection's event loop while the session's task
    /// waits for its next input (so nothing else touches the session): in TRANSACTION, `event`
    /// goes through the engine as in `handle`, the actions that need no waiting (replies, RETR
    /// of a message read ahead) are written at once, and the rest, from the first that waits,
    /// is returned for the task (`.perform`). nil outside TRANSACTION: hand the line to the task.
    public func receiveNow(_ event: POP3LineFramer.Event) -> [POP3Action]? {
        guard engine.phase == .transaction, !finished else { return nil }
        let rest = performNow(engine.receive(event)[...])
        if output.readableBytes > 0 {
            connection.writeNow(output)
            output.clear()
        }
        return Array(rest)
    }

    // MARK: output

    private func emit(_ bytes: [UInt8]) async {
        output.writeBytes(bytes)
        if output.readableBytes >= Self.flushThreshold { await flush() }
    }

    private func flush() async {
        guard output.readableBytes > 0 else { return }
        await connection.write(output)
        output.clear()                   // keeps the storage once the connection let go of it
    }

    /// Appends `chunk` dot-stuffed to the output.
    private func stuff(_ chunk: UnsafeRawBufferPointer, _ stuffer: inout DotStuffer) {
        stuffer.feed(chunk) { output.writeBytes($0) }
    }

    // MARK: actions

    private func perform(_ actions: [POP3Action]) async {
        var rest = actions[...]
        while !rest.isEmpty {
            rest = performNow(rest)
            guard let a = rest.popFirst() else { break }
            await performWaiting(a)
        }
    }

    /// Carries out the leading actions that need no waiting (a reply; RETR of a message whose
    /// bytes are read ahead) into `output`; returns the rest, from the first one that waits.
    private func performNow(_ actions: ArraySlice<POP3Action>) -> ArraySlice<POP3Action> {
        var rest = actions
        while let a = rest.first {
            switch a {
            case .reply(let r): output.writeBytes(r.bytes)
            case .send(let uid, let size, nil):
                if ready[uid] == nil, let b = batch, b.uids.contains(uid), let got = b.arrived.bodies {
                    batch = nil                  // arrived: taken here, no wait on the task
                    ready.merge(got) { a, _ in a }
                }
                guard let mailbox = engine.maildrop?.mailbox, let body = ready[uid], body.readableBytes >= size else { return rest }
                ready[uid] = nil
                sendWhole(uid: uid, size: size, body, mailbox: mailbox)
            default: return rest
            }
            rest.removeFirst()
        }
        return rest
    }

    /// One action that may wait (for the store, TLS or the client), then a flush if enough is queued.
    private func performWaiting(_ a: POP3Action) async {
        switch a {
        case .reply(let r): await emit(r.bytes)
        case .replyLines(let r, let lines): await emit(r.multiline(lines))
        case .continuation(let c): await emit(Array("+ \(c)\r\n".utf8))
        case .startTLS:
            await flush()
            do {
                try await connection.startTLS()
                engine.tlsStarted()
            } catch {
                logger.info("STLS failed", metadata: ["error": "\(error)"])
                finished = true
            }
        case .login(let user, let password, let mechanism): await perform(await login(user: user, password: password, mechanism: mechanism))
        case .send(let uid, let size, let lines): await send(uid: uid, size: size, lines: lines)
        case .update(let mailbox, let uids): await perform(await update(mailbox: mailbox, uids: uids))
        case .close:
            await flush()
            finished = true
        }
        if output.readableBytes >= Self.flushThreshold { await flush() }
    }

    /// Authenticates, then takes the lock and the snapshot (RFC 1939 §4).
    private func login(user: String, password: String, mechanism: String) async -> [POP3Action] {
        switch await services.authenticate(user: user, password: password, client: client) {
        case .success(let canonical):
            do {
                let drop = try await services.openMaildrop()
                logger[metadataKey: "user"] = "\(canonical)"
                connection.authenticated(user: canonical)
                logger.info("login", metadata: ["mechanism": "\(mechanism)", "client": "\(client)", "messages": "\(drop.messages.count)"])
                return engine.loginSucceeded(drop)
            } catch let e as POP3ServiceError where e.kind == .inUse {
                logger.notice("maildrop in use", metadata: ["user": "\(canonical)", "client": "\(client)"])
                services.close()
                return engine.loginFailed(.inUse)
            } catch {
                logger.warning("cannot open the maildrop", metadata: ["user": "\(canonical)", "error": "\(error)"])
                services.close()
                return engine.loginFailed(.temporary)
            }
        case .failure:
            let failures = recordAuthFailure?() ?? (engine.authFailures + 1)
            AuthLog.failed(logger: logger, client: client, user: user, mechanism: mechanism, failures: failures)
            await delayFailure()
            return engine.loginFailed(.credentials)
        case .blocked:
            AuthLog.refused(logger: logger, client: client, user: user)
            await delayFailure()
            return engine.loginFailed(.credentials)
        case .tempFail:
            return engine.loginFailed(.temporary)
        }
    }

    private func delayFailure() async {
        await flush()
        if config.authFailureDelay > 0 { try? await Task.sleep(nanoseconds: UInt64(config.authFailureDelay * 1e9)) }
    }

    /// RETR / TOP (RFC 1939 §7): "+OK", the bytes dot-stuffed chunk by chunk, ".". A store
    /// failure before the first byte is an -ERR; after it, the connection is closed (a
    /// truncated multi-line response must not look complete).
    private func send(uid: UInt32, size: Int, lines: Int?) async {
        guard let mailbox = engine.maildrop?.mailbox else { return }
        var stuffer: DotStuffer
        if let lines {
            do { stuffer = DotStuffer(headerSize: try await services.headerSize(mailbox: mailbox, uid: uid), bodyLines: lines) } catch {
                return await emit(failure(error).bytes)
            }
        } else {
            stuffer = DotStuffer()
        }
        if lines == nil {
            if ready[uid] == nil, let b = batch, b.uids.contains(uid) {
                batch = nil
                if !b.arrived.isSet { batchWaits += 1 }
                ready.merge((try? await b.read.value) ?? [:]) { a, _ in a }
            }
            if let body = ready.removeValue(forKey: uid), body.readableBytes >= size {
                return sendWhole(uid: uid, size: size, body, mailbox: mailbox)
            }
        }
        // By range, chunk by chunk; the next messages are asked for first, so that their batch
        // comes in while this one is read (the session's first RETR no longer waits twice).
        if lines == nil { prefetch(after: uid, mailbox: mailbox) }
        var offset = 0, started = false
        while offset < size && !stuffer.done {
            var count = 0
            do {
                let chunk = try await services.read(mailbox: mailbox, uid: uid, offset: offset, length: min(pop3ReadChunk, size - offset))
                if !started { writeOctets(size); started = true }
                count = chunk.count
                chunk.withUnsafeBytes { stuff($0, &stuffer) }
            } catch {
                if !started { return await emit(failure(error).bytes) }
                logger.warning("RETR of UID \(uid) failed after \(offset) bytes: \(error)")
                finished = true
                return
            }
            if count == 0 { break }
            if output.readableBytes >= Self.flushThreshold { await flush() }
            offset += count
        }
        if !started { writeOctets(size) }
        output.writeBytes(stuffer.trailer)
        if lines == nil { retrieved += 1; retrievedOctets += size }
    }

    /// RETR of a message whose whole body was read ahead: "+OK", the body dot-stuffed, "."
    /// into the output, then the next read-ahead asked for. No waiting (the fast path's RETR).
    private func sendWhole(uid: UInt32, size: Int, _ body: ByteBuffer, mailbox: Int64) {
        writeOctets(size)
        var stuffer = DotStuffer()
        if size > 0 { body.withUnsafeReadableBytes { stuff($0, &stuffer) } }
        output.writeBytes(stuffer.trailer)
        retrieved += 1; retrievedOctets += size
        prefetch(after: uid, mailbox: mailbox)
    }

    /// A read-ahead batch asked for and not come yet (tests wait on it).
    var readAheadInFlight: Bool { batch.map { !$0.arrived.isSet } ?? false }

    private func writeOctets(_ size: Int) { POP3Response.octets(size) { output.writeBytes($0) } }

    /// Reads the small messages after `uid` ahead, in one batch, when few are left ready;
    /// drops what the client went past.
    private func prefetch(after uid: UInt32, mailbox: Int64) {
        guard config.readAhead, let drop = engine.maildrop, batch == nil else { return }
        if ready.count >= Self.readAheadLow {
            // Enough ahead, unless some of it was skipped over (no dictionary rebuilt per RETR).
            guard ready.keys.contains(where: { $0 <= uid }) else { return }
            ready = ready.filter { $0.key > uid }
            guard ready.count < Self.readAheadLow else { return }
        }
        var lo = 0, hi = drop.messages.count
        while lo < hi { let mid = (lo + hi) / 2; if drop.messages[mid].uid <= uid { lo = mid + 1 } else { hi = mid } }
        var uids: [UInt32] = [], bytes = ready.values.reduce(0) { $0 + $1.readableBytes }
        for m in drop.messages[lo...] where ready[m.uid] == nil {
            guard m.size <= pop3ReadChunk, bytes + m.size <= Self.readAheadBytes, uids.count < Self.readAheadCount else { break }
            uids.append(m.uid); bytes += m.size
        }
        guard !uids.isEmpty else { return }
        let services = self.services, arrived = BatchArrival()
        batch = (Set(uids), Task(executorPreference: taskExecutor) {
            do {
                let got = try await services.readAhead(mailbox: mailbox, uids: uids, maxSize: pop3ReadChunk)
                arrived.set(got)
                return got
            } catch {
                arrived.set([:])
                throw error
            }
        }, arrived)
    }

    private func failure(_ error: Error) -> POP3Response {
        if let e = error as? POP3ServiceError, e.kind == .notFound { return POP3Reply.noSuchMessage }
        return POP3Reply.tempFail
    }

    /// RFC 1939 §6: the UPDATE state; the reply is written only after the delete committed.
    private func update(mailbox: Int64, uids: [UInt32]) async -> [POP3Action] {
        do {
            let gone = try await services.delete(mailbox: mailbox, uids: uids)
            logger.info("update", metadata: ["deleted": "\(gone.count)", "marked": "\(uids.count)"])
            return engine.updated(ok: true)
        } catch {
            logger.warning("update failed", metadata: ["error": "\(error)", "marked": "\(uids.count)"])
            return engine.updated(ok: false)
        }
    }
}

/// Set once, from the task that reads a batch ahead, when its reply has come: the bodies (none
/// when the read failed), for the fast path to take without waiting on the task.
final class BatchArrival: @unchecked Sendable {
    private let lock = NSLock()
    private var value: [UInt32: ByteBuffer]?
    func set(_ bodies: [UInt32: ByteBuffer]) { lock.withLock { value = bodies } }
    var isSet: Bool { lock.withLock { value != nil } }
    var bodies: [UInt32: ByteBuffer]? { lock.withLock { value } }
}
