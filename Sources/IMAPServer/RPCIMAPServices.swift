// IMAPServices over the store RPC (DESIGN §2, §4): one instance per connection, every call
// scoped to the store session its login opened; RPC errors become IMAPServiceError kinds (a lost
// or silent store is `.temporary`). Large answers are gathered (SELECT's stream) or batched
// (details, flag updates, reads) so no frame outgrows the limits in MailboxLimits.
import Foundation
import NIOCore
import MailIPC
import MailModel
import MailWorker

public final class RPCIMAPServices: IMAPServices, @unchecked Sendable {
    let rpc: RPCClient
    let events: EventRouter
    let service: String
    private let lock = NSLock()
    private var session: UInt64 = 0
    /// The logged-in user as the store named it (the memo's key).
    private var user = ""
    /// The process's views of recent SELECTs (nil: every SELECT reads the whole view).
    let memo: ViewMemo?
    /// Watches this connection holds: watch id → mailbox id.
    private var watches: [UInt64: Int64] = [:]
    /// Watches asked for and not answered yet, by mailbox id.
    private var pendingWatches: [Int64: EventLoopFuture<Watching>] = [:]

    /// `service` names the protocol in the store's authentication log lines.
    public init(rpc: RPCClient, events: EventRouter, service: String = "imap", memo: ViewMemo? = nil) {
        self.rpc = rpc; self.events = events; self.service = service; self.memo = memo
    }

    private var sid: UInt64 { lock.withLock { session } }

    /// The store's error in the session's terms: lost connections and timeouts are temporary.
    static func serviceError(_ e: Error) -> IMAPServiceError {
        if let e = e as? IMAPServiceError { return e }
        guard let r = e as? RPCError, let code = r.code else { return IMAPServiceError(.temporary, "store unavailable: \(e)") }
        switch code {
        case .notFound: return IMAPServiceError(.notFound, r.message)
        case .exists: return IMAPServiceError(.exists, r.message)
        case .denied: return IMAPServiceError(.denied, r.message)
        case .invalid: return IMAPServiceError(.invalid, r.message)
        case .throttled: return IMAPServiceError(.limit, r.message)
        case .overQuota: return IMAPServiceError(.overQuota, r.message)
        case .temporary, .internal, .badSequence: return IMAPServiceError(.temporary, r.message)
        }
    }

    /// One request and its typed reply, errors mapped. A request too large for a frame is
    /// refused here: the store would close the whole worker connection on it.
    func call<R: RPCRequest>(_ request: R) async throws -> R.Reply {
        let size = request.payload().readableBytes
        guard size <= RPCLimits.defaultMaxFrame else { throw IMAPServiceError(.limit, "request of \(size) bytes exceeds a frame") }
        do { return try await rpc.call(request).get() } catch { throw Self.serviceError(error) }
    }

    // MARK: login

    public func authenticate(user: String, password: String, client: String) async -> IMAPAuthOutcome {
        await StoreLogin.authenticate(rpc, user: user, password: password, client: client, service: service) { s in
            let old = lock.withLock { () -> UInt64 in let o = session; session = s.id; self.user = s.user; return o }
            if old != 0 { rpc.call(SessionEnd(old)).whenComplete { _ in } }
        }
    }

    /// Ends the store session (which drops its watches there) and forgets the watches here.
    public func close() {
        lock.lock()
        let s = session, ws = watches.keys
        session = 0; watches.removeAll(); pendingWatches.removeAll()
        lock.unlock()
        for w in ws { events.unregister(watch: w) }
        if s != 0 { rpc.call(SessionEnd(s)).whenComplete { _ in } }
    }

    // MARK: mailboxes

    public func mailboxes() async throws -> [MailboxSummary] {
        try await call(MailboxSummaries(session: sid)).summaries
    }

    public func subscriptions() async throws -> [String] { try await call(SubscriptionList(session: sid)).names }

    public func setSubscribed(_ name: String, _ subscribed: Bool) async throws {
        _ = try await call(SubscriptionSet(session: sid, name: name, subscribed: subscribed))
    }

    public func createMailbox(_ name: String, specialUse: String) async throws {
        _ = try await call(MailboxCreate(session: sid, name: name, specialUse: specialUse))
    }

    public func deleteMailbox(_ name: String) async throws { _ = try await call(MailboxDelete(session: sid, name: name)) }

    public func renameMailbox(from: String, to: String) async throws { _ = try await call(MailboxRename(session: sid, from: from, to: to)) }

    public func status(_ name: String) async throws -> MailboxStatus? { try await call(MailboxStatusGet(session: sid, name: name)).status }

    // MARK: the selected mailbox

    /// The memo's views are this client's (its watches live on this store connection).
    private var client: ObjectIdentifier { ObjectIdentifier(rpc) }

    /// The memo's view while it is current (no store round trip); else the store's answer.
    public func select(_ name: String) async throws -> MailboxView {
        if let v = current(name) { return v }
        return try await selectFromStore(name)
    }

    /// The memo's view of `name` when its watch says it is current and the store is there.
    private func current(_ name: String) -> MailboxView? {
        let user = lock.withLock { self.user }
        guard let memo, !user.isEmpty, rpc.channel.isActive else { return nil }
        return memo.current(user: user, mailbox: name, client: client)
    }

    /// The view of `name`: the memo's brought up to date when the store sends only the changes
    /// since it, else the whole view; either way kept in the memo for the next SELECT, with the
    /// memo's watch the store armed before reading it.
    private func selectFromStore(_ name: String) async throws -> MailboxView {
        let (session, user) = lock.withLock { (self.session, self.user) }
        guard let memo else {
            let g = try await gather(name, MailboxSelect(session: session, name: name))
            return MailboxView(summary: g.header.summary, keywords: g.header.keywords, entries: g.entries)
        }
        let miss = memo.miss(user: user, mailbox: name, client: client)
        // A new watch is routed from its header on (its events follow the stream): one that
        // comes before the view is kept means the view may already be behind.
        let seen = EventCount(), events = self.events
        let g = try await gather(name, MailboxSelect(session: session, name: name, known: miss.known?.stamp, watch: miss.watch)) { h in
            guard h.watch != 0, h.watch != miss.watch else { return }
            events.register(watch: h.watch) { [memo] in seen.bump(); memo.changed(watch: $0.watch) }
        }
        let w = g.header.watch, isNew = w != 0 && w != miss.watch
        let unwatch: (@Sendable () -> Void)? = isNew ? memoUnwatch(w) : nil
        if g.since != 0 {
            guard let known = miss.known, known.stamp.highestModSeq == g.since,
                  let merged = known.merging(summary: g.header.summary, keywords: g.header.keywords, changed: g.entries, vanished: g.header.vanished)
            else {
                memo.forget(user: user, mailbox: name)
                unwatch?()
                let whole = try await gather(name, MailboxSelect(session: session, name: name))
                return MailboxView(summary: whole.header.summary, keywords: whole.header.keywords, entries: whole.entries)
            }
            memo.keep(user: user, mailbox: name, merged, after: miss, watch: w, client: client, unwatch: unwatch, newWatchEvents: isNew ? seen.value : nil)
            return merged
        }
        let whole = MailboxView(summary: g.header.summary, keywords: g.header.keywords, entries: g.entries)
        memo.keep(user: user, mailbox: name, whole, after: miss, watch: w, client: client, unwatch: unwatch, newWatchEvents: isNew ? seen.value : nil)
        return whole
    }

    /// Ends a memo watch: here, then at the store.
    private func memoUnwatch(_ w: UInt64) -> @Sendable () -> Void {
        let events = self.events, rpc = self.rpc
        return {
            events.unregister(watch: w)
            rpc.call(MailboxUnwatch(watch: w)).whenComplete { _ in }
        }
    }

    /// A current memo view answers at once: the session's own watch is asked for without waiting
    /// (its state, when it comes, is compared with the view, so a change in between still
    /// notifies). Else, with a view of `name` in the memo, its mailbox is watched while the view
    /// is read (two round trips at once); a mailbox that turns out another (renamed since) is
    /// watched anew.
    public func selectWatching(_ name: String, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> (MailboxView, any IMAPWatch) {
        if let v = current(name) {
            let pending = startWatch(mailbox: v.summary.id, since: v.summary.highestModSeq, onChange: onChange)
            return (v, PendingIMAPWatch(services: self, pending: pending))
        }
        let user = lock.withLock { self.user }
        guard let guess = memo?.view(user: user, mailbox: name)?.summary.id else {
            let view = try await selectFromStore(name)
            return (view, try await watch(mailbox: view.summary.id, since: view.summary.highestModSeq, onChange: onChange))
        }
        let early = startWatch(mailbox: guess, since: nil, onChange: onChange)
        let view: MailboxView
        do { view = try await selectFromStore(name) } catch {
            if let w = try? await watched(early) { unwatch(w.watch) }
            throw error
        }
        if view.summary.id == guess {
            let w = try await watched(early)
            Self.catchUp(w.state, since: view.summary.highestModSeq, onChange)
            return (view, RPCIMAPWatch(services: self, id: w.watch))
        }
        if let w = try? await watched(early) { unwatch(w.watch) }
        return (view, try await watch(mailbox: view.summary.id, since: view.summary.highestModSeq, onChange: onChange))
    }

    /// Gathers one SELECT stream (items arrive in order on the client's event loop).
    private func gather(_ name: String, _ request: MailboxSelect,
                        onHeader: @escaping @Sendable (ViewHeader) -> Void = { _ in }) async throws -> (header: ViewHeader, entries: [ViewEntry], since: UInt64) {
        final class Gathered: @unchecked Sendable { var header: ViewHeader?; var entries: [ViewEntry] = [] }
        let g = Gathered(), loop = rpc.channel.eventLoop
        let end: ViewEnd
        do {
            end = try await rpc.stream(request) { item in
                switch item {
                case .header(let h):
                    g.header = h
                    onHeader(h)
                    if h.since == 0 { g.entries.reserveCapacity(Int(h.summary.messages)) }
                case .chunk(let e): g.entries.append(contentsOf: e)
                }
                return loop.makeSucceededVoidFuture()
            }.get()
        } catch { throw Self.serviceError(error) }
        guard let h = g.header, end.count == g.entries.count else {
            throw IMAPServiceError(.temporary, "incomplete view of \(name): \(g.entries.count) of \(end.count) entries")
        }
        return (h, g.entries, h.since)
    }

    /// Registers with the router as the Watching reply arrives (on the client's loop, before any
    /// later frame is read), so no notification for the new watch can be missed.
    public func watch(mailbox: Int64, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> any IMAPWatch {
        RPCIMAPWatch(services: self, id: try await watched(startWatch(mailbox: mailbox, since: nil, onChange: onChange)).watch)
    }

    /// The same for a view at MODSEQ `since`: a change the view missed notifies at once.
    func watch(mailbox: Int64, since: UInt64, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> any IMAPWatch {
        RPCIMAPWatch(services: self, id: try await watched(startWatch(mailbox: mailbox, since: since, onChange: onChange)).watch)
    }

    /// The store adds a watch before it reads the state it answers with: a state past the view's
    /// MODSEQ is a change the view missed that the watch will not notify, so it is told here.
    static func catchUp(_ state: MailboxState, since: UInt64, _ onChange: @Sendable (UInt64) -> Void) {
        if state.highestModSeq > since { onChange(state.highestModSeq) }
    }

    /// Sends the watch request now (no task in between); `watched` awaits its answer. Until it
    /// arrives a delta of the mailbox waits for it (so the pull re-arms it).
    private func startWatch(mailbox: Int64, since: UInt64?, onChange: @escaping @Sendable (UInt64) -> Void) -> EventLoopFuture<Watching> {
        let events = self.events, session = sid
        let pending = rpc.call(MailboxWatchByID(session: session, mailbox: mailbox)).map { [self] w in
            let live = lock.withLock { () -> Bool in
                pendingWatches[mailbox] = nil
                guard self.session == session else { return false }
                watches[w.watch] = mailbox
                return true
            }
            guard live else { return w }       // closed meanwhile: the store dropped it with the session
            events.register(watch: w.watch) { onChange($0.highestModSeq) }
            if let since { Self.catchUp(w.state, since: since, onChange) }
            return w
        }
        lock.withLock { pendingWatches[mailbox] = pending }
        return pending
    }

    private func watched(_ pending: EventLoopFuture<Watching>) async throws -> Watching {
        do { return try await pending.get() } catch { throw Self.serviceError(error) }
    }

    func unwatch(_ id: UInt64) {
        lock.lock(); let held = watches.removeValue(forKey: id) != nil; lock.unlock()
        guard held else { return }
        events.unregister(watch: id)
        rpc.call(MailboxUnwatch(watch: id)).whenComplete { _ in }
    }

    /// The watch this connection holds on `mailbox` (0: none); pulling re-arms it.
    private func watchID(_ mailbox: Int64) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        return watches.first { $0.value == mailbox }?.key ?? 0
    }

    public func delta(mailbox: Int64, since: UInt64, limit: Int) async throws -> MailboxDelta {
        if let pending = lock.withLock({ pendingWatches[mailbox] }) { _ = try? await pending.get() }
        let n = UInt32(clamping: min(max(limit, 1), MailboxLimits.maxDeltaEntries))
        return try await call(MailboxDeltaGet(session: sid, mailbox: mailbox, since: since, limit: n, watch: watchID(mailbox))).delta
    }

    /// In batches of `MailboxLimits.detailsPerRequest`; the store may answer a batch in part
    /// (`through`), and the rest is asked again.
    public func details(mailbox: Int64, uids: [UInt32]) async throws -> [MessageDetails] {
        var rest = Array(Set(uids)).sorted()[...], out: [MessageDetails] = []
        while !rest.isEmpty {
            let batch = Array(rest.prefix(MailboxLimits.detailsPerRequest))
            let r = try await call(DetailsGet(session: sid, mailbox: mailbox, uids: batch))
            out += r.details
            guard batch.contains(r.through) else { throw IMAPServiceError(.temporary, "details reply through UID \(r.through)") }
            rest = rest.drop { $0 <= r.through }
        }
        return out
    }

    /// In batches of `MailboxLimits.detailsPerRequest`, each one request with its prefixes.
    public func details(mailbox: Int64, uids: [UInt32], info: Bool, withPrefix: Bool, whole: Bool,
                        prefixLimit: Int, fields: HeaderFieldSelection?) async throws -> [(MessageDetails, [UInt8]?)] {
        var want: DetailsWant = info ? .info : []
        if withPrefix { want.insert(whole ? .message : .header) }
        if withPrefix && !whole && fields != nil { want.insert(.fields) }
        let limit = UInt32(clamping: min(max(0, prefixLimit), MailboxLimits.maxReadLength))
        let ascending = zip(uids, uids.dropFirst()).allSatisfy { $0 < $1 }
        var rest = (ascending ? uids : Array(Set(uids)).sorted())[...], out: [(MessageDetails, [UInt8]?)] = []
        out.reserveCapacity(rest.count)
        while !rest.isEmpty {
            let batch = Array(rest.prefix(MailboxLimits.detailsPerRequest))
            let r = try await call(DetailsGet(session: sid, mailbox: mailbox, uids: batch, want: want, prefixLimit: limit,
                                              fields: fields?.names ?? [], fieldsNot: fields?.not ?? false))
            for (i, d) in r.details.enumerated() {
                let p = i < r.prefixes.count ? r.prefixes[i] : nil
                out.append((d, p.flatMap { $0.isEmpty ? nil : $0 }))
            }
            guard batch.contains(r.through) else { throw IMAPServiceError(.temporary, "details reply through UID \(r.through)") }
            rest = rest.drop { $0 <= r.through }
        }
        return out
    }

    /// In chunks of at most `maxReadChunk` (and the store's MailboxLimits.maxReadLength); stops
    /// at the message's end.
    public func read(mailbox: Int64, uid: UInt32, offset: Int, length: Int) async throws -> [UInt8] {
        guard offset >= 0, length >= 0 else { throw IMAPServiceError(.invalid, "negative range") }
        let chunk = min(maxReadChunk, MailboxLimits.maxReadLength)
        var out: [UInt8] = [], at = offset
        while out.count < length {
            let want = min(chunk, length - out.count)
            let b = try await call(MessageRead(session: sid, mailbox: mailbox, uid: uid, offset: UInt64(at), length: UInt32(want))).bytes
            out += b.readableBytesView
            at += b.readableBytes
            if b.readableBytes < want { break }
        }
        return out
    }

    /// In batches of `MailboxLimits.flagsPerRequest` UIDs (each reply lists its changed entries).
    public func storeFlags(mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags,
                           keywords: [String], unchangedSince: UInt64?) async throws -> FlagUpdate {
        guard keywords.count <= MailboxLimits.maxKeywords else { throw IMAPServiceError(.limit, "too many keywords") }
        let all = uidRanges(uids).flatMap { Array($0) }
        var result = FlagUpdate(changed: [], modified: [], keywords: [], highestModSeq: 0)
        var start = 0
        repeat {
            let batch = Array(all[start..<min(start + MailboxLimits.flagsPerRequest, all.count)])
            let u = try await call(FlagsStore(session: sid, mailbox: mailbox, uids: batch, operation: operation, flags: flags.intersection(.all),
                                              keywords: keywords, unchangedSince: unchangedSince)).update
            result.changed += u.changed; result.modified += u.modified
            result.keywords = u.keywords; result.highestModSeq = max(result.highestModSeq, u.highestModSeq)
            start += MailboxLimits.flagsPerRequest
        } while start < all.count
        return result
    }

    public func copy(mailbox: Int64, uids: [UInt32], to: String, move: Bool) async throws -> CopyResult {
        try checkUIDs(uids)
        return try await call(MessagesCopy(session: sid, mailbox: mailbox, uids: uids, to: to, move: move)).result
    }

    public func expunge(mailbox: Int64, uids: [UInt32]?) async throws -> [UInt32] {
        if let uids { try checkUIDs(uids) }
        return try await call(MessagesExpunge(session: sid, mailbox: mailbox, uids: uids)).uids
    }

    /// The body travels in DeliverChunk frames after AppendBegin (Messages+Mailbox.swift).
    public func append(to: String, flags: SystemFlags, keywords: [String], internalDate: Int64?, body: [UInt8]) async throws -> AppendResult {
        guard keywords.count <= MailboxLimits.maxKeywords else { throw IMAPServiceError(.limit, "too many keywords") }
        let begin = AppendBegin(session: sid, mailbox: to, flags: flags.intersection(.all), keywords: keywords, internalDate: internalDate, size: UInt64(body.count))
        do { return try await rpc.call(begin, body: ByteBuffer(bytes: body)).get().result } catch { throw Self.serviceError(error) }
    }

    public func quota() async throws -> QuotaUsage { try await call(QuotaGet(session: sid)).usage }

    public func search(mailbox: Int64, query: SearchQuery) async throws -> [UInt32] {
        if let why = SearchRun.problem(query) { throw IMAPServiceError(.limit, why) }
        return try await call(SearchRun(session: sid, mailbox: mailbox, query: query)).uids
    }

    public func sort(mailbox: Int64, criteria: [SortCriterion], query: SearchQuery) async throws -> [UInt32] {
        if let why = SearchRun.problem(query) { throw IMAPServiceError(.limit, why) }
        guard criteria.count <= MailboxLimits.maxSortCriteria else { throw IMAPServiceError(.limit, "too many sort criteria") }
        return try await call(SortRun(session: sid, mailbox: mailbox, criteria: criteria, query: query)).uids
    }

    public func thread(mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery) async throws -> ThreadForest {
        if let why = SearchRun.problem(query) { throw IMAPServiceError(.limit, why) }
        return try await call(ThreadRun(session: sid, mailbox: mailbox, algorithm: algorithm, query: query)).forest
    }

    /// A UID set the store would refuse to decode is refused here (a refused frame closes the
    /// whole worker connection).
    private func checkUIDs(_ uids: [UInt32]) throws {
        guard uids.count <= MailboxLimits.maxUIDs else { throw IMAPServiceError(.limit, "over \(MailboxLimits.maxUIDs) UIDs") }
        guard uidRanges(uids).count <= MailboxLimits.maxUIDRanges else { throw IMAPServiceError(.limit, "over \(MailboxLimits.maxUIDRanges) UID ranges") }
    }
}

/// Events counted for a memo watch between its SELECT's header and the memo keeping the view.
final class EventCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func bump() { lock.withLock { n += 1 } }
    /// Read inside the memo's lock (ViewMemo.keep): a bump after it finds the watch in the memo.
    var value: @Sendable () -> Int { { [self] in lock.withLock { n } } }
}

/// A watch asked for and maybe not answered yet (SELECT from the memo): `cancel` ends it once known.
final class PendingIMAPWatch: IMAPWatch, @unchecked Sendable {
    let services: RPCIMAPServices, pending: EventLoopFuture<Watching>
    init(services: RPCIMAPServices, pending: EventLoopFuture<Watching>) { self.services = services; self.pending = pending }
    func cancel() { pending.whenSuccess { [services] in services.unwatch($0.watch) } }
}

/// A watch held by RPCIMAPServices; `cancel` ends it at the store too.
final class RPCIMAPWatch: IMAPWatch, @unchecked Sendable {
    let services: RPCIMAPServices, id: UInt64
    init(services: RPCIMAPServices, id: UInt64) { self.services = services; self.id = id }
    func cancel() { services.unwatch(id) }
}
