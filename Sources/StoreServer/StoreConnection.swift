// One RPC connection to the store: handshake, per-role allow-list, session scoping,
// chunked deliveries, and push events. A malformed or oversized frame closes this
// connection only; blocking store work runs on the thread pool, never on the event loop.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailIPC
import MailStore

/// Sessions created by authenticate, per connection, and who to tell about mailbox changes.
final class SessionRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var byUser: [Int64: [(sid: UInt64, channel: Channel)]] = [:]
    func add(user: Int64, sid: UInt64, channel: Channel) { lock.lock(); byUser[user, default: []].append((sid, channel)); lock.unlock() }
    func remove(sid: UInt64) {
        lock.lock(); defer { lock.unlock() }
        for (u, l) in byUser { byUser[u] = l.filter { $0.sid != sid }; if byUser[u]!.isEmpty { byUser[u] = nil } }
    }
    func listeners(user: Int64) -> [(sid: UInt64, channel: Channel)] { lock.lock(); defer { lock.unlock() }; return byUser[user] ?? [] }
}

final class StoreConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    struct InProgress { var sender: String; var recipients: [String]; var body: [UInt8]; var overflow: Bool; var submitter: UserRef?
                        var busy = false }

    let role: Role
    let store: SQLiteMailStore
    let pool: NIOThreadPool
    let registry: SessionRegistry
    let maxDelivery: Int
    var logger: Logger
    private var handshaken = false
    private var sessions: [UInt64: UserRef] = [:]
    private var deliveries: [UInt32: InProgress] = [:]
    static let maxConcurrentDeliveries = 4096
    /// Body bytes this connection may hold in memory at once (in transfer or being committed);
    /// beyond it a delivery is answered "try again later", so no worker can exhaust the store.
    let maxBuffered: Int
    private var buffered = 0
    static let exportChunk = 256 * 1024

    init(role: Role, store: SQLiteMailStore, pool: NIOThreadPool, registry: SessionRegistry, maxDelivery: Int, maxBuffered: Int, logger: Logger) {
        self.role = role; self.store = store; self.pool = pool; self.registry = registry
        self.maxDelivery = maxDelivery; self.maxBuffered = maxBuffered; self.logger = logger
    }

    func channelInactive(context: ChannelHandlerContext) {
        for sid in sessions.keys { registry.remove(sid: sid) }
        buffered = 0
        sessions.removeAll(); deliveries.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("closing \(role.rawValue) connection: \(error)")
        context.close(promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, _ why: String) {
        logger.warning("closing \(role.rawValue) connection: \(why)")
        context.close(promise: nil)
    }

    private func reply(_ context: ChannelHandlerContext, _ id: UInt32, _ m: IPCMessage) {
        context.writeAndFlush(wrapOutboundOut(m.frame(requestID: id)), promise: nil)
    }

    /// Runs `work` on the thread pool and sends its reply from the event loop.
    private func offload(_ context: ChannelHandlerContext, _ id: UInt32, _ work: @escaping () throws -> IPCMessage) {
        let loop = context.eventLoop
        let f: EventLoopFuture<IPCMessage> = pool.runIfActive(eventLoop: loop) { try work() }
        f.whenComplete { [self] r in
            switch r {
            case .success(let m): reply(context, id, m)
            case .failure(let e as StoreError): reply(context, id, .error(e.code, e.message))
            case .failure(let e): logger.error("store error: \(e)"); reply(context, id, .error(.temporary, "temporary store failure"))
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let msg: IPCMessage
        do { msg = try IPCMessage.decode(frame) } catch {
            return fail(context, "malformed frame type \(frame.type): \(error)")
        }
        let id = frame.requestID
        guard handshaken else {
            guard case .hello(let major, _, let client) = msg else { return fail(context, "first frame is not hello") }
            guard major == ProtocolVersion.major else {
                reply(context, id, .error(.invalid, "protocol major version \(major) not supported"))
                return fail(context, "version mismatch from \(client)")
            }
            handshaken = true
            logger[metadataKey: "peer"] = "\(client)"
            return reply(context, id, .helloOK(major: ProtocolVersion.major, minor: ProtocolVersion.minor, role: role.rawValue))
        }
        guard id != 0 else { return fail(context, "request id 0 is reserved for events") }
        guard role.may(msg.type) else {
            logger.warning("refused \(msg.type) from role \(role.rawValue)")
            return reply(context, id, .error(.denied, "\(msg.type) is not allowed for role \(role.rawValue)"))
        }
        handle(context, id, msg)
    }

    private func handle(_ context: ChannelHandlerContext, _ id: UInt32, _ msg: IPCMessage) {
        let store = self.store
        switch msg {
        case .lookupRecipient(let a):
            offload(context, id) {
                switch try store.resolve(a) {
                case .deliver(let users, let remote): return .recipient(.ok, users.first?.address ?? remote.first ?? a)
                case .unknownUser: return .recipient(.unknownUser, a)
                case .notLocal: return .recipient(.notLocal, a)
                }
            }
        case .lookup(let map, let key):
            offload(context, id) {
                let v = try store.lookup(map: map, key: key)
                return .lookupResult(found: v != nil, value: v ?? "")
            }
        case .deliverBegin(let sender, let rcpts, let sid):
            guard deliveries[id] == nil, deliveries.count < Self.maxConcurrentDeliveries, !rcpts.isEmpty else {
                return fail(context, "bad deliverBegin")
            }
            // A submission names a session authenticated on this very connection (DESIGN §2).
            var submitter: UserRef? = nil
            if sid != 0 {
                guard let u = sessions[sid] else { return fail(context, "deliverBegin with an unknown session") }
                submitter = u
            }
            deliveries[id] = InProgress(sender: sender, recipients: rcpts, body: [], overflow: false, submitter: submitter)
        case .deliverChunk(let bytes):
            guard deliveries[id] != nil else { return fail(context, "deliverChunk without deliverBegin") }
            if deliveries[id]!.body.count + bytes.readableBytes > maxDelivery {
                buffered -= deliveries[id]!.body.count
                deliveries[id]!.overflow = true; deliveries[id]!.body = []
            } else if buffered + bytes.readableBytes > maxBuffered {
                buffered -= deliveries[id]!.body.count
                deliveries[id]!.busy = true; deliveries[id]!.body = []
            } else if !deliveries[id]!.overflow && !deliveries[id]!.busy {
                deliveries[id]!.body.append(contentsOf: bytes.readableBytesView)
                buffered += bytes.readableBytes
            }
        case .deliverEnd:
            guard let d = deliveries.removeValue(forKey: id) else { return fail(context, "deliverEnd without deliverBegin") }
            if d.overflow { return reply(context, id, .error(.invalid, "message exceeds the store's size limit")) }
            if d.busy {
                logger.warning("delivery deferred: more than \(maxBuffered) body bytes in flight on this connection")
                return reply(context, id, .deliverResult(Array(repeating: .tempFail, count: d.recipients.count)))
            }
            deliver(context, id, d)
        case .authenticate(let user, let password):
            let loop = context.eventLoop
            pool.runIfActive(eventLoop: loop) { try store.authenticate(user, password: password) }.whenComplete { [self] r in
                switch r {
                case .success(let u?):
                    var sid: UInt64 = 0
                    while sid == 0 || sessions[sid] != nil { sid = UInt64.random(in: 1...UInt64.max) }
                    sessions[sid] = u
                    registry.add(user: u.id, sid: sid, channel: context.channel)
                    reply(context, id, .session(sid, u.address))
                case .success(nil): reply(context, id, .error(.denied, "authentication failed"))
                case .failure: reply(context, id, .error(.temporary, "temporary store failure"))
                }
            }
        case .sessionEnd(let sid):
            guard sessions.removeValue(forKey: sid) != nil else { return reply(context, id, .error(.notFound, "no such session")) }
            registry.remove(sid: sid)
            reply(context, id, .ok)
        case .mailboxList(let sid, let user):
            if role == .admin {
                offload(context, id) {
                    guard let u = try store.user(named: user) else { throw StoreError(.notFound, "no such user: \(user)") }
                    return .mailboxes(try store.mailboxes(user: u.id))
                }
            } else {
                // Session scoping (DESIGN §2): only users who logged in through this connection.
                guard let u = sessions[sid] else { return reply(context, id, .error(.denied, "no such session on this connection")) }
                offload(context, id) { .mailboxes(try store.mailboxes(user: u.id)) }
            }
        case .domainAdd(let d): offload(context, id) { try store.addDomain(d); return .ok }
        case .domainRemove(let d): offload(context, id) { try store.removeDomain(d); return .ok }
        case .domainList: offload(context, id) { .names(try store.domains()) }
        case .userAdd(let u, let p): offload(context, id) { try store.addUser(u, password: p); return .ok }
        case .userRemove(let u): offload(context, id) { try store.removeUser(u); return .ok }
        case .userPasswd(let u, let p): offload(context, id) { try store.setPassword(u, password: p); return .ok }
        case .userList(let d): offload(context, id) { .names(try store.users(domain: d)) }
        case .aliasAdd(let s, let t): offload(context, id) { try store.addAlias(s, target: t); return .ok }
        case .aliasRemove(let s, let t): offload(context, id) { try store.removeAlias(s, target: t); return .ok }
        case .aliasList(let d): offload(context, id) { .pairs(try store.aliases(domain: d)) }
        case .queueList: offload(context, id) { .names(try store.queue()) }
        case .export(let user, let mailbox):
            let channel = context.channel
            offload(context, id) {
                guard let u = try store.user(named: user) else { throw StoreError(.notFound, "no such user: \(user)") }
                var n: UInt32 = 0
                try store.export(user: u.id, mailbox: mailbox.isEmpty ? nil : mailbox) { meta, body in
                    // Back-pressure: wait for each frame to be written before reading more.
                    try channel.writeAndFlush(IPCMessage.exportMessage(meta).frame(requestID: id)).wait()
                    var off = 0
                    while off < body.count {
                        let end = min(off + Self.exportChunk, body.count)
                        var b = channel.allocator.buffer(capacity: end - off)
                        b.writeBytes(body[off..<end])
                        try channel.writeAndFlush(IPCMessage.exportChunk(b).frame(requestID: id)).wait()
                        off = end
                    }
                    n += 1
                }
                return .exportEnd(n)
            }
        default:
            reply(context, id, .error(.invalid, "not a request: \(msg.type)"))
        }
    }

    private func deliver(_ context: ChannelHandlerContext, _ id: UInt32, _ d: InProgress) {
        let loop = context.eventLoop, store = self.store, registry = self.registry, logger = self.logger
        let count = d.recipients.count
        pool.submit { _ in
            store.deliver(sender: d.sender, recipients: d.recipients, body: d.body, submitter: d.submitter) { result in
                loop.execute { [self] in
                    buffered -= d.body.count
                    switch result {
                    case .success(let o):
                        reply(context, id, .deliverResult(o.statuses))
                        for c in o.changes {
                            for l in registry.listeners(user: c.user) {
                                l.channel.writeAndFlush(IPCMessage.mailboxChanged(session: l.sid, mailbox: c.mailbox, uidNext: c.uidNext, exists: c.exists).frame(requestID: 0), promise: nil)
                            }
                        }
                    case .failure(let e as StoreError) where e.code == .denied:
                        logger.warning("delivery refused: \(e)")
                        reply(context, id, .error(.denied, e.message))
                    case .failure(let e):
                        logger.error("delivery failed, nothing acknowledged: \(e)")
                        reply(context, id, .deliverResult(Array(repeating: .tempFail, count: count)))
                    }
                }
            }
        }
    }
}
