// A large INBOX made fast for the memo tests: rows added straight to the store's database, all
// sharing the body of the mailbox's first message (appended first through the store).
import XCTest
import GRDB
import MailTesting

extension InProcessStore {
    /// Rows 2...n of `user`'s INBOX, all pointing at the body of row 1 (synchronous GRDB write).
    func insertSharedRows(user: String, _ n: Int) throws -> Int64 {
        let inbox = try XCTUnwrap(try store.mailbox(user: try XCTUnwrap(try store.user(named: user)).id, name: "INBOX"))
        try store.pool.write { (db: Database) throws -> Void in
            let message = try Int64.fetchOne(db, sql: "SELECT message_id FROM mailbox_messages WHERE mailbox_id = ?", arguments: [inbox.id])!
            let st = try db.makeStatement(sql: "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keyword_bits, modseq, internal_date) VALUES (?, ?, ?, 0, 0, ?, 0)")
            for uid in 2...n { try st.execute(arguments: [inbox.id, uid, message, uid]) }
            try db.execute(sql: "UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, exists_count = ? WHERE id = ?", arguments: [n + 1, n, n, inbox.id])
        }
        return inbox.id
    }
}
