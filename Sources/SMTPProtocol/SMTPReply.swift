// SMTP/LMTP replies: the value, its wire encoding (RFC 5321 §4.2), and every named reply
// the engine sends. Code elsewhere uses these names, never bare numeric literals.

/// One reply: a three-digit code, an optional enhanced status code (RFC 2034, RFC 3463)
/// and one or more text lines.
public struct SMTPReply: Equatable, Sendable, CustomStringConvertible {
    public var code: Int
    /// "x.y.z"; nil for the greeting, the EHLO/HELO/LHLO reply and 3xx replies (RFC 2034 §3).
    public var enhanced: String?
    public var lines: [String]

    public init(code: Int, enhanced: String?, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public init(_ code: Int, _ enhanced: String?, _ text: String) {
        self.init(code: code, enhanced: enhanced, lines: [text])
    }

    /// 2xx positive completion.
    public var isPositive: Bool { code >= 200 && code < 300 }
    /// 4xx transient failure.
    public var isTransient: Bool { code >= 400 && code < 500 }
    /// 5xx permanent failure.
    public var isPermanent: Bool { code >= 500 }

    /// Wire form. Multi-line replies use "code-text" on every line but the last, which
    /// uses "code text" (RFC 5321 §4.2.1); with ENHANCEDSTATUSCODES every line carries the
    /// enhanced code (RFC 2034 §4). CR and LF inside texts are replaced by spaces so a text
    /// that came from elsewhere can never inject a reply line.
    public func encoded(enhancedStatusCodes: Bool = true) -> [UInt8] {
        let lines = self.lines.isEmpty ? [""] : self.lines
        var out: [UInt8] = []
        out.reserveCapacity(lines.reduce(0) { $0 + $1.utf8.count + 16 })
        let codeBytes = Array(String(code).utf8)
        let prefix: [UInt8]? = (enhancedStatusCodes ? enhanced : nil).map { Array($0.utf8) }
        for (index, line) in lines.enumerated() {
            out.append(contentsOf: codeBytes)
            out.append(index == lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            if let prefix {
                out.append(contentsOf: prefix)
                if !line.isEmpty { out.append(UInt8(ascii: " ")) }
            }
            for byte in line.utf8 {
                out.append(byte == 13 || byte == 10 ? UInt8(ascii: " ") : byte)
            }
            out.append(13)
            out.append(10)
        }
        // "250 " with nothing after it: drop the trailing space of an empty last line — but
        // not for 334, whose grammar is "334" SP [base64] CRLF (RFC 4954 §4).
        if prefix == nil, lines.last?.isEmpty == true, code != 334 {
            out.remove(at: out.count - 3)
        }
        return out
    }

    public var description: String {
        let head = enhanced.map { "\(code) \($0)" } ?? "\(code)"
        return "\(head) \(lines.joined(separator: " | "))"
    }
}

// MARK: - Named replies (RFC 5321 §4.2.2/§4.2.3, enhanced codes RFC 3463)

extension SMTPReply {
    // Connection-level

    /// 220 greeting; no enhanced code (RFC 2034 §3). RFC 5321 §4.3.1.
    public static func serviceReady(_ host: String, service: String = "ESMTP Postern") -> SMTPReply {
        SMTPReply(220, nil, service.isEmpty ? host : "\(host) \(service)")
    }
    /// 250 reply to EHLO/LHLO: host line followed by one line per extension keyword.
    public static func hello(_ host: String, keywords: [String]) -> SMTPReply {
        SMTPReply(code: 250, enhanced: nil, lines: [host] + keywords)
    }
    /// 250 reply to HELO (no extensions).
    public static func helo(_ host: String) -> SMTPReply {
        SMTPReply(250, nil, host)
    }
    /// 221 after QUIT. RFC 5321 §4.1.1.10.
    public static let closing = SMTPReply(221, "2.0.0", "Bye")
    /// 421 when the error budget is exhausted.
    public static let tooManyErrors = SMTPReply(421, "4.7.0", "Too many errors, closing connection")
    /// 421 when the junk-command budget is exhausted (postconf(5) smtpd_junk_command_limit).
    public static let tooManyJunkCommands = SMTPReply(421, "4.7.0", "Too many junk commands, closing connection")
    /// 421 when the session reached its maximum length (`sessionTimeExceeded`).
    public static let sessionTooLong = SMTPReply(421, "4.7.0", "Session too long, closing connection")
    /// 421 on idle/command timeout. RFC 5321 §4.5.3.2.
    public static let timeout = SMTPReply(421, "4.4.2", "Timeout exceeded, closing connection")
    /// 421 when the daemon shuts down (sent by the glue).
    public static let shuttingDown = SMTPReply(421, "4.3.2", "Service shutting down, closing connection")

    // Positive

    public static let ok = SMTPReply(250, "2.0.0", "OK")
    public static let okSender = SMTPReply(250, "2.1.0", "Sender OK")
    public static let okRecipient = SMTPReply(250, "2.1.5", "Recipient OK")
    /// 250 after the final dot: SMTP has one, LMTP one per recipient (RFC 2033 §4.2).
    public static func delivered(to recipient: MailPath?) -> SMTPReply {
        if let recipient {
            return SMTPReply(250, "2.0.0", "<\(recipient.address)> Delivered")
        }
        return SMTPReply(250, "2.0.0", "Message accepted for delivery")
    }
    /// 354: intermediate, so no enhanced code (RFC 2034 §4).
    public static let startMailInput = SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>")
    /// 252: VRFY never discloses whether a mailbox exists. RFC 5321 §3.5.3.
    public static let cannotVerify = SMTPReply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
    /// 214 HELP. RFC 5321 §4.1.1.8.
    public static let help = SMTPReply(214, "2.0.0", "See RFC 5321 (SMTP) and RFC 2033 (LMTP)")

    // Recipient / message outcomes

    public static let mailboxUnknown = SMTPReply(550, "5.1.1", "User unknown")
    public static let mailboxDisabled = SMTPReply(550, "5.2.1", "Mailbox disabled")
    public static let mailboxFull = SMTPReply(552, "5.2.2", "Mailbox full")
    public static let mailboxFullTemporary = SMTPReply(452, "4.2.2", "Mailbox full, try again later")
    /// A recipient over its quota (RFC 3463 X.2.2): permanent, or temporary while `[quota]
    /// full_tempfail` asks senders to retry (Dovecot's quota_full_tempfail).
    public static func mailboxFull(temporary: Bool) -> SMTPReply { temporary ? mailboxFullTemporary : mailboxFull }
    public static let relayDenied = SMTPReply(554, "5.7.1", "Relay access denied")
    /// RFC 1870 §6 (SIZE at MAIL, or the body grew past the limit during DATA).
    public static let messageTooBig = SMTPReply(552, "5.3.4", "Message size exceeds fixed maximum message size")
    /// RFC 5321 §4.5.3.1.10.
    public static let tooManyRecipients = SMTPReply(452, "4.5.3", "Too many recipients")
    public static let localError = SMTPReply(451, "4.3.0", "Local error in processing, try again later")
    /// A bare LF / bare CR in DATA with policy `.reject` (cf. Postfix smtpd_forbid_bare_newline).
    public static let bareLinefeed = SMTPReply(550, "5.5.2", "Message contains bare <CR> or <LF>; lines must end in <CR><LF>")
    /// RFC 6531 §3.5: non-ASCII address without the SMTPUTF8 parameter.
    public static let nonASCIIAddress = SMTPReply(553, "5.6.7", "Non-ASCII addresses require SMTPUTF8")
    /// DATA without any accepted recipient in SMTP (RFC 5321 §3.3).
    public static let noValidRecipients = SMTPReply(554, "5.5.1", "No valid recipients")
    /// DATA without any accepted recipient in LMTP (RFC 2033 §4.2).
    public static let noValidRecipientsLMTP = SMTPReply(503, "5.5.1", "No valid recipients")

    // Protocol errors (count towards SMTPLimits.maxErrors)

    /// Unknown verb or empty line. RFC 5321 §4.2.4.
    public static let syntaxError = SMTPReply(500, "5.5.2", "Syntax error, command unrecognized")
    /// Command line over maxCommandLine (RFC 5321 §4.5.3.1.4) or text line over maxTextLine.
    public static let lineTooLong = SMTPReply(500, "5.5.2", "Line too long")
    /// A command line ended in a bare LF with policy `.reject`.
    public static let bareLinefeedCommand = SMTPReply(500, "5.5.2", "Bare <LF> received; commands must end in <CR><LF>")
    /// HELO/EHLO in LMTP. RFC 2033 §4.1.
    public static let heloNotAllowedInLMTP = SMTPReply(500, "5.5.1", "This is LMTP, use LHLO")
    /// Bad argument or parameter value. RFC 5321 §4.2.2 (501), RFC 3463 §3.6 (5.5.4).
    public static let parameterError = SMTPReply(501, "5.5.4", "Syntax error in parameters or arguments")
    /// Unknown MAIL/RCPT parameter. RFC 5321 §4.1.1.11 (555).
    public static let parameterNotRecognized = SMTPReply(555, "5.5.4", "Unsupported MAIL/RCPT parameter")
    /// Malformed path in MAIL FROM / RCPT TO. RFC 3463 §3.2 (X.1.3 bad address syntax).
    public static let badAddress = SMTPReply(501, "5.1.3", "Bad address syntax")
    public static let badSenderAddress = SMTPReply(501, "5.1.7", "Bad sender address syntax")
    public static let badSequence = SMTPReply(503, "5.5.1", "Bad sequence of commands")
    public static let needHello = SMTPReply(503, "5.5.1", "Send HELO/EHLO first")
    public static let needLHLO = SMTPReply(503, "5.5.1", "Send LHLO first")
    public static let needMail = SMTPReply(503, "5.5.1", "Need MAIL command")
    public static let nestedMail = SMTPReply(503, "5.5.1", "Sender already specified")
    public static let notImplemented = SMTPReply(502, "5.5.1", "Command not implemented")
    /// STARTTLS/AUTH/BDAT after HELO, or before any EHLO where EHLO is needed: these are
    /// ESMTP extensions (RFC 5321 §4.1.4).
    public static let ehloRequired = SMTPReply(503, "5.5.1", "Send EHLO first")
    /// STARTTLS or AUTH inside a mail transaction (RFC 4954 §4).
    public static let transactionInProgress = SMTPReply(503, "5.5.1", "Not permitted during a mail transaction")
    /// DATA in a transaction that already used BDAT (RFC 3030 §2).
    public static let dataAfterBDAT = SMTPReply(503, "5.5.1", "DATA not permitted after BDAT; use BDAT")

    // STARTTLS (RFC 3207)

    /// RFC 3207 §4: 220 then the TLS handshake.
    public static let readyToStartTLS = SMTPReply(220, "2.0.0", "Ready to start TLS")
    /// A second STARTTLS, or STARTTLS on an implicit-TLS port.
    public static let tlsAlreadyActive = SMTPReply(503, "5.5.1", "TLS already active")
    /// RFC 3207 §4: TLS configured but not available right now.
    public static let tlsTemporarilyUnavailable = SMTPReply(454, "4.7.0", "TLS not available due to temporary reason")

    // AUTH (RFC 4954 §4, §6)

    /// 334 with an empty challenge (PLAIN without initial response). Encoded "334 " CRLF.
    public static let authChallengeEmpty = SMTPReply(334, nil, "")
    /// LOGIN: base64("Username:").
    public static let authChallengeUsername = SMTPReply(334, nil, "VXNlcm5hbWU6")
    /// LOGIN: base64("Password:").
    public static let authChallengePassword = SMTPReply(334, nil, "UGFzc3dvcmQ6")
    public static let authSucceeded = SMTPReply(235, "2.7.0", "Authentication successful")
    /// The credentials were wrong (also malformed PLAIN/LOGIN messages and a PLAIN authzid
    /// other than the authcid: proxy authorization is not supported).
    public static let authCredentialsInvalid = SMTPReply(535, "5.7.8", "Authentication credentials invalid")
    public static let authTemporaryFailure = SMTPReply(454, "4.7.0", "Temporary authentication failure")
    /// The client sent "*" (RFC 4954 §4).
    public static let authCancelled = SMTPReply(501, "5.0.0", "Authentication cancelled")
    public static let authBadBase64 = SMTPReply(501, "5.5.2", "Invalid base64 data")
    public static let authMechanismUnknown = SMTPReply(504, "5.5.4", "Unrecognized authentication type")
    public static let alreadyAuthenticated = SMTPReply(503, "5.5.1", "Already authenticated")
    /// AUTH before TLS where TLS is required (the 530 variant Postfix sends; RFC 4954 §6
    /// would also allow 538 5.7.11).
    public static let tlsRequiredForAuth = SMTPReply(530, "5.7.0", "Must issue a STARTTLS command first")
    /// MAIL before AUTH on submission/smtps (RFC 4954 §6).
    public static let authRequired = SMTPReply(530, "5.7.0", "Authentication required")
    public static let tooManyAuthFailures = SMTPReply(421, "4.7.0", "Too many authentication failures, closing connection")
    /// Authenticated session: the envelope sender is not one of the user's addresses.
    public static let senderNotOwned = SMTPReply(553, "5.7.1", "Sender address rejected: not owned by user")
    /// Unauthenticated MAIL FROM one of our domains from an untrusted client
    /// (`SMTPSessionConfig.localSenderRequiresAuth`).
    public static let localSenderNeedsAuth = SMTPReply(553, "5.7.1", "Sender address rejected: authentication required for a local domain")
    /// Authenticated session: MAIL FROM:<> and `allowNullSenderWhenAuthenticated` is off.
    public static let nullSenderNotAllowed = SMTPReply(553, "5.7.1", "Sender address rejected: null sender not allowed")

    // BDAT (RFC 3030)

    /// Reply to a BDAT chunk that is not the last one.
    public static func chunkReceived(_ octets: Int) -> SMTPReply {
        SMTPReply(250, "2.0.0", "\(octets) octets received")
    }
}
