// QueueStore on SQLite (DESIGN §4): claims with a lease set in the claiming write transaction,
// bodies served without their leading Return-Path, and reports applied in the group commit
// together with the notice they carry, so a recipient leaves the queue only with its DSN durable.
import Foundation
import GRDB
import MailSyntax

/// A report riding the group commit (like an APPEND's AppendTarget): set by the commit inside
/// the batch transaction, read by the report's completion. A failing report rolls back its own
/// savepoint and fails alone.
final class QueueReportTarget: @unchecked Sendable {
    let results: [QueueResult]
    var result: Result<QueueReportOutcome, Error>?
    /// Blob files of bodies the report left unreferenced (removed after the commit).
    var files: [[UInt8]] = []
    init(results: [QueueResult]) { self.results = results }
}

extension SQLiteMailStore {
    public func queue() throws -> [QueuedRecipient] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, sender, recipient, created, next_attempt, attempts, last_error FROM queue ORDER BY id").map {
                QueuedRecipient(id: $0[0], sender: $0[1], recipient: $0[2], created: $0[3], nextAttempt: $0[4], attempts: $0[5], lastError: $0[6])
            }
        }
    }

    public var queueNow: Int64 { now }

    // MARK: claim

    /// A claim's rows are those of one message with one envelope (the same bytes submitted twice
    /// share a `messages` row, not a sender): the grouping key of a job.
    private static let jobKey = "message_id, sender, origin, dsn_ret, dsn_envid"
    private static let due = "next_attempt <= :now AND held = 0 AND lease_until <= :now"

    /// The longest lease a claim gets: an agent that vanishes holds its rows no longer.
    public static let maxQueueLease: Int64 = 86_400

    public func claimQueue(now: Int64, lease: Int64, limit: Int) throws -> QueueClaim {
        let leaseUntil = now + min(max(1, lease), Self.maxQueueLease)
        var bodies: [QueuedBody] = []
        var (jobs, nextDue) = try pool.write { db -> ([QueueJob], Int64?) in
            let keys = try Row.fetchAll(db, sql: """
                SELECT \(Self.jobKey) FROM queue WHERE \(Self.due)
                GROUP BY \(Self.jobKey) ORDER BY min(created), min(id) LIMIT :limit
                """, arguments: ["now": now, "limit": max(0, limit)])
            let take = try db.cachedStatement(sql: """
                UPDATE queue SET lease_until = :lease
                WHERE message_id = :m AND sender = :s AND origin = :o AND dsn_ret = :r AND dsn_envid = :e AND \(Self.due)
                RETURNING id, recipient, attempts, first_attempt, last_error, warned, dsn_notify, dsn_orcpt, created, bounce_requested
                """)
            var jobs: [QueueJob] = []
            for k in keys {
                let rows = try Row.fetchAll(take, arguments: ["lease": leaseUntil, "m": k[0], "s": k[1], "o": k[2], "r": k[3], "e": k[4], "now": now])
                    .sorted { ($0[0] as Int64) < ($1[0] as Int64) }
                guard !rows.isEmpty else { continue }
                bodies.append(try Self.queuedBody(db, k[0]))
                let recipients = rows.map { r in
                    QueueRecipient(id: r[0], address: r[1], attempts: r[2], firstAttempt: r[3], lastReply: r[4], warned: r[5],
                                   dsn: QueueRecipientDSN(notify: (r[6] as Int64?).map { UInt8(truncatingIfNeeded: $0) }, orcpt: r[7]))
                }
                let origin = QueueOrigin(rawValue: UInt8(truncatingIfNeeded: k[2] as Int64)) ?? .submission
                jobs.append(QueueJob(message: k[0], sender: k[1], size: 0, created: rows.map { $0[8] as Int64 }.min()!, origin: origin,
                                     envelope: QueueEnvelopeDSN(ret: k[3], envid: k[4]), recipients: recipients,
                                     bounceRequested: rows.contains { $0[9] as Bool }, leaseUntil: leaseUntil))
            }
            // The rest: unheld rows not taken now, due when both their attempt and any lease
            // (another agent's) allow.
            let next = try Int64.fetchOne(db, sql: """
                SELECT min(max(next_attempt, lease_until)) FROM queue WHERE held = 0 AND lease_until != ?
                """, arguments: [leaseUntil])
            return (jobs, next)
        }
        var budget = QueueClaim.bodyBudget
        for i in jobs.indices {
            let skip = try bodies[i].skip(blobs)
            jobs[i].size = bodies[i].size - skip
            // Small bodies ride with the claim (the row was read for the size anyway).
            if let inline = bodies[i].inline, jobs[i].size <= budget {
                jobs[i].body = Array(inline[skip...])
                budget -= jobs[i].size
            }
        }
        if let n = nextDue, n < now { nextDue = now }
        return QueueClaim(jobs: jobs, nextDue: nextDue)
    }

    // MARK: body

    /// A queued message as stored, read in one query: its size and hash, and its bytes when they
    /// are in the row (inline bodies are small: at most `inlineMax`).
    struct QueuedBody {
        var size: Int, hash: [UInt8], inline: [UInt8]?

        /// Octets of its leading Return-Path field (0 without one).
        func skip(_ blobs: BlobStore) throws -> Int {
            let prefix = try inline.map { Array($0.prefix(ReturnPathField.scanLimit)) }
                ?? blobs.read(hash, offset: 0, length: ReturnPathField.scanLimit)
            return ReturnPathField.length(prefix, complete: prefix.count >= size)
        }
    }

    static func queuedBody(_ db: Database, _ message: Int64) throws -> QueuedBody {
        guard let r = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT size, hash, body FROM messages
            WHERE id = ? AND EXISTS (SELECT 1 FROM queue WHERE message_id = messages.id)
            """), arguments: [message]) else { throw StoreError(.notFound, "message \(message) is not queued") }
        return QueuedBody(size: r[0], hash: [UInt8](r[1] as Data), inline: (r[2] as Data?).map { [UInt8]($0) })
    }

    public func queueBody(message: Int64, offset: Int, length: Int) throws -> [UInt8] {
        let b = try pool.read { db in try Self.queuedBody(db, message) }
        let skip = try b.skip(blobs)
        let start = skip + min(max(0, offset), b.size - skip), len = max(0, min(length, b.size - start))
        guard len > 0 else { return [] }
        if let inline = b.inline { return Array(inline[start..<(start + len)]) }
        return try blobs.read(b.hash, offset: start, length: len)
    }

    // MARK: report

    public func reportQueue(_ results: [QueueResult], notice: QueueNotice?, now: Int64,
                            completion: @escaping @Sendable (Result<Void, Error>) -> Void) {
        commitQueueReport(results, notice: notice, now: now) { completion($0.map { _ in () }) }
    }

    /// The report rides the group commit as a delivery of its notice (or of nothing): the notice
    /// goes the way a delivery's recipients go — a local sender's INBOX, or a queue row.
    public func commitQueueReport(_ results: [QueueResult], notice: QueueNotice?, now: Int64,
                                  completion: @escaping @Sendable (Result<QueueReportOutcome, Error>) -> Void) {
        let target = QueueReportTarget(results: results)
        var resolutions: [Resolution] = []
        if let n = notice {
            do {
                let r = try pool.read { db in try Self.resolve(db, n.recipient) }
                resolutions = [r == .notLocal ? .deliver(users: [], remote: [n.recipient]) : r]
            } catch { return completion(.failure(error)) }
        }
        let body = notice?.body ?? []
        let (hash, info) = Self.digest(body)
        committer.submit(PendingDelivery(sender: "", resolutions: resolutions, body: body, staged: nil, size: body.count, hash: hash, info: info,
                                         date: now, completion: { [committer] r in
                                             switch r {
                                             case .failure(let e): completion(.failure(e))
                                             case .success:
                                                 // A failed report's notice file was written before its savepoint: it goes too.
                                                 let failed = if case .success = target.result { false } else { true }
                                                 committer?.removeBlobs(target.files + (failed ? [hash] : []))
                                                 completion(target.result ?? .failure(StoreError(.temporary, "report not committed")))
                                             }
                                         }, queueing: QueueingPlan(origin: .bounce, sender: "", options: DeliveryOptions()), report: target))
    }

    /// The report half of the group commit's transaction, in its own savepoint: results first,
    /// then the notice through the delivery path with the null sender (RFC 3461 §6.2); rows it
    /// queues are marked as bounces. A result applies only to a row under a lease (claimed and
    /// not reported since): a stale or repeated report, or a row id SQLite gave again to a new
    /// row after the old one left, is ignored.
    func commitReport(_ d: PendingDelivery, _ t: QueueReportTarget, db: Database) -> DeliveryOutcome {
        var plain = d
        plain.report = nil
        do {
            try db.inSavepoint {
                var touched = Set<Int64>()
                let remove = try db.cachedStatement(sql: "DELETE FROM queue WHERE id = ? AND lease_until > 0 RETURNING message_id")
                let defer_ = try db.cachedStatement(sql: """
                    UPDATE queue SET next_attempt = ?, attempts = attempts + 1, first_attempt = coalesce(first_attempt, ?),
                                     last_error = ?, warned = warned | ?, lease_until = 0
                    WHERE id = ? AND lease_until > 0
                    """)
                for r in t.results {
                    switch r.outcome {
                    case .delivered, .failed:
                        if let m = try Int64.fetchOne(remove, arguments: [r.recipient]) { touched.insert(m) }
                    case .deferred(let reply, let next, let warned):
                        try defer_.execute(arguments: [next, d.date, reply, warned ? 1 : 0, r.recipient])
                    }
                }
                t.files = try Self.dropUnreferenced(db, touched)
                var outcome = QueueReportOutcome()
                if !d.resolutions.isEmpty {
                    let o = try commit(plain, db: db)
                    outcome = QueueReportOutcome(changes: o.changes, queued: o.queued)
                }
                t.result = .success(outcome)
                return .commit
            }
        } catch {
            t.files = []
            t.result = .failure(error)
        }
        return DeliveryOutcome(statuses: [], changes: [])
    }

    // MARK: administration

    public func queueEntries() throws -> [QueueEntryInfo] { try queueEntries(after: 0, limit: Int.max) }

    /// A new row's id is above every row present (INTEGER PRIMARY KEY), so id order is queue
    /// order and a page after the last id seen never skips a row.
    public func queueEntries(after: Int64, limit: Int) throws -> [QueueEntryInfo] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT q.id, q.message_id, q.sender, q.recipient, q.created, q.next_attempt, q.attempts, q.last_error,
                       q.held, q.bounce_requested, q.lease_until, m.size, q.origin
                FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.id > ? ORDER BY q.id LIMIT ?
                """, arguments: [after, Int64(clamping: max(0, limit))]).map {
                QueueEntryInfo(id: $0[0], message: $0[1], sender: $0[2], recipient: $0[3], created: $0[4], nextAttempt: $0[5],
                               attempts: $0[6], lastReply: $0[7], held: $0[8], bounceRequested: $0[9], leaseUntil: $0[10], size: $0[11],
                               origin: QueueOrigin(rawValue: UInt8(truncatingIfNeeded: $0[12] as Int64)) ?? .submission)
            }
        }
    }

    public func queueAdmin(_ action: QueueAdminAction, message: Int64?, now: Int64) throws -> Int {
        guard message != nil || action == .flush else { throw StoreError(.invalid, "\(action) needs a message") }
        let which = message == nil ? "1" : "message_id = :m"
        let sql: String
        switch action {
        case .flush: sql = "UPDATE queue SET next_attempt = :now WHERE \(which)"
        case .hold: sql = "UPDATE queue SET held = 1 WHERE \(which)"
        case .release: sql = "UPDATE queue SET held = 0, next_attempt = min(next_attempt, :now) WHERE \(which)"
        case .bounce: sql = "UPDATE queue SET bounce_requested = 1, next_attempt = :now WHERE \(which)"
        case .delete: sql = "DELETE FROM queue WHERE \(which)"
        }
        var args: [String: (any DatabaseValueConvertible)?] = [:]
        if let message { args["m"] = message }
        if sql.contains(":now") { args["now"] = now }
        let arguments = StatementArguments(args)
        let (n, files) = try pool.write { db -> (Int, [[UInt8]]) in
            try db.execute(sql: sql, arguments: arguments)
            let n = db.changesCount
            guard action == .delete, let m = message else { return (n, []) }
            return (n, try Self.dropUnreferenced(db, [m]))
        }
        committer.removeBlobs(files)
        return n
    }
}

/// The leading `Return-Path:` field the store strips when the agent reads a body (DESIGN §4;
/// RFC 5321 §4.4: a trace field the final delivery adds, never one to relay). Pure.
enum ReturnPathField {
    /// Bytes of a message's start searched for the whole field; a longer field is left alone.
    static let scanLimit = 8192
    static let name = Array("return-path:".utf8)

    /// The field's length with its line ending and folded continuation lines (RFC 5322 §2.2.3),
    /// when `prefix` starts with it; 0 otherwise, or when its end is not within `prefix` (unless
    /// `complete`: the prefix is the whole message).
    static func length(_ prefix: [UInt8], complete: Bool) -> Int {
        guard prefix.count >= name.count, zip(prefix, name).allSatisfy({ ASCII.lower($0) == $1 }) else { return 0 }
        var i = name.count
        while true {
            guard let lf = prefix[i...].firstIndex(of: ASCII.lf) else { return complete ? prefix.count : 0 }
            let next = lf + 1
            guard next < prefix.count else { return complete ? prefix.count : 0 }
            guard ASCII.isWSP(prefix[next]) else { return next }
            i = next
        }
    }
}
