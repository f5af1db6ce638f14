// Sender Rewriting Scheme as postsrsd (libsrs2) does it, byte for byte: a forwarded sender becomes
// SRS0=HHHH=TT=domain=local@our-domain (SRS1=… for an SRS address), so SPF passes and bounces return.
// HMAC-SHA1 is injected and the caller passes the time: the store and OutboundProtocol share it.

public struct SRS: Sendable {
    /// HMAC-SHA1(key, message), 20 bytes.
    public typealias HMAC = @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]

    public enum Error: Swift.Error, Sendable, Equatable {
        /// The local part does not start with SRS0/SRS1 and a separator.
        case notSRS
        /// A part is missing (hash, timestamp, host or user).
        case malformed
        /// The hash matches none of the secrets.
        case badHash
        /// A timestamp character outside base32.
        case badTimestamp
        /// Older than `maxAgeDays`.
        case expired
    }

    /// An address as SRS sees it: the local part (never quoted here) and the domain.
    public struct Address: Sendable, Equatable {
        public var localPart: String, domain: String
        public init(localPart: String, domain: String) { self.localPart = localPart; self.domain = domain }
    }

    static let srs0 = "SRS0"
    static let srs1 = "SRS1"
    /// SRSSEP in libsrs2: the separator between the fields after the hash.
    static let fieldSeparator: Character = "="
    /// libsrs2's accepted separators after the tag.
    static let tagSeparators: Set<Character> = ["=", "-", "+"]
    /// Timestamps count days (SRS_TIME_PRECISION) in 2 base32 characters: 1024 slots.
    static let timeAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    static let timeSlots = 1024
    static let secondsPerDay: Int64 = 86_400

    /// libsrs2's defaults: 4 hash characters, 31 days of validity (postsrsd uses 21).
    public static let defaultHashLength = 4
    public static let defaultMaxAgeDays = 31

    /// The first secret signs; all of them verify (key rotation, as postsrsd's secrets file).
    public var secrets: [[UInt8]]
    /// The domain rewritten addresses are in (postsrsd's SRS_DOMAIN).
    public var domain: String
    public var hashLength: Int
    public var maxAgeDays: Int
    /// The character after SRS0/SRS1 in addresses we make ("=" as postsrsd's default).
    public var separator: Character
    /// Rewrite even senders already in `domain` (libsrs2 alwaysrewrite; off by default).
    public var alwaysRewrite: Bool
    let hmac: HMAC

    public init(secretKeys: [[UInt8]], domain: String, hmac: @escaping HMAC, hashLength: Int = defaultHashLength,
                maxAgeDays: Int = defaultMaxAgeDays, separator: Character = "=", alwaysRewrite: Bool = false) {
        precondition(!secretKeys.isEmpty, "SRS needs a secret")
        self.secrets = secretKeys
        self.domain = domain
        self.hmac = hmac
        self.hashLength = hashLength
        self.maxAgeDays = maxAgeDays
        self.separator = separator
        self.alwaysRewrite = alwaysRewrite
    }

    /// Whether `localPart` is an SRS0 or SRS1 address of any forwarder.
    public static func isSRS(_ localPart: String) -> Bool {
        let chars = Array(localPart.prefix(5))
        guard chars.count == 5, tagSeparators.contains(chars[4]) else { return false }
        let tag = String(chars[0..<4]).uppercased()
        return tag == srs0 || tag == srs1
    }

    /// The envelope sender to use when forwarding mail from `sender` (libsrs2 srs_forward):
    /// unchanged when it is already in our domain; SRS1 when it is an SRS0/SRS1 address of
    /// another forwarder; else SRS0 with today's timestamp. A quoted local part is left as it
    /// is (it cannot be embedded in a dot-string).
    public func forward(_ sender: Address, at seconds: Int64) -> Address {
        if !alwaysRewrite, sender.domain.lowercased() == domain.lowercased() { return sender }
        if sender.localPart.hasPrefix("\"") { return sender }
        let user = sender.localPart
        let tag = String(user.prefix(4)).uppercased()
        let tagged = Self.isSRS(user)
        let local: String
        if tagged, tag == Self.srs1 {
            // SRS1<sep>hash=host=user: keep host and user, sign them again.
            let fields = user.dropFirst(5).split(separator: Self.fieldSeparator, maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, !fields[1].isEmpty else { return sender }
            let host = String(fields[1]), rest = String(fields[2])
            local = "\(Self.srs1)\(separator)\(hash([host, rest], secret: secrets[0]))=\(host)=\(rest)"
        } else if tagged, tag == Self.srs0 {
            // SRS0 from another forwarder: SRS1<sep>hash=their-domain=<sep>rest.
            let rest = String(user.dropFirst(4))
            local = "\(Self.srs1)\(separator)\(hash([sender.domain, rest], secret: secrets[0]))=\(sender.domain)=\(rest)"
        } else {
            let stamp = Self.timestamp(at: seconds)
            local = "\(Self.srs0)\(separator)\(hash([stamp, sender.domain, user], secret: secrets[0]))=\(stamp)=\(sender.domain)=\(user)"
        }
        return Address(localPart: local, domain: domain)
    }

    /// The address a bounce to `address` goes on to (libsrs2 srs_reverse): for SRS0 the original
    /// sender, after checking hash and age; for SRS1 the previous forwarder's SRS0 address.
    public func reverse(_ address: Address, at seconds: Int64) throws(Error) -> Address {
        let user = address.localPart
        guard Self.isSRS(user) else { throw .notSRS }
        let isSRS1 = user.prefix(4).uppercased() == Self.srs1
        let fields = user.dropFirst(5).split(separator: Self.fieldSeparator, maxSplits: isSRS1 ? 2 : 3,
                                             omittingEmptySubsequences: false).map(String.init)
        if isSRS1 {
            guard fields.count == 3, !fields[0].isEmpty, !fields[1].isEmpty else { throw .malformed }
            try checkHash(fields[0], [fields[1], fields[2]])
            return Address(localPart: "\(Self.srs0)\(fields[2])", domain: fields[1])
        }
        guard fields.count == 4, !fields[0].isEmpty, !fields[2].isEmpty, !fields[3].isEmpty else { throw .malformed }
        try checkTimestamp(fields[1], at: seconds)
        try checkHash(fields[0], [fields[1], fields[2], fields[3]])
        return Address(localPart: fields[3], domain: fields[2])
    }

    /// Days since the epoch, rounded down (also before 1970).
    static func day(_ seconds: Int64) -> Int {
        Int(seconds >= 0 ? seconds / secondsPerDay : -((-seconds + secondsPerDay - 1) / secondsPerDay))
    }

    /// Two base32 characters of (days since the epoch) mod 1024, high bits first.
    static func timestamp(at seconds: Int64) -> String {
        let slot = ((day(seconds) % timeSlots) + timeSlots) % timeSlots
        return String([timeAlphabet[(slot >> 5) & 31], timeAlphabet[slot & 31]])
    }

    func checkTimestamp(_ stamp: String, at seconds: Int64) throws(Error) {
        guard stamp.count == 2 else { throw .expired }
        var then = 0
        for c in stamp.uppercased() {
            guard let v = Self.timeAlphabet.firstIndex(of: c) else { throw .badTimestamp }
            then = (then << 5) | v
        }
        var today = ((Self.day(seconds) % Self.timeSlots) + Self.timeSlots) % Self.timeSlots
        while today < then { today += Self.timeSlots }
        guard today <= then + maxAgeDays else { throw .expired }
    }

    /// libsrs2 srs_hash_check: case-insensitive, any secret, a longer hash cut to `hashLength`.
    func checkHash(_ given: String, _ data: [String]) throws(Error) {
        let g = String(given.prefix(hashLength)).lowercased()
        guard g.count == hashLength else { throw .badHash }
        for secret in secrets where hash(data, secret: secret).lowercased() == g { return }
        throw .badHash
    }

    /// HMAC-SHA1 over the lowercased fields, base64, the first `hashLength` characters.
    func hash(_ data: [String], secret: [UInt8]) -> String {
        let message = data.flatMap { Array($0.utf8).map(ASCII.lower) }
        return String(Base64.encode(hmac(secret, message)).prefix(hashLength))
    }
}
