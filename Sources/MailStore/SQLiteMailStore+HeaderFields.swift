// HEADER.FIELDS of whole mailboxes (RFC 9051 §6.4.5) from the fields clients list, kept per body
// at delivery in the narrow `header_fields` table (v10): a listing reads one small row per
// message, not each body's header. Every answer equals HeaderFieldFilter over the whole header.
import Foundation
import GRDB
import GRDBSQLite
import MailSyntax

extension SQLiteMailStore {
    /// Kept bytes longer than this are not kept (`fields` NULL: the header is filtered when fetched).
    static let maxKeptFields = 16 * 1024
    /// A header longer than this is not scanned for its kept fields (NULL as well).
    static let maxKeptHeaderScan = 256 * 1024
    /// Bodies whose fields one start-up fill transaction keeps.
    static let keptFillBatch = 512
    /// Bytes of a body in a row the fill reads along with it (a longer header is read on its own).
    static let keptFillHead = 8192

    /// The kept fields of a top-level header `[0, headerSize)`: HeaderFieldFilter to
    /// `HeaderFieldFilter.keptFields` (CRLF lines in message order, the blank line kept when
    /// the header has it); nil when longer than `maxKeptFields`.
    static func keptFields(header: UnsafeRawBufferPointer) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(min(header.count, 1024))
        HeaderFieldFilter.append(header, fieldNames: HeaderFieldFilter.keptFields, not: false, to: &out)
        return out.count <= maxKeptFields ? out : nil
    }

    /// The kept fields of a body from its header bytes (nil: too long to keep), or `.none` when
    /// the header could not be read (then no row: the fill tries again at the next start).
    static func keptFields(headerSize: Int, read: (Int) throws -> [UInt8]?) -> [UInt8]?? {
        guard headerSize <= maxKeptHeaderScan else { return .some(nil) }
        guard let h = try? read(headerSize), h.count == headerSize else { return .none }
        return .some(h.withUnsafeBytes { keptFields(header: $0) })
    }

    static func insertKeptFields(_ db: Database, _ id: Int64, size: Int, _ fields: [UInt8]?) throws {
        // OR REPLACE: a body id SQLite reuses (the highest one deleted, then a new body) is the new body's.
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO header_fields (message_id, size, fields) VALUES (?, ?, ?)")
            .execute(arguments: [id, size, fields.map { Data($0) }])
    }

    /// The fill's row for body `id` read with content `hash`: only while that body is still the
    /// row `id` (the fill runs beside deliveries: a body removed meanwhile and its id reused by
    /// another would otherwise get the old fields), and never over a row a delivery made.
    static func insertFilled(_ db: Database, _ id: Int64, hash: [UInt8], size: Int, _ fields: [UInt8]?) throws -> Bool {
        try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO header_fields (message_id, size, fields)
            SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE id = ? AND hash = ?)
            """).execute(arguments: [id, size, fields.map { Data($0) }, id, Data(hash)])
        return db.changesCount > 0
    }

    /// Keeps the fields of body `id`, just inserted by `messageRow`, in the caller's transaction:
    /// from the bytes in memory, or the head of the blob file synced before the transaction.
    func keepHeaderFields(_ db: Database, _ id: Int64, _ d: PendingDelivery) throws {
        guard let n = try? Self.headerSize(encodedInfo: d.info) else { return }
        let fields = Self.keptFields(headerSize: n) { n in
            if let body = d.body { return n <= body.count ? Array(body[..<n]) : nil }
            return try blobs.read(d.hash, offset: 0, length: n)
        }
        guard let fields else { return }
        try Self.insertKeptFields(db, id, size: d.size, fields)
    }

    /// Keeps the fields of every body a mailbox holds that has no `header_fields` row (stored
    /// before v10, or whose file could not be read then; a body only queued gets none), in
    /// transactions of `keptFillBatch`; run beside the store's service from its start (until
    /// done, FETCH filters those headers as before).
    /// Returns how many rows it added.
    @discardableResult
    public func fillHeaderFields() throws -> Int {
        var added = 0, after: Int64 = 0
        while true {
            let batch = try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT m.id, m.size, m.info, m.hash, \(Self.bodyInFile), substr(m.body, 1, \(Self.keptFillHead)) FROM messages m
                    WHERE m.id > ? AND NOT EXISTS (SELECT 1 FROM header_fields WHERE message_id = m.id)
                      AND EXISTS (SELECT 1 FROM mailbox_messages WHERE message_id = m.id) ORDER BY m.id LIMIT ?
                    """, arguments: [after, Self.keptFillBatch])
            }
            guard let last = batch.last else { return added }
            after = last[0]
            var kept: [(id: Int64, hash: [UInt8], size: Int, fields: [UInt8]?)] = []
            for r in batch {
                let id: Int64 = r[0], hash = [UInt8](r[3] as Data), inFile: Bool = r[4], head = (r[5] as Data?).map { [UInt8]($0) }
                guard let n = try? Self.headerSize(encodedInfo: [UInt8](r[2] as Data)) else { continue }
                let fields = Self.keptFields(headerSize: n) { n in
                    if inFile { return try blobs.read(hash, offset: 0, length: n) }
                    if let head, n <= head.count { return Array(head[..<n]) }
                    return try pool.read { db in
                        try Data.fetchOne(db, sql: "SELECT substr(body, 1, ?) FROM messages WHERE id = ?", arguments: [n, id]).map { [UInt8]($0) }
                    }
                }
                if let fields { kept.append((id, hash, r[1], fields)) }
            }
            try pool.write { db in
                for k in kept where try Self.insertFilled(db, k.id, hash: k.hash, size: k.size, k.fields) { added += 1 }
            }
        }
    }

    /// `details` of a HEADER.FIELDS listing whose names the kept fields cover (`names` from
    /// HeaderFieldFilter.fieldNames, `uids` ascending): each answer filtered from the kept
    /// bytes; a body with none kept (no row, or NULL) goes the way of any header
    /// (`batchDetails`), merged in UID order. `prefixLimit` applies to the kept bytes (a header answer is never longer).
    func keptFieldsDetails(user: Int64, mailbox: Int64, uids: [UInt32], names: [[UInt8]],
                           prefixLimit: Int) throws -> [(MessageDetails, [UInt8]?)] {
        let prefix = MessagePrefix.headerFields(names, not: false)
        var missing: [UInt32] = []
        let kept: [(MessageDetails, [UInt8]?)] = try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let select = """
                SELECT mm.uid, mm.internal_date, hf.size, hf.fields
                FROM mailbox_messages mm LEFT JOIN header_fields hf ON hf.message_id = mm.message_id
                """
            var out: [(MessageDetails, [UInt8]?)] = []
            out.reserveCapacity(uids.count)
            // Columns read in SQLite's buffers (no Row, no Data per message): one FETCH of a
            // mailbox reads thousands of these rows.
            try Self.eachRow(db, select: select, mailbox: mailbox, uids: uids) { p, uid in
                guard sqlite3_column_type(p, 3) != SQLITE_NULL else { missing.append(uid); return }
                let d = MessageDetails(uid: uid, internalDate: sqlite3_column_int64(p, 1), size: UInt64(sqlite3_column_int64(p, 2)), info: [])
                let blob = sqlite3_column_blob(p, 3), n = Int(sqlite3_column_bytes(p, 3))
                out.append((d, n <= prefixLimit ? prefix.cut(UnsafeRawBufferPointer(start: blob, count: n)) : nil))
            }
            return out
        }
        guard !missing.isEmpty else { return kept }
        let rest = try batchDetails(user: user, mailbox: mailbox, uids: missing, info: false, prefix: prefix, prefixLimit: prefixLimit)
        // Both ascend by UID: merged.
        var out: [(MessageDetails, [UInt8]?)] = []
        out.reserveCapacity(kept.count + rest.count)
        var i = 0, j = 0
        while i < kept.count || j < rest.count {
            if j == rest.count || (i < kept.count && kept[i].0.uid < rest[j].0.uid) { out.append(kept[i]); i += 1 } else { out.append(rest[j]); j += 1 }
        }
        return out
    }

    /// Steps `select` ("SELECT mm.uid, … FROM mailbox_messages mm …") over the rows of `uids`
    /// (ascending) in `mailbox`, handing `body` the statement (columns read with sqlite3_column_*
    /// while it is on the row) and the row's UID: a run as one range scan, a sparse set UID by UID.
    static func eachRow(_ db: Database, select: String, mailbox: Int64, uids sorted: [UInt32],
                        _ body: (OpaquePointer, UInt32) throws -> Void) throws {
        guard let lo = sorted.first, let hi = sorted.last else { return }
        if UInt64(hi - lo) < UInt64(sorted.count) * detailsScanDensity {
            let wanted: Set<UInt32>? = UInt64(hi - lo) + 1 == UInt64(sorted.count) ? nil : Set(sorted)
            let st = try db.cachedStatement(sql: select + " WHERE mm.mailbox_id = ? AND mm.uid BETWEEN ? AND ? ORDER BY mm.uid")
            let cursor = try Int64.fetchCursor(st, arguments: [mailbox, lo, hi])
            while let u = try cursor.next() {
                let uid = UInt32(truncatingIfNeeded: u)
                if wanted?.contains(uid) ?? true { try body(st.sqliteStatement, uid) }
            }
        } else {
            let st = try db.cachedStatement(sql: select + " WHERE mm.mailbox_id = ? AND mm.uid = ?")
            for u in sorted {
                let cursor = try Int64.fetchCursor(st, arguments: [mailbox, u])
                while let found = try cursor.next() { try body(st.sqliteStatement, UInt32(truncatingIfNeeded: found)) }
            }
        }
    }

    /// The rows of `uids` (ascending) in `mailbox`, by `select` ("SELECT <mm.uid first> … FROM
    /// mailbox_messages mm …"), mapped by `map` (nil: left out). A FETCH batch is mostly a run of
    /// UIDs: one range scan, no lookup per UID; a sparse set is looked up UID by UID.
    static func scan<T>(_ db: Database, select: String, mailbox: Int64, uids sorted: [UInt32], _ map: (Row) throws -> T?) throws -> [T] {
        guard let lo = sorted.first, let hi = sorted.last else { return [] }
        guard UInt64(hi - lo) < UInt64(sorted.count) * detailsScanDensity else {
            return try rows(db, select: select, mailbox: mailbox, uids: sorted) { $0 }.compactMap(map)
        }
        // Every UID of the range is wanted when the batch is a run (no set to ask).
        let wanted: Set<UInt32>? = UInt64(hi - lo) + 1 == UInt64(sorted.count) ? nil : Set(sorted)
        var out: [T] = []
        out.reserveCapacity(sorted.count)
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: select + " WHERE mm.mailbox_id = ? AND mm.uid BETWEEN ? AND ? ORDER BY mm.uid"),
                                         arguments: [mailbox, lo, hi])
        while let r = try cursor.next() {
            if wanted?.contains(UInt32(truncatingIfNeeded: r[0] as Int64)) ?? true, let t = try map(r) { out.append(t) }
        }
        return out
    }
}
