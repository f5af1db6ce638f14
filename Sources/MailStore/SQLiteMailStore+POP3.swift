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
            // The mailbox is the user's (ownedMailbox's check, on a statement prepared once:
            // compiling one per batch was an eighth of the store's read-ahead time).
            let owned = try db.cachedStatement(sql: "SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?")
            guard try Int.fetchOne(owned, arguments: [mailbox, user]) != nil else { throw Self.noSuchMailbox }
            /// Hands the row's body over in place (inline, or the blob file's bytes); false stops.
            func hand(_ row: Row, uid: UInt32) throws -> Bool {
                try row.withUnsafeData(atIndex: 2) { inline -> Bool in
                    if let inline { return try inline.withUnsafeBytes { try body(uid, $0) } }
                    let hash: Data = row[1]
                    let b = try blobs.read([UInt8](hash), offset: 0, length: maxSize + 1)
                    guard b.count <= maxSize else { return true }
                    return try b.withUnsafeBytes { try body(uid, $0) }
                }
            }
            // A cursor's row reads the statement in place (fetchOne would copy it), for as long
            // as the cursor lives.
            guard let first = uids.first, let last = uids.last, zip(uids, uids.dropFirst()).allSatisfy({ $0 < $1 }) else {
                let stmt = try db.cachedStatement(sql: "\(Self.pop3BodiesSQL) AND mm.uid = ?")
                for uid in uids {
                    let rows = try Row.fetchCursor(stmt, arguments: [mailbox, maxSize, uid])
                    let more = try withExtendedLifetime(rows) { try rows.next().map { try hand($0, uid: uid) } ?? true }
                    if !more { return }
                }
                return
            }
            // pop3d asks for the next messages of its snapshot in UID order: one range scan
            // (one statement run, not one per UID), skipping what was not asked for.
            let stmt = try db.cachedStatement(sql: "\(Self.pop3BodiesSQL) AND mm.uid BETWEEN ? AND ? ORDER BY mm.uid")
            let rows = try Row.fetchCursor(stmt, arguments: [mailbox, maxSize, first, last])
            var wanted = uids[...]
            try withExtendedLifetime(rows) {
                while let row = try rows.next() {
                    let uid: UInt32 = row[0]
                    while let w = wanted.first, w < uid { wanted.removeFirst() }
                    guard wanted.first == uid else { continue }
                    wanted.removeFirst()
                    if try !hand(row, uid: uid) { return }
                }
            }
        }
    }

    /// The rows pop3Bodies reads: uid, hash, inline body, of one mailbox's messages of at most
    /// a size (then narrowed to one UID or a range).
    static let pop3BodiesSQL = """
        SELECT mm.uid, m.hash, m.body FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
        WHERE mm.mailbox_id = ? AND m.size <= ?
        """
}
