// A user's quota (RFC 9208 STORAGE and MESSAGE resources) as a plain value shared by the store,
// the RPC layer, imapd and the admin CLI: limits (nil: none) and exact usage. Bytes are the
// stored message sizes (what RFC822.SIZE and STATUS SIZE report), one count per copy.

public struct QuotaUsage: Sendable, Equatable {
    /// Sum of the sizes of every message in every mailbox of the user, and their number.
    public var bytes: UInt64, messages: UInt64
    /// The limits; nil: that resource is not limited.
    public var storageLimit: UInt64?, messageLimit: UInt64?
    public init(bytes: UInt64 = 0, messages: UInt64 = 0, storageLimit: UInt64? = nil, messageLimit: UInt64? = nil) {
        self.bytes = bytes; self.messages = messages; self.storageLimit = storageLimit; self.messageLimit = messageLimit
    }

    /// Whether `bytes` more in `messages` more messages stay within every limit: a message that
    /// would cross one is refused, and so is everything once usage is over a lowered limit.
    public func allows(bytes more: UInt64, messages count: UInt64) -> Bool {
        if let l = storageLimit {
            let (sum, overflow) = bytes.addingReportingOverflow(more)
            if overflow || sum > l { return false }
        }
        if let l = messageLimit, messages > l || l - messages < count { return false }
        return true
    }

    /// Nothing more fits: usage is at or over a limit (RCPT-time refusal).
    public var isFull: Bool { !allows(bytes: 1, messages: 1) }

    /// Whether any resource is limited (RFC 9208: only then is there a quota root).
    public var isLimited: Bool { storageLimit != nil || messageLimit != nil }

    /// RFC 9208 §5.1: STORAGE is in units of 1024 octets; usage and limit are rounded up, so a
    /// non-empty mailbox never shows 0 and usage within the limit never shows above it.
    public static func kibibytes(_ bytes: UInt64) -> UInt64 { bytes / 1024 + (bytes % 1024 == 0 ? 0 : 1) }
}

/// How an administrator changes one limit.
public enum QuotaLimitChange: Sendable, Equatable {
    case keep
    case set(UInt64)
    case remove
}

extension QuotaLimitChange {
    /// Binary multiples of a storage limit's suffix ("2G" = 2 × 1024³ bytes).
    static let storageSuffixes: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]

    /// An administrator's storage limit: bytes, with an optional K/M/G/T suffix (binary, any
    /// case), or "none" to remove the limit; nil when it is neither.
    public static func storage(_ text: String) -> QuotaLimitChange? {
        if text.lowercased() == "none" { return .remove }
        var digits = Substring(text), unit: UInt64 = 1
        if let last = text.last, let m = storageSuffixes[Character(last.uppercased())] { digits = digits.dropLast(); unit = m }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = UInt64(digits) else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, v <= UInt64(Int64.max) else { return nil }
        return .set(v)
    }

    /// An administrator's message limit: a count, or "none".
    public static func messages(_ text: String) -> QuotaLimitChange? {
        if text.lowercased() == "none" { return .remove }
        guard text.allSatisfy(\.isASCII), let n = UInt64(text), n <= UInt64(Int64.max) else { return nil }
        return .set(n)
    }
}
