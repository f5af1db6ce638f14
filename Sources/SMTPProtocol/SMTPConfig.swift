// Configuration of one SMTP/LMTP session: dialect, named limits, advertised extensions.
// Pure values; the daemons build these from their TOML config and hand them to SMTPSession.

/// Which protocol the shared engine speaks. RFC 5321 (SMTP) or RFC 2033 (LMTP).
public enum SMTPDialect: Sendable, Equatable {
    case smtp
    case lmtp
}

/// What to do with a line ending in a bare LF (or a bare CR inside message data).
/// Mirrors Postfix `smtpd_forbid_bare_newline`: `.reject` refuses such commands with
/// 500 5.5.2 and rejects such messages with 550 5.5.2; `.normalize` treats the bare
/// LF / bare CR as CRLF. In both modes only a real `CRLF.CRLF` ends DATA, so SMTP
/// smuggling through `\n.\n`, `\r.\r\n` or `\n.\r\n` is impossible.
public enum BareLinefeedPolicy: Sendable, Equatable {
    case reject
    case normalize
}

/// Named limits. Every buffer the engine keeps is bounded by one of these.
public struct SMTPLimits: Sendable, Equatable {
    /// Longest command line including CRLF. RFC 5321 §4.5.3.1.4.
    public var maxCommandLine: Int
    /// Longest text line inside DATA including CRLF. RFC 5321 §4.5.3.1.6 says 1000.
    /// Real mail often violates this and Postfix/Dovecot pass such lines on, so lmtpd
    /// uses `SMTPLimits.lmtp` (no text-line limit); `Int.max` (or any value <= 0)
    /// disables the check. When enforced, an over-long line makes the message fail
    /// with 500 5.5.2 "Line too long" (RFC 5321 §4.5.3.1.10) after the final dot.
    public var maxTextLine: Int
    /// Largest message body (after dot-unstuffing) in bytes. Advertised as SIZE (RFC 1870).
    public var maxMessageSize: Int
    /// Most accepted recipients per transaction. RFC 5321 §4.5.3.1.8 (minimum 100).
    public var maxRecipients: Int
    /// Protocol errors (bad commands) before the session is dropped with 421 4.7.0.
    public var maxErrors: Int
    /// Size of the `messageChunk` pieces handed to the glue. Chunk boundaries depend only
    /// on the body, never on how the input was segmented.
    public var messageChunkSize: Int

    public init(
        maxCommandLine: Int = 512,
        maxTextLine: Int = 1000,
        maxMessageSize: Int = 50 * 1024 * 1024,
        maxRecipients: Int = 100,
        maxErrors: Int = 10,
        messageChunkSize: Int = 64 * 1024
    ) {
        self.maxCommandLine = maxCommandLine
        self.maxTextLine = maxTextLine
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
        self.maxErrors = maxErrors
        self.messageChunkSize = messageChunkSize
    }

    /// Defaults for lmtpd: the MTA in front already enforced text-line policy, so long
    /// lines are delivered as they are (like Postfix and Dovecot LMTP).
    public static var lmtp: SMTPLimits { SMTPLimits(maxTextLine: Int.max) }

    /// A text-line limit is in force (see `maxTextLine`).
    var enforcesTextLine: Bool { maxTextLine > 0 && maxTextLine != Int.max }
}

/// One EHLO/LHLO keyword. The session renders the list in order in its 250 reply
/// (RFC 5321 §4.1.1.1) and only accepts MAIL parameters whose extension is listed.
/// smtpd adds `.custom("STARTTLS")`, `.custom("AUTH PLAIN LOGIN")`, `.custom("CHUNKING")`
/// as those commands are implemented.
public enum SMTPExtension: Sendable, Hashable {
    case pipelining            // RFC 2920
    case eightBitMIME          // RFC 6152
    case size                  // RFC 1870, rendered as "SIZE <maxMessageSize>"
    case enhancedStatusCodes   // RFC 2034
    case smtpUTF8              // RFC 6531
    case binaryMIME            // RFC 3030; only meaningful together with CHUNKING
    case custom(String)        // rendered verbatim

    public static let defaults: [SMTPExtension] = [
        .pipelining, .eightBitMIME, .size, .enhancedStatusCodes, .smtpUTF8,
    ]

    /// The EHLO keyword line for this extension.
    func keywordLine(limits: SMTPLimits) -> String {
        switch self {
        case .pipelining: return "PIPELINING"
        case .eightBitMIME: return "8BITMIME"
        case .size: return "SIZE \(limits.maxMessageSize)"
        case .enhancedStatusCodes: return "ENHANCEDSTATUSCODES"
        case .smtpUTF8: return "SMTPUTF8"
        case .binaryMIME: return "BINARYMIME"
        case .custom(let text): return text
        }
    }
}

/// Everything a session needs to know up front.
public struct SMTPSessionConfig: Sendable {
    public var dialect: SMTPDialect
    /// Our host name, used in the greeting, the LHLO/EHLO reply and `<Postmaster>`.
    public var hostname: String
    public var limits: SMTPLimits
    public var bareLinefeed: BareLinefeedPolicy
    /// Text after the host name in the 220 greeting, e.g. "Postern LMTP" or "ESMTP Postern"
    /// (RFC 5321 §4.2 — many SMTP clients look for "ESMTP" there).
    public var serviceName: String
    /// Keywords advertised after LHLO/EHLO, in order.
    public var extensions: [SMTPExtension]

    public init(
        dialect: SMTPDialect,
        hostname: String,
        limits: SMTPLimits = SMTPLimits(),
        bareLinefeed: BareLinefeedPolicy = .reject,
        serviceName: String? = nil,
        extensions: [SMTPExtension] = SMTPExtension.defaults
    ) {
        self.dialect = dialect
        self.hostname = hostname
        self.limits = limits
        self.bareLinefeed = bareLinefeed
        self.serviceName = serviceName ?? (dialect == .lmtp ? "Postern LMTP" : "ESMTP Postern")
        self.extensions = extensions
    }

    func advertises(_ ext: SMTPExtension) -> Bool { extensions.contains(ext) }
}
