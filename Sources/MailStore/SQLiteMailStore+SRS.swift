// SRS in the store (as postsrsd does beside Postfix): the queue rows of forwarded mail carry the
// SRS0 rewrite of the sender, and a bounce to a verified SRS address resolves to the original
// sender. The secret is <data dir>/srs.key (32 random bytes, 0600), made once, read at start.
import Foundation
import COpenSSL
import MailSyntax

/// The store's SRS settings: set at start (`SQLiteMailStore.configureSRS`) before it serves.
final class SRSHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var value: SRS?
    var srs: SRS? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

public enum SRSKey {
    /// The key file in the data dir.
    public static let fileName = "srs.key"
    /// Bytes of secret (HMAC-SHA1 keys longer than its 64-byte block gain nothing).
    public static let length = 32

    /// The key at `path`, made first (random, mode 0600, synced) when there is none (`created`).
    /// A file of another size is refused: a truncated key would silently invalidate every SRS
    /// address. A key readable by others (a careless restore) is made 0600 again.
    public static func loadOrCreate(path: String) throws -> (key: [UInt8], created: Bool) {
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.count == length else { throw StoreError(.invalid, "\(path): \(existing.count) bytes, not \(length)") }
            var st = stat()
            if stat(path, &st) == 0, st.st_mode & 0o077 != 0 { chmod(path, 0o600) }
            return ([UInt8](existing), false)
        }
        // SystemRandomNumberGenerator is getrandom(2) on Linux: the kernel's CSPRNG.
        var rng = SystemRandomNumberGenerator()
        let key = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.invalid, "cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        let written = key.withUnsafeBytes { write(fd, $0.baseAddress, length) }
        guard written == length, fsync(fd) == 0 else {
            unlink(path)
            throw StoreError(.temporary, "cannot write \(path): errno \(errno)")
        }
        return (key, true)
    }
}

extension SRS {
    /// postsrsd's maximum age of an SRS0 address: 21 days.
    public static let storeMaxAgeDays = 21

    /// HMAC-SHA1 through OpenSSL 3's EVP_Q_mac.
    public static let openSSLHMAC: HMAC = { key, message in
        var out = [UInt8](repeating: 0, count: 64)
        var length = 0
        let ok = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                EVP_Q_mac(nil, "HMAC", nil, "SHA1", nil, k.baseAddress, key.count, m.baseAddress?.assumingMemoryBound(to: UInt8.self),
                          message.count, &out, out.count, &length) != nil
            }
        }
        precondition(ok && length == 20, "EVP_Q_mac failed")
        return Array(out.prefix(length))
    }

    /// The store's SRS: `key` signs, addresses are in `domain`, 21 days of validity.
    public static func store(key: [UInt8], domain: String) -> SRS {
        SRS(secretKeys: [key], domain: domain, hmac: openSSLHMAC, maxAgeDays: storeMaxAgeDays)
    }
}

extension SQLiteMailStore {
    /// Turns SRS on (nil: off; senders of forwarded mail are kept and SRS addresses are unknown).
    public func configureSRS(_ srs: SRS?) { srsHolder.srs = srs }

    public var srs: SRS? { srsHolder.srs }

    /// `address` split at its last "@", the local part's case kept (SRS hashes ignore case,
    /// but the original sender's local part is given back as it was).
    static func srsAddress(_ address: String) -> SRS.Address? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let local = String(address[..<at]), domain = String(address[address.index(after: at)...])
        guard !local.isEmpty, !domain.isEmpty else { return nil }
        return SRS.Address(localPart: local, domain: domain)
    }

    /// The sender for the queue rows of a forward: the SRS rewrite of `sender`; the null sender
    /// stays null, and without SRS the sender is kept.
    func forwardSender(_ sender: String, at seconds: Int64) -> String {
        guard let srs = srsHolder.srs, !sender.isEmpty, let a = Self.srsAddress(sender) else { return sender }
        let f = srs.forward(a, at: seconds)
        return "\(f.localPart)@\(f.domain)"
    }

    /// For an address in the SRS domain with an SRS0/SRS1 local part: the original address when
    /// hash and age verify, or `.failure` (unknown user) when they do not; nil for any other address.
    func srsReverse(_ address: String, at seconds: Int64) -> Result<String, SRS.Error>? {
        guard let srs = srsHolder.srs, let a = Self.srsAddress(address), a.domain.lowercased() == srs.domain.lowercased(),
              SRS.isSRS(a.localPart) else { return nil }
        do {
            let original = try srs.reverse(a, at: seconds)
            return .success("\(original.localPart)@\(original.domain)")
        } catch {
            return .failure(error)
        }
    }
}
