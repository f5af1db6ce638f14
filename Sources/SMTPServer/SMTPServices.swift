// The questions the SMTP/LMTP engine needs the store to answer, in store terms (DESIGN §4:
// engine, services, glue). The glue asks them and feeds the answers back into SMTPSession,
// which decides the replies; RPCSMTPServices answers them over the store RPC, tests fake them.
import NIOCore
import SMTPProtocol

/// The store's answer to an authentication.
enum AuthOutcome: Equatable {
    /// `canonical` is the user's name; `storeSession` authorises deliveries as that user and
    /// is ended with `endSession` when the connection closes.
    case success(canonical: String, storeSession: UInt64)
    case failure                 // wrong user or password
    case tempFail                // the store could not decide now
    case blocked                 // the client address is over its failure budget: nothing was checked
}

/// A delivery the store refused outright, rather than per recipient.
enum SMTPServiceError: Error, Equatable {
    /// The store refused the envelope sender for this authenticated session.
    case senderDenied(String)
}

/// Futures may complete on any event loop (the glue hops back to its own). A future fails
/// only when the store could not be asked or gave an unexpected answer; the glue treats that
/// as a temporary failure (451 4.3.0, 454 4.7.0), also when the store does not answer in time.
protocol SMTPServices {
    /// The store's verdict on one recipient address.
    func checkRecipient(_ address: String) -> EventLoopFuture<RecipientLookup>
    /// The same for a message of the size MAIL declared (RFC 1870 SIZE; nil: none): a
    /// recipient whose quota cannot take it is `.overQuota`. Default: the size is not used.
    func checkRecipient(_ address: String, declaredSize: Int?) -> EventLoopFuture<RecipientLookup>
    /// RFC 5321 §4.5.1: the store's verdict on the bare local part "postmaster".
    func checkPostmaster() -> EventLoopFuture<RecipientLookup>
    /// Whether `address` is an envelope sender `user` (canonical, after AUTH) may use; nil is
    /// the null sender `<>` (asked only when the configuration allows it after AUTH).
    func checkSender(_ address: String?, user: String) -> EventLoopFuture<Bool>
    /// Whether `domain` is one of our mail domains (an unauthenticated sender's, on the mta port).
    func isLocalDomain(_ domain: String) -> EventLoopFuture<Bool>
    /// Verifies the credentials (the password never reaches a log) of a login from `client`,
    /// whose failures the store counts (DESIGN §5).
    func authenticate(user: String, password: String, client: String) -> EventLoopFuture<AuthOutcome>
    /// Ends a store session from `authenticate`; fire and forget.
    func endSession(_ storeSession: UInt64)
    /// Starts delivering a message to `recipients` whose body follows as it arrives (the store
    /// stages it, never holding it whole); `storeSession` is 0 for an unauthenticated session.
    func beginDelivery(sender: String, recipients: [String], storeSession: UInt64) -> any SMTPDelivery
    /// `beginDelivery` for a whole envelope: also hands on its RFC 3461 parameters (RET, ENVID,
    /// and NOTIFY/ORCPT per recipient) for the queue. By default they are dropped.
    func beginDelivery(_ envelope: SMTPEnvelope, storeSession: UInt64) -> any SMTPDelivery
    /// The same, local copies into the user's mailbox marked `specialUse`, else named `mailbox`
    /// (created when missing) instead of INBOX: spam filtering's Junk (issue 14).
    func beginDelivery(_ envelope: SMTPEnvelope, storeSession: UInt64, mailbox: String, specialUse: String) -> any SMTPDelivery
}

extension SMTPServices {
    func checkRecipient(_ address: String, declaredSize: Int?) -> EventLoopFuture<RecipientLookup> { checkRecipient(address) }

    func beginDelivery(_ envelope: SMTPEnvelope, storeSession: UInt64) -> any SMTPDelivery {
        beginDelivery(sender: envelope.sender?.address ?? "", recipients: envelope.deliveryAddresses, storeSession: storeSession)
    }

    /// Services that cannot name a mailbox deliver to INBOX.
    func beginDelivery(_ envelope: SMTPEnvelope, storeSession: UInt64, mailbox: String, specialUse: String) -> any SMTPDelivery {
        beginDelivery(envelope, storeSession: storeSession)
    }
}

/// One message on its way to the store. The glue calls it from its event loop, in body order.
protocol SMTPDelivery: AnyObject {
    /// The next body bytes. The future completes when they are handed on (the glue reads no
    /// more from the client until then); it fails when the store will not take the message,
    /// and `end` then says why.
    func send(_ bytes: ByteBuffer) -> EventLoopFuture<Void>
    /// The body is complete: one status per recipient, in order, once the message is durable.
    /// Fails with `SMTPServiceError.senderDenied` when the store refuses the sender for the session.
    func end() -> EventLoopFuture<[RecipientDeliveryStatus]>
    /// The message will not be delivered (RSET mid-BDAT, too large, timeout, client gone):
    /// the store discards what it received.
    func abort()
}
