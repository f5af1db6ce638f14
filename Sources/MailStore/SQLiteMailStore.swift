// The embedded MailStore: SQLite in WAL mode through GRDB, bodies in a BlobStore, and a
// group-commit writer so concurrent deliveries share one blob sync and one WAL fsync.
// Guarantees: a delivery's completion reports success only after both are durable.
import Foundation
import GRDB
import MIME
import MailIPC
import MailCore

public final class SQLiteMailStore: MailStore, @unchecked Sendable {
    public let pool: DatabasePool
    public let blobs: BlobStore
    private(set) var committer: GroupCommitter!
    public static let defaultMailboxes: [(String, String)] = [
        ("INBOX", ""), ("Drafts", "\\Drafts"), ("Sent", "\\Sent"), ("Junk", "\\Junk"), ("Trash", "\\Trash"), ("Archive", "\\Archive"),
    ]
    public static let subaddressSeparator: Character = "+"
    static let maxAliasDepth = 8

    /// Bodies up to this size are stored in their `messages` row (durable with the WAL fsync);
    /// larger ones are blob files. 0: every body is a file.
    public let inlineMax: Int

    public init(dataDir: String, fsync: Bool = true, groupCommitMax: Int = 512, inlineMax: Int = 64 * 1024) throws {
        self.inlineMax = inlineMax
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // RFC-less but essential: the durability contract needs a full fsync at each commit.
            try db.execute(sql: "PRAGMA synchronous = \(fsync ? "FULL" : "OFF")")
        }
        let dbPath = dataDir + "/postern.db"
        pool = try DatabasePool(path: dbPath, configuration: config)
        chmod(dbPath, 0o600)
        try Schema.migrator().migrate(pool)
        blobs = try FileBlobStore(dataDir: dataDir, fsync: fsync)
        committer = nil
        committer = GroupCommitter(store: self, maxBatch: groupCommitMax)
    }

    // MARK: addresses

    /// Splits "Local@Domain" into lowercase (local, domain); nil when it is not an address.
    /// The matching key of a local part: full Unicode case folding, as Postfix applies to
    /// addresses before it asks lookup tables (smtputf8_enable), so "Grüße" matches "grüsse".
    public static func fold(_ s: String) -> String { s.folding(options: [.caseInsensitive], locale: nil) }

    public static func split(_ address: String) -> (local: String, domain: String)? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let local = address[..<at].lowercased(), domain = address[address.index(after: at)...].lowercased()
        guard !local.isEmpty, !domain.isEmpty else { return nil }
        return (local, domain)
    }

    public func resolve(_ address: String) throws -> Resolution {
        try pool.read { db in try Self.resolve(db, address) }
    }

    /// Recipient resolution, in order: user, alias, user of the base before "+detail",
    /// alias of the base, catch-all. Aliases expand recursively (depth-limited, loop-safe).
    static func resolve(_ db: Database, _ address: String) throws -> Resolution {
        var users: [UserRef] = [], remote: [String] = [], seen = Set<String>()
        func expand(_ addr: String, depth: Int) throws -> Resolution? {
            guard let (local, domain) = split(addr) else { return .unknownUser }
            guard let domainID = try Int64.fetchOne(db, sql: "SELECT id FROM domains WHERE name = ?", arguments: [domain]) else {
                return depth == 0 ? .notLocal : nil
            }
            if seen.contains("\(local)@\(domain)") { return nil }
            seen.insert("\(local)@\(domain)")
            let base = local.split(separator: subaddressSeparator, maxSplits: 1).first.map(String.init) ?? local
            for candidate in base == local ? [local] : [local, base] {
                if let row = try Row.fetchOne(db, sql: "SELECT id, local FROM users WHERE domain_id = ? AND local_key = ?", arguments: [domainID, fold(candidate)]) {
                    let id: Int64 = row[0], stored: String = row[1]
                    let a = "\(stored)@\(domain)"
                    if !users.contains(where: { $0.id == id }) { users.append(UserRef(id: id, address: a)) }
                    return nil
                }
                let targets = try String.fetchAll(db, sql: "SELECT target FROM aliases WHERE domain_id = ? AND local_key = ?", arguments: [domainID, fold(candidate)])
                if !targets.isEmpty { try follow(targets, depth); return nil }
            }
            let catchAll = try String.fetchAll(db, sql: "SELECT target FROM aliases WHERE domain_id = ? AND local = ''", arguments: [domainID])
            if !catchAll.isEmpty { try follow(catchAll, depth); return nil }
            return depth == 0 ? .unknownUser : nil
        }
        func follow(_ targets: [String], _ depth: Int) throws {
            for t in targets {
                guard depth < maxAliasDepth else { continue }
                if let (_, d) = split(t), try Int64.fetchOne(db, sql: "SELECT id FROM domains WHERE name = ?", arguments: [d]) != nil {
                    _ = try expand(t, depth: depth + 1)
                } else if !remote.contains(t) {
                    remote.append(t)
                }
            }
        }
        // RFC 5321 §4.5.1: "Postmaster" without a domain must be accepted: it goes to the
        // postmaster of the first domain (in creation order) that has one.
        if address.lowercased() == "postmaster" {
            for d in try String.fetchAll(db, sql: "SELECT name FROM domains ORDER BY id") {
                if case .deliver(let u, let r) = try resolve(db, "postmaster@\(d)") { return .deliver(users: u, remote: r) }
            }
            return .unknownUser
        }
        if let r = try expand(address, depth: 0) { return r }
        if users.isEmpty && remote.isEmpty { return .unknownUser }
        return .deliver(users: users, remote: remote)
    }

    // MARK: delivery

    public func deliver(sender: String, recipients: [String], body: [UInt8], submitter: UserRef? = nil,
                        completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void) {
        do {
            if let s = submitter {
                let owners = try lookup(map: "senders", key: sender)?.split(separator: ",").map(String.init) ?? []
                guard owners.contains(s.address) else { throw StoreError(.denied, "sender <\(sender)> is not owned by \(s.address)") }
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
                                             date: Int64(Date().timeIntervalSince1970), completion: completion))
        } catch {
            completion(.failure(error))
        }
    }

    /// Runs inside the group-commit transaction.
    func commit(_ d: PendingDelivery, db: Database) throws -> DeliveryOutcome {
        var statuses: [RecipientStatus] = [], changes: [MailboxChange] = []
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
                        WHERE user_id = ? AND name = 'INBOX' RETURNING id, uidnext, highestmodseq, exists_count
                        """, arguments: [u.id]) else { continue }
                    let mbox: Int64 = row[0], uidNext: Int64 = row[1], modseq: Int64 = row[2], exists: Int64 = row[3]
                    try db.execute(sql: """
                        INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date, sender)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """, arguments: [mbox, uidNext - 1, try message(), modseq, d.date, d.sender])
                    changes.append(MailboxChange(user: u.id, mailbox: "INBOX", uidNext: UInt32(uidNext), exists: UInt32(exists)))
                }
                for rcpt in remote where !queued.contains(rcpt) {
                    queued.insert(rcpt)
                    try db.execute(sql: "INSERT INTO queue (message_id, sender, recipient, created, next_attempt) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [try message(), d.sender, rcpt, d.date, d.date])
                }
                statuses.append(.ok)
            }
        }
        return DeliveryOutcome(statuses: statuses, changes: changes)
    }

    /// Start-up sweep (DESIGN §3): drop bodies nothing references, then blob files with no row.
    /// Must run before the store serves anyone. Returns (messages removed, blob files removed).
    @discardableResult
    public func sweep() throws -> (rows: Int, blobs: Int) {
        _ = try blobs.clearTemporaries()
        let rows = try pool.write { db -> Int in
            try db.execute(sql: """
                DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM mailbox_messages)
                                       AND id NOT IN (SELECT message_id FROM queue)
                """)
            return db.changesCount
        }
        let known = Set(try pool.read { db in try Data.fetchAll(db, sql: "SELECT hash FROM messages WHERE body IS NULL") }.map { [UInt8]($0) })
        var removed = 0
        for h in try blobs.allHashes() where !known.contains(h) {
            try blobs.remove(h); removed += 1
        }
        if removed > 0 { try blobs.sync() }
        return (rows, removed)
    }

    // MARK: lookups for a Postfix front end (lookupd)

    public func lookup(map: String, key: String) throws -> String? {
        try pool.read { db in
            switch map {
            case "domains":
                return try Int64.fetchOne(db, sql: "SELECT id FROM domains WHERE name = ?", arguments: [key.lowercased()]) != nil ? "OK" : nil
            case "recipients":
                if key.hasPrefix("@") {   // Postfix asks "@domain" last: yes only for a catch-all
                    return try Int64.fetchOne(db, sql: "SELECT a.id FROM aliases a JOIN domains d ON d.id = a.domain_id WHERE d.name = ? AND a.local = ''",
                                              arguments: [String(key.dropFirst()).lowercased()]) != nil ? "OK" : nil
                }
                if case .deliver = try Self.resolve(db, key) { return "OK" }
                return nil
            case "aliases":
                // Exact entries only. Postfix does not retry tcp/socketmap tables with partial keys
                // (tcp_table(5)): "+detail" and catch-all forms are answered by the recipients map
                // and expanded by the store at LMTP delivery.
                let (local, domain): (String, String)
                if key.hasPrefix("@") { (local, domain) = ("", String(key.dropFirst()).lowercased()) }
                else if let s = Self.split(key) { (local, domain) = s } else { return nil }
                let t = try String.fetchAll(db, sql: """
                    SELECT a.target FROM aliases a JOIN domains d ON d.id = a.domain_id WHERE d.name = ? AND a.local_key = ? ORDER BY a.id
                    """, arguments: [domain, Self.fold(local)])
                return t.isEmpty ? nil : t.joined(separator: ",")
            case "senders":
                // smtpd_sender_login_maps: which logins may use this address as sender. A user owns
                // their address (and +detail forms) and every alias that points at them; a
                // catch-all grants nothing.
                guard let (local, domain) = Self.split(key) else { return nil }
                let base = local.split(separator: Self.subaddressSeparator, maxSplits: 1).first.map(String.init) ?? local
                guard let did = try Int64.fetchOne(db, sql: "SELECT id FROM domains WHERE name = ?", arguments: [domain]) else { return nil }
                if let stored = try String.fetchOne(db, sql: "SELECT local FROM users WHERE domain_id = ? AND local_key = ?", arguments: [did, Self.fold(base)]) {
                    return "\(stored)@\(domain)"
                }
                let targets = try String.fetchAll(db, sql: "SELECT target FROM aliases WHERE domain_id = ? AND local_key = ? ORDER BY id", arguments: [did, Self.fold(base)])
                var logins: [String] = []
                for t in targets {
                    if case .deliver(let users, _) = try Self.resolve(db, t) {
                        for u in users where !logins.contains(u.address) { logins.append(u.address) }
                    }
                }
                return logins.isEmpty ? nil : logins.joined(separator: ",")
            default:
                throw StoreError(.invalid, "no such map: \(map)")
            }
        }
    }

    // MARK: users and sessions

    public func authenticate(_ address: String, password: String) throws -> UserRef? {
        guard let (local, domain) = Self.split(address) else { _ = PasswordHash.verify(password, against: PasswordHash.dummy); return nil }
        let row = try pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT u.id, u.password, u.local FROM users u JOIN domains d ON d.id = u.domain_id WHERE d.name = ? AND u.local_key = ?
                """, arguments: [domain, Self.fold(local)])
        }
        guard let row else { _ = PasswordHash.verify(password, against: PasswordHash.dummy); return nil }
        let hash: String = row[1]
        let stored: String = row[2]
        return PasswordHash.verify(password, against: hash) ? UserRef(id: row[0], address: "\(stored)@\(domain)") : nil
    }

    public func user(named address: String) throws -> UserRef? {
        guard let (local, domain) = Self.split(address) else { return nil }
        return try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT u.id, u.local FROM users u JOIN domains d ON d.id = u.domain_id WHERE d.name = ? AND u.local_key = ?",
                             arguments: [domain, Self.fold(local)]).map { UserRef(id: $0[0], address: "\($0[1] as String)@\(domain)") }
        }
    }

    public func mailboxes(user: Int64) throws -> [MailboxInfo] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT name, special_use, uidvalidity, uidnext, highestmodseq, exists_count, subscribed FROM mailboxes
                WHERE user_id = ? ORDER BY id
                """, arguments: [user]).map {
                MailboxInfo(name: $0[0], specialUse: $0[1], uidValidity: UInt32(truncatingIfNeeded: $0[2] as Int64),
                            uidNext: UInt32(truncatingIfNeeded: $0[3] as Int64), highestModSeq: UInt64($0[4] as Int64),
                            messages: UInt32(truncatingIfNeeded: $0[5] as Int64), subscribed: $0[6])
            }
        }
    }

    // MARK: administration

    static func validDomain(_ d: String) -> Bool {
        let labels = d.split(separator: ".", omittingEmptySubsequences: false)
        return d.count <= 253 && labels.count >= 1 && labels.allSatisfy { l in
            !l.isEmpty && l.count <= 63 && !l.hasPrefix("-") && !l.hasSuffix("-") &&
                l.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" }
        }
    }
    static func validLocal(_ l: String) -> Bool {
        !l.isEmpty && l.utf8.count <= 64 && !l.contains(where: { $0 == "@" || $0 == " " || $0.isNewline || $0 == "\0" || $0 == "\"" })
    }

    public func addDomain(_ name: String) throws {
        let d = name.lowercased()
        guard Self.validDomain(d) else { throw StoreError(.invalid, "invalid domain name: \(name)") }
        try pool.write { db in
            if try Int64.fetchOne(db, sql: "SELECT id FROM domains WHERE name = ?", arguments: [d]) != nil {
                throw StoreError(.exists, "domain \(d) already exists")
            }
            try db.execute(sql: "INSERT INTO domains (name, created) VALUES (?, ?)", arguments: [d, Int64(Date().timeIntervalSince1970)])
        }
    }

    public func removeDomain(_ name: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM domains WHERE name = ?", arguments: [name.lowercased()])
            if db.changesCount == 0 { throw StoreError(.notFound, "no such domain: \(name)") }
        }
    }

    public func domains() throws -> [String] {
        try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM domains ORDER BY name") }
    }

    func domainID(_ db: Database, _ domain: String) throws -> Int64 {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM domains WHERE name = ?", arguments: [domain]) else {
            throw StoreError(.notFound, "no such domain: \(domain)")
        }
        return id
    }

    public func addUser(_ address: String, password: String) throws {
        guard let (local, domain) = Self.split(address), Self.validLocal(local) else { throw StoreError(.invalid, "invalid address: \(address)") }
        guard !password.isEmpty else { throw StoreError(.invalid, "empty password") }
        let hash = password.hasPrefix("{CRYPT}") ? String(password.dropFirst(7)) : try PasswordHash.make(password)
        try pool.write { db in
            let did = try domainID(db, domain)
            if try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE domain_id = ? AND local_key = ?", arguments: [did, Self.fold(local)]) != nil {
                throw StoreError(.exists, "user \(local)@\(domain) already exists")
            }
            let now = Int64(Date().timeIntervalSince1970)
            try db.execute(sql: "INSERT INTO users (domain_id, local, local_key, password, created) VALUES (?, ?, ?, ?, ?)",
                           arguments: [did, local, Self.fold(local), hash, now])
            let uid = db.lastInsertedRowID
            for (i, (name, use)) in Self.defaultMailboxes.enumerated() {
                // UIDVALIDITY (RFC 9051 §2.3.1.1): must change if UIDs are ever reused; creation time + index.
                try db.execute(sql: "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)",
                               arguments: [uid, name, use, (now & 0x7fff_ffff) &+ Int64(i)])
            }
        }
    }

    public func removeUser(_ address: String) throws {
        guard let (local, domain) = Self.split(address) else { throw StoreError(.invalid, "invalid address: \(address)") }
        try pool.write { db in
            let did = try domainID(db, domain)
            try db.execute(sql: "DELETE FROM users WHERE domain_id = ? AND local_key = ?", arguments: [did, Self.fold(local)])
            if db.changesCount == 0 { throw StoreError(.notFound, "no such user: \(local)@\(domain)") }
        }
    }

    public func setPassword(_ address: String, password: String) throws {
        guard let (local, domain) = Self.split(address) else { throw StoreError(.invalid, "invalid address: \(address)") }
        guard !password.isEmpty else { throw StoreError(.invalid, "empty password") }
        let hash = password.hasPrefix("{CRYPT}") ? String(password.dropFirst(7)) : try PasswordHash.make(password)
        try pool.write { db in
            let did = try domainID(db, domain)
            try db.execute(sql: "UPDATE users SET password = ? WHERE domain_id = ? AND local_key = ?", arguments: [hash, did, Self.fold(local)])
            if db.changesCount == 0 { throw StoreError(.notFound, "no such user: \(local)@\(domain)") }
        }
    }

    public func users(domain: String) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT u.local || '@' || d.name FROM users u JOIN domains d ON d.id = u.domain_id
                WHERE ? = '' OR d.name = ? ORDER BY d.name, u.local
                """, arguments: [domain.lowercased(), domain.lowercased()])
        }
    }

    /// `source` is "local@domain" or "@domain" for the catch-all.
    func aliasSource(_ source: String) throws -> (String, String) {
        if source.hasPrefix("@") {
            let d = String(source.dropFirst()).lowercased()
            guard Self.validDomain(d) else { throw StoreError(.invalid, "invalid alias source: \(source)") }
            return ("", d)
        }
        guard let (l, d) = Self.split(source), Self.validLocal(l) else { throw StoreError(.invalid, "invalid alias source: \(source)") }
        return (l, d)
    }

    public func addAlias(_ source: String, target: String) throws {
        let (local, domain) = try aliasSource(source)
        guard let (tl, td) = Self.split(target), Self.validLocal(tl) else { throw StoreError(.invalid, "invalid alias target: \(target)") }
        try pool.write { db in
            let did = try domainID(db, domain)
            try db.execute(sql: "INSERT OR IGNORE INTO aliases (domain_id, local, local_key, target) VALUES (?, ?, ?, ?)",
                           arguments: [did, local, Self.fold(local), "\(tl)@\(td)"])
            if db.changesCount == 0 { throw StoreError(.exists, "alias \(source) -> \(target) already exists") }
        }
    }

    public func removeAlias(_ source: String, target: String) throws {
        let (local, domain) = try aliasSource(source)
        try pool.write { db in
            let did = try domainID(db, domain)
            if target.isEmpty {
                try db.execute(sql: "DELETE FROM aliases WHERE domain_id = ? AND local_key = ?", arguments: [did, Self.fold(local)])
            } else {
                try db.execute(sql: "DELETE FROM aliases WHERE domain_id = ? AND local_key = ? AND target = ?", arguments: [did, Self.fold(local), target.lowercased()])
            }
            if db.changesCount == 0 { throw StoreError(.notFound, "no such alias: \(source)") }
        }
    }

    public func aliases(domain: String) throws -> [[String]] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT a.local, d.name, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id
                WHERE ? = '' OR d.name = ? ORDER BY d.name, a.local, a.target
                """, arguments: [domain.lowercased(), domain.lowercased()]).map {
                let l: String = $0[0], d: String = $0[1]
                return [l.isEmpty ? "@\(d)" : "\(l)@\(d)", $0[2]]
            }
        }
    }

    public func queue() throws -> [String] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, sender, recipient, created, attempts, last_error FROM queue ORDER BY id").map {
                let id: Int64 = $0[0], s: String = $0[1], r: String = $0[2], c: Int64 = $0[3], a: Int64 = $0[4], e: String = $0[5]
                return "\(id)\t<\(s)>\t<\(r)>\t\(c)\t\(a)\t\(e)"
            }
        }
    }

    public func export(user: Int64, mailbox: String?, each: (ExportedMessage, [UInt8]) throws -> Void) throws {
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT mb.name, mm.uid, mm.internal_date, mm.sender, m.size, m.hash, m.body FROM mailbox_messages mm
                JOIN mailboxes mb ON mb.id = mm.mailbox_id JOIN messages m ON m.id = mm.message_id
                WHERE mb.user_id = ? AND (? IS NULL OR mb.name = ?) ORDER BY mb.id, mm.uid
                """, arguments: [user, mailbox, mailbox])
        }
        if let mailbox, rows.isEmpty {
            let exists = try pool.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM mailboxes WHERE user_id = ? AND name = ?", arguments: [user, mailbox]) }
            if exists == nil { throw StoreError(.notFound, "no such mailbox: \(mailbox)") }
        }
        for r in rows {
            let hash: Data = r[5], inline: Data? = r[6]
            let body = try inline.map { [UInt8]($0) } ?? blobs.read([UInt8](hash))
            try each(ExportedMessage(mailbox: r[0], uid: UInt32(r[1] as Int64), internalDate: r[2], sender: r[3], size: UInt64(r[4] as Int64)), body)
        }
    }
}
