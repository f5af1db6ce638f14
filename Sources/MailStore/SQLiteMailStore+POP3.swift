// POP3 read-ahead without intermediate copies (DESIGN §4): each small body's bytes are handed
// to the caller straight from SQLite's row (or the blob file), inside one read transaction, so
// the store server writes them into its reply once. Same result as `bodies`, by callback.
import Foundation
import GRDB

/// A store that can hand POP3's read-ahead bodies over in place (the store server uses it when
/// its store has it, `MailStore.bodies` otherwise).
public protocol POP3BodyReader {
    /// Calls `body` with each of those `uids` present whose body is at most `maxSize` bytes, in
    /// the order given; the bytes are valid only during the call. Stops when `body` returns false.
    func pop3Bodies(user: Int64, mailbox: Int64, uids: [UInt32], maxSize: Int,
                    _ body: (_ uid: UInt32, _ bytes: UnsafeRawBufferPointer) throws -> Bool) throws
}

extension SQLiteMailStore: POP3BodyReader {
    public func pop3Bodies(user: Int64, mailbox: Int64, uids: [UInt32], maxSize: Int,
                           _ body: (_ uid: UInt32, _ bytes: UnsafeRawBufferPointer) throws -> Bool) throws {
        try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let stmt = try db.cachedStatement(sql: """
                SELECT m.hash, m.body FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                WHERE mm.mailbox_id = ? AND mm.uid = ? AND m.size <= ?
                """)
            for uid in uids {
                // A cursor's row reads the statement in place (fetchOne would copy it), for as
                // long as the cursor lives.
                let rows = try Row.fetchCursor(stmt, arguments: [mailbox, uid, maxSize])
                let more = try withExtendedLifetime(rows) { () -> Bool in
                    guard let row = try rows.next() else { return true }
                    return try row.withUnsafeData(atIndex: 1) { inline -> Bool in
                        if let inline { return try inline.withUnsafeBytes { try body(uid, $0) } }
                        let hash: Data = row[0]
                        let b = try blobs.read([UInt8](hash), offset: 0, length: maxSize + 1)
                        guard b.count <= maxSize else { return true }
                        return try b.withUnsafeBytes { try body(uid, $0) }
                    }
                }
                if !more { return }
            }
        }
    }
}
