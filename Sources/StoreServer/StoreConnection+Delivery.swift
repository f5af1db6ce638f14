// Delivery family handlers: recipient checks, Postfix map lookups, chunked deliveries.
// A body is written to a staged file as its chunks arrive (never held whole in memory) and
// discarded on DeliverAbort, refusal, overflow or a closed connection. Over the size cap the
// delivery is answered at its end (too large), never by closing the shared connection.
import NIOCore
import NIOPosix
import MailIPC
import MailStore

extension StoreConnectionHandler {
    func lookupRecipient(_ m: LookupRecipient) throws -> RecipientReply {
        let resolution = try store.resolve(m.address)
        // RCPT-time quota check (RFC 9208 resources): a user with no room left (for the SIZE the
        // client declared, if it did) is refused before DATA, so one full mailbox rarely fails a
        // whole SMTP transaction; a message that still crosses the limit is refused per
        // recipient at the end of DATA.
        if try store.isFull(resolution, declaredSize: m.size) { return RecipientReply(.overQuota, m.address) }
        switch resolution {
        case .deliver(let users, let remote):
            // An address the SMTP engine may deliver to instead (the bare "postmaster"): the
            // user's own when there is one target, else the address asked, which the store
            // expands again at delivery — never the first of several targets.
            guard users.count + remote.count == 1 else { return RecipientReply(.ok, m.address) }
            return RecipientReply(.ok, users.first?.address ?? remote.first ?? m.address)
        case .unknownUser: return RecipientReply(.unknownUser, m.address)
        case .notLocal: return RecipientReply(.notLocal, m.address)
        }
    }

    func lookup(_ m: Lookup) throws -> LookupResult {
        let v = try maps.lookup(m.map, key: m.key)
        return LookupResult(found: v != nil, value: v ?? "")
    }

    func deliverBegin(_ id: UInt32, _ m: DeliverBegin) {
        guard deliveries[id] == nil else { return reply(id, ErrorReply(.badSequence, "a delivery with this request id is in progress")) }
        guard deliveries.count < Self.maxConcurrentDeliveries else { return reply(id, ErrorReply(.temporary, "too many deliveries in progress")) }
        var d = InProgress(sender: m.sender, recipients: m.recipients)
        d.options = DeliveryOptions(envelopeDSN: m.envelopeDSN, recipientDSN: m.recipientDSN,
                                    mailbox: m.mailbox.isEmpty ? nil : DeliveryMailbox(name: m.mailbox, specialUse: m.mailboxSpecialUse),
                                    allOrNothing: role == .smtpd)
        if m.recipients.isEmpty { d.refusal = ErrorReply(.invalid, "a delivery needs recipients") }
        // A submission names a session authenticated on this very connection (DESIGN §2).
        if m.session != 0 {
            do { d.submitter = try requireSession(m.session) } catch { d.refusal = errorReply(error) }
        }
        if d.refusal == nil { d.body = BodyWriter(store: store, pool: pool, loop: context.eventLoop) }
        deliveries[id] = d
    }

    func deliverChunk(_ id: UInt32, _ m: DeliverChunk) {
        guard var d = deliveries[id] else { return reply(id, ErrorReply(.badSequence, "body chunk without a delivery")) }
        guard let body = d.body else { return }          // refused or too large: the rest of the body is dropped
        let n = m.bytes.readableBytes
        d.size += n
        if d.size > maxDelivery {
            d.overflow = true; d.body = nil
            body.discard()
        } else {
            queued(n)
            body.append(m.bytes).whenComplete { [self] _ in written(n) }
        }
        deliveries[id] = d
    }

    func deliverEnd(_ id: UInt32) {
        guard let d = deliveries.removeValue(forKey: id) else { return reply(id, ErrorReply(.badSequence, "delivery end without a delivery")) }
        if let r = d.refusal { return reply(id, r) }
        guard let body = d.body else { return reply(id, ErrorReply(.invalid, "message exceeds the store's size limit")) }
        body.finish().whenComplete { [self] r in
            switch r {
            case .success(let staged): deliver(id, d, staged)
            case .failure(let e):
                logger.error("staging the body failed, nothing acknowledged: \(e)")
                reply(id, DeliverResult(Array(repeating: .tempFail, count: d.recipients.count)))
            }
        }
    }

    /// The worker gave the delivery up (DeliverAbort): what was staged is discarded. No reply.
    func deliverAbort(_ id: UInt32) {
        deliveries.removeValue(forKey: id)?.body?.discard()
    }

    /// Back-pressure (DESIGN §2): above `maxBuffered` bytes queued for writing, stop reading this
    /// connection; read again once half of them are written.
    private func queued(_ n: Int) {
        buffered += n
        guard buffered > maxBuffered, !readingPaused, context.channel.isActive else { return }
        readingPaused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
    }

    private func written(_ n: Int) {
        buffered -= n
        guard readingPaused, buffered <= maxBuffered / 2 else { return }
        readingPaused = false
        guard context.channel.isActive else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        context.read()
    }

    private func deliver(_ id: UInt32, _ d: InProgress, _ staged: any StagedBody) {
        let loop = context.eventLoop, store = self.store, hub = self.hub, logger = self.logger
        let count = d.recipients.count
        pool.submit { _ in
            store.deliver(sender: d.sender, recipients: d.recipients, staged: staged, submitter: d.submitter, options: d.options) { result in
                loop.execute { [self] in
                    switch result {
                    case .success(let o):
                        // Watchers are notified before the sender hears 250: a change a worker has
                        // been told of is never newer than one it can pull.
                        for c in o.changes { hub.changed(mailboxID: c.mailboxID, modSeq: c.highestModSeq) }
                        if o.queued > 0 { hub.queueChanged() }
                        reply(id, DeliverResult(o.statuses.map(RecipientStatus.init)))
                    case .failure(let e as StoreError) where e.code == .denied:
                        logger.warning("delivery refused: \(e)")
                        reply(id, ErrorReply(.denied, e.message))
                    case .failure(let e):
                        logger.error("delivery failed, nothing acknowledged: \(e)")
                        reply(id, DeliverResult(Array(repeating: .tempFail, count: count)))
                    }
                }
            }
        }
    }
}

/// One delivery's body on its way to a staged file: the writes run on the thread pool one at a
/// time, in arrival order (each step waits for the one before); the first failure fails the
/// body, and later steps do nothing. Only queued chunks are in memory.
final class BodyWriter: @unchecked Sendable {
    let store: any DeliveryStore, pool: NIOThreadPool, loop: EventLoop
    // Touched only by the chained steps, which never overlap.
    private var staged: (any StagedBody)?
    private var failure: Error?
    private var dropped = false
    private var tail: EventLoopFuture<Void>
    private var queued = 0                    // steps on the pool not yet finished (on the loop)

    init(store: any DeliveryStore, pool: NIOThreadPool, loop: EventLoop) {
        self.store = store; self.pool = pool; self.loop = loop
        tail = loop.makeSucceededVoidFuture()
    }

    /// Queues `bytes`; the future completes on the loop once they are written (or dropped).
    /// With nothing queued and a body small enough to stay in memory, the bytes are appended
    /// here on the loop (no disk, no thread hop: most messages never leave memory).
    func append(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        if queued == 0, failure == nil, !dropped {
            do {
                if staged == nil { staged = try store.stageBody() }
                if !staged!.needsIO(appending: bytes.readableBytes) {
                    try bytes.withUnsafeReadableBytes { try staged!.append($0) }
                    return loop.makeSucceededVoidFuture()
                }
            } catch let e {
                failure = e
                return loop.makeSucceededVoidFuture()
            }
        }
        return step { s in try bytes.withUnsafeReadableBytes { try s.append($0) } }
    }

    /// After every queued write: the staged body (now the caller's), or the first error.
    func finish() -> EventLoopFuture<any StagedBody> {
        let promise = loop.makePromise(of: (any StagedBody).self)
        // Nothing queued: answer now; else after the last queued write.
        (queued == 0 ? loop.makeSucceededVoidFuture() : step { _ in }).whenComplete { [self] _ in
            if let s = staged, failure == nil, !dropped { staged = nil; return promise.succeed(s) }
            staged?.discard(); staged = nil
            promise.fail(failure ?? StoreError(.temporary, "the staged body is gone"))
        }
        return promise.futureResult
    }

    /// Drops the body, after any write in progress; later steps do nothing.
    func discard() {
        queued += 1
        tail = tail.flatMap { [self] in
            pool.runIfActive(eventLoop: loop) { [self] in dropped = true; staged?.discard(); staged = nil }
        }
        tail.whenComplete { [self] _ in queued -= 1 }
    }

    @discardableResult
    private func step(_ work: @escaping (any StagedBody) throws -> Void) -> EventLoopFuture<Void> {
        queued += 1
        tail = tail.flatMap { [self] in
            pool.runIfActive(eventLoop: loop) { [self] in
                guard failure == nil, !dropped else { return }
                do {
                    if staged == nil { staged = try store.stageBody() }
                    try work(staged!)
                } catch let e { failure = e }
            }
        }
        tail.whenComplete { [self] _ in queued -= 1 }
        return tail
    }
}
