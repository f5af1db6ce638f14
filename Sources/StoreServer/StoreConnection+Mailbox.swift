// Mailbox family handlers (DESIGN §2, §9): every request names a session of this connection,
// checked on the event loop; the MailboxStore call runs on the pool for that session's user only,
// and watchers hear of a mutation's changes before the worker hears its reply. APPEND bodies
// arrive in DeliverChunk frames and are held in memory (the store's append takes bytes), within
// a per-connection budget reserved from the size AppendBegin announces.
import NIOCore
import NIOPosix
import MailIPC
import MailStore

/// One APPEND whose body is arriving.
struct AppendInProgress {
    var user: UserRef?
    var begin: AppendBegin
    var body = ByteBuffer()
    /// Bytes of `appendBuffered` this append holds (its announced size once accepted).
    var reserved = 0
    /// Why it will be refused at DeliverEnd (the worker is told once, at the end).
    var refusal: ErrorReply? = nil
}

extension StoreConnectionHandler {
    /// APPEND body bytes one connection may hold at once: two messages of the largest size.
    var maxAppendBuffered: Int { 2 * maxDelivery }
    /// What one reply frame may carry: the worker's frame cap.
    static let maxReplyBytes = RPCLimits.defaultMaxFrame

    /// A session-scoped request: the session is checked here on the loop, then `work` runs on
    /// the pool with its user's id.
    func scoped<R: SessionRequest, M: RPCMessage>(_ id: UInt32, _ m: R, _ work: @escaping (_ user: Int64) throws -> M) {
        gated(id) { [self] in
            let u = try requireSession(m.session)
            return { try self.confine(m, user: u.id); return try work(u.id) }
        }
    }

    /// Tells every watcher of the changed mailboxes (DESIGN §2); call before replying.
    func notify(_ changes: [MailboxChange]) {
        for c in changes { hub.changed(mailboxID: c.mailboxID, modSeq: c.highestModSeq) }
    }

    /// The reply if it fits one frame; else an error (the worker would close on a larger frame).
    func fitting<M: RPCMessage>(_ m: M) throws -> M {
        let n = m.payload().readableBytes
        guard n <= Self.maxReplyBytes else { throw ErrorReply(.internal, "\(M.type) reply of \(n) bytes exceeds a frame") }
        return m
    }

    func mailboxID(user: Int64, name: String) throws -> Int64 {
        // RFC 9051 §6.3.12 / §6.4.7: a missing destination is answered with [TRYCREATE].
        guard let mb = try store.mailbox(user: user, name: name) else { throw StoreError(.notFound, "no such mailbox: \(name)") }
        return mb.id
    }

    // MARK: requests answered by one store call

    /// RFC 9051 §6.3.5. Watchers of every mailbox gone (it and any inferiors the store took
    /// along) are told: their next pull finds it gone, and imapd's memo of it goes stale.
    func delete(_ m: MailboxDelete, user: Int64) throws -> OK {
        let before = try store.mailboxes(user: user)
        try store.deleteMailbox(user: user, name: m.name)
        notifyRenamed(before: before, after: try store.mailboxes(user: user))
        return OK()
    }

    /// RFC 9051 §6.3.6: renaming INBOX empties it (its messages leave as expunges), so its
    /// watchers are told; another mailbox keeps its id and contents, and the watchers of every
    /// mailbox whose name changed (inferiors too) are told, so no memo answers for the old name.
    func rename(_ m: MailboxRename, user: Int64) throws -> OK {
        let before = try store.mailboxes(user: user)
        try store.renameMailbox(user: user, from: m.from, to: m.to)
        let after = try store.mailboxes(user: user)
        notifyRenamed(before: before, after: after)
        if m.from.uppercased() == "INBOX", let inbox = after.first(where: { $0.name == "INBOX" }) {
            hub.changed(mailboxID: inbox.id, modSeq: inbox.highestModSeq)
        }
        return OK()
    }

    /// Runs `remove` (of users or a domain) and tells the watchers of those users' mailboxes,
    /// so no imapd memo answers for a name a new account could take.
    func removingMailboxes(of users: [String], _ remove: () throws -> Void) throws {
        let before = try users.compactMap { try store.user(named: $0) }.flatMap { try store.mailboxes(user: $0.id) }
        try remove()
        notifyRenamed(before: before, after: [])
    }

    /// One event per mailbox of `before` that is gone or named otherwise in `after`.
    func notifyRenamed(before: [MailboxSummary], after: [MailboxSummary]) {
        let now = Dictionary(after.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        for mb in before where now[mb.id] != mb.name { hub.changed(mailboxID: mb.id, modSeq: mb.highestModSeq + 1) }
    }

    func delta(_ m: MailboxDeltaGet, user: Int64) throws -> DeltaReply {
        let limit = Int(min(m.limit, UInt32(MailboxLimits.maxDeltaEntries)))
        return try fitting(DeltaReply(try store.delta(user: user, mailbox: m.mailbox, since: m.since, limit: limit)))
    }

    /// Pulling re-arms the session's watch on that mailbox before the store is read, so a change
    /// committed during the pull is notified again, never lost (as MailboxChanges does).
    func rearm(_ m: MailboxDeltaGet) {
        guard m.watch != 0, let w = hub.watch(m.watch, owner: owner), w.session == m.session, w.mailboxID == m.mailbox else { return }
        hub.pulled(m.watch)
    }

    /// Details in UID order (with the prefixes asked for), cut where the reply would outgrow a
    /// frame (`through` says where).
    func details(_ m: DetailsGet, user: Int64) throws -> DetailsReply {
        let prefix: MessagePrefix? = m.want.contains(.message) ? .message
            : m.want.contains(.fields) ? .fields(m.fields, not: m.fieldsNot)
            : m.want.contains(.header) ? .header : nil
        let all = try store.details(user: user, mailbox: m.mailbox, uids: m.uids, info: m.want.contains(.info), prefix: prefix,
                                    prefixLimit: Int(m.prefixLimit))
        var size = 64, out: [MessageDetails] = [], prefixes: [[UInt8]] = []
        for (d, p) in all {
            size += DetailsReply.minBytes + d.info.count + (prefix == nil ? 0 : WireSize.bytes + (p?.count ?? 0))
            if size > Self.maxReplyBytes {
                guard let last = out.last else { throw ErrorReply(.internal, "details of UID \(d.uid) exceed a frame") }
                return DetailsReply(out, through: last.uid, prefixes: prefixes)
            }
            out.append(d)
            if prefix != nil { prefixes.append(p ?? []) }
        }
        return DetailsReply(out, through: m.uids.max() ?? 0, prefixes: prefixes)
    }

    func read(_ m: MessageRead, user: Int64) throws -> MessageBytes {
        guard Int(m.length) <= MailboxLimits.maxReadLength else {
            throw ErrorReply(.invalid, "read of \(m.length) bytes: at most \(MailboxLimits.maxReadLength) at once")
        }
        guard let offset = Int(exactly: m.offset) else { throw ErrorReply(.invalid, "offset \(m.offset)") }
        return MessageBytes(ByteBuffer(bytes: try store.read(user: user, mailbox: m.mailbox, uid: m.uid, offset: offset, length: Int(m.length))))
    }

    func storeFlags(_ m: FlagsStore, user: Int64) throws -> FlagUpdateReply {
        let (update, changes) = try store.storeFlags(user: user, mailbox: m.mailbox, uids: m.uids, operation: m.operation, flags: m.flags,
                                                     keywords: m.keywords, unchangedSince: m.unchangedSince)
        notify(changes)
        return FlagUpdateReply(update)
    }

    /// COPY/MOVE; when the UID lists would not fit a frame they are left empty (no COPYUID,
    /// RFC 4315 §3 allows it): the copy is done and durable either way.
    func copy(_ m: MessagesCopy, user: Int64) throws -> CopyReply {
        let to = try mailboxID(user: user, name: m.to)
        let (result, changes) = try store.copy(user: user, from: m.mailbox, uids: m.uids, to: to, move: m.move)
        notify(changes)
        let r = CopyReply(result)
        if (try? fitting(r)) != nil { return r }
        return CopyReply(CopyResult(uidValidity: result.uidValidity, sourceUIDs: [], destinationUIDs: []))
    }

    func expunge(_ m: MessagesExpunge, user: Int64) throws -> UIDList {
        let (uids, changes) = try store.expunge(user: user, mailbox: m.mailbox, uids: m.uids)
        notify(changes)
        return try fitting(UIDList(uids))
    }

    /// The watch on a mailbox of the session's user, by id: another user's id is `.notFound`.
    /// Added before the state is read (a change committed in between is in the state or
    /// notified; the worker compares the state with its view), and announced after the reply, so
    /// its first event never overtakes the reply that names it.
    func watchByID(_ id: UInt32, _ m: MailboxWatchByID) {
        let channel = context.channel, owner = self.owner, store = self.store, hub = self.hub
        let user: Int64
        do { user = try requireSession(m.session).id; try confine(m, user: user) } catch { return reply(id, errorReply(error)) }
        pool.runIfActive(eventLoop: context.eventLoop) { () throws -> Watching in
            let w = hub.add(channel: channel, owner: owner, session: m.session, mailboxID: m.mailbox, announced: false)
            guard let mb = try store.mailboxes(user: user).first(where: { $0.id == m.mailbox }) else {
                hub.remove(w)
                throw StoreError(.notFound, "no such mailbox: \(m.mailbox)")
            }
            return Watching(watch: w, state: MailboxState(mb))
        }.whenComplete { [self] r in
            switch r {
            case .success(let w): reply(id, w); hub.announce(w.watch)
            case .failure(let e): reply(id, errorReply(e))
            }
        }
    }

    // MARK: SELECT

    /// The view as a stream (DESIGN §9), read in one pool call. When it fits the window (header
    /// and chunks: 28,672 entries at the default 8 frames) it goes out at once with its ViewEnd —
    /// no more pool round trips; a larger one is sent only as fast as the worker grants credit.
    func select(_ id: UInt32, _ m: MailboxSelect) {
        guard streams[id] == nil else { return reply(id, ErrorReply(.badSequence, "a stream with this request id is in progress")) }
        guard streams.count < Self.maxConcurrentStreams else { return reply(id, ErrorReply(.temporary, "too many streams in progress")) }
        let user: Int64
        do { user = try requireSession(m.session).id; try confine(m, user: user) } catch { return reply(id, errorReply(error)) }
        let store = self.store, memoWatch = memoWatch(channel: context.channel, m)
        pool.runIfActive(eventLoop: context.eventLoop) { try Self.view(store, user: user, m, watch: memoWatch) }.whenComplete { [self] r in
            guard case .success(let (header, entries)) = r else {
                if case .failure(let e) = r { reply(id, errorReply(e)) }
                return
            }
            let chunks = stride(from: 0, to: entries.count, by: MailboxLimits.entriesPerChunk).map {
                MailboxViewItem.chunk(Array(entries[$0..<min($0 + MailboxLimits.entriesPerChunk, entries.count)]))
            }
            let end = ViewEnd(count: UInt32(entries.count))
            if 1 + chunks.count <= Int(RPCLimits.defaultWindow) {
                for item in [MailboxViewItem.header(header)] + chunks {
                    context.write(wrapOutboundOut(item.frame(requestID: id, flags: .more)), promise: nil)
                }
                reply(id, end)
                return hub.announce(header.watch)
            }
            guard streams[id] == nil else { return reply(id, ErrorReply(.badSequence, "a stream with this request id is in progress")) }
            var items: [any RPCStreamItem] = [MailboxViewItem.header(header)] + chunks
            let sender = RPCStreamSender(id: id, channel: context.channel, pool: pool, window: RPCLimits.defaultWindow, produce: { max in
                guard !items.isEmpty else { return nil }
                let batch = Array(items.prefix(max))
                items.removeFirst(batch.count)
                return batch
            }, finish: { end }, onError: { [self] in errorReply($0) }, onDone: { [self] in streams[id] = nil; hub.announce(header.watch) })
            streams[id] = sender
            sender.start()
        }
    }

    /// SELECT's answer: the changes since the worker's view when `changes` allows, else the whole
    /// view. The memo's watch (if asked) is armed on the mailbox found before the view is read, so
    /// any later change is notified; a mailbox renamed meanwhile (its name no longer the one
    /// found) gets no watch.
    static func view(_ store: any MailStore, user: Int64, _ m: MailboxSelect, watch: MemoWatchStep? = nil) throws -> (ViewHeader, [ViewEntry]) {
        guard let mb = try store.mailbox(user: user, name: m.name) else { throw StoreError(.notFound, "no such mailbox: \(m.name)") }
        let w = watch?.arm(mb) ?? 0
        var (header, entries): (ViewHeader, [ViewEntry])
        if let k = m.known, let d = try changes(store, user: user, mailbox: mb, since: k) {
            (header, entries) = (ViewHeader(summary: d.summary, keywords: d.keywords, since: k.highestModSeq, vanished: d.vanished), d.changed)
        } else {
            let v = try store.view(user: user, mailbox: mb.id)
            (header, entries) = (ViewHeader(summary: v.summary, keywords: v.keywords), v.entries)
        }
        header.watch = w
        if w != 0, header.summary.name != mb.name || header.summary.id != mb.id { watch?.drop(w); header.watch = 0 }
        return (header, entries)
    }

    /// The memo watch a SELECT asks for (MailboxSelect.watch), as a step run on the pool with the
    /// mailbox found: this connection's detached watch on it re-armed, else a new one (for a
    /// mailbox big enough for the memo; its changes are held until the stream is written).
    func memoWatch(channel: Channel, _ m: MailboxSelect) -> MemoWatchStep? {
        guard m.watch != 0 else { return nil }
        let hub = self.hub, owner = self.owner
        return MemoWatchStep(arm: { mb in
            if m.watch != MailboxSelect.newWatch, let w = hub.watch(m.watch, owner: owner), w.session == WatchTable.detached, w.mailboxID == mb.id {
                hub.pulled(m.watch)
                return m.watch
            }
            guard mb.messages >= MailboxSelect.memoMinMessages else { return 0 }
            return hub.addDetached(channel: channel, owner: owner, mailboxID: mb.id)
        }, drop: { hub.remove($0) })
    }

    /// What SELECT does with the memo's watch: arm it on the mailbox found (its id back, 0 for
    /// none), or drop it.
    struct MemoWatchStep {
        var arm: (MailboxSummary) -> UInt64, drop: (UInt64) -> Void
    }

    /// The changes since the view a worker holds, when they are few: same mailbox, same
    /// UIDVALIDITY, and about half as many changed entries and expunged UIDs as the mailbox has
    /// at most (else nil: the whole view is cheaper to send than to merge).
    static func changes(_ store: any MailStore, user: Int64, mailbox mb: MailboxSummary, since k: ViewStamp) throws -> MailboxDelta? {
        guard k.mailbox == mb.id, k.uidValidity == mb.uidValidity, k.highestModSeq != 0, k.highestModSeq <= mb.highestModSeq else { return nil }
        let limit = min(MailboxLimits.maxDeltaEntries, max(Self.minSelectDelta, Int(mb.messages) / 2))
        let d = try store.delta(user: user, mailbox: mb.id, since: k.highestModSeq, limit: limit)
        guard d.complete, d.summary.uidValidity == k.uidValidity, d.vanished.count <= limit else { return nil }
        return d
    }
    /// A SELECT delta may always carry this many changed entries.
    static let minSelectDelta = 64

    // MARK: APPEND

    func appendBegin(_ id: UInt32, _ m: AppendBegin) {
        guard appends[id] == nil, deliveries[id] == nil else { return reply(id, ErrorReply(.badSequence, "a transfer with this request id is in progress")) }
        guard appends.count < Self.maxConcurrentDeliveries else { return reply(id, ErrorReply(.temporary, "too many appends in progress")) }
        var a = AppendInProgress(user: nil, begin: m)
        do { a.user = try requireSession(m.session) } catch { a.refusal = errorReply(error) }
        if a.refusal == nil, m.size > UInt64(maxDelivery) {
            a.refusal = ErrorReply(.invalid, "message exceeds the store's size limit")
        } else if a.refusal == nil, appendBuffered + Int(m.size) > maxAppendBuffered {
            a.refusal = ErrorReply(.temporary, "too many appends in progress")
        } else if a.refusal == nil {
            a.reserved = Int(m.size); appendBuffered += a.reserved
        }
        appends[id] = a
    }

    func appendChunk(_ id: UInt32, _ m: DeliverChunk) {
        guard var a = appends[id], a.refusal == nil else { return }      // refused: the rest of the body is dropped
        if a.body.readableBytes + m.bytes.readableBytes > a.reserved {
            a.refusal = ErrorReply(.invalid, "body longer than the announced \(a.reserved) bytes")
            a.body = ByteBuffer()
        } else {
            var b = m.bytes
            a.body.writeBuffer(&b)
        }
        appends[id] = a
    }

    func appendAbort(_ id: UInt32) {
        guard let a = appends.removeValue(forKey: id) else { return }
        appendBuffered -= a.reserved
    }

    func appendEnd(_ id: UInt32) {
        guard let a = appends.removeValue(forKey: id) else { return reply(id, ErrorReply(.badSequence, "append end without an append")) }
        let done = { [self] in appendBuffered -= a.reserved }
        if let r = a.refusal { done(); return reply(id, r) }
        guard let user = a.user?.id, a.body.readableBytes == a.reserved else {
            done(); return reply(id, ErrorReply(.invalid, "body of \(a.body.readableBytes) bytes, \(a.reserved) announced"))
        }
        let loop = context.eventLoop, store = self.store, m = a.begin
        pool.submit { [self] _ in
            let mailbox: Int64
            do { mailbox = try mailboxID(user: user, name: m.mailbox) } catch {
                return loop.execute { [self] in done(); reply(id, errorReply(error)) }
            }
            store.append(user: user, mailbox: mailbox, flags: m.flags, keywords: m.keywords, internalDate: m.internalDate,
                         body: Array(a.body.readableBytesView)) { result in
                // Watchers are notified before the worker hears OK (as for deliveries).
                if case .success(let (_, changes)) = result { self.notify(changes) }
                loop.execute { [self] in
                    done()
                    switch result {
                    case .success(let (r, _)): reply(id, AppendReply(r))
                    case .failure(let e): reply(id, errorReply(e))
                    }
                }
            }
        }
    }
}
