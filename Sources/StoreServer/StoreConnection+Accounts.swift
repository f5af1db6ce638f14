// Accounts family handlers: authentication sessions, mailbox listing, the streamed export and reindex.
// (The one-line admin requests are answered in the dispatch table.)
import NIOCore
import Logging
import MailIPC
import MailStore

extension StoreConnectionHandler {
    /// Every login passes the per-address budget first (DESIGN §5): over it, the answer is
    /// `.throttled` without a password hash; otherwise one hash, and a failure is counted.
    func authenticate(_ id: UInt32, _ m: Authenticate) {
        let store = self.store, budget = authBudget
        let meta: Logger.Metadata = ["client": "\(m.client)", "service": "\(m.service)", "user": "\(m.user)"]
        guard budget.begin(m.client) else {
            logger.warning("authentication refused without a password check: too many failures", metadata: meta)
            return reply(id, ErrorReply(.throttled, "too many authentication failures from \(m.client)"))
        }
        pool.runIfActive(eventLoop: context.eventLoop) { try store.authenticate(m.user, password: m.password) }.whenComplete { [self] r in
            budget.end(m.client, failed: (try? r.get()) == .some(nil))
            if case .success(nil) = r { logger.notice("password check failed", metadata: meta) }
            switch r {
            case .success(let u?):
                var sid: UInt64 = 0
                while sid == 0 || sessions[sid] != nil { sid = UInt64.random(in: 1...UInt64.max) }
                sessions[sid] = u
                reply(id, SessionOpened(id: sid, user: u.address))
            case .success(nil): reply(id, ErrorReply(.denied, "authentication failed"))
            case .failure(let e): reply(id, errorReply(e))
            }
        }
    }

    func sessionEnd(_ id: UInt32, _ m: SessionEnd) {
        guard sessions.removeValue(forKey: m.session) != nil else { return reply(id, ErrorReply(.notFound, "no such session")) }
        hub.removeSession(m.session, owner: owner)
        pop3Locks.release(session: m.session, connection: owner)
        reply(id, OK())
    }

    /// Admin names a user; every other role a session of this connection.
    func mailboxList(_ m: MailboxList) throws -> () throws -> Mailboxes {
        let store = self.store
        if role == .admin {
            return {
                guard let u = try store.user(named: m.user) else { throw StoreError(.notFound, "no such user: \(m.user)") }
                return Mailboxes(try store.mailboxes(user: u.id).map(MailboxInfo.init))
            }
        }
        let u = try requireSession(m.session)
        return { Mailboxes(try store.mailboxes(user: u.id).map(MailboxInfo.init)) }
    }

    /// Export as a stream (DESIGN §2): each message's envelope, then its body in chunks, produced
    /// on the pool only as fast as the client grants credit.
    func export(_ id: UInt32, _ m: Export) {
        guard streams[id] == nil else { return reply(id, ErrorReply(.badSequence, "a stream with this request id is in progress")) }
        guard streams.count < Self.maxConcurrentStreams else { return reply(id, ErrorReply(.temporary, "too many streams in progress")) }
        let store = self.store
        var list: [StoredMessage]? = nil
        var next = 0, body: [UInt8] = [], offset = 0, sent: UInt32 = 0
        let sender = RPCStreamSender(id: id, channel: context.channel, pool: pool, window: RPCLimits.defaultWindow, produce: { max in
            if list == nil {
                guard let u = try store.user(named: m.user) else { throw StoreError(.notFound, "no such user: \(m.user)") }
                list = try store.messages(user: u.id, mailbox: m.mailbox.isEmpty ? nil : m.mailbox)
            }
            var items: [any RPCStreamItem] = []
            while items.count < max {
                if offset < body.count {
                    let end = min(offset + RPCLimits.chunkSize, body.count)
                    items.append(ExportItem.chunk(ByteBuffer(bytes: body[offset..<end])))
                    offset = end
                    continue
                }
                guard next < list!.count else { return items.isEmpty ? nil : items }
                let meta = list![next]; next += 1
                body = try store.body(meta.body); offset = 0; sent += 1
                items.append(ExportItem.message(ExportedMessage(meta)))
            }
            return items
        }, finish: { ExportEnd(count: sent) }, onError: { [self] in errorReply($0) }, onDone: { [self] in streams[id] = nil })
        streams[id] = sender
        sender.start()
    }

    /// Reindex as a stream: one `reindexBatch` of bodies per item produced, each item the
    /// progress so far, so the CLI shows it as the work goes and a slow reader pauses the work.
    func reindex(_ id: UInt32, _ m: Reindex) {
        guard streams[id] == nil else { return reply(id, ErrorReply(.badSequence, "a stream with this request id is in progress")) }
        guard streams.count < Self.maxConcurrentStreams else { return reply(id, ErrorReply(.temporary, "too many streams in progress")) }
        let store = self.store
        guard let indexer = store as? any SearchIndexStore else { return reply(id, ErrorReply(.invalid, "this store has no search index")) }
        var ids: [Int64]? = nil, done = 0
        let sender = RPCStreamSender(id: id, channel: context.channel, pool: pool, window: RPCLimits.defaultWindow, produce: { max in
            if ids == nil {
                var user: Int64? = nil
                if !m.user.isEmpty {
                    guard let u = try store.user(named: m.user) else { throw StoreError(.notFound, "no such user: \(m.user)") }
                    user = u.id
                }
                let all = try indexer.reindexTargets(user: user)
                ids = all
                return [ReindexProgress(done: 0, total: UInt64(all.count))]   // the total, before any work
            }
            guard let all = ids, done < all.count else { return nil }
            let end = min(done + SearchIndexLimits.reindexBatch, all.count)
            try indexer.reindex(all[done..<end])
            done = end
            return [ReindexProgress(done: UInt64(done), total: UInt64(all.count))]
        }, finish: { ReindexProgress(done: UInt64(done), total: UInt64(ids?.count ?? 0)) },
           onError: { [self] in errorReply($0) }, onDone: { [self] in streams[id] = nil })
        streams[id] = sender
        sender.start()
    }
}
