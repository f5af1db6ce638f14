// Mailbox watches (DESIGN §2 "notify, then pull"): the coalescing table as a pure value, and
// the hub that shares it between every connection of the store. A watch has at most one
// notification outstanding: further changes only raise the MODSEQ it will report, until the
// worker pulls (MailboxChanges), so the store's memory per watch is constant.
import Foundation
import NIOCore
import MailIPC

struct WatchTable {
    struct Watch: Equatable {
        var connection: ObjectIdentifier, session: UInt64, mailboxID: Int64
        var notified = false          // a MailboxChanged is outstanding
        var latest: UInt64 = 0        // highest MODSEQ seen since
        /// The worker knows the watch's id (its Watching reply is out): until then a change is
        /// held, and sent right after that reply, so the worker never gets an event it cannot route.
        var announced = true
        var held = false
    }
    /// The session of a detached watch (sessions are numbered from 1).
    static let detached: UInt64 = 0
    private(set) var watches: [UInt64: Watch] = [:]
    private var byMailbox: [Int64: Set<UInt64>] = [:]
    private var nextID: UInt64 = 0

    /// `armed` false: no notification until the first pull (a watch whose id the worker learns
    /// only with a reply, so an event before it could not be routed).
    mutating func add(connection: ObjectIdentifier, session: UInt64, mailboxID: Int64, armed: Bool = true, announced: Bool = true) -> UInt64 {
        nextID += 1
        watches[nextID] = Watch(connection: connection, session: session, mailboxID: mailboxID, notified: !armed, announced: announced)
        byMailbox[mailboxID, default: []].insert(nextID)
        return nextID
    }

    mutating func remove(_ id: UInt64) {
        guard let w = watches.removeValue(forKey: id) else { return }
        byMailbox[w.mailboxID]?.remove(id)
        if byMailbox[w.mailboxID]?.isEmpty == true { byMailbox[w.mailboxID] = nil }
    }

    mutating func remove(where match: (Watch) -> Bool) {
        for (id, w) in watches where match(w) { remove(id) }
    }

    /// A change to `mailboxID` up to `modSeq`: the watches to notify now (each marked outstanding).
    mutating func changed(mailboxID: Int64, modSeq: UInt64) -> [(watch: UInt64, connection: ObjectIdentifier)] {
        var out: [(UInt64, ObjectIdentifier)] = []
        for id in byMailbox[mailboxID] ?? [] {
            watches[id]!.latest = max(watches[id]!.latest, modSeq)
            if !watches[id]!.notified {
                watches[id]!.notified = true
                if watches[id]!.announced { out.append((id, watches[id]!.connection)) } else { watches[id]!.held = true }
            }
        }
        return out
    }

    /// The worker is pulling: the next change notifies again. Called before the store is read,
    /// so a change committed during the pull is never lost (at worst notified twice).
    mutating func pulled(_ id: UInt64) { watches[id]?.notified = false }

    /// The watch's id reached the worker: the MODSEQ of a change held meanwhile, to send now.
    mutating func announce(_ id: UInt64) -> UInt64? {
        guard var w = watches[id], !w.announced else { return nil }
        w.announced = true
        defer { w.held = false; watches[id] = w }
        return w.held ? w.latest : nil
    }
}

/// The outbound agents' queue watches (DESIGN §2, §4), per connection: the same coalescing —
/// one QueueChanged outstanding until that connection's next claim.
struct QueueWatchTable {
    private(set) var notified: [ObjectIdentifier: Bool] = [:]

    mutating func add(_ connection: ObjectIdentifier) { notified[connection] = false }
    mutating func remove(_ connection: ObjectIdentifier) { notified[connection] = nil }

    /// Rows became due: the connections to notify now (each marked outstanding).
    mutating func changed() -> [ObjectIdentifier] {
        let out = notified.filter { !$0.value }.map(\.key)
        for c in out { notified[c] = true }
        return out
    }

    /// The agent is claiming: the next change notifies again. Called before the store is read,
    /// so rows made due during the claim are never missed (at worst notified twice).
    mutating func pulled(_ connection: ObjectIdentifier) { if notified[connection] != nil { notified[connection] = false } }
}

/// Every watch of the store process, and the channels to notify.
final class WatchHub: @unchecked Sendable {
    private let lock = NSLock()
    private var table = WatchTable()
    private var queueTable = QueueWatchTable()
    private var channels: [ObjectIdentifier: Channel] = [:]

    /// `announced` false: changes are held until `announce` (called once the reply naming it is written).
    func add(channel: Channel, owner: ObjectIdentifier, session: UInt64, mailboxID: Int64, announced: Bool = true) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        channels[owner] = channel
        return table.add(connection: owner, session: session, mailboxID: mailboxID, announced: announced)
    }

    /// On the connection's loop, after the Watching reply was written: a held change goes out now.
    func announce(_ id: UInt64) {
        lock.lock()
        let modSeq = table.announce(id), ch = table.watches[id].flatMap { channels[$0.connection] }
        lock.unlock()
        if let modSeq, let ch { ch.writeAndFlush(MailboxChanged(watch: id, highestModSeq: modSeq).frame(requestID: 0), promise: nil) }
    }

    /// A watch of the connection itself, not of a session (imapd's view memo, DESIGN §2): it
    /// outlives the session that asked for it and ends with MailboxUnwatch or the connection.
    /// Armed at once, announced (`announce`) once the SELECT stream that names it is written.
    func addDetached(channel: Channel, owner: ObjectIdentifier, mailboxID: Int64) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        channels[owner] = channel
        return table.add(connection: owner, session: WatchTable.detached, mailboxID: mailboxID, announced: false)
    }

    /// The watch if it belongs to this connection.
    func watch(_ id: UInt64, owner: ObjectIdentifier) -> WatchTable.Watch? {
        lock.lock(); defer { lock.unlock() }
        guard let w = table.watches[id], w.connection == owner else { return nil }
        return w
    }

    func remove(_ id: UInt64) { lock.lock(); table.remove(id); lock.unlock() }
    func pulled(_ id: UInt64) { lock.lock(); table.pulled(id); lock.unlock() }

    func removeSession(_ session: UInt64, owner: ObjectIdentifier) {
        lock.lock(); table.remove { $0.connection == owner && $0.session == session }; lock.unlock()
    }

    func removeConnection(_ owner: ObjectIdentifier) {
        lock.lock(); table.remove { $0.connection == owner }; queueTable.remove(owner); channels[owner] = nil; lock.unlock()
    }

    func addQueueWatch(channel: Channel, owner: ObjectIdentifier) {
        lock.lock(); channels[owner] = channel; queueTable.add(owner); lock.unlock()
    }

    func queuePulled(_ owner: ObjectIdentifier) { lock.lock(); queueTable.pulled(owner); lock.unlock() }

    /// Rows became due now: one QueueChanged per queue watch that has none outstanding.
    func queueChanged() {
        lock.lock()
        let notify = queueTable.changed().compactMap { channels[$0] }
        lock.unlock()
        for ch in notify { ch.writeAndFlush(QueueChanged().frame(requestID: 0), promise: nil) }
    }

    /// Sends one MailboxChanged per watch that has none outstanding: per worker connection, the
    /// frames of all its watches in one hop to its event loop and one flush (a mailbox that a
    /// thousand IDLE sessions of one imapd watch costs one write there, not a thousand).
    func changed(mailboxID: Int64, modSeq: UInt64) {
        lock.lock()
        var byChannel: [ObjectIdentifier: (channel: Channel, watches: [UInt64])] = [:]
        for n in table.changed(mailboxID: mailboxID, modSeq: modSeq) {
            guard let ch = channels[n.connection] else { continue }
            byChannel[n.connection, default: (ch, [])].watches.append(n.watch)
        }
        lock.unlock()
        for (ch, watches) in byChannel.values {
            let send = {
                for w in watches { ch.write(MailboxChanged(watch: w, highestModSeq: modSeq).frame(requestID: 0), promise: nil) }
                ch.flush()
            }
            // On the channel's loop already (a change made through that connection): at once, in
            // order with what the handler writes next, as a direct writeAndFlush would be.
            if ch.eventLoop.inEventLoop { send() } else { ch.eventLoop.execute(send) }
        }
    }
}
