// The embedded store: SQLite in WAL mode through GRDB, bodies in a BlobStore, and a
// group-commit writer so concurrent deliveries share one blob sync and one WAL fsync.
// Guarantees: a delivery's completion reports success only after both are durable.
// Split by concern: +Accounts, +Delivery, +Mailboxes, +Queue (the protocols of MailStore.swift).
import Foundation
import GRDB

public final class SQLiteMailStore: MailStore, @unchecked Sendable {
    public let pool: DatabasePool
    public let blobs: BlobStore
    private(set) var committer: GroupCommitter!
    /// SELECT's views of large mailboxes (SQLiteMailStore+IMAP.swift).
    let viewCache = ViewCache()
    /// Top-level headers FETCH lately read (SQLiteMailStore+IMAP.swift).
    let headerCache = HeaderCache()
    /// SORT's per-message values lately computed (SQLiteMailStore+Sort.swift).
    let sortValueCache = SortValueCache()
    /// SRS for forwarded mail and returning bounces (SQLiteMailStore+SRS.swift).
    let srsHolder = SRSHolder()
    /// Passwords verified recently (CredentialsCache.swift; `[auth] cache_ttl`).
    let credentials: CredentialsCache
    /// Wall-clock time for dates the store records (injected in tests).
    public let clock: @Sendable () -> Date
    public static let defaultMailboxes: [(String, String)] = [
        ("INBOX", ""), ("Drafts", "\\Drafts"), ("Sent", "\\Sent"), ("Junk", "\\Junk"), ("Trash", "\\Trash"), ("Archive", "\\Archive"),
    ]
    public static let inbox = "INBOX"
    public static let subaddressSeparator: Character = "+"
    static let maxAliasDepth = 8

    /// Bodies up to this size are stored in their `messages` row (durable with the WAL fsync);
    /// larger ones are blob files. 0: every body is a file.
    public let inlineMax: Int
    /// Whether new bodies are indexed for SEARCH and SEARCH uses the index (`[store] search_index`).
    public let searchIndex: Bool

    public init(dataDir: String, fsync: Bool = true, groupCommitMax: Int = 512, inlineMax: Int = 64 * 1024,
                authCacheTTL: TimeInterval = CredentialsCache.defaultTTL, searchIndex: Bool = true,
                clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.inlineMax = inlineMax
        self.searchIndex = searchIndex
        credentials = CredentialsCache(ttl: authCacheTTL)
        self.clock = clock
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // RFC-less but essential: the durability contract needs a full fsync at each commit.
            try db.execute(sql: "PRAGMA synchronous = \(fsync ? "FULL" : "OFF")")
            // Readers map the database instead of copying each page in with pread: a FETCH or
            // SEARCH over a large mailbox touches one `messages` page per message.
            try db.execute(sql: "PRAGMA mmap_size = \(Self.mmapSize)")
        }
        let dbPath = dataDir + "/postern.db"
        pool = try DatabasePool(path: dbPath, configuration: config)
        chmod(dbPath, 0o600)
        try Schema.migrator().migrate(pool)
        blobs = try FileBlobStore(dataDir: dataDir, fsync: fsync)
        committer = nil
        committer = GroupCommitter(store: self, maxBatch: groupCommitMax)
    }

    /// Bytes of the database file each connection maps (SQLite's mmap_size; address space only).
    static let mmapSize = 1 << 30

    var now: Int64 { Int64(clock().timeIntervalSince1970) }

    // MARK: addresses

    /// The matching key of a local part: full Unicode case folding, as Postfix applies to
    /// addresses before it asks lookup tables (smtputf8_enable), so "Grüße" matches "grüsse".
    public static func fold(_ s: String) -> String { s.folding(options: [.caseInsensitive], locale: nil) }

    /// Splits "Local@Domain" into lowercase (local, domain); nil when it is not an address —
    /// also when it holds a NUL, which SQLite's C strings would cut to a shorter key.
    public static func split(_ address: String) -> (local: String, domain: String)? {
        guard let at = address.lastIndex(of: "@"), !address.utf8.contains(0) else { return nil }
        let local = address[..<at].lowercased(), domain = address[address.index(after: at)...].lowercased()
        guard !local.isEmpty, !domain.isEmpty else { return nil }
        return (local, domain)
    }

    /// The local part without its "+detail".
    static func base(_ local: String) -> String {
        local.split(separator: subaddressSeparator, maxSplits: 1).first.map(String.init) ?? local
    }

    static func domainID(_ db: Database, _ domain: String) throws -> Int64? {
        guard !domain.utf8.contains(0) else { return nil }   // never a shorter name that matches
        return try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM domains WHERE name = ?"), arguments: [domain])
    }

    func domainID(_ db: Database, _ domain: String) throws -> Int64 {
        guard let id = try Self.domainID(db, domain) else { throw StoreError(.notFound, "no such domain: \(domain)") }
        return id
    }

    // MARK: start-up

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
}
