// QuotaStore on SQLite (RFC 9208 STORAGE and MESSAGE, issue 11): limits and usage counters on the
// users row (migration v9-quota), the counters kept by triggers in the same transaction as the
// message rows, so they stay exact across every path and any crash. The checks below run inside
// the writing transaction (group commit, COPY), after the rows before them in the batch.
import GRDB

extension SQLiteMailStore {
    static let overQuota = StoreError(.overQuota, "over quota")

    /// The user's limits and usage as the transaction `db` sees them.
    static func quota(_ db: Database, user: Int64) throws -> QuotaUsage {
        guard let r = try Row.fetchOne(db, sql: "SELECT used_bytes, used_messages, quota_storage, quota_messages FROM users WHERE id = ?",
                                       arguments: [user]) else { throw StoreError(.notFound, "no such user") }
        // A counter cannot go below 0 unless rows were edited behind the store's back; clamp.
        return QuotaUsage(bytes: UInt64(max(0, r[0] as Int64)), messages: UInt64(max(0, r[1] as Int64)),
                          storageLimit: (r[2] as Int64?).map { UInt64(max(0, $0)) }, messageLimit: (r[3] as Int64?).map { UInt64(max(0, $0)) })
    }

    /// Quota hook of delivery and APPEND: whether one more message of `size` bytes fits `user`'s limits.
    static func quotaAllows(_ db: Database, user: Int64, size: Int) throws -> Bool {
        try quota(db, user: user).allows(bytes: UInt64(size), messages: 1)
    }

    /// Quota hook of COPY: throws `.overQuota` unless copies of `messages` (ids in `messages`,
    /// each counted as often as it appears) fit `user`'s limits.
    static func requireQuota(_ db: Database, user: Int64, copying messages: [Int64]) throws {
        let q = try quota(db, user: user)
        guard q.isLimited else { return }
        let size = try db.cachedStatement(sql: "SELECT size FROM messages WHERE id = ?")
        var bytes: UInt64 = 0
        for m in messages { bytes += UInt64(try Int64.fetchOne(size, arguments: [m]) ?? 0) }
        guard q.allows(bytes: bytes, messages: UInt64(messages.count)) else { throw overQuota }
    }

    public func quota(user: Int64) throws -> QuotaUsage {
        try pool.read { db in try Self.quota(db, user: user) }
    }

    public func quota(_ address: String) throws -> QuotaUsage {
        try quota(user: existingUser(address).id)
    }

    private func existingUser(_ address: String) throws -> UserRef {
        guard let u = try user(named: address) else { throw StoreError(.notFound, "no such user: \(address)") }
        return u
    }

    public func setQuota(_ address: String, storage: QuotaLimitChange, messages: QuotaLimitChange) throws -> QuotaUsage {
        let u = try existingUser(address)
        return try pool.write { db in
            for (column, change) in [("quota_storage", storage), ("quota_messages", messages)] {
                switch change {
                case .keep: continue
                case .remove: try db.execute(sql: "UPDATE users SET \(column) = NULL WHERE id = ?", arguments: [u.id])
                case .set(let n):
                    guard let v = Int64(exactly: n) else { throw StoreError(.invalid, "limit \(n) too large") }
                    try db.execute(sql: "UPDATE users SET \(column) = ? WHERE id = ?", arguments: [v, u.id])
                }
            }
            return try Self.quota(db, user: u.id)
        }
    }
}
