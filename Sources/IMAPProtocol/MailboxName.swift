// Mailbox-name rules of the server (one hierarchy, delimiter "/"): validation and NFC
// normalisation for CREATE/RENAME, and LIST pattern matching (RFC 9051 §6.3.9). Pure; every
// check is bounded by maxBytes, matching by the name's length squared.
import Foundation

public struct MailboxNameError: Error, Sendable, Equatable {
    /// Why the name was refused, for the NO reply.
    public var message: String
    public init(_ message: String) { self.message = message }
}

public enum MailboxName {
    public static let delimiter: Character = "/"
    /// Longest name in UTF-8 bytes.
    public static let maxBytes = 512
    /// Most hierarchy levels.
    public static let maxDepth = 16
    public static let inbox = "INBOX"

    /// The normalised name: NFC, "INBOX" case-folded as the first level, one trailing delimiter
    /// removed (RFC 9051 §6.3.4); refuses empty names and levels, "." and "..", control
    /// characters (C0, DEL, C1), the wildcards "*" and "%", and names over the limits.
    public static func validate(_ name: String) -> Result<String, MailboxNameError> {
        var n = name.precomposedStringWithCanonicalMapping
        if n.hasSuffix(String(delimiter)) { n.removeLast() }
        guard !n.isEmpty else { return .failure(MailboxNameError("empty mailbox name")) }
        guard n.utf8.count <= maxBytes else { return .failure(MailboxNameError("mailbox name longer than \(maxBytes) bytes")) }
        for s in n.unicodeScalars {
            switch s.value {
            case 0..<0x20, 0x7F, 0x80..<0xA0: return .failure(MailboxNameError("control character in mailbox name"))
            case 0x2A, 0x25: return .failure(MailboxNameError("wildcard in mailbox name"))
            default: continue
            }
        }
        var levels = n.split(separator: delimiter, omittingEmptySubsequences: false)
        guard levels.count <= maxDepth else { return .failure(MailboxNameError("more than \(maxDepth) levels")) }
        for level in levels {
            if level.isEmpty { return .failure(MailboxNameError("empty level in mailbox name")) }
            if level == "." || level == ".." { return .failure(MailboxNameError("\"\(level)\" as a level")) }
        }
        if isInbox(levels[0]) { levels[0] = Substring(inbox) }
        return .success(levels.joined(separator: String(delimiter)))
    }

    /// ASCII case-insensitive "INBOX".
    static func isInbox<S: StringProtocol>(_ s: S) -> Bool {
        s.utf8.count == 5 && s.uppercased() == inbox
    }

    /// RFC 9051 §6.3.9: "*" matches anything, "%" anything but the delimiter; the INBOX level
    /// of the name compares case-insensitively.
    public static func matches(_ name: String, pattern: String) -> Bool {
        let n = Array(name.unicodeScalars)
        // Collapse runs of wildcards ("*" wins over "%"): keeps the pattern within 2×name+1.
        var p: [Unicode.Scalar] = []
        var literals = 0
        for s in pattern.unicodeScalars {
            if s == "*" || s == "%", let last = p.last, last == "*" || last == "%" {
                if s == "*" { p[p.count - 1] = "*" }
                continue
            }
            if s != "*" && s != "%" { literals += 1 }
            p.append(s)
        }
        guard literals <= n.count else { return false }
        // The name's first level is INBOX: its five characters match case-insensitively.
        let inboxPrefix = n.count >= 5 && isInbox(String(String.UnicodeScalarView(n[0..<5]))) && (n.count == 5 || n[5] == delimiterScalar) ? 5 : 0
        func same(_ a: Unicode.Scalar, _ b: Unicode.Scalar, at i: Int) -> Bool {
            if a == b { return true }
            return i < inboxPrefix && a.isASCII && b.isASCII && ASCIIFold.lower(a) == ASCIIFold.lower(b)
        }
        // DP over pattern positions: row[j] = pattern[..<k] matches name[..<j].
        var row = [Bool](repeating: false, count: n.count + 1)
        row[0] = true
        for s in p {
            var next = [Bool](repeating: false, count: n.count + 1)
            switch s {
            case "*":
                var any = false
                for j in 0...n.count { any = any || row[j]; next[j] = any }
            case "%":
                var any = false
                for j in 0...n.count {
                    if j > 0, n[j - 1] == delimiterScalar { any = false }
                    any = any || row[j]
                    next[j] = any
                }
            default:
                for j in stride(from: 1, through: n.count, by: 1) where row[j - 1] && same(s, n[j - 1], at: j - 1) { next[j] = true }
            }
            row = next
        }
        return row[n.count]
    }

    static let delimiterScalar: Unicode.Scalar = "/"

    /// The pattern LIST applies (RFC 9051 §6.3.9): the reference as a prefix of the pattern,
    /// without doubling the delimiter between them; an empty reference leaves the pattern as is.
    public static func combine(reference: String, pattern: String) -> String {
        guard !reference.isEmpty else { return pattern }
        if reference.hasSuffix(String(delimiter)), pattern.hasPrefix(String(delimiter)) {
            return reference + pattern.dropFirst()
        }
        return reference + pattern
    }
}

/// ASCII case folding of one scalar.
enum ASCIIFold {
    static func lower(_ s: Unicode.Scalar) -> Unicode.Scalar {
        (s.value >= 0x41 && s.value <= 0x5A) ? Unicode.Scalar(s.value | 0x20)! : s
    }
}
