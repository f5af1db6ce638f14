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

// Contract stubs: the outbound store work replaces these.
extension SQLiteMailStore {
    public func claimQueue(now: Int64, lease: Int64, limit: Int) throws -> QueueClaim { throw StoreError(.temporary, "queue claim: not built yet") }
    public func queueBody(message: Int64, offset: Int, length: Int) throws -> [UInt8] { throw StoreError(.temporary, "queue body: not built yet") }
    public func reportQueue(_ results: [QueueResult], notice: QueueNotice?, now: Int64,
                            completion: @escaping @Sendable (Result<Void, Error>) -> Void) {
        completion(.failure(StoreError(.temporary, "queue report: not built yet")))
    }
    public func queueEntries() throws -> [QueueEntryInfo] { throw StoreError(.temporary, "queue entries: not built yet") }
    public func queueAdmin(_ action: QueueAdminAction, message: Int64?, now: Int64) throws -> Int { throw StoreError(.temporary, "queue admin: not built yet") }
}
