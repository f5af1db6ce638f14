// MailboxStore's IMAP operations on SQLite (DESIGN §3, §9). Each call is one transaction that
// first checks the mailbox is the calling user's (`.notFound` otherwise, exactly like a missing
// one); every mutation bumps the mailbox's HIGHESTMODSEQ once and stamps each touched row and tombstone.
import Foundation
import GRDB
import GRDBSQLite
import MIME
import MailSyntax

extension SQLiteMailStore {
    /// The hierarchy delimiter of mailbox names (RFC 9051 §5.1.1): "a/b" is a child of "a".
    public static let hierarchyDelimiter = "/"
    /// The byte right after the delimiter: every child of "a" sorts in ["a/", "a0").
    static let delimiterSuccessor = "0"
    /// UID lists longer than this, and dense enough (at least one UID in `uidScanDensity` of the
    /// span), are answered by one range scan instead of one lookup per UID.
    static let uidScanThreshold = 256, uidScanDensity: UInt64 = 16
    /// At most this many UID ranges of a SEARCH go into the SQL prefilter; more stay with the evaluator.
    static let maxPrefilterRanges = 64
    /// A batched details call scans its UID range when it spans at most this many UIDs per UID
    /// asked for (a FETCH batch of a sequence range is dense).
    static let detailsScanDensity: UInt64 = 4
    /// SEARCH reads its candidates in pages of this many rows.
    static let searchPage = 1024
    static let secondsPerDay: Int64 = 86_400

    static let noSuchMailbox = StoreError(.notFound, "no such mailbox")
    static let noSuchMessage = StoreError(.notFound, "no such message")
    static let tooManyKeywords = StoreError(.invalid, "too many keywords")
    static let uidsExhausted = StoreError(.denied, "mailbox UIDs exhausted")

    // MARK: shared helpers (static over a Database, so one transaction composes them)

    /// Mailbox `id` if it is `user`'s: the last line of defence between one user and another's mail.
    static func ownedMailbox(_ db: Database, user: Int64, id: Int64) throws -> MailboxSummary {
        guard let row = try Row.fetchOne(db, sql: "SELECT \(summaryColumns) FROM mailboxes WHERE id = ? AND user_id = ?",
                                         arguments: [id, user]) else { throw noSuchMailbox }
        return summary(row)
    }

    static func namedMailbox(_ db: Database, user: Int64, name: String) throws -> MailboxSummary? {
        try Row.fetchOne(db, sql: "SELECT \(summaryColumns) FROM mailboxes WHERE user_id = ? AND name = ?", arguments: [user, name]).map(summary)
    }

    /// The (id, name) of every mailbox below `name` in the hierarchy.
    static func children(_ db: Database, user: Int64, of name: String) throws -> [(id: Int64, name: String)] {
        try Row.fetchAll(db, sql: "SELECT id, name FROM mailboxes WHERE user_id = ? AND name >= ? AND name < ? ORDER BY name",
                         arguments: [user, name + hierarchyDelimiter, name + delimiterSuccessor]).map { ($0[0], $0[1]) }
    }

    /// One new MODSEQ for a whole mutation of `mailbox`.
    static func bumpModSeq(_ db: Database, _ mailbox: Int64) throws -> Int64 {
        try Int64.fetchOne(db, sql: "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
                           arguments: [mailbox])!
    }

    /// Reserves `count` new UIDs and one new MODSEQ in `mailbox` for messages being added.
    static func addMessages(_ db: Database, _ mailbox: Int64, count: Int) throws -> (firstUID: Int64, modSeq: Int64, uidValidity: UInt32) {
        let row = try Row.fetchOne(db, sql: """
            UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1, exists_count = exists_count + ?
            WHERE id = ? RETURNING uidnext, highestmodseq, uidvalidity
            """, arguments: [count, count, mailbox])!
        let next: Int64 = row[0]
        // RFC 9051 §2.3.1.1: UIDs are 32-bit and never reused; past the last one nothing is added.
        guard next - 1 <= Int64(UInt32.max) else { throw uidsExhausted }
        return (next - Int64(count), row[1], UInt32(truncatingIfNeeded: row[2] as Int64))
    }

    /// The watchers' notice for a mailbox a mutation changed (DESIGN §2).
    static func change(_ db: Database, user: Int64, _ mailbox: Int64) throws -> MailboxChange {
        let s = try ownedMailbox(db, user: user, id: mailbox)
        return MailboxChange(user: user, mailboxID: s.id, mailbox: s.name, uidNext: s.uidNext, exists: s.messages, highestModSeq: s.highestModSeq)
    }

    /// A UIDVALIDITY no mailbox of the user ever had (RFC 9051 §2.3.1.1): max(now, highest + 1).
    static func newUIDValidity(_ db: Database, user: Int64, now: Int64) throws -> Int64 {
        guard let last = try Int64.fetchOne(db, sql: """
            SELECT max(last_uidvalidity, coalesce((SELECT max(uidvalidity) FROM mailboxes WHERE user_id = users.id), 0))
            FROM users WHERE id = ?
            """, arguments: [user]) else { throw StoreError(.notFound, "no such user") }
        let v = max(now & 0x7fff_ffff, last + 1)
        guard v <= Int64(UInt32.max) else { throw StoreError(.temporary, "UIDVALIDITY exhausted") }
        try recordUIDValidity(db, user: user, v)
        return v
    }

    static func recordUIDValidity(_ db: Database, user: Int64, _ v: Int64) throws {
        try db.execute(sql: "UPDATE users SET last_uidvalidity = max(last_uidvalidity, ?) WHERE id = ?", arguments: [v, user])
    }

    /// The mailbox's keyword names, index = keyword id, unused ids as "".
    static func keywordNames(_ db: Database, _ mailbox: Int64) throws -> [String] {
        var names: [String] = []
        for row in try Row.fetchAll(db, sql: "SELECT id, name FROM mailbox_keywords WHERE mailbox_id = ? ORDER BY id", arguments: [mailbox]) {
            let id: Int = row[0]
            while names.count < id { names.append("") }
            names.append(row[1])
        }
        return names
    }

    /// The bits of `keywords` (case-insensitive) in `mailbox`; with `allocate`, a name the mailbox
    /// has not seen gets the lowest free id, and past `maxKeywordsPerMailbox` it is `.invalid`.
    static func keywordBits(_ db: Database, _ mailbox: Int64, _ keywords: [String], allocate: Bool) throws -> UInt64 {
        var bits: UInt64 = 0
        for k in keywords {
            if let id = try Int.fetchOne(db, sql: "SELECT id FROM mailbox_keywords WHERE mailbox_id = ? AND name = ? COLLATE NOCASE",
                                         arguments: [mailbox, k]) {
                bits |= 1 << UInt64(id)
                continue
            }
            guard allocate else { continue }
            let used = Set(try Int.fetchAll(db, sql: "SELECT id FROM mailbox_keywords WHERE mailbox_id = ?", arguments: [mailbox]))
            guard let free = (0..<maxKeywordsPerMailbox).first(where: { !used.contains($0) }) else { throw tooManyKeywords }
            try db.execute(sql: "INSERT INTO mailbox_keywords (mailbox_id, id, name) VALUES (?, ?, ?)", arguments: [mailbox, free, k])
            bits |= 1 << UInt64(free)
        }
        return bits
    }

    /// A view entry from (uid, modseq, flags, keyword_bits[, size]) at the start of `row`.
    static func entry(_ row: Row) -> ViewEntry {
        var e = ViewEntry(uid: UInt32(truncatingIfNeeded: row[0] as Int64), modSeq: UInt64(bitPattern: row[1] as Int64),
                          flags: SystemFlags(rawValue: UInt32(truncatingIfNeeded: row[2] as Int64)), keywords: UInt64(bitPattern: row[3] as Int64))
        if row.count > 4, let size = UInt32(exactly: row[4] as Int64), size != ViewEntry.unknownSize { e.size = size }
        return e
    }
    static let entryColumns = "mm.uid, mm.modseq, mm.flags, mm.keyword_bits"
    /// The view's rows: the entry columns and the message's size (FETCH RFC822.SIZE from the view).
    static let viewSelect = "SELECT \(entryColumns), m.size FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id"

    /// The rows of `uids` (each once, ascending) present in `mailbox`, mapped by `map`.
    /// `select` is "SELECT <mm.uid first> … FROM mailbox_messages mm [JOIN …]".
    static func rows<T>(_ db: Database, select: String, mailbox: Int64, uids: [UInt32], _ map: (Row) -> T) throws -> [T] {
        let sorted = Array(Set(uids)).sorted()
        guard let lo = sorted.first, let hi = sorted.last else { return [] }
        var out: [T] = []
        out.reserveCapacity(sorted.count)
        if sorted.count > uidScanThreshold && UInt64(hi - lo) < UInt64(sorted.count) * uidScanDensity {
            let wanted = Set(sorted)
            let cursor = try Row.fetchCursor(db, sql: select + " WHERE mm.mailbox_id = ? AND mm.uid BETWEEN ? AND ? ORDER BY mm.uid",
                                             arguments: [mailbox, lo, hi])
            while let r = try cursor.next() {
                if wanted.contains(UInt32(truncatingIfNeeded: r[0] as Int64)) { out.append(map(r)) }
            }
        } else {
            let st = try db.cachedStatement(sql: select + " WHERE mm.mailbox_id = ? AND mm.uid = ?")
            for u in sorted { if let r = try Row.fetchOne(st, arguments: [mailbox, u]) { out.append(map(r)) } }
        }
        return out
    }

    /// Deletes the `messages` rows among `ids` that no mailbox and no queue entry references any
    /// more; returns the hashes of those whose body is a file (removed after the commit).
    static func dropUnreferenced(_ db: Database, _ ids: Set<Int64>) throws -> [[UInt8]] {
        let st = try db.cachedStatement(sql: """
            DELETE FROM messages WHERE id = ?
                AND NOT EXISTS (SELECT 1 FROM mailbox_messages WHERE message_id = messages.id)
                AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = messages.id)
            RETURNING hash, body IS NULL
            """)
        var files: [[UInt8]] = []
        for id in ids.sorted() {
            if let r = try Row.fetchOne(st, arguments: [id]), r[1] as Bool { files.append([UInt8](r[0] as Data)) }
        }
        return files
    }

    /// Expunges (uid, message_id) rows of `mailbox`: tombstones with one new MODSEQ (RFC 7162
    /// §3.2.10), the count, and the bodies nothing references any more (their files' hashes).
    static func expungeRows(_ db: Database, _ mailbox: Int64, _ rows: [(uid: UInt32, message: Int64)], modSeq: Int64? = nil) throws -> [[UInt8]] {
        guard !rows.isEmpty else { return [] }
        let modseq = try modSeq ?? bumpModSeq(db, mailbox)
        let del = try db.cachedStatement(sql: "DELETE FROM mailbox_messages WHERE mailbox_id = ? AND uid = ?")
        let tomb = try db.cachedStatement(sql: "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)")
        for r in rows {
            try del.execute(arguments: [mailbox, r.uid])
            try tomb.execute(arguments: [mailbox, r.uid, modseq])
        }
        try db.execute(sql: "UPDATE mailboxes SET exists_count = exists_count - ? WHERE id = ?", arguments: [rows.count, mailbox])
        return try dropUnreferenced(db, Set(rows.map(\.message)))
    }

    // MARK: mailboxes (RFC 9051 §6.3)

    public func createMailbox(user: Int64, name: String, specialUse: String) throws -> MailboxSummary {
        let now = self.now
        return try pool.write { db in
            if try Self.namedMailbox(db, user: user, name: name) != nil { throw StoreError(.exists, "mailbox exists: \(name)") }
            let validity = try Self.newUIDValidity(db, user: user, now: now)
            try db.execute(sql: "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)",
                           arguments: [user, name, specialUse, validity])
            return try Self.ownedMailbox(db, user: user, id: db.lastInsertedRowID)
        }
    }

    public func deleteMailbox(user: Int64, name: String) throws {
        let files = try pool.write { db -> [[UInt8]] in
            guard let s = try Self.namedMailbox(db, user: user, name: name) else { throw Self.noSuchMailbox }
            guard name != Self.inbox else { throw StoreError(.denied, "INBOX cannot be deleted") }
            guard try Self.children(db, user: user, of: name).isEmpty else { throw StoreError(.denied, "has children") }
            let ids = Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT message_id FROM mailbox_messages WHERE mailbox_id = ?", arguments: [s.id]))
            for table in ["mailbox_messages", "expunged", "mailbox_keywords"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE mailbox_id = ?", arguments: [s.id])
            }
            try db.execute(sql: "DELETE FROM mailboxes WHERE id = ?", arguments: [s.id])
            try Self.recordUIDValidity(db, user: user, Int64(s.uidValidity))
            return try Self.dropUnreferenced(db, ids)
        }
        committer.removeBlobs(files)
    }

    public func renameMailbox(user: Int64, from: String, to: String) throws {
        let now = self.now
        try pool.write { db in
            guard let src = try Self.namedMailbox(db, user: user, name: from) else { throw Self.noSuchMailbox }
            if try Self.namedMailbox(db, user: user, name: to) != nil { throw StoreError(.exists, "mailbox exists: \(to)") }
            if from == Self.inbox { return try Self.renameInbox(db, user: user, inbox: src, to: to, now: now) }
            guard !to.hasPrefix(from + Self.hierarchyDelimiter) else { throw StoreError(.invalid, "cannot rename a mailbox under itself") }
            // RFC 9051 §6.3.6: inferior names move along; each target must be free.
            var moves: [(id: Int64, name: String)] = [(src.id, to)]
            for c in try Self.children(db, user: user, of: from) {
                let target = to + String(decoding: c.name.utf8.dropFirst(from.utf8.count), as: UTF8.self)
                if try Self.namedMailbox(db, user: user, name: target) != nil { throw StoreError(.exists, "mailbox exists: \(target)") }
                moves.append((c.id, target))
            }
            for m in moves { try db.execute(sql: "UPDATE mailboxes SET name = ? WHERE id = ?", arguments: [m.name, m.id]) }
        }
    }

    /// RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox of that name (new
    /// UIDVALIDITY, same UIDs and keywords) and leaves INBOX empty, with the same UIDVALIDITY and
    /// tombstones for what left it; INBOX's children stay where they are.
    static func renameInbox(_ db: Database, user: Int64, inbox: MailboxSummary, to: String, now: Int64) throws {
        let modseq = try bumpModSeq(db, inbox.id)
        let validity = try newUIDValidity(db, user: user, now: now)
        try db.execute(sql: """
            INSERT INTO mailboxes (user_id, name, uidvalidity, uidnext, highestmodseq, exists_count) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [user, to, validity, inbox.uidNext, modseq, inbox.messages])
        let moved = db.lastInsertedRowID
        try db.execute(sql: "INSERT INTO mailbox_keywords (mailbox_id, id, name) SELECT ?, id, name FROM mailbox_keywords WHERE mailbox_id = ?",
                       arguments: [moved, inbox.id])
        try db.execute(sql: "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) SELECT mailbox_id, uid, ? FROM mailbox_messages WHERE mailbox_id = ?",
                       arguments: [modseq, inbox.id])
        try db.execute(sql: "UPDATE mailbox_messages SET mailbox_id = ? WHERE mailbox_id = ?", arguments: [moved, inbox.id])
        try db.execute(sql: "UPDATE mailboxes SET exists_count = 0 WHERE id = ?", arguments: [inbox.id])
    }

    public func subscriptions(user: Int64) throws -> [String] {
        try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM subscriptions WHERE user_id = ? ORDER BY name", arguments: [user]) }
    }

    public func setSubscribed(user: Int64, name: String, _ subscribed: Bool) throws {
        try pool.write { db in
            try db.execute(sql: subscribed ? "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)"
                                           : "DELETE FROM subscriptions WHERE user_id = ? AND name = ?", arguments: [user, name])
        }
    }

    /// RFC 9051 §6.3.11: UNSEEN counts messages without \Seen, DELETED those with \Deleted,
    /// SIZE the sum of their sizes.
    public func status(user: Int64, name: String) throws -> MailboxStatus? {
        try pool.read { db in
            guard let s = try Self.namedMailbox(db, user: user, name: name) else { return nil }
            let row = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum((mm.flags & ?) = 0), 0), coalesce(sum((mm.flags & ?) != 0), 0), coalesce(sum(m.size), 0)
                FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id WHERE mm.mailbox_id = ?
                """, arguments: [SystemFlags.seen.rawValue, SystemFlags.deleted.rawValue, s.id])!
            return MailboxStatus(summary: s, unseen: UInt32(truncatingIfNeeded: row[0] as Int64), deleted: UInt32(truncatingIfNeeded: row[1] as Int64),
                                 size: UInt64(row[2] as Int64))
        }
    }

    // MARK: the view (DESIGN §9)

    public func view(user: Int64, mailbox: Int64) throws -> MailboxView {
        try pool.read { db in
            let s = try Self.ownedMailbox(db, user: user, id: mailbox)
            let key = ViewCache.Key(user: user, mailbox: mailbox, uidValidity: s.uidValidity, highestModSeq: s.highestModSeq,
                                    uidNext: s.uidNext, messages: s.messages)
            if let entries = viewCache.entries(key) {
                return MailboxView(summary: s, keywords: try Self.keywordNames(db, mailbox), entries: entries)
            }
            var entries: [ViewEntry] = []
            entries.reserveCapacity(Int(s.messages))
            let cursor = try Row.fetchCursor(db, sql: Self.viewSelect + " WHERE mm.mailbox_id = ? ORDER BY mm.uid", arguments: [mailbox])
            while let r = try cursor.next() { entries.append(Self.entry(r)) }
            if entries.count == Int(s.messages) { viewCache.keep(key, entries) }
            return MailboxView(summary: s, keywords: try Self.keywordNames(db, mailbox), entries: entries)
        }
    }

    /// The entries are cut at `limit`, but never inside one MODSEQ (a client resumes from the last
    /// MODSEQ it got, which would skip the rest of it): a MODSEQ shared by more than `limit`
    /// entries comes whole. Tombstones come up to the last MODSEQ returned.
    public func delta(user: Int64, mailbox: Int64, since: UInt64, limit: Int) throws -> MailboxDelta {
        try pool.read { db in
            let s = try Self.ownedMailbox(db, user: user, id: mailbox)
            let from = Int64(clamping: since), limit = max(0, limit)
            let select = Self.viewSelect + " WHERE mm.mailbox_id = ?"
            let rows = try Row.fetchAll(db, sql: select + " AND mm.modseq > ? ORDER BY mm.modseq, mm.uid LIMIT ?",
                                        arguments: [mailbox, from, limit + 1]).map(Self.entry)
            var changed = rows, complete = true
            if rows.count > limit {
                let cut = rows[limit].modSeq
                changed = rows.prefix(limit).filter { $0.modSeq < cut }
                if changed.isEmpty {
                    changed = try Row.fetchAll(db, sql: select + " AND mm.modseq = ? ORDER BY mm.uid", arguments: [mailbox, Int64(bitPattern: cut)]).map(Self.entry)
                }
                let last = Int64(bitPattern: changed.last!.modSeq)
                complete = try Int64.fetchOne(db, sql: "SELECT 1 FROM mailbox_messages WHERE mailbox_id = ? AND modseq > ? LIMIT 1",
                                              arguments: [mailbox, last]) == nil
            }
            let upTo = complete ? Int64.max : Int64(bitPattern: changed.last!.modSeq)
            let vanished = try Int64.fetchAll(db, sql: "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY uid",
                                              arguments: [mailbox, from, upTo]).map { UInt32(truncatingIfNeeded: $0) }
            return MailboxDelta(summary: s, keywords: try Self.keywordNames(db, mailbox), changed: changed, vanished: vanished, complete: complete)
        }
    }

    public func details(user: Int64, mailbox: Int64, uids: [UInt32]) throws -> [MessageDetails] {
        try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            return try Self.rows(db, select: "SELECT mm.uid, mm.internal_date, m.size, m.info FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id",
                                 mailbox: mailbox, uids: uids) {
                MessageDetails(uid: UInt32(truncatingIfNeeded: $0[0] as Int64), internalDate: $0[1], size: UInt64($0[2] as Int64), info: [UInt8]($0[3] as Data))
            }
        }
    }

    /// One read transaction for a whole FETCH batch: details, and the header (filtered in place
    /// for `.headerFields`) or whole bytes of each message (from its row or its file) when they
    /// fit `prefixLimit`. The info is copied out only when asked for.
    public func details(user: Int64, mailbox: Int64, uids: [UInt32], info: Bool, prefix: MessagePrefix?,
                        prefixLimit: Int) throws -> [(MessageDetails, [UInt8]?)] {
        if !info, case .headerFields(let names, false)? = prefix, HeaderFieldFilter.keptCovers(names) {
            // SQLiteMailStore+HeaderFields.swift: from the fields kept at delivery
            return try keptFieldsDetails(user: user, mailbox: mailbox, uids: Self.ascending(uids) ? uids : Array(Set(uids)).sorted(),
                                         names: names, prefixLimit: prefixLimit)
        }
        return try batchDetails(user: user, mailbox: mailbox, uids: uids, info: info, prefix: prefix, prefixLimit: prefixLimit)
    }

    /// `details` of any prefix, from the messages' rows (headers through the HeaderCache).
    func batchDetails(user: Int64, mailbox: Int64, uids: [UInt32], info: Bool, prefix: MessagePrefix?,
                      prefixLimit: Int) throws -> [(MessageDetails, [UInt8]?)] {
        /// The details; the prefix of a body in its row (copied straight out of the row), or the
        /// hash and prefix length of a body in a file (read after the transaction).
        typealias Found = (MessageDetails, bytes: [UInt8]?, file: (hash: Data, length: Int)?)
        let headerCache = self.headerCache
        let rows: [Found] = try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let header = prefix.map { $0 != .message } ?? false
            // A header comes from the cache, else from its own read (a row's body is not loaded
            // for the few hundred bytes of its header once the cache has them).
            let body = prefix == nil ? "NULL" : header ? "m.id" : "CASE WHEN m.size <= \(max(0, prefixLimit)) THEN m.body END"
            let select = """
                SELECT mm.uid, mm.internal_date, m.size, \(info || header ? "m.info" : "NULL"), \(prefix == nil ? "NULL, 0" : "m.hash, \(Self.bodyInFile)"), \(body)
                FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                """
            let map = { (r: Row) -> Found in
                var d = MessageDetails(uid: UInt32(truncatingIfNeeded: r[0] as Int64), internalDate: r[1], size: UInt64(r[2] as Int64), info: [])
                if info { d.info = (r[3] as Data?).map { [UInt8]($0) } ?? [] }
                guard let prefix else { return (d, nil, nil) }
                let n: Int
                if !header {
                    n = Int(d.size)
                } else if info {
                    n = (try? Self.headerSize(encodedInfo: d.info)) ?? Int.max
                } else {
                    // read in SQLite's buffer: no copy of an info that is not sent
                    n = (try? r.withUnsafeData(atIndex: 3) { data in try data.map { try $0.withUnsafeBytes { try Self.headerSize(encodedInfo: $0) } } }) ?? nil ?? Int.max
                }
                guard n <= prefixLimit else { return (d, nil, nil) }
                if r[5] as Bool { return (d, nil, (r[4] as Data, n)) }
                if header {
                    let key = (try? r.withUnsafeData(atIndex: 4) { $0.flatMap(HeaderCache.Key.init) }) ?? nil
                    if let key, let h = headerCache.header(key), h.count == n { return (d, h.withUnsafeBytes { prefix.cut($0) }, nil) }
                    let st = try? db.cachedStatement(sql: "SELECT substr(body, 1, ?) FROM messages WHERE id = ?")
                    guard let st, let raw = try? Data.fetchOne(st, arguments: [n, r[6] as Int64]).map({ [UInt8]($0) }) else { return (d, nil, nil) }
                    if let key { headerCache.keep(key, raw) }
                    return (d, raw.withUnsafeBytes { prefix.cut($0) }, nil)
                }
                let bytes = try? r.withUnsafeData(atIndex: 6) { data in
                    data.map { b in b.withUnsafeBytes { prefix.cut(UnsafeRawBufferPointer(rebasing: $0.prefix(n))) } }
                }
                return (d, bytes ?? nil, nil)
            }
            return try Self.scan(db, select: select, mailbox: mailbox, uids: Self.ascending(uids) ? uids : Array(Set(uids)).sorted(), map)
        }
        return rows.map { row in
            var d = row.0
            var bytes = row.bytes
            if let f = row.file, let prefix {   // gone meanwhile: read later
                let key = prefix == .message ? nil : HeaderCache.Key(f.hash)
                let raw = key.flatMap { headerCache.header($0) }.flatMap { $0.count == f.length ? $0 : nil }
                bytes = (raw ?? (try? blobs.read([UInt8](f.hash), offset: 0, length: f.length))).map { b in
                    if raw == nil, let key, b.count == f.length { headerCache.keep(key, b) }
                    return b.withUnsafeBytes { prefix.cut($0) }
                }
            }
            if !info { d.info = [] }
            return (d, bytes)
        }
    }

    /// Whether a message's body is a blob file, told from the column's type alone: `body IS NULL`
    /// makes SQLite load the whole value (overflow pages and all: ~3 µs a 5 KB message).
    static let bodyInFile = "typeof(m.body) = 'null'"

    /// Strictly ascending (so already sorted and unique).
    static func ascending(_ uids: [UInt32]) -> Bool {
        var i = 1
        while i < uids.count { if uids[i - 1] >= uids[i] { return false }; i += 1 }
        return true
    }

    /// `MessageInfo.headerSize` without decoding the rest: the encoding starts with its version
    /// byte, then size and header size as zigzag varints (MIME BinaryCodec).
    static func headerSize(encodedInfo b: [UInt8]) throws -> Int { try b.withUnsafeBytes { try headerSize(encodedInfo: $0) } }

    static func headerSize(encodedInfo b: UnsafeRawBufferPointer) throws -> Int {
        guard b.first == MessageInfo.encodingVersion else { return try MessageInfo(encoded: Array(b)).headerSize }
        var i = 1
        func varint() -> Int64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < b.count, shift < 64 {
                let x = b[i]; i += 1
                v |= UInt64(x & 0x7F) << shift
                if x < 0x80 { return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }
                shift += 7
            }
            return nil
        }
        guard varint() != nil, let h = varint(), h >= 0, h <= Int64(Int32.max) else { return try MessageInfo(encoded: Array(b)).headerSize }
        return Int(h)
    }

    /// Only the range is read: from the row (SQL substr) or from the blob file (pread).
    public func read(user: Int64, mailbox: Int64, uid: UInt32, offset: Int, length: Int) throws -> [UInt8] {
        let off = min(max(0, offset), Int.max - 1), len = max(0, length)
        let (hash, inline): (Data, Data?) = try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            guard let r = try Row.fetchOne(db, sql: """
                SELECT m.hash, m.body IS NULL, substr(m.body, ?, ?) FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                WHERE mm.mailbox_id = ? AND mm.uid = ?
                """, arguments: [off + 1, len, mailbox, uid]) else { throw Self.noSuchMessage }
            return (r[0], r[1] as Bool ? nil : (r[2] as Data? ?? Data()))
        }
        if let inline { return [UInt8](inline) }
        return try blobs.read([UInt8](hash), offset: off, length: len)
    }

    public func bodies(user: Int64, mailbox: Int64, uids: [UInt32], maxSize: Int) throws -> [(uid: UInt32, bytes: [UInt8])] {
        let found: [(uid: UInt32, hash: Data, inline: Data?)] = try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let stmt = try db.cachedStatement(sql: """
                SELECT m.hash, m.body FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                WHERE mm.mailbox_id = ? AND mm.uid = ? AND m.size <= ?
                """)
            return try uids.compactMap { uid in
                try Row.fetchOne(stmt, arguments: [mailbox, uid, maxSize]).map { (uid, $0[0], $0[1]) }
            }
        }
        return try found.compactMap { f in
            let b = try f.inline.map { [UInt8]($0) } ?? blobs.read([UInt8](f.hash), offset: 0, length: maxSize + 1)
            return b.count <= maxSize ? (f.uid, b) : nil
        }
    }

    // MARK: mutations

    public func storeFlags(user: Int64, mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags,
                           keywords: [String], unchangedSince: UInt64?) throws -> (FlagUpdate, [MailboxChange]) {
        try pool.write { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let rows = try Self.rows(db, select: "SELECT \(Self.entryColumns) FROM mailbox_messages mm", mailbox: mailbox, uids: uids, Self.entry)
            let bits = rows.isEmpty ? 0 : try Self.keywordBits(db, mailbox, keywords, allocate: operation != .remove)
            let mask = flags.intersection(.all)
            var modified: [UInt32] = [], changed: [ViewEntry] = []
            for e in rows {
                // RFC 7162 §3.1.3: a message changed since UNCHANGEDSINCE is left alone, reported MODIFIED.
                if let n = unchangedSince, e.modSeq > n { modified.append(e.uid); continue }
                var f = e.flags, k = e.keywords
                switch operation {
                case .replace: f = mask; k = bits
                case .add: f.formUnion(mask); k |= bits
                case .remove: f.subtract(mask); k &= ~bits
                }
                if f != e.flags || k != e.keywords { changed.append(ViewEntry(uid: e.uid, modSeq: 0, flags: f, keywords: k)) }
            }
            var changes: [MailboxChange] = []
            if !changed.isEmpty {
                let modseq = try Self.bumpModSeq(db, mailbox)
                let st = try db.cachedStatement(sql: "UPDATE mailbox_messages SET flags = ?, keyword_bits = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?")
                for i in changed.indices {
                    changed[i].modSeq = UInt64(modseq)
                    try st.execute(arguments: [changed[i].flags.rawValue, Int64(bitPattern: changed[i].keywords), modseq, mailbox, changed[i].uid])
                }
                changes = [try Self.change(db, user: user, mailbox)]
            }
            let now = try Self.ownedMailbox(db, user: user, id: mailbox)
            return (FlagUpdate(changed: changed, modified: modified, keywords: try Self.keywordNames(db, mailbox), highestModSeq: now.highestModSeq), changes)
        }
    }

    /// A message being copied: its source row.
    private struct CopySource { var uid: UInt32, message: Int64, flags: Int64, keywords: UInt64, internalDate: Int64, sender: String }

    /// RFC 4315 COPYUID / RFC 6851 MOVE: new UIDs in the destination (its UIDNEXT on), the same
    /// body, flags, keywords (remapped by name to the destination's ids) and internal date.
    public func copy(user: Int64, from: Int64, uids: [UInt32], to: Int64, move: Bool) throws -> (CopyResult, [MailboxChange]) {
        try pool.write { db in
            _ = try Self.ownedMailbox(db, user: user, id: from)
            let dest = try Self.ownedMailbox(db, user: user, id: to)
            let sources = try Self.rows(db, select: "SELECT mm.uid, mm.message_id, mm.flags, mm.keyword_bits, mm.internal_date, mm.sender FROM mailbox_messages mm",
                                        mailbox: from, uids: uids) {
                CopySource(uid: UInt32(truncatingIfNeeded: $0[0] as Int64), message: $0[1], flags: $0[2], keywords: UInt64(bitPattern: $0[3] as Int64),
                           internalDate: $0[4], sender: $0[5])
            }
            guard !sources.isEmpty else { return (CopyResult(uidValidity: dest.uidValidity, sourceUIDs: [], destinationUIDs: []), []) }
            // keyword id in the source → bit in the destination
            let names = try Self.keywordNames(db, from)
            let used = sources.reduce(UInt64(0)) { $0 | $1.keywords }
            var remap: [(UInt64, UInt64)] = []
            for (id, name) in names.enumerated() where used & (1 << UInt64(id)) != 0 && !name.isEmpty {
                remap.append((1 << UInt64(id), try Self.keywordBits(db, to, [name], allocate: true)))
            }
            if !move { try Self.requireQuota(db, user: user, copying: sources.map(\.message)) }   // QUOTA hook; MOVE adds nothing
            let added = try Self.addMessages(db, to, count: sources.count)
            let insert = try db.cachedStatement(sql: """
                INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keyword_bits, modseq, internal_date, sender)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """)
            var destUIDs: [UInt32] = []
            for (i, s) in sources.enumerated() {
                let uid = added.firstUID + Int64(i)
                let bits = remap.reduce(UInt64(0)) { s.keywords & $1.0 != 0 ? $0 | $1.1 : $0 }
                try insert.execute(arguments: [to, uid, s.message, s.flags, Int64(bitPattern: bits), added.modSeq, s.internalDate, s.sender])
                destUIDs.append(UInt32(uid))
            }
            if move {
                _ = try Self.expungeRows(db, from, sources.map { ($0.uid, $0.message) }, modSeq: from == to ? added.modSeq : nil)
            }
            var changes = [try Self.change(db, user: user, to)]
            if move && from != to { changes.append(try Self.change(db, user: user, from)) }
            return (CopyResult(uidValidity: added.uidValidity, sourceUIDs: sources.map(\.uid), destinationUIDs: destUIDs), changes)
        }
    }

    public func expunge(user: Int64, mailbox: Int64, uids: [UInt32]?) throws -> ([UInt32], [MailboxChange]) {
        try expungeMatching(user: user, mailbox: mailbox, uids: uids, force: false)
    }

    public func expunge(user: Int64, mailbox: Int64, uids: [UInt32], force: Bool) throws -> ([UInt32], [MailboxChange]) {
        try expungeMatching(user: user, mailbox: mailbox, uids: uids, force: force)
    }

    /// `uids` nil: every message with `\Deleted`; `force`: the named ones whatever their flags.
    private func expungeMatching(user: Int64, mailbox: Int64, uids: [UInt32]?, force: Bool) throws -> ([UInt32], [MailboxChange]) {
        let (gone, changes, files) = try pool.write { db -> ([UInt32], [MailboxChange], [[UInt8]]) in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let deleted = Int64(SystemFlags.deleted.rawValue)
            let map = { (r: Row) in (uid: UInt32(truncatingIfNeeded: r[0] as Int64), message: r[1] as Int64, flags: r[2] as Int64) }
            let select = "SELECT mm.uid, mm.message_id, mm.flags FROM mailbox_messages mm"
            let candidates = try uids.map { try Self.rows(db, select: select, mailbox: mailbox, uids: $0, map) }
                ?? Row.fetchAll(db, sql: select + " WHERE mm.mailbox_id = ? AND mm.flags & ? != 0 ORDER BY mm.uid", arguments: [mailbox, deleted]).map(map)
            let rows = candidates.filter { force || $0.flags & deleted != 0 }.map { (uid: $0.uid, message: $0.message) }
            guard !rows.isEmpty else { return ([], [], []) }
            let files = try Self.expungeRows(db, mailbox, rows)
            return (rows.map(\.uid), [try Self.change(db, user: user, mailbox)], files)
        }
        committer.removeBlobs(files)
        return (gone, changes)
    }

    /// Goes through the group commit with deliveries (DESIGN §3): completion after the blob sync
    /// and the WAL commit. The mailbox is checked to be the user's inside the transaction.
    public func append(user: Int64, mailbox: Int64, flags: SystemFlags, keywords: [String], internalDate: Int64?, body: [UInt8],
                       completion: @escaping @Sendable (Result<(AppendResult, [MailboxChange]), Error>) -> Void) {
        let (hash, info, parsed) = Self.parsedDigest(body)
        let target = AppendTarget(user: user, mailbox: mailbox, flags: flags.intersection(.all), keywords: keywords, internalDate: internalDate)
        var d = PendingDelivery(sender: "", resolutions: [], body: body, staged: nil, size: body.count, hash: hash, info: info, date: now,
                                completion: { r in
                                    switch r {
                                    case .failure(let e): completion(.failure(e))
                                    case .success: completion(target.result ?? .failure(StoreError(.temporary, "append not committed")))
                                    }
                                }, append: target)
        d.searchText = searchText(body, parsed)   // search index (SearchIndex.swift)
        committer.submit(d)
    }

    /// The APPEND half of the group commit's transaction (in its own savepoint).
    func commitAppend(_ d: PendingDelivery, _ t: AppendTarget, db: Database) throws -> (AppendResult, [MailboxChange]) {
        _ = try Self.ownedMailbox(db, user: t.user, id: t.mailbox)
        guard try Self.quotaAllows(db, user: t.user, size: d.size) else { throw Self.overQuota }   // QUOTA hook
        let bits = try Self.keywordBits(db, t.mailbox, t.keywords, allocate: true)
        let added = try Self.addMessages(db, t.mailbox, count: 1)
        try db.execute(sql: """
            INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keyword_bits, modseq, internal_date)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [t.mailbox, added.firstUID, try messageRow(d, db: db), t.flags.rawValue, Int64(bitPattern: bits), added.modSeq,
                             t.internalDate ?? d.date])
        return (AppendResult(uidValidity: added.uidValidity, uid: UInt32(added.firstUID)), [try Self.change(db, user: t.user, t.mailbox)])
    }

    // MARK: SEARCH (DESIGN §9)

    /// Candidates come from SQL with the cheap keys of the query as a prefilter and, where the
    /// search index narrows the content keys, only among the bodies it names or has not indexed
    /// (SearchIndex.swift); each is then decided by `SearchEvaluator`, which reads the body
    /// (lazily) only for keys that need it.
    public func search(user: Int64, mailbox: Int64, query: SearchQuery) throws -> [UInt32] {
        try search(user: user, mailbox: mailbox, query: query, useIndex: searchIndex)
    }

    /// `useIndex` false: the full scan, whatever `search_index` says (the reference answer).
    public func search(user: Int64, mailbox: Int64, query: SearchQuery, useIndex: Bool) throws -> [UInt32] {
        let prepared = PreparedSearch(query)
        if !prepared.needsContent, !Self.looksAtSize(query) { return try searchEntries(user: user, mailbox: mailbox, query: query, prepared) }
        let plan = useIndex ? SearchIndexPlan(prepared) : nil
        // What an indexed candidate still has to pass (see SearchIndexPlan.withoutExactKeys).
        let indexedCheck = plan.map { _ in PreparedSearch(root: SearchIndexPlan.withoutExactKeys(prepared.root)) }
        return try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let names = try Self.keywordNames(db, mailbox)
            var clauses: [String] = [], args: [DatabaseValueConvertible] = []
            Self.prefilter(query, keywords: names, &clauses, &args)
            if let plan { clauses.append(Self.indexCondition(plan, &args)) }   // search index
            let sql = """
                SELECT mm.uid, mm.modseq, mm.flags, mm.keyword_bits, mm.internal_date, m.size, m.info, m.id, m.hash,
                       \(Self.bodyInFile), \(plan == nil ? "1" : "mm.message_id IN (SELECT message_id FROM search_pending)")
                FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                WHERE mm.mailbox_id = ? AND mm.uid > ? \(clauses.map { "AND (\($0))" }.joined(separator: " "))
                ORDER BY mm.uid LIMIT \(Self.searchPage)
                """
            var found: [UInt32] = [], after: Int64 = 0
            while true {
                let page = try Row.fetchAll(db, sql: sql, arguments: StatementArguments([mailbox, after] + args))
                for r in page {
                    let e = Self.entry(r)
                    let messageID: Int64 = r[7], hash = [UInt8](r[8] as Data), isFile: Bool = r[9], pending: Bool = r[10]
                    let check = pending ? prepared : indexedCheck ?? prepared
                    let needsBody = check.needsContent
                    let message = SearchableMessage(
                        uid: e.uid, modSeq: e.modSeq, flags: e.flags, keywords: Self.keywordSet(e.keywords, names),
                        internalDate: r[4], size: UInt64(r[5] as Int64),
                        info: needsBody ? try MessageInfo(encoded: [UInt8](r[6] as Data)) : Self.unusedInfo,
                        body: { [blobs] in
                            // The evaluator said it needs no content: reading anyway would be its bug, loudly.
                            guard needsBody else { throw StoreError(.temporary, "SEARCH read a body it said it would not need") }
                            if isFile { return try blobs.read(hash) }
                            return try Data.fetchOne(db, sql: "SELECT body FROM messages WHERE id = ?", arguments: [messageID]).map { [UInt8]($0) } ?? []
                        })
                    do {
                        if try check.matches(message) { found.append(e.uid) }
                    } catch where isFile && !blobs.exists(hash) {
                        continue   // expunged meanwhile: its file went after our snapshot was taken
                    }
                }
                guard page.count == Self.searchPage, let last = page.last else { break }
                after = last[0]
            }
            return found
        }
    }

    /// SEARCH by keys that look at flags, keywords, UIDs, MODSEQ and internal dates only (ALL,
    /// UNSEEN, UID ranges: what clients ask most): the narrow `mailbox_messages` rows in one
    /// pass, no join with the messages' wide rows, the same evaluator over them.
    func searchEntries(user: Int64, mailbox: Int64, query: SearchQuery, _ prepared: PreparedSearch) throws -> [UInt32] {
        try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let names = try Self.keywordNames(db, mailbox)
            var clauses: [String] = [], args: [DatabaseValueConvertible] = []
            Self.prefilter(query, keywords: names, &clauses, &args)
            let st = try db.makeStatement(sql: """
                SELECT mm.uid, mm.modseq, mm.flags, mm.keyword_bits, mm.internal_date FROM mailbox_messages mm
                WHERE mm.mailbox_id = ? \(clauses.map { "AND (\($0))" }.joined(separator: " ")) ORDER BY mm.uid
                """)
            let cursor = try Int64.fetchCursor(st, arguments: StatementArguments([mailbox] + args))
            var found: [UInt32] = []
            // One message value, its row's fields set in turn (no info copied per row), the
            // columns read in SQLite's row (no Row made); one content value for them all.
            var message = SearchableMessage(uid: 0, modSeq: 0, flags: [], keywords: [], internalDate: 0, size: 0, info: Self.unusedInfo,
                                            body: { throw StoreError(.temporary, "SEARCH read a body it said it would not need") })
            var content = SearchContent(message)
            while let uid = try cursor.next() {
                let p = st.sqliteStatement
                let bits = UInt64(bitPattern: sqlite3_column_int64(p, 3))
                message.uid = UInt32(truncatingIfNeeded: uid)
                message.modSeq = UInt64(bitPattern: sqlite3_column_int64(p, 1))
                message.flags = SystemFlags(rawValue: UInt32(truncatingIfNeeded: sqlite3_column_int64(p, 2)))
                message.keywords = bits == 0 ? [] : Self.keywordSet(bits, names)
                message.internalDate = sqlite3_column_int64(p, 4)
                if try prepared.matches(message, reusing: &content) { found.append(message.uid) }
            }
            return found
        }
    }

    /// Whether `query` has a LARGER or SMALLER key (the size is in the messages' wide rows).
    static func looksAtSize(_ q: SearchQuery) -> Bool {
        switch q {
        case .larger, .smaller: return true
        case .and(let list): return list.contains(where: looksAtSize)
        case .or(let a, let b): return looksAtSize(a) || looksAtSize(b)
        case .not(let a): return looksAtSize(a)
        default: return false
        }
    }

    /// The info of a SEARCH candidate whose check needs no content (never looked at).
    static let unusedInfo = MessageInfo(size: 0, headerSize: 0, lines: 0, envelope: Envelope(), body: BodyPart())

    static func keywordSet(_ bits: UInt64, _ names: [String]) -> Set<String> {
        var out = Set<String>()
        for (i, n) in names.enumerated() where bits & (1 << UInt64(i)) != 0 && !n.isEmpty { out.insert(n) }
        return out
    }

    /// The keys of a top-level conjunction that SQL can check cheaply, as clauses over mm/m that
    /// every match satisfies (dates widened by a day: the evaluator owns the exact day rules).
    static func prefilter(_ q: SearchQuery, keywords: [String], _ clauses: inout [String], _ args: inout [DatabaseValueConvertible]) {
        switch q {
        case .and(let list):
            for k in list { prefilter(k, keywords: keywords, &clauses, &args) }
        case .uids(let ranges) where ranges.count <= maxPrefilterRanges:
            clauses.append(ranges.isEmpty ? "0" : ranges.map { _ in "mm.uid BETWEEN ? AND ?" }.joined(separator: " OR "))
            for r in ranges { args.append(r.lowerBound); args.append(r.upperBound) }
        case .flags(let mask, let set):
            clauses.append(set ? "mm.flags & ? = ?" : "mm.flags & ? = 0")
            args.append(mask.rawValue)
            if set { args.append(mask.rawValue) }
        case .keyword(let name, let set):
            let id = keywords.firstIndex { !$0.isEmpty && $0.lowercased() == name.lowercased() }
            if let id {
                clauses.append(set ? "mm.keyword_bits & ? != 0" : "mm.keyword_bits & ? = 0")
                args.append(Int64(bitPattern: 1 << UInt64(id)))
            } else if set {
                clauses.append("0")
            }
        case .internalDate(let relation, let day):
            let start = Int64(day) * secondsPerDay
            switch relation {
            case .before: clauses.append("mm.internal_date < ?"); args.append(start + secondsPerDay)
            case .on: clauses.append("mm.internal_date >= ? AND mm.internal_date < ?"); args.append(start - secondsPerDay); args.append(start + 2 * secondsPerDay)
            case .since: clauses.append("mm.internal_date >= ?"); args.append(start - secondsPerDay)
            }
        case .larger(let n):
            clauses.append("m.size > ?"); args.append(Int64(clamping: n))
        case .smaller(let n):
            clauses.append("m.size < ?"); args.append(Int64(clamping: n))
        case .modSeq(let n):
            clauses.append("mm.modseq >= ?"); args.append(Int64(clamping: n))
        default:
            break
        }
    }
}

/// Which bytes of each message a batched details call brings along (FETCH of many messages).
public enum MessagePrefix: Sendable, Equatable {
    /// The top-level header, `[0, headerSize)`.
    case header
    /// The top-level header kept to the fields named (lowercase, HeaderFieldFilter.fieldNames),
    /// or with `not` all but them (RFC 9051 §6.4.5 HEADER.FIELDS[.NOT]); the prefix limit still
    /// applies to the whole header, or to the kept fields when they answer (+HeaderFields.swift).
    case headerFields([[UInt8]], not: Bool)
    /// The whole message.
    case message

    /// `headerFields` from the names as a FETCH gives them.
    public static func fields(_ names: [String], not: Bool) -> MessagePrefix { .headerFields(HeaderFieldFilter.fieldNames(names), not: not) }

    /// The bytes sent for `raw` (the header or whole message, already cut to its length).
    func cut(_ raw: UnsafeRawBufferPointer) -> [UInt8] {
        guard case .headerFields(let names, let not) = self else { return Array(raw) }
        var out: [UInt8] = []
        out.reserveCapacity(not ? raw.count : min(raw.count, 512))
        HeaderFieldFilter.append(raw, fieldNames: names, not: not, to: &out)
        return out
    }
}

extension MailboxStore {
    /// Details only: a store without a batched read leaves the bytes to `read`.
    public func details(user: Int64, mailbox: Int64, uids: [UInt32], info: Bool, prefix: MessagePrefix?,
                        prefixLimit: Int) throws -> [(MessageDetails, [UInt8]?)] {
        try details(user: user, mailbox: mailbox, uids: uids).map { ($0, nil) }
    }
}

/// Top-level headers of messages lately fetched by header sections (FETCH BODY.PEEK[HEADER.FIELDS
/// (…)] of a whole mailbox naming a field the store does not keep per message — the kept ones
/// answer from `header_fields` — HEADER, HEADER.FIELDS.NOT), keyed by the content hash: a body never
/// changes, so an entry is never stale, and one body delivered to many is kept once (Dovecot's
/// dovecot.index.cache keeps header fields the same way, on disk). Bounded by `maxBytes`: when
/// full, it starts over.
final class HeaderCache: @unchecked Sendable {
    static let maxBytes = 32 << 20
    /// Bookkeeping counted per entry besides its bytes (key, array header, table slot).
    static let entryCost = 96
    /// A SHA-256 content hash as four words (no allocation, quick to hash and compare).
    struct Key: Hashable {
        var a: UInt64, b: UInt64, c: UInt64, d: UInt64
        init?(_ hash: Data) {
            guard hash.count == 32 else { return nil }
            (a, b, c, d) = hash.withUnsafeBytes { p in
                (p.loadUnaligned(fromByteOffset: 0, as: UInt64.self), p.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 p.loadUnaligned(fromByteOffset: 16, as: UInt64.self), p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            }
        }
    }
    private let lock = NSLock()
    private var headers: [Key: [UInt8]] = [:]
    private var held = 0

    func header(_ hash: Key) -> [UInt8]? { lock.withLock { headers[hash] } }

    func keep(_ hash: Key, _ header: [UInt8]) {
        let cost = header.count + Self.entryCost
        guard cost <= Self.maxBytes / 16 else { return }
        lock.withLock {
            if headers[hash] != nil { return }
            if held + cost > Self.maxBytes { headers.removeAll(); held = 0 }
            headers[hash] = header
            held += cost
        }
    }

    var count: Int { lock.withLock { headers.count } }
}

/// The views of large mailboxes as last read (SELECT of a 10,000-message INBOX reads 10,000
/// rows), keyed by everything a change moves: every mutation of a mailbox bumps its
/// HIGHESTMODSEQ (and a mailbox made anew has a new UIDVALIDITY), so a key that matches is
/// the same view. Bounded by `maxEntries` entries in all.
final class ViewCache: @unchecked Sendable {
    struct Key: Hashable {
        var user: Int64, mailbox: Int64, uidValidity: UInt32, highestModSeq: UInt64, uidNext: UInt32, messages: UInt32
    }
    /// Mailboxes smaller than this are read each time (cheap enough).
    static let minEntries = 1000
    static let maxEntries = 1 << 20
    private let lock = NSLock()
    private var views: [Int64: (key: Key, entries: [ViewEntry])] = [:]
    private var held = 0

    func entries(_ key: Key) -> [ViewEntry]? {
        lock.withLock { views[key.mailbox].flatMap { $0.key == key ? $0.entries : nil } }
    }

    func keep(_ key: Key, _ entries: [ViewEntry]) {
        guard entries.count >= Self.minEntries, entries.count <= Self.maxEntries else { return }
        lock.withLock {
            if let old = views.removeValue(forKey: key.mailbox) { held -= old.entries.count }
            while held + entries.count > Self.maxEntries, let victim = views.keys.first {
                held -= views.removeValue(forKey: victim)!.entries.count
            }
            views[key.mailbox] = (key, entries)
            held += entries.count
        }
    }
}
