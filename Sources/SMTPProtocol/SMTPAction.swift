// The values that cross the engine/glue boundary: the envelope, the actions the session
// asks the glue to carry out, and the answers the glue feeds back.

/// BODY= parameter of MAIL (RFC 6152 8BITMIME, RFC 3030 BINARYMIME). Default 7BIT.
public enum BodyType: Sendable, Equatable {
    case sevenBit
    case eightBitMIME
    case binaryMIME
}

/// The transaction as far as it got: HELO name, sender, accepted recipients, parameters.
/// Recipients accepted with `RecipientCheck.acceptRemote` are listed in `remoteIndices`
/// (indices into `recipients`): the glue delivers the others and queues those.
public struct SMTPEnvelope: Sendable, Equatable {
    /// The LHLO/EHLO/HELO argument.
    public var helo: String
    /// nil is the null reverse-path `<>` (bounces, RFC 5321 §4.5.5).
    public var sender: MailPath?
    /// Accepted recipients in RCPT order; LMTP replies after DATA follow this order.
    public var recipients: [MailPath]
    public var bodyType: BodyType
    /// MAIL carried SMTPUTF8 (RFC 6531).
    public var smtpUTF8: Bool
    /// SIZE= from MAIL (RFC 1870), if given.
    public var declaredSize: Int?
    /// Indices into `recipients` of the recipients accepted for the outbound queue.
    public var remoteIndices: Set<Int>
    /// The canonical user of a successful AUTH (from `AuthResult.success`), if any.
    public var authenticatedUser: String?
    /// The body arrives with BDAT (RFC 3030): binary-exact, so it may hold bare CR/LF and
    /// needs no dot-unstuffing; DATA bodies always consist of CRLF lines.
    public var chunked: Bool
    /// Recipients the store knows under another address (postmaster@hostname, RFC 5321
    /// §4.5.1): index into `recipients` → the canonical address to deliver to.
    public var canonicalAddresses: [Int: String] = [:]
    /// RET and ENVID from MAIL (RFC 3461), when DSN is advertised.
    public var dsn = MailDSNParameters()
    /// NOTIFY and ORCPT of the accepted recipients that gave any (RFC 3461): index into
    /// `recipients` → parameters (see `dsn(ofRecipient:)`).
    public var recipientDSN: [Int: RcptDSNParameters] = [:]

    public init(helo: String, sender: MailPath?, recipients: [MailPath] = [], bodyType: BodyType = .sevenBit,
                smtpUTF8: Bool = false, declaredSize: Int? = nil, remoteIndices: Set<Int> = [],
                authenticatedUser: String? = nil, chunked: Bool = false) {
        self.helo = helo
        self.sender = sender
        self.recipients = recipients
        self.bodyType = bodyType
        self.smtpUTF8 = smtpUTF8
        self.declaredSize = declaredSize
        self.remoteIndices = remoteIndices
        self.authenticatedUser = authenticatedUser
        self.chunked = chunked
    }

    /// Recipients to deliver locally, in RCPT order.
    public var localRecipients: [MailPath] {
        recipients.enumerated().filter { !remoteIndices.contains($0.offset) }.map(\.element)
    }

    /// Recipients to queue for outbound delivery, in RCPT order.
    public var remoteRecipients: [MailPath] {
        recipients.enumerated().filter { remoteIndices.contains($0.offset) }.map(\.element)
    }

    /// The addresses to hand the store, in RCPT order: `canonicalAddresses` where set.
    public var deliveryAddresses: [String] {
        recipients.enumerated().map { canonicalAddresses[$0.offset] ?? $0.element.address }
    }

    /// The DSN parameters of `recipients[index]` (none given: all nil).
    public func dsn(ofRecipient index: Int) -> RcptDSNParameters {
        recipientDSN[index] ?? RcptDSNParameters()
    }

    /// Whether `recipients[index]` was accepted for the outbound queue.
    public func isRemote(_ index: Int) -> Bool { remoteIndices.contains(index) }
}

/// The verdict on one RCPT, passed to `SMTPSession.recipientChecked(_:)`; `recipientLookedUp(_:)`
/// derives it from the store's answer (a glue with a policy of its own may pass it directly).
public enum RecipientCheck: Sendable, Equatable {
    case accept                 // 250 2.1.5, a local recipient
    /// 250 2.1.5, a remote recipient to queue (authenticated sessions only; in an
    /// unauthenticated session the engine turns it into 554 5.7.1 — never an open relay).
    case acceptRemote
    case unknown                // 550 5.1.1
    case relayDenied            // 554 5.7.1
    case tempFail               // 451 4.3.0
    case reject(SMTPReply)      // any other reply, e.g. 452 4.2.2 over quota
}

/// The store's answer about one RCPT address, passed to `SMTPSession.recipientLookedUp(_:)`,
/// which decides the reply (relay policy, the <Postmaster> fallback).
public enum RecipientLookup: Sendable, Equatable {
    /// A local mailbox or alias; `canonical` is the address the store delivers it to.
    case ok(canonical: String)
    case unknownUser            // a local domain without that user
    case notLocal               // not one of the mail domains
    case tempFail               // the store could not answer now
    /// A local user with no room left under a quota limit (RFC 9208): refused with the
    /// session's `overQuotaReply` (552 5.2.2, or 452 4.2.2 under `[quota] full_tempfail`).
    case overQuota
}

/// The store's result of a delivery for one recipient, in recipient order.
public enum RecipientDeliveryStatus: Sendable, Equatable {
    case delivered, unknownUser, notLocal, overQuota, tempFail, rejected
}

/// The store's answer to a delivery, passed to `SMTPSession.deliveryAnswered(_:)`.
public enum DeliveryAnswer: Sendable, Equatable {
    case statuses([RecipientDeliveryStatus])
    /// The store refused the envelope sender for this authenticated session.
    case senderDenied
    /// The store could not take the message (connection lost, error): try again later.
    case failed
}

/// Outcome of delivering the message to one recipient (LMTP) or to all (SMTP).
public enum DeliveryResult: Sendable, Equatable {
    case delivered
    case failed(SMTPReply)
}

/// What the glue must do, in order. Replies are written as they come and flushed when the
/// glue runs out of input (RFC 2920 §3.2 PIPELINING). Every action that asks the glue for
/// something (`checkRecipient`, `checkPostmaster`, `checkSender`, `checkSenderDomain`, `authenticate`, `delay`, `startTLS`,
/// `endMessage`) is the last of its batch, and the session waits (`isAwaitingExternal`)
/// until the matching resume call.
public enum SMTPAction: Sendable, Equatable {
    case reply(SMTPReply)
    /// Ask the store about this recipient, then call `recipientLookedUp(_:)` (or, with a
    /// verdict of the glue's own, `recipientChecked(_:)`).
    case checkRecipient(MailPath)
    /// RFC 5321 §4.5.1: postmaster@hostname is not in a mail domain; ask the store about the
    /// bare local part "postmaster", then call `recipientLookedUp(_:)`.
    case checkPostmaster
    /// DATA accepted (comes right after the 354 reply), or the first BDAT chunk of a
    /// transaction announced (no 354); message bytes follow.
    case beginMessage(SMTPEnvelope)
    /// Body bytes in order: for DATA un-dot-stuffed with CRLF line ends; for BDAT exactly
    /// the octets sent. All chunks are `SMTPLimits.messageChunkSize` bytes except the last
    /// one of a message.
    case messageChunk([UInt8])
    /// The body will not be delivered (too big / bare LF / long line / RSET or QUIT between
    /// BDAT chunks / timeout): discard what was received. For DATA and BDAT the engine keeps
    /// reading to the end of the message and then replies itself.
    case abortMessage
    /// Whole body received: deliver, then call `deliveryFinished(_:)`.
    case endMessage
    /// Close the connection (after 221 or 421).
    case close
    /// STARTTLS accepted (comes right after the 220 reply): flush the reply, start the TLS
    /// handshake as server, then call `tlsStarted(info:)`. The engine has already dropped
    /// every byte that followed the STARTTLS line (RFC 3207 §4.2) and drops whatever
    /// `receive` gets until `tlsStarted`, so only bytes decrypted by TLS may be fed after it.
    /// If the handshake fails, close the connection.
    case startTLS
    /// Verify these credentials (never log the password), then call `authenticated(_:)`.
    case authenticate(user: String, password: String)
    /// An authentication failed (the glue's `.failure`, or a malformed/proxy PLAIN message).
    /// For fail2ban: log one line with the client address and `user` (the name as sent, not
    /// escaped: MailCore's AuthLog shortens it and the logger escapes it). `failures` counts this
    /// session's failures including this one. The 535 reply follows (after `delay`).
    case authFailed(user: String, mechanism: SASLMechanism, failures: Int)
    /// Wait this long (stop reading), then call `delayElapsed()`. Used before answering a
    /// failed AUTH (`SMTPSessionConfig.authFailureDelay`).
    case delay(Duration)
    /// Authenticated session: ask the store whether this envelope sender belongs to
    /// `authenticatedUser` (nil: the null sender, only when
    /// `allowNullSenderWhenAuthenticated`), then call `senderChecked(allowed:)`.
    case checkSender(MailPath?)
    /// Unauthenticated MAIL from a client outside the trusted networks, with
    /// `localSenderRequiresAuth`: ask the store whether this sender domain is one of ours,
    /// then call `senderDomainLookedUp(isLocal:)`.
    case checkSenderDomain(String)
}
