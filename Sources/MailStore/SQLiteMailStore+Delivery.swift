// DeliveryStore on SQLite: resolve, hash and parse outside the writer, then the group-commit
// transaction inserts the body once and one row per local mailbox and per queued recipient.
import Foundation
import GRDB
import MIME

extension SQLiteMailStore {
    public func deliver(sender: String, recipients: [String], body: [UInt8], submitter: UserRef? = nil,
                        completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void) {
        do {
            if let s = submitter {
                guard try senderLogins(sender).contains(s.address) else { throw StoreError(.denied, "sender <\(sender)> is not owned by \(s.address)") }
            }
            // Resolve before the writer runs; the writer re-checks nothing but mailbox ids.
            let resolutions = try pool.read { db in
                try recipients.map { r -> Resolution in
                    let res = try Self.resolve(db, r)
                    if res == .notLocal, submitter != nil { return .deliver(users: [], remote: [r]) }
                    return res
                }
            }
            let (hash, info) = body.withUnsafeBytes { buf in
                (SHA256Digest.hash(buf), MessageParser.parse(buf).encoded())
            }
            committer.submit(PendingDelivery(sender: sender, resolutions: resolutions, body: body, hash: hash, info: info,
                                             date: now, completion: completion))
        } catch {
            completion(.failure(error))
        }
    }

    /// Runs inside the group-commit transaction.
    func commit(_ d: PendingDelivery, db: Database) throws -> DeliveryOutcome {
        var statuses: [DeliveryStatus] = [], changes: [MailboxChange] = []
        var messageID: Int64? = nil
        func message() throws -> Int64 {
            if let m = messageID { return m }
            try db.execute(sql: "INSERT OR IGNORE INTO messages (hash, size, info, created, body) VALUES (?, ?, ?, ?, ?)",
                           arguments: [Data(d.hash), d.body.count, Data(d.info), d.date,
                                       d.body.count <= inlineMax ? Data(d.body) : nil])
            let m = try Int64.fetchOne(db, sql: "SELECT id FROM messages WHERE hash = ?", arguments: [Data(d.hash)])!
            messageID = m
            return m
        }
        var delivered = Set<Int64>(), queued = Set<String>()
        for r in d.resolutions {
            switch r {
            case .notLocal: statuses.append(.notLocal)
            case .unknownUser: statuses.append(.unknownUser)
            case .deliver(let users, let remote):
                for u in users where !delivered.contains(u.id) {
                    delivered.insert(u.id)
                    guard let row = try Row.fetchOne(db, sql: """
                        UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, exists_count = exists_count + 1
                        WHERE user_id = ? AND name = ? RETURNING id, uidnext, highestmodseq, exists_count
                        """, arguments: [u.id, Self.inbox]) else { continue }
                    let mbox: Int64 = row[0], uidNext: Int64 = row[1], modseq: Int64 = row[2], exists: Int64 = row[3]
                    try db.execute(sql: """
                        INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date, sender)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """, arguments: [mbox, uidNext - 1, try message(), modseq, d.date, d.sender])
                    changes.append(MailboxChange(user: u.id, mailboxID: mbox, mailbox: Self.inbox, uidNext: UInt32(uidNext),
                                                 exists: UInt32(exists), highestModSeq: UInt64(modseq)))
                }
                for rcpt in remote where !queued.contains(rcpt) {
                    queued.insert(rcpt)
                    try db.execute(sql: "INSERT INTO queue (message_id, sender, recipient, created, next_attempt) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [try message(), d.sender, rcpt, d.date, d.date])
                }
                statuses.append(.delivered)
            }
        }
        return DeliveryOutcome(statuses: statuses, changes: changes)
    }
}
