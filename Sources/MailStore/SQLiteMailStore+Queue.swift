// QueueStore on SQLite: the outbound queue's rows, raw (the CLI formats them).
import Foundation
import GRDB

extension SQLiteMailStore {
    public func queue() throws -> [QueuedRecipient] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, sender, recipient, created, next_attempt, attempts, last_error FROM queue ORDER BY id").map {
                QueuedRecipient(id: $0[0], sender: $0[1], recipient: $0[2], created: $0[3], nextAttempt: $0[4], attempts: $0[5], lastError: $0[6])
            }
        }
    }
}
