// The outbound queue's domain (DESIGN §3, §4) as plain values shared by the store (QueueStore),
// the RPC layer (MailIPC's queue family) and the outbound agent: no SQL, no wire format. The
// queue keeps one row per remote recipient; the agent claims them grouped by message.

/// RFC 3461 parameters a submission client gave for one recipient, as the queue keeps them
/// (the agent maps them onto OutboundProtocol's DSNNotify).
public struct QueueRecipientDSN: Sendable, Equatable {
    /// NOTIFY bits: 1 SUCCESS, 2 FAILURE, 4 DELAY; 0 is NEVER. nil: not given (RFC 3461 §4.1
    /// default: FAILURE and DELAY at our discretion).
    public var notify: UInt8?
    /// ORCPT (RFC 3461 §4.2) as "addr-type;address" with the xtext decoded; "" when not given.
    public var orcpt: String
    public init(notify: UInt8? = nil, orcpt: String = "") { self.notify = notify; self.orcpt = orcpt }
}

/// RFC 3461 parameters of a message's MAIL FROM, as the queue keeps them.
public struct QueueEnvelopeDSN: Sendable, Equatable {
    /// RET (RFC 3461 §4.3): "FULL", "HDRS", or "" when not given.
    public var ret: String
    /// ENVID (RFC 3461 §4.4) with the xtext decoded; "" when not given.
    public var envid: String
    public init(ret: String = "", envid: String = "") { self.ret = ret; self.envid = envid }
}

/// How a message came into the queue: it decides DKIM signing (submission) and SRS (forward).
public enum QueueOrigin: UInt8, Sendable, Equatable {
    /// An authenticated user submitted it (smtpd submission roles).
    case submission = 0
    /// A local alias forwarded it to a remote target: its sender is someone else's address.
    case forward = 1
    /// The agent queued it: a DSN with the null sender (RFC 3461 §6.2).
    case bounce = 2
}

/// One claimed recipient.
public struct QueueRecipient: Sendable, Equatable {
    /// The queue row id: what results name.
    public var id: Int64
    public var address: String
    /// Attempts made before this claim.
    public var attempts: Int
    /// Seconds since the epoch of the first attempt; nil before it.
    public var firstAttempt: Int64?
    /// The last reply or error text ("" before the first attempt).
    public var lastReply: String
    /// A delay warning (DSN Action: delayed) was already sent for it.
    public var warned: Bool
    public var dsn: QueueRecipientDSN
    public init(id: Int64, address: String, attempts: Int = 0, firstAttempt: Int64? = nil, lastReply: String = "",
                warned: Bool = false, dsn: QueueRecipientDSN = QueueRecipientDSN()) {
        self.id = id; self.address = address; self.attempts = attempts; self.firstAttempt = firstAttempt
        self.lastReply = lastReply; self.warned = warned; self.dsn = dsn
    }
}

/// One message with the recipients of it the agent claimed, leased to it until `leaseUntil`.
public struct QueueJob: Sendable, Equatable {
    /// The queue's id of the message (what `postern queue` shows, what `read` names).
    public var message: Int64
    /// The envelope sender; "" is the null reverse-path.
    public var sender: String
    /// Size in octets of the body as `QueueStore.queueBody` returns it (the stored message
    /// without its leading Return-Path field).
    public var size: Int
    /// When it was queued (seconds since the epoch).
    public var created: Int64
    public var origin: QueueOrigin
    public var envelope: QueueEnvelopeDSN
    public var recipients: [QueueRecipient]
    /// An administrator asked for it to be bounced (`postern queue bounce`): fail every
    /// recipient now with 5.0.0 instead of trying to deliver.
    public var bounceRequested: Bool
    public var leaseUntil: Int64
    /// The body as `QueueStore.queueBody` returns it (`size` octets), when it came with the claim
    /// (a small body stored in its row, within the claim's byte budget); nil: read it by range.
    public var body: [UInt8]?
    public init(message: Int64, sender: String, size: Int, created: Int64, origin: QueueOrigin, envelope: QueueEnvelopeDSN = QueueEnvelopeDSN(),
                recipients: [QueueRecipient], bounceRequested: Bool = false, leaseUntil: Int64, body: [UInt8]? = nil) {
        self.message = message; self.sender = sender; self.size = size; self.created = created; self.origin = origin
        self.envelope = envelope; self.recipients = recipients; self.bounceRequested = bounceRequested; self.leaseUntil = leaseUntil
        self.body = body
    }
}

/// What a claim returns: due jobs, and when the next not-yet-due recipient is (to sleep until).
public struct QueueClaim: Sendable, Equatable {
    /// Body bytes one claim carries at most: small bodies ride with their jobs until this is
    /// spent (the rest are read by range), so most messages need no read of their own.
    public static let bodyBudget = 256 * 1024
    public var jobs: [QueueJob]
    /// Earliest `next_attempt` among unheld, unleased rows not claimed now; nil when none.
    public var nextDue: Int64?
    public init(jobs: [QueueJob], nextDue: Int64?) { self.jobs = jobs; self.nextDue = nextDue }
}

/// The result of one attempt for one claimed recipient.
public enum QueueOutcome: Sendable, Equatable {
    /// The remote server accepted it (250 after the data): it leaves the queue.
    case delivered(reply: String)
    /// Try again at `nextAttempt`; `warned` records that a delay DSN went out with this report.
    case deferred(reply: String, nextAttempt: Int64, warned: Bool)
    /// Permanent failure or expiry: it leaves the queue (its DSN, if any, is the report's notice).
    case failed(reply: String)
}

public struct QueueResult: Sendable, Equatable {
    /// `QueueRecipient.id`.
    public var recipient: Int64
    public var outcome: QueueOutcome
    public init(recipient: Int64, outcome: QueueOutcome) { self.recipient = recipient; self.outcome = outcome }
}

/// A DSN (bounce, delay warning, success notice) to the original sender, made by the agent and
/// stored in the same transaction as the results it reports (DESIGN §4: a recipient leaves the
/// queue only once its bounce is durable). A local `recipient` gets it in INBOX; a remote one
/// gets it queued with the null sender and origin `.bounce`.
public struct QueueNotice: Sendable, Equatable {
    public var recipient: String
    public var body: [UInt8]
    public init(recipient: String, body: [UInt8]) { self.recipient = recipient; self.body = body }
}

/// One queued recipient as the administrator sees it (`postern queue list|show`).
public struct QueueEntryInfo: Sendable, Equatable {
    public var id: Int64, message: Int64, sender: String, recipient: String
    public var created: Int64, nextAttempt: Int64, attempts: Int, lastReply: String
    public var held: Bool, bounceRequested: Bool
    /// Seconds since the epoch until which an agent holds it; 0 when not leased.
    public var leaseUntil: Int64
    public var size: Int, origin: QueueOrigin
    public init(id: Int64, message: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: Int,
                lastReply: String, held: Bool, bounceRequested: Bool, leaseUntil: Int64, size: Int, origin: QueueOrigin) {
        self.id = id; self.message = message; self.sender = sender; self.recipient = recipient; self.created = created
        self.nextAttempt = nextAttempt; self.attempts = attempts; self.lastReply = lastReply; self.held = held
        self.bounceRequested = bounceRequested; self.leaseUntil = leaseUntil; self.size = size; self.origin = origin
    }
}

/// An administrator's action on the queued recipients of one message (all messages for
/// `flush` when `message` is nil).
public enum QueueAdminAction: UInt8, Sendable, Equatable {
    case flush = 0      // due now (lease kept)
    case hold = 1       // never claimed until released
    case release = 2
    case delete = 3     // removed without a DSN
    case bounce = 4     // next claim fails them with a DSN
}
