// The views of mailboxes an imapd process selected lately, shared by its connections (Dovecot's
// index files play this part), each with the process's watch on its mailbox (DESIGN §2): while
// no event came since the store armed that watch, the view is the store's and SELECT answers
// from it with no store round trip; else the next SELECT asks only for the changes since it.
// Keyed by the logged-in user as the store named it and the mailbox name. Bounded in entries.
import Foundation
import MailIPC
import MailModel

public final class ViewMemo: @unchecked Sendable {
    /// Smaller views are read whole each time (cheap enough); the store watches no smaller one.
    public static let minEntries = Int(MailboxSelect.memoMinMessages)
    /// Entries held in all (32 bytes each in memory; shared with the sessions that have them selected).
    public static let maxEntries = 1 << 20

    struct Key: Hashable { var user: String, mailbox: String }
    /// A kept view and the detached store watch standing for it.
    struct Entry {
        var view: MailboxView
        var watch: UInt64 = 0                    // 0: none yet
        var client: ObjectIdentifier? = nil      // the RPC client whose connection holds `watch`
        var unwatch: (@Sendable () -> Void)? = nil
        /// Armed by the store before the view was read and no event since: the view is current.
        var fresh = false
        /// Events received for `watch` (a SELECT in flight compares it before and after).
        var events = 0
    }
    /// What a SELECT that cannot be answered from the memo tells the store, and compares after.
    public struct Miss: Sendable {
        public var known: MailboxView?
        /// MailboxSelect.watch: 0, the watch to re-arm, or MailboxSelect.newWatch.
        public var watch: UInt64
        var events: Int
    }

    private let lock = NSLock()
    private var views: [Key: Entry] = [:]
    private var byWatch: [UInt64: Key] = [:]
    private var held = 0

    public init() {}

    /// The last view of `mailbox` kept for `user`.
    public func view(user: String, mailbox: String) -> MailboxView? {
        lock.withLock { views[Key(user: user, mailbox: mailbox)]?.view }
    }

    /// The view when it is current: armed through `client`'s connection and no event since.
    public func current(user: String, mailbox: String, client: ObjectIdentifier) -> MailboxView? {
        lock.withLock {
            guard let e = views[Key(user: user, mailbox: mailbox)], e.fresh, e.client == client else { return nil }
            return e.view
        }
    }

    /// For a SELECT through `client`: the view to start from and the watch to ask for (the
    /// store makes a new one only for a mailbox big enough to keep).
    public func miss(user: String, mailbox: String, client: ObjectIdentifier) -> Miss {
        lock.withLock {
            guard let e = views[Key(user: user, mailbox: mailbox)] else { return Miss(known: nil, watch: MailboxSelect.newWatch, events: 0) }
            let w = e.watch != 0 && e.client == client ? e.watch : MailboxSelect.newWatch
            return Miss(known: e.view, watch: w, events: e.events)
        }
    }

    /// Keeps `v`, read after the store armed `watch` (ViewHeader.watch; 0 none) for the SELECT
    /// that `miss` prepared: current when no event came for that watch since `miss` (re-armed)
    /// or since the stream's header (new: `newWatchEvents` counts them); `unwatch` ends a new one.
    public func keep(user: String, mailbox: String, _ v: MailboxView, after miss: Miss? = nil, watch: UInt64 = 0,
                     client: ObjectIdentifier? = nil, unwatch: (@Sendable () -> Void)? = nil,
                     newWatchEvents: (@Sendable () -> Int)? = nil) {
        let key = Key(user: user, mailbox: mailbox)
        var ended: [@Sendable () -> Void] = []
        defer { for u in ended { u() } }
        lock.lock(); defer { lock.unlock() }
        let old = remove(key, keepingWatch: watch, into: &ended)
        guard v.entries.count >= Self.minEntries, v.entries.count <= Self.maxEntries else {
            // Not kept: the watch asked for it ends too.
            guard watch != 0, let u = old?.watch == watch ? old?.unwatch : unwatch else { return }
            byWatch[watch] = nil
            ended.append(u)
            return
        }
        while held + v.entries.count > Self.maxEntries, let victim = views.keys.first {
            _ = remove(victim, keepingWatch: 0, into: &ended)
        }
        var e = Entry(view: v)
        if watch != 0 {
            let same = old?.watch == watch
            e.watch = watch; e.client = client
            e.unwatch = same ? old?.unwatch : unwatch
            e.events = same ? old!.events : 0
            if let newWatchEvents {
                e.fresh = !same && newWatchEvents() == 0
            } else {
                e.fresh = same && miss?.watch == watch && miss?.events == e.events
            }
            byWatch[watch] = key
        }
        views[key] = e
        held += v.entries.count
    }

    /// An event for a memo watch: its view is no longer known to be current.
    public func changed(watch: UInt64) {
        lock.withLock {
            guard let key = byWatch[watch] else { return }
            views[key]?.fresh = false
            views[key]?.events += 1
        }
    }

    /// Forgets one view (it could not be brought up to date) and ends its watch.
    public func forget(user: String, mailbox: String) {
        var ended: [@Sendable () -> Void] = []
        lock.withLock { _ = remove(Key(user: user, mailbox: mailbox), keepingWatch: 0, into: &ended) }
        for u in ended { u() }
    }

    /// Removes an entry (lock held); its watch is ended unless it is `keepingWatch`.
    private func remove(_ key: Key, keepingWatch: UInt64, into ended: inout [@Sendable () -> Void]) -> Entry? {
        guard let old = views.removeValue(forKey: key) else { return nil }
        held -= old.view.entries.count
        if old.watch != 0, old.watch != keepingWatch {
            byWatch[old.watch] = nil
            if let u = old.unwatch { ended.append(u) }
        }
        return old
    }

    var count: Int { lock.withLock { views.count } }
    var watchCount: Int { lock.withLock { byWatch.count } }
}

extension MailboxView {
    /// What the store is told of this view on the next SELECT.
    var stamp: ViewStamp { ViewStamp(mailbox: summary.id, uidValidity: summary.uidValidity, highestModSeq: summary.highestModSeq) }
}
