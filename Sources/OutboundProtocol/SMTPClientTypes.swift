// The values that cross the SMTP client's engine/glue boundary: configuration (TLS policy,
// relay credentials, timeouts), the envelope to send with its DSN parameters, the server's
// EHLO capabilities, and the per-recipient results. Pure values.
import SMTPProtocol

/// When to use STARTTLS (RFC 3207) towards a server.
public enum TLSPolicy: String, Sendable, Equatable, CaseIterable {
    /// Never send STARTTLS (the glue's fallback after a failed opportunistic handshake).
    case disabled
    /// STARTTLS when offered; an unverifiable certificate still encrypts; plaintext when not offered.
    case opportunistic
    /// STARTTLS must be offered and succeed; the certificate is not checked.
    case required
    /// STARTTLS must succeed with a certificate the glue verified (chain and host name).
    case verify
}

/// AUTH credentials for a relay host (RFC 4954). Never logged: printing one (or a config that
/// holds one) shows the user only.
public struct SMTPClientCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var user: String
    public var password: String
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }
    public var description: String { "\(user) (password hidden)" }
    public var debugDescription: String { description }
}

/// Which RFC 5321 §4.5.3.2 timer the glue arms while the session waits for the server.
public enum SMTPClientTimer: Sendable, Equatable {
    case greeting          // §4.5.3.2.1 initial 220: 5 min
    case command           // EHLO/HELO, STARTTLS, AUTH, QUIT (no RFC value; Postfix smtp_helo_timeout 300 s)
    case mail              // §4.5.3.2.2 MAIL: 5 min
    case rcpt              // §4.5.3.2.3 RCPT: 5 min
    case dataInitiation    // §4.5.3.2.4 DATA → 354: 2 min
    case dataBlock         // §4.5.3.2.5 each body write: 3 min
    case dataTermination   // §4.5.3.2.6 final "." → 250: 10 min
}

/// The durations of the timers; `rfc5321` are the RFC's minimums.
public struct SMTPClientTimeouts: Sendable, Equatable {
    public var greeting: Duration
    public var command: Duration
    public var mail: Duration
    public var rcpt: Duration
    public var dataInitiation: Duration
    public var dataBlock: Duration
    public var dataTermination: Duration

    public init(greeting: Duration = .seconds(300), command: Duration = .seconds(300), mail: Duration = .seconds(300),
                rcpt: Duration = .seconds(300), dataInitiation: Duration = .seconds(120), dataBlock: Duration = .seconds(180),
                dataTermination: Duration = .seconds(600)) {
        self.greeting = greeting
        self.command = command
        self.mail = mail
        self.rcpt = rcpt
        self.dataInitiation = dataInitiation
        self.dataBlock = dataBlock
        self.dataTermination = dataTermination
    }

    /// RFC 5321 §4.5.3.2: 5, 5, 5, 2, 3 and 10 minutes.
    public static let rfc5321 = SMTPClientTimeouts()

    public func duration(_ timer: SMTPClientTimer) -> Duration {
        switch timer {
        case .greeting: return greeting
        case .command: return command
        case .mail: return mail
        case .rcpt: return rcpt
        case .dataInitiation: return dataInitiation
        case .dataBlock: return dataBlock
        case .dataTermination: return dataTermination
        }
    }
}

public struct SMTPClientConfig: Sendable, Equatable {
    /// Our name in EHLO/HELO.
    public var heloName: String
    public var tlsPolicy: TLSPolicy
    /// The connection is TLS from the first byte (a relay host on port 465, RFC 8314): the glue
    /// handshakes first and reports with `tlsEstablished(verified:)` before any byte is fed.
    public var implicitTLS: Bool
    /// AUTH PLAIN or LOGIN with these (relay host only).
    public var credentials: SMTPClientCredentials?
    /// Never send credentials over plaintext (a test relay on loopback may turn it off).
    public var authRequiresTLS: Bool
    /// Send MAIL, RCPTs and DATA as one group when the server offers PIPELINING (RFC 2920).
    public var usePipelining: Bool
    /// Keep the connection after a transaction for more messages to the same host (Postfix's
    /// connection cache): the session says `.readyForNextMessage` instead of QUIT.
    public var reuseConnection: Bool
    public var timeouts: SMTPClientTimeouts
    public var replyLimits: SMTPReplyParser.Limits

    public init(heloName: String, tlsPolicy: TLSPolicy = .opportunistic, implicitTLS: Bool = false,
                credentials: SMTPClientCredentials? = nil, authRequiresTLS: Bool = true, usePipelining: Bool = true,
                reuseConnection: Bool = false, timeouts: SMTPClientTimeouts = .rfc5321, replyLimits: SMTPReplyParser.Limits = .init()) {
        self.heloName = heloName
        self.tlsPolicy = tlsPolicy
        self.implicitTLS = implicitTLS
        self.credentials = credentials
        self.authRequiresTLS = authRequiresTLS
        self.usePipelining = usePipelining
        self.reuseConnection = reuseConnection
        self.timeouts = timeouts
        self.replyLimits = replyLimits
    }
}

/// RET= of MAIL (RFC 3461 §4.3): what a bounce carries of the original.
public enum DSNReturn: String, Sendable, Equatable {
    case full = "FULL"
    case headers = "HDRS"
}

/// NOTIFY= of RCPT (RFC 3461 §4.1). The empty set is NOTIFY=NEVER. One type with the server
/// side's parser (SMTPProtocol) and the queue's bits (MailModel QueueRecipientDSN.notify).
public typealias DSNNotify = RcptDSNParameters.Notify

extension RcptDSNParameters.Notify {
    public static let never: Self = []

    /// "NEVER" or a comma list in RFC order (SUCCESS, FAILURE, DELAY).
    public var parameterValue: String {
        if isEmpty { return "NEVER" }
        var words: [String] = []
        if contains(.success) { words.append("SUCCESS") }
        if contains(.failure) { words.append("FAILURE") }
        if contains(.delay) { words.append("DELAY") }
        return words.joined(separator: ",")
    }
}

public struct OutboundRecipient: Sendable, Equatable {
    public var address: MailPath
    /// NOTIFY=; nil: not given (the default is FAILURE,DELAY semantics at the final MTA).
    public var notify: DSNNotify?
    /// ORCPT= address (type rfc822, RFC 3461 §4.2), as the client first gave it.
    public var originalRecipient: String?

    public init(_ address: MailPath, notify: DSNNotify? = nil, originalRecipient: String? = nil) {
        self.address = address
        self.notify = notify
        self.originalRecipient = originalRecipient
    }
}

/// One message for one destination host: all its recipients go in one transaction.
public struct OutboundEnvelope: Sendable, Equatable {
    /// nil: the null reverse-path `<>` (a bounce).
    public var sender: MailPath?
    public var recipients: [OutboundRecipient]
    /// Body size in octets (sent as SIZE=, RFC 1870).
    public var size: Int
    public var bodyType: BodyType
    /// Non-ASCII addresses or header fields: the server must offer SMTPUTF8 (RFC 6531 §3.2).
    public var requiresSMTPUTF8: Bool
    /// An 8-bit body can be re-encoded as 7-bit MIME (RFC 6152 §3) by the glue.
    public var downgradable: Bool
    public var ret: DSNReturn?
    /// ENVID= (RFC 3461 §4.4).
    public var envelopeID: String?

    public init(sender: MailPath?, recipients: [OutboundRecipient], size: Int, bodyType: BodyType = .sevenBit,
                requiresSMTPUTF8: Bool = false, downgradable: Bool = true, ret: DSNReturn? = nil, envelopeID: String? = nil) {
        self.sender = sender
        self.recipients = recipients
        self.size = size
        self.bodyType = bodyType
        self.requiresSMTPUTF8 = requiresSMTPUTF8
        self.downgradable = downgradable
        self.ret = ret
        self.envelopeID = envelopeID
    }
}

/// What the server offered in its EHLO reply (RFC 5321 §4.1.1.1: one keyword and its
/// parameters a line after the first). HELO servers offer nothing.
public struct SMTPServerCapabilities: Sendable, Equatable {
    /// SIZE (RFC 1870 §4): nil not offered, 0 offered without a limit.
    public var size: Int?
    public var pipelining = false
    public var eightBitMIME = false
    public var smtpUTF8 = false
    public var startTLS = false
    public var dsn = false
    public var chunking = false
    public var enhancedStatusCodes = false
    /// AUTH mechanisms, uppercased (also the old "AUTH=" form).
    public var authMechanisms: Set<String> = []

    public init() {}

    public init(ehlo reply: SMTPReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { $0.uppercased() }
            guard var keyword = words.first else { continue }
            var params = Array(words.dropFirst())
            if keyword.hasPrefix("AUTH=") {
                params = [String(keyword.dropFirst(5))] + params
                keyword = "AUTH"
            }
            switch keyword {
            case "SIZE": size = params.first.flatMap { Int($0) } ?? 0
            case "PIPELINING": pipelining = true
            case "8BITMIME": eightBitMIME = true
            case "SMTPUTF8": smtpUTF8 = true
            case "STARTTLS": startTLS = true
            case "DSN": dsn = true
            case "CHUNKING": chunking = true
            case "ENHANCEDSTATUSCODES": enhancedStatusCodes = true
            case "AUTH": authMechanisms.formUnion(params)
            default: continue
            }
        }
    }
}

public struct RecipientResult: Sendable, Equatable {
    /// A recipient's state after this attempt. (Nested: MailIPC has a `RecipientStatus` of its own.)
    public enum Status: Sendable, Equatable {
        /// The server took responsibility (250 after the final dot): remove it from the queue.
        case accepted
        /// 4xx, timeout, lost connection, policy: retry later (RetrySchedule).
        case temporary
        /// 5xx: bounce (DSNBuilder).
        case permanent
    }

    public var recipient: MailPath
    public var status: Status
    /// The server's reply, or one made up here (`remote` false) for local decisions.
    public var reply: SMTPReply
    /// The reply came from the server (Diagnostic-Code: smtp; Remote-MTA in a DSN).
    public var remote: Bool

    public init(recipient: MailPath, status: Status, reply: SMTPReply, remote: Bool) {
        self.recipient = recipient
        self.status = status
        self.reply = reply
        self.remote = remote
    }
}

/// The end of one attempt at one host.
public struct SMTPClientOutcome: Sendable, Equatable {
    /// One a recipient, in envelope order.
    public var results: [RecipientResult]
    /// The failure concerned the host, not the recipients (connection, greeting, EHLO, TLS):
    /// the glue tries the next MX host or address before recording the results (RFC 5321 §5.1).
    public var tryNextHost: Bool
    /// An opportunistic STARTTLS handshake failed: the glue may retry this host with `.disabled`.
    public var retryWithoutTLS: Bool
    /// The transaction went over TLS.
    public var usedTLS: Bool

    public init(results: [RecipientResult], tryNextHost: Bool = false, retryWithoutTLS: Bool = false, usedTLS: Bool = false) {
        self.results = results
        self.tryNextHost = tryNextHost
        self.retryWithoutTLS = retryWithoutTLS
        self.usedTLS = usedTLS
    }
}

/// What the glue must do, in order.
public enum SMTPClientAction: Sendable, Equatable {
    /// Write these bytes. `sensitive`: they carry credentials (AUTH); never log them.
    case send([UInt8], sensitive: Bool = false)
    /// The server said 220 to STARTTLS (or the connection uses implicit TLS): start the TLS
    /// handshake as client, verify the certificate (chain and host name) as well as it can, and
    /// call `tlsEstablished(verified:)` or `tlsFailed()`. No timer is armed: the handshake's
    /// timeout is the glue's. Bytes that arrived in plaintext after the 220 are already dropped.
    case startTLS
    /// The body is 8-bit and the server has no 8BITMIME (RFC 6152 §3): re-encode it as 7-bit
    /// MIME, then call `downgraded(size:)` (or `downgradeFailed()`).
    case needsDowngrade
    /// 354 came: stream the body with `bodyChunk(_:)` and end with `bodyFinished()`.
    case sendBody
    /// (Re)arm the one timer with this duration; on expiry call `timedOut()`.
    case armTimer(SMTPClientTimer, Duration)
    /// Every recipient of the message has its result: record it (before QUIT is even answered).
    case finished(SMTPClientOutcome)
    /// With `reuseConnection`, after `.finished`: call `nextMessage(_:)` with another message
    /// for this host, or `quit()`. No timer runs; the glue bounds how long it keeps the connection.
    case readyForNextMessage
    /// Close the connection.
    case close
}

/// Replies the client makes up for its own decisions, named like `SMTPReply`'s.
extension SMTPReply {
    /// The server did not answer in time. RFC 5321 §4.5.3.2.
    public static let clientTimeout = SMTPReply(421, "4.4.2", "Timeout while talking to the server")
    /// The connection dropped.
    public static let connectionLost = SMTPReply(421, "4.4.2", "Lost connection with the server")
    /// The server's reply did not parse (RFC 5321 §4.2).
    public static let malformedReply = SMTPReply(451, "4.5.0", "Malformed reply from the server")
    /// TLS policy required/verify, STARTTLS not offered. RFC 3463 X.7.4.
    public static let tlsNotOffered = SMTPReply(451, "4.7.4", "TLS is required but was not offered by the server")
    /// The STARTTLS handshake or its 220 failed. RFC 3463 X.7.5.
    public static let tlsFailed = SMTPReply(451, "4.7.5", "TLS negotiation failed")
    /// Policy verify, the certificate did not verify. RFC 3463 X.7.5.
    public static let tlsNotVerified = SMTPReply(451, "4.7.5", "Server certificate not verified")
    /// Credentials configured, but no common mechanism or no TLS to send them over.
    public static let authUnavailable = SMTPReply(451, "4.7.0", "Cannot authenticate to the relay host")
    /// SIZE over the server's limit: RFC 1870 §6, RFC 3463 X.3.4.
    public static let tooBigForServer = SMTPReply(552, "5.3.4", "Message size exceeds the server's fixed maximum message size")
    /// 8-bit body, no 8BITMIME, not convertible. RFC 6152 §3, RFC 3463 X.6.3.
    public static let conversionImpossible = SMTPReply(554, "5.6.3", "8-bit message and the server does not support 8BITMIME")
    /// SMTPUTF8 needed but not offered. RFC 6531 §3.2, RFC 6531 §3.6.
    public static let smtpUTF8NotOffered = SMTPReply(553, "5.6.7", "The server does not support SMTPUTF8")
}
