// The values that cross the engine/glue boundary: the envelope, the actions the session
// asks the glue to carry out, and the answers the glue feeds back.

/// BODY= parameter of MAIL (RFC 6152 8BITMIME, RFC 3030 BINARYMIME). Default 7BIT.
public enum BodyType: Sendable, Equatable {
    case sevenBit
    case eightBitMIME
    case binaryMIME
}

/// The transaction as far as it got: HELO name, sender, accepted recipients, parameters.
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

    public init(helo: String, sender: MailPath?, recipients: [MailPath] = [], bodyType: BodyType = .sevenBit,
                smtpUTF8: Bool = false, declaredSize: Int? = nil) {
        self.helo = helo
        self.sender = sender
        self.recipients = recipients
        self.bodyType = bodyType
        self.smtpUTF8 = smtpUTF8
        self.declaredSize = declaredSize
    }
}

/// The glue's verdict on one RCPT, passed to `SMTPSession.recipientChecked(_:)`.
public enum RecipientCheck: Sendable, Equatable {
    case accept                 // 250 2.1.5
    case unknown                // 550 5.1.1
    case relayDenied            // 554 5.7.1
    case tempFail               // 451 4.3.0
    case reject(SMTPReply)      // any other reply, e.g. 452 4.2.2 over quota
}

/// Outcome of delivering the message to one recipient (LMTP) or to all (SMTP).
public enum DeliveryResult: Sendable, Equatable {
    case delivered
    case failed(SMTPReply)
}

/// What the glue must do, in order. Replies are written as they come and flushed when the
/// glue runs out of input (RFC 2920 §3.2 PIPELINING).
public enum SMTPAction: Sendable, Equatable {
    case reply(SMTPReply)
    /// Ask the store about this recipient, then call `recipientChecked(_:)`.
    case checkRecipient(MailPath)
    /// DATA accepted (comes right after the 354 reply); message bytes follow.
    case beginMessage(SMTPEnvelope)
    /// Un-dot-stuffed body bytes, CRLF line ends preserved, in order. All chunks are
    /// `SMTPLimits.messageChunkSize` bytes except the last one of a message.
    case messageChunk([UInt8])
    /// The body will not be delivered (too big / bare LF / long line): discard what was
    /// received. The engine keeps reading to the final dot and then replies itself.
    case abortMessage
    /// Whole body received: deliver, then call `deliveryFinished(_:)`.
    case endMessage
    /// Close the connection (after 221 or 421).
    case close
}
