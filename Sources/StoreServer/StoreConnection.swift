// One RPC connection to the store: handshake, the role allow-list (declared on each request),
// one dispatch table, one session gate, and the replies. A malformed or oversized frame closes
// this connection only; a well-formed request in the wrong sequence gets an error reply (one
// connection carries every session of a worker, DESIGN §2). Store work runs on the thread pool,
// never on the event loop. The handlers live in StoreConnection+<Family>.swift.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailIPC
import MailStore

final class StoreConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    struct InProgress {
        var sender: String; var recipients: [String]; var submitter: UserRef?
        /// The body on its way to a staged file; nil once refused or too large (the rest is dropped).
        var body: BodyWriter? = nil
        var size = 0
        /// Why the delivery will be refused at DeliverEnd (the worker is told once, at the end).
        var refusal: ErrorReply? = nil
        var overflow = false
        /// RFC 3461 parameters for the queue (StoreConnection+Delivery.swift).
        var options = DeliveryOptions()
    }

    let role: Role
    let store: any MailStore
    let maps: PostfixMaps
    let pool: NIOThreadPool
    let hub: WatchHub
    let pop3Locks: Pop3LockTable
    let maxDelivery: Int
    let authBudget: AuthBudget
    var logger: Logger
    var context: ChannelHandlerContext!
    private var handshaken = false
    var sessions: [UInt64: UserRef] = [:]
    var deliveries: [UInt32: InProgress] = [:]
    var streams: [UInt32: RPCStreamSender] = [:]
    var appends: [UInt32: AppendInProgress] = [:]
    /// APPEND body bytes reserved by `appends` (StoreConnection+Mailbox.swift).
    var appendBuffered = 0
    static let maxConcurrentDeliveries = 4096
    static let maxConcurrentStreams = 64
    /// Body bytes received on this connection and queued for writing to staged files; above
    /// it the store stops reading from the connection until half is written (back-pressure to
    /// the worker, and through it to its clients), so no worker can make the store buffer more.
    let maxBuffered: Int
    var buffered = 0
    var readingPaused = false
    var owner: ObjectIdentifier { ObjectIdentifier(self) }

    init(role: Role, store: any MailStore, pool: NIOThreadPool, hub: WatchHub, maxDelivery: Int, maxBuffered: Int,
         authBudget: AuthBudget, pop3Locks: Pop3LockTable = Pop3LockTable(), logger: Logger) {
        self.pop3Locks = pop3Locks
        self.role = role; self.store = store; self.maps = PostfixMaps(accounts: store); self.pool = pool; self.hub = hub
        self.maxDelivery = maxDelivery; self.maxBuffered = maxBuffered; self.authBudget = authBudget; self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelInactive(context: ChannelHandlerContext) {
        hub.removeConnection(owner)
        pop3Locks.release(connection: owner)
        // Bodies still in transfer will never end: their staged files go now.
        for d in deliveries.values { d.body?.discard() }
        sessions.removeAll(); deliveries.removeAll(); streams.removeAll(); appends.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("closing \(role.rawValue) connection: \(error)")
        context.close(promise: nil)
    }

    private func fail(_ why: String) {
        logger.warning("closing \(role.rawValue) connection: \(why)")
        context.close(promise: nil)
    }

    func reply(_ id: UInt32, _ m: any RPCMessage) {
        context.writeAndFlush(wrapOutboundOut(m.frame(requestID: id, flags: [])), promise: nil)
    }

    /// The reply for a thrown error: store and protocol errors as they are, anything else temporary.
    func errorReply(_ e: Error) -> ErrorReply {
        if let r = ErrorReply.from(e) { return r }
        logger.error("store error: \(e)")
        return ErrorReply(.temporary, "temporary store failure")
    }

    /// Runs `work` on the thread pool and sends its reply (or its error) from the event loop.
    func offload<M: RPCMessage>(_ id: UInt32, _ work: @escaping () throws -> M) {
        pool.runIfActive(eventLoop: context.eventLoop) { try work() }.whenComplete { [self] r in
            switch r {
            case .success(let m): reply(id, m)
            case .failure(let e): reply(id, errorReply(e))
            }
        }
    }

    /// The session gate (DESIGN §2): every session-scoped request names a session that an
    /// authentication on this very connection created. Anything else is refused, not closed.
    func requireSession(_ sid: UInt64) throws -> UserRef {
        guard let u = sessions[sid] else { throw ErrorReply(.denied, "no such session on this connection") }
        return u
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let msg: any RPCMessage
        do { msg = try decodeAnyMessage(frame) } catch {
            return fail("malformed frame type \(frame.type): \(error)")
        }
        let id = frame.requestID
        guard handshaken else {
            guard let hello = msg as? Hello else { return fail("first frame is not hello") }
            guard hello.major == ProtocolVersion.major else {
                reply(id, ErrorReply(.invalid, "protocol major version \(hello.major) not supported"))
                return fail("version mismatch from \(hello.client)")
            }
            handshaken = true
            logger[metadataKey: "peer"] = "\(hello.client)"
            return reply(id, HelloOK(role: role.rawValue))
        }
        guard id != 0 else { return fail("request id 0 is reserved for events") }
        if let credit = msg as? StreamCredit {
            // Credit for a stream that has ended (or never was) is harmless: ignored.
            streams[id]?.grant(credit.frames)
            return
        }
        guard role.may(msg.type) else {
            logger.warning("refused \(msg.type) from role \(role.rawValue)")
            return reply(id, ErrorReply(.denied, "\(msg.type) is not allowed for role \(role.rawValue)"))
        }
        dispatch(id, msg)
    }

    /// One line per request: adding a message adds a line here.
    private func dispatch(_ id: UInt32, _ msg: any RPCMessage) {
        switch msg {
        // delivery
        case let m as LookupRecipient: offload(id) { [self] in try lookupRecipient(m) }
        case let m as Lookup: offload(id) { [self] in try lookup(m) }
        case let m as SenderLogins: offload(id) { [store] in Names(try store.senderLogins(m.address)) }
        case let m as LocalDomain: offload(id) { [store] in LookupResult(found: try store.hasDomain(m.domain), value: "") }
        case let m as DeliverBegin: deliverBegin(id, m)
        case let m as DeliverChunk: if appends[id] != nil { appendChunk(id, m) } else { deliverChunk(id, m) }
        case is DeliverEnd: if appends[id] != nil { appendEnd(id) } else { deliverEnd(id) }
        case is DeliverAbort: if appends[id] != nil { appendAbort(id) } else { deliverAbort(id) }
        // accounts
        case let m as Authenticate: authenticate(id, m)
        case let m as SessionEnd: sessionEnd(id, m)
        case let m as MailboxList: gated(id) { [self] in try mailboxList(m) }
        case let m as DomainAdd: offload(id) { [store] in try store.addDomain(m.name); return OK() }
        case let m as DomainRemove: offload(id) { [self] in try removingMailboxes(of: try store.users(domain: m.name)) { try store.removeDomain(m.name) }; return OK() }
        case is DomainList: offload(id) { [store] in Names(try store.domains()) }
        case let m as UserAdd: offload(id) { [store] in try store.addUser(m.address, password: m.password); return OK() }
        case let m as UserRemove: offload(id) { [self] in try removingMailboxes(of: [m.name]) { try store.removeUser(m.name) }; return OK() }
        case let m as UserPasswd: offload(id) { [store] in try store.setPassword(m.address, password: m.password); return OK() }
        case let m as UserSpamJunk: offload(id) { [store] in try store.setSpamToJunk(m.address, m.on); return OK() }
        case let m as UserQuota: offload(id) { [store] in QuotaReply(try store.setQuota(m.address, storage: m.storage, messages: m.messages)) }
        case let m as UserList: offload(id) { [store] in Names(try store.users(domain: m.name)) }
        case let m as AliasAdd: offload(id) { [store] in try store.addAlias(m.source, target: m.target); return OK() }
        case let m as AliasRemove: offload(id) { [store] in try store.removeAlias(m.source, target: m.target); return OK() }
        case let m as AliasList: offload(id) { [store] in AliasPairs(try store.aliases(domain: m.name).map { AliasEntry(source: $0.source, target: $0.target) }) }
        case let m as Export: export(id, m)
        case let m as Reindex: reindex(id, m)
        // events
        case let m as MailboxWatch: gated(id) { [self] in try watch(m) }
        case let m as MailboxUnwatch: gated(id) { [self] in try unwatch(m) }
        case let m as MailboxChanges: gated(id) { [self] in try changes(m) }
        case let m as MailboxWatchByID: watchByID(id, m)
        // mailbox
        case let m as MailboxCreate: scoped(id, m) { [store] u in _ = try store.createMailbox(user: u, name: m.name, specialUse: m.specialUse); return OK() }
        case let m as MailboxDelete: scoped(id, m) { [self] u in try delete(m, user: u) }
        case let m as MailboxRename: scoped(id, m) { [self] u in try rename(m, user: u) }
        case let m as SubscriptionList: scoped(id, m) { [store] u in Names(try store.subscriptions(user: u)) }
        case let m as SubscriptionSet: scoped(id, m) { [store] u in try store.setSubscribed(user: u, name: m.name, m.subscribed); return OK() }
        case let m as MailboxSummaries: scoped(id, m) { [self] u in try fitting(SummaryList(try store.mailboxes(user: u))) }
        case let m as MailboxStatusGet: scoped(id, m) { [store] u in MailboxStatusReply(try store.status(user: u, name: m.name)) }
        case let m as MailboxSelect: select(id, m)
        case let m as MailboxDeltaGet: rearm(m); scoped(id, m) { [self] u in try delta(m, user: u) }
        case let m as DetailsGet: scoped(id, m) { [self] u in try details(m, user: u) }
        case let m as MessageRead: scoped(id, m) { [self] u in try read(m, user: u) }
        case let m as FlagsStore: scoped(id, m) { [self] u in try storeFlags(m, user: u) }
        case let m as MessagesCopy: scoped(id, m) { [self] u in try copy(m, user: u) }
        case let m as MessagesExpunge: scoped(id, m) { [self] u in try expunge(m, user: u) }
        case let m as SearchRun: scoped(id, m) { [self] u in try fitting(UIDList(try store.search(user: u, mailbox: m.mailbox, query: m.query))) }
        case let m as SortRun: scoped(id, m) { [self] u in try fitting(UIDList(try store.sort(user: u, mailbox: m.mailbox, criteria: m.criteria, query: m.query))) }
        case let m as ThreadRun: scoped(id, m) { [self] u in try fitting(ThreadReply(try store.thread(user: u, mailbox: m.mailbox, algorithm: m.algorithm, query: m.query))) }
        case let m as AppendBegin: appendBegin(id, m)
        case let m as QuotaGet: scoped(id, m) { [store] u in QuotaReply(try store.quota(user: u)) }
        // pop3
        case let m as Pop3Lock: pop3Lock(id, m)
        case let m as Pop3Delete: scoped(id, m) { [self] u in try pop3Delete(m, user: u) }
        case let m as Pop3Read: scoped(id, m) { [self] u in try pop3Read(m, user: u) }
        // queue
        case is QueueList: offload(id) { [store] in QueueEntries(try store.queue().map(QueueEntry.init)) }
        case let m as QueueClaimRequest: queueClaim(id, m)
        case let m as QueueRead: offload(id) { [self] in try queueRead(m) }
        case let m as QueueReport: queueReport(id, m)
        case is QueueWatch: queueWatch(id)
        case let m as QueueEntriesGet: offload(id) { [self] in try queueEntries(m) }
        case let m as QueueAdminRequest: offload(id) { [self] in try queueAdmin(m) }
        default:
            reply(id, ErrorReply(.invalid, "not a request: \(msg.type)"))
        }
    }

    /// A session-scoped request: its checks run here on the event loop (sessions live here),
    /// and the work they return runs on the pool.
    func gated<M: RPCMessage>(_ id: UInt32, _ check: () throws -> () throws -> M) {
        do { offload(id, try check()) } catch { reply(id, errorReply(error)) }
    }
}

/// Adopts connected sockets into NIO channels with the store's RPC pipeline.
public final class StoreService: @unchecked Sendable {
    let store: any MailStore, group: EventLoopGroup, pool: NIOThreadPool
    let hub = WatchHub()
    let pop3Locks = Pop3LockTable()
    let maxDelivery: Int, maxFrame: Int, maxBuffered: Int
    /// Every connection's logins share it: the budget holds across all worker processes.
    let authBudget: AuthBudget
    let logger: Logger

    /// Body bytes one connection may have queued for writing before the store stops reading it.
    public static let defaultMaxBuffered = 8 << 20

    /// `maxBuffered`: body bytes one connection may have queued for writing to staged files
    /// before the store stops reading it (default: the larger of `defaultMaxBuffered` and four frames).
    /// `authBudget`: default 10 failures in 600 s.
    public init(store: any MailStore, group: EventLoopGroup, pool: NIOThreadPool, maxDelivery: Int, maxFrame: Int,
                maxBuffered: Int? = nil, authBudget: AuthBudget = AuthBudget(maxFailures: 10, window: 600), logger: Logger) {
        self.store = store; self.group = group; self.pool = pool; self.maxDelivery = maxDelivery; self.maxFrame = maxFrame
        self.maxBuffered = maxBuffered ?? max(Self.defaultMaxBuffered, 4 * maxFrame); self.authBudget = authBudget; self.logger = logger
    }

    @discardableResult
    public func adopt(fd: Int32, role: Role) -> EventLoopFuture<Channel> {
        let store = self.store, pool = self.pool, hub = self.hub, maxDelivery = self.maxDelivery
        let maxFrame = self.maxFrame, maxBuffered = self.maxBuffered, authBudget = self.authBudget, pop3Locks = self.pop3Locks
        var logger = self.logger
        logger[metadataKey: "role"] = "\(role.rawValue)"
        let f = ClientBootstrap(group: group)
            .channelInitializer { ch in
                ch.pipeline.addHandlers([
                    ByteToMessageHandler(FrameToMessageDecoder(maxFrame: maxFrame)),
                    FrameEncoder(),
                    StoreConnectionHandler(role: role, store: store, pool: pool, hub: hub, maxDelivery: maxDelivery,
                                           maxBuffered: maxBuffered, authBudget: authBudget, pop3Locks: pop3Locks, logger: logger),
                ])
            }
            .withConnectedSocket(fd)
        f.whenFailure { [logger] e in logger.error("cannot adopt \(role.rawValue) connection: \(e)"); close(fd) }
        return f
    }
}
