// DeliveryStore on SQLite: resolve, hash and parse outside the writer; the group commit inserts the
// body once, a row per local mailbox and per queued recipient (origin, RFC 3461 parameters, an SRS
// sender for forwards). Bodies come whole (`body:`) or staged in a temporary file (`staged:`).
import Foundation
import GRDB
import MIME

extension SQLiteMailStore {
    /// The content hash and the encoded MessageInfo of a body in memory (delivery and APPEND).
    static func digest(_ body: [UInt8]) -> (hash: [UInt8], info: [UInt8]) {
        let d = parsedDigest(body)
        return (d.hash, d.info)
    }

    /// `digest` with the parsed info kept (for the search index's texts).
    static func parsedDigest(_ body: [UInt8]) -> (hash: [UInt8], info: [UInt8], parsed: MessageInfo) {
        body.withUnsafeBytes { buf in
            let parsed = MessageParser.parse(buf)
            return (SHA256Digest.hash(buf), parsed.encoded(), parsed)
        }
    }

    public func deliver(sender: String, recipients: [String], body: [UInt8], submitter: UserRef?, options: DeliveryOptions,
                        completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void) {
        let (hash, info, parsed) = Self.parsedDigest(body)
        let d = PendingDelivery(sender: sender, resolutions: [], body: body, staged: nil, size: body.count, hash: hash, info: info,
                                date: now, completion: completion)
        submit(d, recipients: recipients, submitter: submitter, options: options) { searchText(body, parsed) }
    }

    /// Up to `inline_max` a staged body stays in memory (it goes into its row); past it, a file.
    public func stageBody() throws -> any StagedBody { try blobs.stage(memoryLimit: inlineMax) }

    /// The staged body is hashed as it was written; here it is parsed from a read-only mapping.
    /// A small body moves into memory for its row; a large one is adopted as its blob file in
    /// the group commit.
    public func deliver(sender: String, recipients: [String], staged: any StagedBody, submitter: UserRef?, options: DeliveryOptions,
                        completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void) {
        guard let s = staged as? StagedBlob else {
            staged.discard()
            return completion(.failure(StoreError(.invalid, "a body staged by another store")))
        }
        do {
            let hash = try s.finish()
            let size = s.size
            let (info, inline, parsed) = try s.withMappedBytes { buf in
                let parsed = MessageParser.parse(buf)
                return (parsed.encoded(), size <= inlineMax ? [UInt8](buf) : nil, parsed)
            }
            if inline != nil { s.discard() }
            let d = PendingDelivery(sender: sender, resolutions: [], body: inline, staged: inline == nil ? s : nil, size: size, hash: hash,
                                    info: info, date: now, completion: completion)
            submit(d, recipients: recipients, submitter: submitter, options: options) {
                // A large body is still its staged file here (the group commit adopts it later).
                if let inline { return searchText(inline, parsed) }
                return (try? s.withMappedBytes { searchText([UInt8]($0), parsed) }) ?? nil
            }
        } catch {
            s.discard()
            completion(.failure(error))
        }
    }

    /// Checks the sender, resolves the recipients before the writer runs (the writer re-checks
    /// nothing but mailbox ids), decides how remote recipients are queued (origin, the sender
    /// of their rows), and hands the delivery to the group commit. The search index's text
    /// (`text`, SearchIndex.swift) is extracted only for a body some mailbox will hold: a body
    /// that is only queued leaves with its last recipient, unsearched (it stays pending).
    private func submit(_ pending: PendingDelivery, recipients: [String], submitter: UserRef?, options: DeliveryOptions,
                        text: () -> SearchIndexText?) {
        var d = pending
        do {
            // A submission keeps its sender (it is the user's own); anything else reaching a
            // remote target is a forward: SRS-rewritten so SPF passes at the destination.
            d.queueing = submitter != nil
                ? QueueingPlan(origin: .submission, sender: d.sender, options: options)
                : QueueingPlan(origin: .forward, sender: forwardSender(d.sender, at: d.date), options: options)
            d.resolutions = try pool.read { db in
                if let s = submitter {
                    guard try Self.senderLogins(db, d.sender).contains(s.address) else {
                        throw StoreError(.denied, "sender <\(d.sender)> is not owned by \(s.address)")
                    }
                }
                return try recipients.map { r -> Resolution in
                    let res = try resolve(db, r)
                    if res == .notLocal, submitter != nil { return .deliver(users: [], remote: [r]) }
                    return res
                }
            }
            d.reachesMailbox = d.resolutions.contains { if case .deliver(let users, _) = $0 { !users.isEmpty } else { false } }
            if d.reachesMailbox { d.searchText = text() }
            committer.submit(d)
        } catch {
            d.staged?.discard()
            d.completion(.failure(error))
        }
    }

    /// For a delivery answered with one reply (`DeliveryOptions.allOrNothing`): when some
    /// recipient would be over quota (no target of it with room), every local or queued
    /// recipient is refused as over quota and nothing is stored; nil when all can take it.
    static func quotaRefusal(_ d: PendingDelivery, db: Database) throws -> DeliveryOutcome? {
        var full = false
        for case .deliver(let users, let remote) in d.resolutions where remote.isEmpty && !users.isEmpty {
            if try users.allSatisfy({ try !quotaAllows(db, user: $0.id, size: d.size) }) { full = true; break }
        }
        guard full else { return nil }
        return DeliveryOutcome(statuses: d.resolutions.map { r -> DeliveryStatus in
            switch r {
            case .notLocal: return .notLocal
            case .unknownUser: return .unknownUser
            case .deliver: return .overQuota
            }
        }, changes: [], queued: 0)
    }

    /// The `messages` row of the pending body, inserted unless the same bytes are stored already.
    func messageRow(_ d: PendingDelivery, db: Database) throws -> Int64 {
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO messages (hash, size, info, created, body) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [Data(d.hash), d.size, Data(d.info), d.date,
                                   d.size <= inlineMax ? d.body.map { Data($0) } : nil])
        let stored = db.changesCount > 0
        let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM messages WHERE hash = ?"), arguments: [Data(d.hash)])!
        // Search index (SearchIndex.swift): a new body is indexed in this same transaction.
        if stored, d.reachesMailbox {
            try indexBody(db, id, d.searchText)
            try keepHeaderFields(db, id, d)   // HEADER.FIELDS listings (SQLiteMailStore+HeaderFields.swift)
        }
        return id
    }

    /// Runs inside the group-commit transaction. An APPEND (`d.append`) runs in its own
    /// savepoint: its failure is its own, the batch goes on.
    func commit(_ d: PendingDelivery, db: Database) throws -> DeliveryOutcome {
        if let report = d.report { return commitReport(d, report, db: db) }
        if let target = d.append {
            do {
                try db.inSavepoint {
                    target.result = .success(try commitAppend(d, target, db: db))
                    return .commit
                }
            } catch {
                target.result = .failure(error)
            }
            return DeliveryOutcome(statuses: [], changes: (try? target.result?.get().1) ?? [])
        }
        var statuses: [DeliveryStatus] = [], changes: [MailboxChange] = []
        var messageID: Int64? = nil
        func message() throws -> Int64 {
            if let m = messageID { return m }
            let m = try messageRow(d, db: db)
            messageID = m
            return m
        }
        var delivered = Set<Int64>(), queued = Set<String>(), full = Set<Int64>()
        if d.queueing?.options.allOrNothing == true, let refused = try Self.quotaRefusal(d, db: db) { return refused }
        for (index, r) in d.resolutions.enumerated() {
            switch r {
            case .notLocal: statuses.append(.notLocal)
            case .unknownUser: statuses.append(.unknownUser)
            case .deliver(let users, let remote):
                for u in users where !delivered.contains(u.id) && !full.contains(u.id) {
                    // QUOTA hook (SQLiteMailStore+Quota.swift): nothing is stored for a user it refuses.
                    guard try Self.quotaAllows(db, user: u.id, size: d.size) else { full.insert(u.id); continue }
                    delivered.insert(u.id)
                    let target = try Self.deliveryMailbox(db, user: u.id, d.queueing?.options.mailbox, now: d.date)
                    guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                        UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, exists_count = exists_count + 1
                        WHERE user_id = ? AND name = ? RETURNING id, uidnext, highestmodseq, exists_count
                        """), arguments: [u.id, target]) else { continue }
                    let mbox: Int64 = row[0], uidNext: Int64 = row[1], modseq: Int64 = row[2], exists: Int64 = row[3]
                    try db.cachedStatement(sql: """
                        INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date, sender)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """).execute(arguments: [mbox, uidNext - 1, try message(), modseq, d.date, d.sender])
                    changes.append(MailboxChange(user: u.id, mailboxID: mbox, mailbox: target, uidNext: UInt32(uidNext),
                                                 exists: UInt32(exists), highestModSeq: UInt64(modseq)))
                }
                let plan = d.queueing ?? QueueingPlan(origin: .forward, sender: d.sender, options: DeliveryOptions())
                let dsn = plan.options.dsn(ofRecipient: index), envelope = plan.options.envelopeDSN
                for rcpt in remote where !queued.contains(rcpt) {
                    queued.insert(rcpt)
                    try db.cachedStatement(sql: """
                        INSERT INTO queue (message_id, sender, recipient, created, next_attempt, origin,
                                           dsn_notify, dsn_orcpt, dsn_ret, dsn_envid)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """).execute(arguments: [try message(), plan.sender, rcpt, d.date, d.date, plan.origin.rawValue,
                                         dsn.notify, dsn.orcpt, envelope.ret, envelope.envid])
                }
                // Over quota only when no copy of it went anywhere (an alias with room elsewhere delivers).
                statuses.append(remote.isEmpty && !users.isEmpty && users.allSatisfy { full.contains($0.id) } ? .overQuota : .delivered)
            }
        }
        return DeliveryOutcome(statuses: statuses, changes: changes, queued: queued.count)
    }
}

/// How a delivery's remote recipients are queued: submitted (sender kept) or forwarded (sender
/// SRS-rewritten), with the client's RFC 3461 parameters.
struct QueueingPlan: Sendable {
    var origin: QueueOrigin
    /// The sender of the queue rows ("" stays the null sender).
    var sender: String
    var options: DeliveryOptions
}
