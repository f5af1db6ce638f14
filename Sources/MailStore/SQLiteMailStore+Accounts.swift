// AccountStore on SQLite: recipient resolution, authentication, domains, users, aliases, and
// the primitives a Postfix front end's maps are built on (StoreServer's PostfixMaps).
import Foundation
import GRDB

extension SQLiteMailStore {
    public func resolve(_ address: String) throws -> Resolution {
        try pool.read { db in try resolve(db, address) }
    }

    /// `Self.resolve` after the SRS reverse (postsrsd's reverse map): a bounce to one of our
    /// SRS addresses goes to the original sender — resolved again, so a local one is delivered
    /// locally, a remote one queued — and an SRS address that does not verify (forged hash,
    /// older than the SRS maximum age) is an unknown user (550 5.1.1).
    func resolve(_ db: Database, _ address: String) throws -> Resolution {
        switch srsReverse(address, at: now) {
        case nil: return try Self.resolve(db, address)
        case .failure?: return .unknownUser
        case .success(let original)?:
            let r = try Self.resolve(db, original)
            return r == .notLocal ? .deliver(users: [], remote: [original]) : r
        }
    }

    /// Recipient resolution, in order: user, alias, user of the base before "+detail",
    /// alias of the base, catch-all. Aliases expand recursively (depth-limited, loop-safe).
    /// Static over a `Database` so one transaction can reuse it.
    static func resolve(_ db: Database, _ address: String) throws -> Resolution {
        var users: [UserRef] = [], remote: [String] = [], seen = Set<String>()
        func expand(_ addr: String, depth: Int) throws -> Resolution? {
            guard let (local, domain) = split(addr) else { return .unknownUser }
            guard let domainID = try domainID(db, domain) else { return depth == 0 ? .notLocal : nil }
            if seen.contains("\(local)@\(domain)") { return nil }
            seen.insert("\(local)@\(domain)")
            let base = base(local)
            for candidate in base == local ? [local] : [local, base] {
                if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, local FROM users WHERE domain_id = ? AND local_key = ?"),
                                              arguments: [domainID, fold(candidate)]) {
                    let id: Int64 = row[0], stored: String = row[1]
                    let a = "\(stored)@\(domain)"
                    if !users.contains(where: { $0.id == id }) { users.append(UserRef(id: id, address: a)) }
                    return nil
                }
                let targets = try String.fetchAll(db.cachedStatement(sql: "SELECT target FROM aliases WHERE domain_id = ? AND local_key = ?"),
                                                  arguments: [domainID, fold(candidate)])
                if !targets.isEmpty { try follow(targets, depth); return nil }
            }
            let catchAll = try String.fetchAll(db.cachedStatement(sql: "SELECT target FROM aliases WHERE domain_id = ? AND local = ''"), arguments: [domainID])
            if !catchAll.isEmpty { try follow(catchAll, depth); return nil }
            return depth == 0 ? .unknownUser : nil
        }
        func follow(_ targets: [String], _ depth: Int) throws {
            for t in targets {
                guard depth < maxAliasDepth else { continue }
                if let (_, d) = split(t), try domainID(db, d) != nil {
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

    // MARK: primitives for lookup maps

    public func hasDomain(_ name: String) throws -> Bool {
        try pool.read { db in try Self.domainID(db, name.lowercased()) != nil }
    }

    public func hasCatchAll(domain: String) throws -> Bool {
        try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT a.id FROM aliases a JOIN domains d ON d.id = a.domain_id WHERE d.name = ? AND a.local = ''",
                               arguments: [domain.lowercased()]) != nil
        }
    }

    public func aliasTargets(_ source: String) throws -> [String] {
        let (local, domain): (String, String)
        if source.hasPrefix("@") { (local, domain) = ("", String(source.dropFirst()).lowercased()) }
        else if let s = Self.split(source) { (local, domain) = s } else { return [] }
        return try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT a.target FROM aliases a JOIN domains d ON d.id = a.domain_id WHERE d.name = ? AND a.local_key = ? ORDER BY a.id
                """, arguments: [domain, Self.fold(local)])
        }
    }

    public func senderLogins(_ address: String) throws -> [String] {
        try pool.read { db in try Self.senderLogins(db, address) }
    }

    /// The logins that may send as `address`: its user, or the users its alias reaches.
    static func senderLogins(_ db: Database, _ address: String) throws -> [String] {
        guard let (local, domain) = split(address) else { return [] }
        let base = base(local)
        guard let did = try domainID(db, domain) else { return [] }
        if let stored = try String.fetchOne(db.cachedStatement(sql: "SELECT local FROM users WHERE domain_id = ? AND local_key = ?"),
                                            arguments: [did, fold(base)]) {
            return ["\(stored)@\(domain)"]
        }
        let targets = try String.fetchAll(db.cachedStatement(sql: "SELECT target FROM aliases WHERE domain_id = ? AND local_key = ? ORDER BY id"),
                                          arguments: [did, fold(base)])
        var logins: [String] = []
        for t in targets {
            if case .deliver(let users, _) = try resolve(db, t) {
                for u in users where !logins.contains(u.address) { logins.append(u.address) }
            }
        }
        return logins
    }

    // MARK: users and sessions

    public func authenticate(_ address: String, password: String) throws -> UserRef? {
        guard let (local, domain) = Self.split(address) else { _ = PasswordHash.verify(password, against: PasswordHash.dummy); return nil }
        let login = Self.login(local, domain), now = clock()
        if let user = credentials.user(login, password: password, now: now) { return user }
        let generation = credentials.currentGeneration
        let row = try pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT u.id, u.password, u.local FROM users u JOIN domains d ON d.id = u.domain_id WHERE d.name = ? AND u.local_key = ?
                """, arguments: [domain, Self.fold(local)])
        }
        guard let row else { _ = PasswordHash.verify(password, against: PasswordHash.dummy); return nil }
        let hash: String = row[1]
        let stored: String = row[2]
        guard PasswordHash.verify(password, against: hash) else { return nil }
        let user = UserRef(id: row[0], address: "\(stored)@\(domain)")
        credentials.keep(login, password: password, user: user, generation: generation, now: now)
        return user
    }

    /// The credentials cache's key of a user: the folded address, as the users table matches it.
    static func login(_ local: String, _ domain: String) -> String { "\(fold(local))@\(domain)" }

    public func user(named address: String) throws -> UserRef? {
        guard let (local, domain) = Self.split(address) else { return nil }
        return try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT u.id, u.local FROM users u JOIN domains d ON d.id = u.domain_id WHERE d.name = ? AND u.local_key = ?",
                             arguments: [domain, Self.fold(local)]).map { UserRef(id: $0[0], address: "\($0[1] as String)@\(domain)") }
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
            if try Self.domainID(db, d) != nil { throw StoreError(.exists, "domain \(d) already exists") }
            try db.execute(sql: "INSERT INTO domains (name, created) VALUES (?, ?)", arguments: [d, now])
        }
    }

    public func removeDomain(_ name: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM domains WHERE name = ?", arguments: [name.lowercased()])
            if db.changesCount == 0 { throw StoreError(.notFound, "no such domain: \(name)") }
        }
        credentials.forgetAll()
    }

    public func domains() throws -> [String] {
        try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM domains ORDER BY name") }
    }

    /// A password, or a crypt(3) hash given as "{CRYPT}$y$..." (imported from Dovecot or /etc/shadow).
    static func passwordHash(_ password: String) throws -> String {
        guard !password.isEmpty else { throw StoreError(.invalid, "empty password") }
        let prefix = "{CRYPT}"
        return password.hasPrefix(prefix) ? String(password.dropFirst(prefix.count)) : try PasswordHash.make(password)
    }

    public func addUser(_ address: String, password: String) throws {
        guard let (local, domain) = Self.split(address), Self.validLocal(local) else { throw StoreError(.invalid, "invalid address: \(address)") }
        let hash = try Self.passwordHash(password)
        let now = self.now
        try pool.write { db in
            let did = try domainID(db, domain)
            if try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE domain_id = ? AND local_key = ?", arguments: [did, Self.fold(local)]) != nil {
                throw StoreError(.exists, "user \(local)@\(domain) already exists")
            }
            try db.execute(sql: "INSERT INTO users (domain_id, local, local_key, password, created) VALUES (?, ?, ?, ?, ?)",
                           arguments: [did, local, Self.fold(local), hash, now])
            let uid = db.lastInsertedRowID
            for (i, (name, use)) in Self.defaultMailboxes.enumerated() {
                // UIDVALIDITY (RFC 9051 §2.3.1.1): must change if UIDs are ever reused; creation time + index.
                try db.execute(sql: "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)",
                               arguments: [uid, name, use, (now & 0x7fff_ffff) &+ Int64(i)])
                // The default mailboxes start subscribed (subscriptions are names, RFC 9051 §6.3.7).
                try db.execute(sql: "INSERT INTO subscriptions (user_id, name) VALUES (?, ?)", arguments: [uid, name])
            }
            try db.execute(sql: "UPDATE users SET last_uidvalidity = (SELECT max(uidvalidity) FROM mailboxes WHERE user_id = ?) WHERE id = ?",
                           arguments: [uid, uid])
        }
    }

    public func removeUser(_ address: String) throws {
        guard let (local, domain) = Self.split(address) else { throw StoreError(.invalid, "invalid address: \(address)") }
        try pool.write { db in
            let did = try domainID(db, domain)
            try db.execute(sql: "DELETE FROM users WHERE domain_id = ? AND local_key = ?", arguments: [did, Self.fold(local)])
            if db.changesCount == 0 { throw StoreError(.notFound, "no such user: \(local)@\(domain)") }
        }
        credentials.forget(Self.login(local, domain))
    }

    public func setPassword(_ address: String, password: String) throws {
        guard let (local, domain) = Self.split(address) else { throw StoreError(.invalid, "invalid address: \(address)") }
        let hash = try Self.passwordHash(password)
        try pool.write { db in
            let did = try domainID(db, domain)
            try db.execute(sql: "UPDATE users SET password = ? WHERE domain_id = ? AND local_key = ?", arguments: [hash, did, Self.fold(local)])
            if db.changesCount == 0 { throw StoreError(.notFound, "no such user: \(local)@\(domain)") }
        }
        credentials.forget(Self.login(local, domain))
    }

    public func setSpamToJunk(_ address: String, _ on: Bool) throws {
        guard let (local, domain) = Self.split(address) else { throw StoreError(.invalid, "invalid address: \(address)") }
        try pool.write { db in
            let did = try domainID(db, domain)
            try db.execute(sql: "UPDATE users SET spam_to_junk = ? WHERE domain_id = ? AND local_key = ?", arguments: [on ? 1 : 0, did, Self.fold(local)])
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

    public func aliases(domain: String) throws -> [AliasRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT a.local, d.name, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id
                WHERE ? = '' OR d.name = ? ORDER BY d.name, a.local, a.target
                """, arguments: [domain.lowercased(), domain.lowercased()]).map {
                let l: String = $0[0], d: String = $0[1]
                return AliasRecord(source: l.isEmpty ? "@\(d)" : "\(l)@\(d)", target: $0[2])
            }
        }
    }
}
