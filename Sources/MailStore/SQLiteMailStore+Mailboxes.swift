// MailboxStore on SQLite: mailbox summaries, changes since a MODSEQ (the pull half of
// DESIGN §2's events, served by the (mailbox_id, modseq) index), and export.
import Foundation
import GRDB

extension SQLiteMailStore {
    /// `subscribed` comes from the subscriptions table (schema v5), not the old column.
    static let summaryColumns = """
        id, name, special_use, uidvalidity, uidnext, highestmodseq, exists_count,
        EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = mailboxes.user_id AND s.name = mailboxes.name)
        """

    static func summary(_ row: Row) -> MailboxSummary {
        MailboxSummary(id: row[0], name: row[1], specialUse: row[2], uidValidity: UInt32(truncatingIfNeeded: row[3] as Int64),
                       uidNext: UInt32(truncatingIfNeeded: row[4] as Int64), highestModSeq: UInt64(row[5] as Int64),
                       messages: UInt32(truncatingIfNeeded: row[6] as Int64), subscribed: row[7])
    }

    public func mailboxes(user: Int64) throws -> [MailboxSummary] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.summaryColumns) FROM mailboxes WHERE user_id = ? ORDER BY id", arguments: [user]).map(Self.summary)
        }
    }

    public func mailbox(user: Int64, name: String) throws -> MailboxSummary? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.summaryColumns) FROM mailboxes WHERE user_id = ? AND name = ?", arguments: [user, name]).map(Self.summary)
        }
    }

    public func changes(mailbox id: Int64, since: UInt64, limit: Int) throws -> (summary: MailboxSummary, messages: [MessageChange], complete: Bool)? {
        try pool.read { db in
            guard let s = try Row.fetchOne(db, sql: "SELECT \(Self.summaryColumns) FROM mailboxes WHERE id = ?", arguments: [id]).map(Self.summary) else { return nil }
            let rows = try Row.fetchAll(db, sql: """
                SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = ? AND modseq > ? ORDER BY modseq LIMIT ?
                """, arguments: [id, Int64(clamping: since), limit + 1])
            let list = rows.prefix(limit).map {
                MessageChange(uid: UInt32(truncatingIfNeeded: $0[0] as Int64), modSeq: UInt64($0[1] as Int64), flags: UInt32(truncatingIfNeeded: $0[2] as Int64))
            }
            return (s, list, rows.count <= limit)
        }
    }

    public func messages(user: Int64, mailbox: String?) throws -> [StoredMessage] {
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT mb.name, mm.uid, mm.internal_date, mm.sender, m.size, m.id FROM mailbox_messages mm
                JOIN mailboxes mb ON mb.id = mm.mailbox_id JOIN messages m ON m.id = mm.message_id
                WHERE mb.user_id = ? AND (? IS NULL OR mb.name = ?) ORDER BY mb.id, mm.uid
                """, arguments: [user, mailbox, mailbox])
        }
        if let mailbox, rows.isEmpty, try self.mailbox(user: user, name: mailbox) == nil {
            throw StoreError(.notFound, "no such mailbox: \(mailbox)")
        }
        return rows.map { StoredMessage(mailbox: $0[0], uid: UInt32($0[1] as Int64), internalDate: $0[2], sender: $0[3], size: UInt64($0[4] as Int64), body: $0[5]) }
    }

    public func body(_ ref: Int64) throws -> [UInt8] {
        guard let row = try pool.read({ db in try Row.fetchOne(db, sql: "SELECT hash, body FROM messages WHERE id = ?", arguments: [ref]) }) else {
            throw StoreError(.notFound, "no such message")
        }
        let hash: Data = row[0], inline: Data? = row[1]
        return try inline.map { [UInt8]($0) } ?? blobs.read([UInt8](hash))
    }
}
