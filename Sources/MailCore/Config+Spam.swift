// [spam]: scanning incoming mail with rspamd and learning from users' Junk moves (issue 14,
// DESIGN §4 "Spam"). Every default is written once, here, and documented in postern.toml.example.

/// What a worker does with a message when rspamd cannot be asked (down, slow, bad reply).
public enum SpamFailurePolicy: String, Sendable, Equatable, CaseIterable {
    /// Deliver as if rspamd had said "no action" (logged): mail keeps flowing.
    case accept
    /// 451 4.7.1: the sending MTA retries later; nothing is stored.
    case tempfail
}

public struct SpamConfig: Sendable, Equatable {
    /// Off by default: a site turns it on once its rspamd runs.
    public var enabled = false
    /// rspamd's normal worker (`/checkv2`).
    public var url = "http://127.0.0.1:11333"
    /// rspamd's controller (`/learnspam`, `/learnham`, `/stat`).
    public var controllerURL = "http://127.0.0.1:11334"
    /// A file holding the controller password (first line); nil: no `Password:` header.
    public var controllerPasswordFile: String? = nil
    /// Seconds a scan or a learn request may take in all (connect, send, reply).
    public var timeout = 5.0
    public var onFailure = SpamFailurePolicy.accept
    /// lmtpd scans too (off: a Postfix front end usually filtered already).
    public var scanLMTP = false
    /// submission/smtps scan authenticated users' mail too.
    public var scanSubmission = false
    /// The mailbox `add header`/`rewrite subject` mail is delivered to (created with \Junk).
    public var junkFolder = "Junk"
    /// Learning addresses: "spam@" (that local part at every local domain), "spam@example.org"
    /// (that address only), or "" (off). Mail to them from a local authenticated user is learned
    /// and not delivered.
    public var learnSpamAddress = ""
    public var learnHamAddress = ""
    /// Learn requests held in memory while rspamd is slow or down; past it the oldest is dropped.
    public var learnQueue = 1000
    /// Bytes of a message scanned or learned at most: a larger one is delivered unscanned and not
    /// learned (logged), so a session never holds more than this for rspamd.
    public var maxSize = 10 << 20

    public init() {}
}

extension SpamConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        enabled = try s.bool("enabled") ?? enabled
        url = try Self.httpURL(s, "url") ?? url
        controllerURL = try Self.httpURL(s, "controller_url") ?? controllerURL
        controllerPasswordFile = try s.path("controller_password_file", base: context.base) ?? controllerPasswordFile
        timeout = try s.seconds("timeout") ?? timeout
        if timeout <= 0 || timeout > 300 { throw s.error("timeout", "expected more than 0 and at most 300 seconds") }
        onFailure = try s.oneOf("on_failure", SpamFailurePolicy.self) ?? onFailure
        scanLMTP = try s.bool("scan_lmtp") ?? scanLMTP
        scanSubmission = try s.bool("scan_submission") ?? scanSubmission
        junkFolder = try s.string("junk_folder") ?? junkFolder
        learnSpamAddress = try Self.learnAddress(s, "learn_spam_address") ?? learnSpamAddress
        learnHamAddress = try Self.learnAddress(s, "learn_ham_address") ?? learnHamAddress
        if !learnSpamAddress.isEmpty, learnSpamAddress.lowercased() == learnHamAddress.lowercased() {
            throw s.error("learn_ham_address", "must differ from learn_spam_address")
        }
        learnQueue = try s.int("learn_queue", 1...1_000_000) ?? learnQueue
        maxSize = try s.int("max_size", 65_536...(1 << 30)) ?? maxSize
    }

    /// rspamd speaks plain HTTP on loopback or a trusted network: "http://HOST[:PORT]".
    static func httpURL(_ s: TableReader, _ key: String) throws -> String? {
        guard let u = try s.string(key) else { return nil }
        guard u.lowercased().hasPrefix("http://"), u.count > "http://".count else {
            throw s.error(key, "expected http://HOST[:PORT]")
        }
        return u
    }

    /// "" (off), "LOCAL@" or "LOCAL@DOMAIN"; one word before the "@", no spaces.
    static func learnAddress(_ s: TableReader, _ key: String) throws -> String? {
        if s.table[key]?.string == "" { _ = try? s.string(key); return "" }   // "" turns it off (marks the key read)
        guard let a = try s.string(key) else { return nil }
        let parts = a.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !a.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw s.error(key, "expected \"LOCAL@\", \"LOCAL@DOMAIN\" or \"\"")
        }
        return a
    }
}
