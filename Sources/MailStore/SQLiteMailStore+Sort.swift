// SORT and THREAD in the store (DESIGN §9): the search program picks the messages (the same
// evaluation as SEARCH), their envelopes from the info kept at delivery give the keys, and
// REFERENCES threading reads only the References: field from each message's header bytes.
import Foundation
import GRDB
import GRDBSQLite
import MIME
import MailModel

extension SQLiteMailStore {
    /// Header bytes read per message for References: (a longer header is cut here).
    static let maxThreadHeader = 64 * 1024

    /// One read transaction: the matching UIDs with their arrival (and size, only when SIZE is
    /// a criterion: it is the one key that needs the wide `messages` rows), then each envelope
    /// key's ranks from the cache when it ranked these very UIDs last, else its values from the
    /// cache, and only for the messages it lacks the envelope decoded and the values computed
    /// (and kept).
    public func sort(user: Int64, mailbox: Int64, criteria: [SortCriterion], query: SearchQuery) throws -> [UInt32] {
        let matching: Set<UInt32>? = query == .all ? nil : Set(try search(user: user, mailbox: mailbox, query: query))
        let withSize = criteria.contains { $0.key == .size }
        var kinds: [SortCriterion.Key] = []
        for c in criteria where SortKeys.needsEnvelope(c.key) && !kinds.contains(c.key) { kinds.append(c.key) }
        let (uids, arrivals, sizes, ranked) = try pool.read { db -> ([UInt32], [Int64], [Int64], [SortCriterion.Key: [Int64]]) in
            let s = try Self.ownedMailbox(db, user: user, id: mailbox)
            var uids: [UInt32] = [], arrivals: [Int64] = [], sizes: [Int64] = []
            uids.reserveCapacity(Int(s.messages)); arrivals.reserveCapacity(Int(s.messages))
            let sql = withSize
                ? "SELECT mm.uid, mm.internal_date, m.size FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id WHERE mm.mailbox_id = ? ORDER BY mm.uid"
                : "SELECT mm.uid, mm.internal_date FROM mailbox_messages mm WHERE mm.mailbox_id = ? ORDER BY mm.uid"
            // The columns read in SQLite's row (no Row made per message).
            let st = try db.cachedStatement(sql: sql)
            let cursor = try Int64.fetchCursor(st, arguments: [mailbox])
            while let u = try cursor.next() {
                let uid = UInt32(truncatingIfNeeded: u)
                if let matching, !matching.contains(uid) { continue }
                uids.append(uid); arrivals.append(sqlite3_column_int64(st.sqliteStatement, 1))
                if withSize { sizes.append(sqlite3_column_int64(st.sqliteStatement, 2)) }
            }
            let keyOf = { (k: SortCriterion.Key) in SortValueCache.Column(user: user, mailbox: mailbox, uidValidity: s.uidValidity, key: k) }
            var ranked: [SortCriterion.Key: [Int64]] = [:]
            for k in kinds { ranked[k] = sortValueCache.ranks(keyOf(k), of: uids) }
            let unranked = kinds.filter { ranked[$0] == nil }
            guard !unranked.isEmpty else { return (uids, arrivals, sizes, ranked) }
            // Kept values, then the envelopes of the messages some key lacks.
            var columns: [SortCriterion.Key: [SortValue?]] = [:]
            var missing = Set<Int>()
            for k in unranked {
                let got = sortValueCache.values(keyOf(k), uids)
                for (i, v) in got.enumerated() where v == nil { missing.insert(i) }
                columns[k] = got
            }
            if !missing.isEmpty {
                let at = Dictionary(uniqueKeysWithValues: missing.map { (uids[$0], $0) })
                let infos = try Self.rows(db, select: "SELECT mm.uid, m.info FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id",
                                          mailbox: mailbox, uids: missing.map { uids[$0] }) { r in (UInt32(truncatingIfNeeded: r[0] as Int64), r[1] as Data) }
                var computed: [SortCriterion.Key: [(UInt32, SortValue)]] = [:]
                for (uid, info) in infos {
                    guard let i = at[uid] else { continue }
                    let envelope = try MessageInfo.envelope(encoded: [UInt8](info)).envelope
                    let m = SortableMessage(uid: uid, internalDate: arrivals[i], size: 0, envelope: envelope)
                    for k in unranked where columns[k]![i] == nil {
                        let v = SortKeys.value(m, k)
                        columns[k]![i] = v
                        computed[k, default: []].append((uid, v))
                    }
                }
                for (k, values) in computed { sortValueCache.keep(keyOf(k), values) }
            }
            for k in unranked {
                // Every row of this transaction has its info, so nothing is left without a value.
                let r = SortKeys.ranks(columns[k]!.map { $0 ?? .text([]) })
                sortValueCache.keep(keyOf(k), ranks: r, of: uids)
                ranked[k] = r
            }
            return (uids, arrivals, sizes, ranked)
        }
        return SortKeys.sort(uids: uids, ranked: criteria.map { c in
            switch c.key {
            case .arrival: return arrivals
            case .size: return sizes
            default: return ranked[c.key]!
            }
        }, by: criteria)
    }

    public func thread(user: Int64, mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery) throws -> ThreadForest {
        let found = try sortable(user: user, mailbox: mailbox, query: query, envelope: true, headers: algorithm == .references)
        return Threading.thread(found.map { m, header in
            var references: String?
            if let header {
                SearchHeaders.forEachField(header, 0, header.count) { name, value in
                    if references == nil, name.count == 10, String(decoding: name, as: UTF8.self).lowercased() == "references" { references = value }
                }
            }
            return ThreadableMessage(m, references: references)
        }, algorithm)
    }

    /// The messages matching `query` with what SORT looks at (without `envelope`, an empty
    /// envelope: the info is not decoded), and with `headers` the bytes of their top-level header
    /// (up to `maxThreadHeader`).
    func sortable(user: Int64, mailbox: Int64, query: SearchQuery, envelope: Bool, headers: Bool) throws -> [(SortableMessage, [UInt8]?)] {
        let matching: Set<UInt32>? = query == .all ? nil : Set(try search(user: user, mailbox: mailbox, query: query))
        typealias Found = (SortableMessage, inline: [UInt8]?, file: (hash: [UInt8], length: Int)?)
        let rows: [Found] = try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT mm.uid, mm.internal_date, m.size, \(envelope || headers ? "m.info" : "NULL"), \(headers ? "m.hash, \(Self.bodyInFile), substr(m.body, 1, \(Self.maxThreadHeader))" : "NULL, 0, NULL")
                FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                WHERE mm.mailbox_id = ? ORDER BY mm.uid
                """, arguments: [mailbox])
            var out: [Found] = []
            while let r = try cursor.next() {
                let uid = UInt32(truncatingIfNeeded: r[0] as Int64)
                if let matching, !matching.contains(uid) { continue }
                guard envelope || headers else {
                    out.append((SortableMessage(uid: uid, internalDate: r[1], size: UInt64(r[2] as Int64), envelope: Envelope()), nil, nil))
                    continue
                }
                let info = try MessageInfo.envelope(encoded: [UInt8](r[3] as Data))
                let m = SortableMessage(uid: uid, internalDate: r[1], size: UInt64(r[2] as Int64), envelope: info.envelope)
                let length = min(info.headerSize, Self.maxThreadHeader)
                if !headers { out.append((m, nil, nil)) }
                else if r[5] as Bool { out.append((m, nil, ([UInt8](r[4] as Data), length))) }
                else { out.append((m, (r[6] as Data?).map { [UInt8]($0.prefix(length)) } ?? [], nil)) }
            }
            return out
        }
        // Files are read after the transaction; one expunged meanwhile has no header to give.
        return rows.map { m, inline, file in
            guard headers else { return (m, nil) }
            if let file { return (m, (try? blobs.read(file.hash, offset: 0, length: file.length)) ?? []) }
            return (m, inline)
        }
    }
}

/// SORT's values of the envelope keys (DATE, SUBJECT, FROM, TO, CC, DISPLAYFROM, DISPLAYTO) as
/// last computed, per mailbox, UIDVALIDITY and UID: a message's envelope and internal date never
/// change and a UID is never given again within a UIDVALIDITY (RFC 9051 §2.3.1.1), and the user
/// is part of the key, so an entry is never stale (Dovecot keeps its sort keys in its index
/// files the same way). With them, each key's ranks over the UIDs it last sorted: the same
/// UIDs again (a webmail's message list, asked anew while nothing arrived or left) are ranked
/// without a look at a value. A repeated SORT decodes no envelope and extracts no base subject
/// again. Bounded by `maxBytes`: when full, it starts over.
final class SortValueCache: @unchecked Sendable {
    struct Column: Hashable { var user: Int64, mailbox: Int64, uidValidity: UInt32, key: SortCriterion.Key }
    static let maxBytes = 32 << 20
    /// Bookkeeping counted per value besides its bytes (table slot, array header).
    static let entryCost = 64
    /// Bytes kept per UID of a ranked list (the UID and its rank).
    static let rankCost = MemoryLayout<UInt32>.size + MemoryLayout<Int64>.size
    private let lock = NSLock()
    private var columns: [Column: [UInt32: SortValue]] = [:]
    private var ranked: [Column: (uids: [UInt32], ranks: [Int64])] = [:]
    private var held = 0

    /// The ranks `column` last gave, if they were of exactly these `uids`.
    func ranks(_ column: Column, of uids: [UInt32]) -> [Int64]? {
        lock.withLock { ranked[column].flatMap { $0.uids == uids ? $0.ranks : nil } }
    }

    func keep(_ column: Column, ranks: [Int64], of uids: [UInt32]) {
        let cost = uids.count * Self.rankCost
        guard cost <= Self.maxBytes / 2 else { return }
        lock.withLock {
            if let old = ranked.removeValue(forKey: column) { held -= old.uids.count * Self.rankCost }
            if held + cost > Self.maxBytes { columns.removeAll(); ranked.removeAll(); held = 0 }
            ranked[column] = (uids, ranks)
            held += cost
        }
    }

    /// The values of `uids` in `column`, nil where none is kept.
    func values(_ column: Column, _ uids: [UInt32]) -> [SortValue?] {
        lock.withLock {
            guard let c = columns[column] else { return [SortValue?](repeating: nil, count: uids.count) }
            return uids.map { c[$0] }
        }
    }

    func keep(_ column: Column, _ values: [(UInt32, SortValue)]) {
        let cost = values.reduce(0) { $0 + Self.entryCost + $1.1.heldBytes }
        guard cost <= Self.maxBytes / 2 else { return }
        lock.withLock {
            if held + cost > Self.maxBytes { columns.removeAll(); ranked.removeAll(); held = 0 }
            var c = columns.removeValue(forKey: column) ?? [:]
            for (uid, v) in values where c.updateValue(v, forKey: uid) == nil { held += Self.entryCost + v.heldBytes }
            columns[column] = c
        }
    }

    var count: Int { lock.withLock { columns.values.reduce(0) { $0 + $1.count } } }
}
