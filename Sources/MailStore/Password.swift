// Password hashing with crypt(3) from libxcrypt: yescrypt ($y$) for new hashes; any scheme
// libxcrypt verifies ($6$ SHA512-CRYPT, $2b$ bcrypt, ...) is accepted, so users can be
// imported from Dovecot or /etc/shadow (DESIGN §5).
import Foundation
import CCrypt

public enum PasswordHash {
    public struct HashError: Error, CustomStringConvertible {
        public var description: String
    }

    /// New hash with a random salt. `prefix` "$y$" (default), "$6$" or "$2b$".
    public static func make(_ password: String, prefix: String = "$y$") throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn(prefix, 0, nil, 0, &setting, Int32(setting.count)) != nil else {
            throw HashError(description: "crypt_gensalt(\(prefix)) failed: errno \(errno)")
        }
        guard let h = compute(password, setting: setting), !h.hasPrefix("*") else {
            throw HashError(description: "crypt failed for \(prefix)")
        }
        return h
    }

    /// Constant-time check of `password` against a stored crypt(3) string.
    public static func verify(_ password: String, against stored: String) -> Bool {
        guard stored.hasPrefix("$"), let h = compute(password, setting: Array(stored.utf8CString)) else { return false }
        let a = Array(h.utf8), b = Array(stored.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// A valid hash to verify against when the user does not exist, so timing does not tell.
    public static let dummy: String = (try? make("postern-dummy-password")) ?? "$6$x$"

    private static func compute(_ password: String, setting: [CChar]) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let out = crypt_rn(password, setting, data, Int32(MemoryLayout<crypt_data>.size)) else { return nil }
        let s = String(cString: out)
        memset(data, 0, MemoryLayout<crypt_data>.size)   // don't leave the phrase in memory
        return s.hasPrefix("*") ? nil : s
    }
}
