// Configuration of one SMTP/LMTP session: dialect, named limits, advertised extensions, and
// the session policy (TLS, AUTH, who may send). Pure values; the daemons build these from
// their TOML config (or `SMTPSessionConfig.smtpd(role:...)`) and hand them to SMTPSession.

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
    /// Longest text line inside DATA including CRLF. RFC 5321 §4.5.3.1.6 says 1000, the
    /// default here. Real mail often violates this and Postfix/Dovecot pass such lines on,
    /// so the daemons' config allows more (smtp.max_line_length, `SMTPLimits.lmtp`).
    /// `Int.max` (or any value <= 0) disables the check. When enforced, an over-long line makes the message fail
    /// with 500 5.5.2 "Line too long" (RFC 5321 §4.5.3.1.10) after the final dot.
    public var maxTextLine: Int
    /// Largest message body (after dot-unstuffing) in bytes. Advertised as SIZE (RFC 1870).
    public var maxMessageSize: Int
    /// Most accepted recipients per transaction. RFC 5321 §4.5.3.1.8 (minimum 100).
    public var maxRecipients: Int
    /// Errors before the session is dropped with 421 4.7.0: protocol errors (bad commands)
    /// and 5xx refusals of RCPT (unknown user, relay denied), so probing for addresses is
    /// bounded (postconf(5) smtpd_hard_error_limit). Reset when a message is delivered.
    public var maxErrors: Int
    /// Junk commands — NOOP, RSET, VRFY, HELP and a repeated HELO/EHLO/LHLO — allowed
    /// without a delivered message; the next one is answered 421 4.7.0 and the session
    /// closes (postconf(5) smtpd_junk_command_limit, which counts NOOP, VRFY, ETRN, RSET;
    /// ETRN is a protocol error here). Reset when a message is delivered.
    public var maxJunkCommands: Int
    /// Size of the `messageChunk` pieces handed to the glue. Chunk boundaries depend only
    /// on the body, never on how the input was segmented.
    public var messageChunkSize: Int
    /// Failed authentications (535) per session; the one that reaches it is followed by
    /// 421 4.7.0 and close. The per-client-address limit across sessions is the glue's.
    public var maxAuthFailures: Int
    /// Longest AUTH command line and AUTH continuation line including CRLF. RFC 4954 §4:
    /// at least 12288 octets. Only applies when AUTH is configured; every other command
    /// keeps `maxCommandLine`.
    public var maxAuthLine: Int

    public init(
        maxCommandLine: Int = 512,
        maxTextLine: Int = 1000,
        maxMessageSize: Int = 50 * 1024 * 1024,
        maxRecipients: Int = 100,
        maxErrors: Int = 10,
        messageChunkSize: Int = 64 * 1024,
        maxAuthFailures: Int = 3,
        maxAuthLine: Int = 12288,
        maxJunkCommands: Int = 100
    ) {
        self.maxCommandLine = maxCommandLine
        self.maxTextLine = maxTextLine
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
        self.maxErrors = maxErrors
        self.messageChunkSize = messageChunkSize
        self.maxAuthFailures = maxAuthFailures
        self.maxAuthLine = maxAuthLine
        self.maxJunkCommands = maxJunkCommands
    }

    /// Defaults for lmtpd, equal to the [lmtp] config defaults (a test checks this): the MTA
    /// in front already enforced its policy, so lines up to a generous cap are delivered as
    /// they are (like Postfix and Dovecot LMTP), and more recipients and errors are allowed.
    public static var lmtp: SMTPLimits { SMTPLimits(maxTextLine: 1_000_000, maxRecipients: 1000, maxErrors: 20) }

    /// A text-line limit is in force (see `maxTextLine`).
    var enforcesTextLine: Bool { maxTextLine > 0 && maxTextLine != Int.max }
}

/// One EHLO/LHLO keyword. The session renders the list in order in its 250 reply
/// (RFC 5321 §4.1.1.1) and only accepts MAIL parameters and BDAT whose extension is listed.
/// STARTTLS and AUTH are not in this list: they depend on the session state and are
/// appended by the session from `tlsAvailable` / `authMechanisms` (see
/// `SMTPSession.capabilities`). `.custom` keywords are rendered but enable nothing.
public enum SMTPExtension: Sendable, Hashable {
    case pipelining            // RFC 2920
    case eightBitMIME          // RFC 6152
    case size                  // RFC 1870, rendered as "SIZE <maxMessageSize>"
    case enhancedStatusCodes   // RFC 2034
    case smtpUTF8              // RFC 6531
    case binaryMIME            // RFC 3030; only meaningful together with CHUNKING
    case chunking              // RFC 3030 BDAT
    case dsn                   // RFC 3461: RET/ENVID on MAIL, NOTIFY/ORCPT on RCPT
    case custom(String)        // rendered verbatim

    public static let defaults: [SMTPExtension] = [
        .pipelining, .eightBitMIME, .size, .enhancedStatusCodes, .smtpUTF8,
    ]

    /// smtpd: the defaults plus CHUNKING (DESIGN.md §4). DSN is added for the submission roles
    /// only (`SMTPSessionConfig.smtpd(role:)`): the queue honours it for submitted mail.
    public static let smtpdDefaults: [SMTPExtension] = [
        .pipelining, .size, .enhancedStatusCodes, .eightBitMIME, .smtpUTF8, .chunking,
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
        case .chunking: return "CHUNKING"
        case .dsn: return "DSN"
        case .custom(let text): return text
        }
    }
}

/// The smtpd listener roles (DESIGN.md §4); a preset for `SMTPSessionConfig.smtpd(role:...)`.
public enum SMTPRole: String, Sendable, Equatable, CaseIterable {
    /// Port 25: inbound mail for local recipients; STARTTLS offered; no AUTH.
    case mta
    /// Port 587: STARTTLS, then AUTH required before MAIL.
    case submission
    /// Port 465: implicit TLS (RFC 8314), AUTH required before MAIL.
    case smtps
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
    /// Keywords advertised after LHLO/EHLO, in order (STARTTLS and AUTH are added by the
    /// session, see `SMTPSession.capabilities`).
    public var extensions: [SMTPExtension]

    // Session policy (smtpd). The defaults keep a plain LMTP/SMTP session: no TLS, no AUTH.

    /// Offer STARTTLS (RFC 3207) until TLS is active.
    public var tlsAvailable: Bool
    /// TLS is configured but cannot be used right now (e.g. the certificate failed to load):
    /// with `tlsAvailable` false, STARTTLS is not advertised and is answered 454 4.7.0
    /// instead of 502 5.5.1.
    public var tlsTemporarilyUnavailable: Bool
    /// The connection is TLS from the first byte (smtps, RFC 8314): the session starts with
    /// TLS active; STARTTLS is answered 503 5.5.1.
    public var implicitTLS: Bool
    /// SASL mechanisms for AUTH (RFC 4954); empty: AUTH is not offered and answered 502.
    public var authMechanisms: [SASLMechanism]
    /// AUTH is neither advertised nor accepted before TLS unless the client is on loopback
    /// (DESIGN.md §5); refused with 530 5.7.0.
    public var requireTLSForAuth: Bool
    /// MAIL before a successful AUTH is refused with 530 5.7.0 (submission, smtps).
    public var requireAuthForMail: Bool
    /// In an authenticated session `MAIL FROM:<>` is refused with 553 5.7.1 unless this is
    /// set, in which case the glue is asked with `.checkSender(nil)`.
    public var allowNullSenderWhenAuthenticated: Bool
    /// Delay before answering a failed AUTH (see `AuthFailureDelay`).
    public var authFailureDelay: AuthFailureDelay
    /// MAIL FROM one of our domains without AUTH from a client that is not trusted
    /// (`SMTPSession.clientIsTrusted`) is refused 553 5.7.1: the mta port does not take our
    /// own domains from strangers (the store says which domains are ours).
    public var localSenderRequiresAuth = false
    /// The reply for a recipient over its quota (RFC 3463 X.2.2 "mailbox full"): permanent
    /// `mailboxFull` (552 5.2.2, the default) or `mailboxFullTemporary` (452 4.2.2, `[quota]
    /// full_tempfail`, as Dovecot's quota_full_tempfail), at RCPT and per recipient after DATA.
    public var overQuotaReply: SMTPReply = .mailboxFull

    public init(
        dialect: SMTPDialect,
        hostname: String,
        limits: SMTPLimits = SMTPLimits(),
        bareLinefeed: BareLinefeedPolicy = .reject,
        serviceName: String? = nil,
        extensions: [SMTPExtension] = SMTPExtension.defaults,
        tlsAvailable: Bool = false,
        tlsTemporarilyUnavailable: Bool = false,
        implicitTLS: Bool = false,
        authMechanisms: [SASLMechanism] = [],
        requireTLSForAuth: Bool = true,
        requireAuthForMail: Bool = false,
        allowNullSenderWhenAuthenticated: Bool = false,
        authFailureDelay: AuthFailureDelay = .standard
    ) {
        self.dialect = dialect
        self.hostname = hostname
        self.limits = limits
        self.bareLinefeed = bareLinefeed
        self.serviceName = serviceName ?? (dialect == .lmtp ? "Postern LMTP" : "ESMTP Postern")
        self.extensions = extensions
        self.tlsAvailable = tlsAvailable
        self.tlsTemporarilyUnavailable = tlsTemporarilyUnavailable
        self.implicitTLS = implicitTLS
        self.authMechanisms = authMechanisms
        self.requireTLSForAuth = requireTLSForAuth
        self.requireAuthForMail = requireAuthForMail
        self.allowNullSenderWhenAuthenticated = allowNullSenderWhenAuthenticated
        self.authFailureDelay = authFailureDelay
    }

    /// The smtpd preset for a listener role:
    /// - `.mta`: STARTTLS offered when `tlsAvailable`, no AUTH, MAIL without AUTH.
    /// - `.submission`: STARTTLS offered when `tlsAvailable`, AUTH PLAIN LOGIN after TLS
    ///   (or on loopback), MAIL needs AUTH.
    /// - `.smtps`: implicit TLS, AUTH PLAIN LOGIN, MAIL needs AUTH.
    /// The submission roles also offer DSN (RFC 3461) unless `offerDSN` is false.
    /// Every field can be changed afterwards.
    public static func smtpd(
        role: SMTPRole,
        hostname: String,
        limits: SMTPLimits = SMTPLimits(),
        bareLinefeed: BareLinefeedPolicy = .reject,
        tlsAvailable: Bool = true,
        extensions: [SMTPExtension] = SMTPExtension.smtpdDefaults,
        offerDSN: Bool = true
    ) -> SMTPSessionConfig {
        var config = SMTPSessionConfig(dialect: .smtp, hostname: hostname, limits: limits, bareLinefeed: bareLinefeed,
                                       serviceName: "ESMTP Postern", extensions: extensions)
        switch role {
        case .mta:
            config.tlsAvailable = tlsAvailable
        case .submission:
            config.tlsAvailable = tlsAvailable
            config.authMechanisms = [.plain, .login]
            config.requireAuthForMail = true
        case .smtps:
            config.implicitTLS = true
            config.authMechanisms = [.plain, .login]
            config.requireAuthForMail = true
        }
        // RFC 3461 only where mail is queued for the outbound agent (never on 25 or LMTP).
        if role != .mta, offerDSN, !config.extensions.contains(.dsn) { config.extensions.append(.dsn) }
        return config
    }

    func advertises(_ ext: SMTPExtension) -> Bool { extensions.contains(ext) }

    /// STARTTLS is a known command here (otherwise 502 5.5.1 as before).
    var startTLSConfigured: Bool { tlsAvailable || tlsTemporarilyUnavailable || implicitTLS }
    /// AUTH is a known command here.
    var authConfigured: Bool { !authMechanisms.isEmpty }
}
