// Verified credentials, remembered for `ttl` seconds (Dovecot's auth_cache): a login that repeats
// a password the store verified recently skips the crypt(3) hash (yescrypt: tens of ms). Holds
// only HMAC-SHA256(per-process random key, password), never a password; only successes are kept.
import Foundation
import COpenSSL

public final class CredentialsCache: @unchecked Sendable {
    /// `[auth] cache_ttl`'s default, seconds.
    public static let defaultTTL: TimeInterval = 300
    /// Entries at most; past it, expired entries are dropped, then the whole cache if still full.
    public static let maxEntries = 100_000
    static let keyBytes = 32, macBytes = 32

    /// 0 (or less): nothing is cached.
    public let ttl: TimeInterval
    private let key: [UInt8]
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    /// Bumped by every invalidation: a verification that began before one is not kept (the
    /// password it checked may have changed while crypt ran).
    private var generation: UInt64 = 0

    struct Entry {
        var mac: [UInt8], user: UserRef, expires: Date
    }

    public init(ttl: TimeInterval) {
        self.ttl = ttl
        var rng = SystemRandomNumberGenerator()
        key = (0..<Self.keyBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    public var isEnabled: Bool { ttl > 0 }

    /// The generation to hand back to `keep` after verifying.
    public var currentGeneration: UInt64 { lock.withLock { generation } }

    /// The user `login` (the lookup key: the folded address) verified with `password` within the TTL.
    public func user(_ login: String, password: String, now: Date) -> UserRef? {
        guard isEnabled else { return nil }
        let mac = self.mac(password)
        return lock.withLock {
            guard let e = entries[login] else { return nil }
            guard e.expires > now else { entries[login] = nil; return nil }
            return Self.equal(e.mac, mac) ? e.user : nil
        }
    }

    /// Remembers a successful verification that started at `generation`.
    public func keep(_ login: String, password: String, user: UserRef, generation started: UInt64, now: Date) {
        guard isEnabled else { return }
        let entry = Entry(mac: mac(password), user: user, expires: now.addingTimeInterval(ttl))
        lock.withLock {
            guard generation == started else { return }
            if entries.count >= Self.maxEntries && entries[login] == nil {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= Self.maxEntries { entries.removeAll() }
            }
            entries[login] = entry
        }
    }

    /// Forgets `login` (password changed, user removed).
    public func forget(_ login: String) {
        lock.withLock { generation &+= 1; entries[login] = nil }
    }

    /// Forgets everyone (a domain removed).
    public func forgetAll() {
        lock.withLock { generation &+= 1; entries.removeAll() }
    }

    var count: Int { lock.withLock { entries.count } }

    private func mac(_ password: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.macBytes)
        var len: UInt32 = 0
        let pw = Array(password.utf8) + [0]   // never an empty buffer (a nil pointer)
        key.withUnsafeBytes { k in
            pw.withUnsafeBufferPointer { p in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), p.baseAddress, p.count - 1, &out, &len)
            }
        }
        return out
    }

    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
