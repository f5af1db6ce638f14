// What the receiving worker does with a scanned message (DESIGN §4 "Spam"), as a pure value:
// rspamd's action, or the [spam] on_failure policy when rspamd could not answer, becomes a
// reply to send or a delivery (header fields to prepend, Subject to rewrite, INBOX or Junk).
import MailCore
import SMTPProtocol

extension SMTPReply {
    /// rspamd said `reject`: refused at the end of DATA, nothing stored. RFC 3463 §3.8: X.7.1
    /// "Delivery not authorized, message refused".
    public static let spamRejected = SMTPReply(550, "5.7.1", "Message rejected as spam")
    /// rspamd said `soft reject` or `greylist`, or could not be asked with on_failure = tempfail:
    /// RFC 5321 §4.2.5, the sender keeps the message and retries later.
    public static let spamDeferred = SMTPReply(451, "4.7.1", "Try again later")
}

/// One header field to prepend: name and unfolded value, ASCII (scores and symbol names).
public struct SpamHeaderField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// A message to deliver after the scan.
public struct SpamDelivery: Sendable, Equatable {
    /// Prepended to the message, above any field it had (older X-Spam-* fields are removed).
    public var headerFields: [SpamHeaderField]
    /// The whole new Subject (`rewrite subject`), nil to keep it.
    public var subject: String?
    /// Into the recipient's junk folder instead of INBOX.
    public var toJunk: Bool
}

public enum SpamVerdict: Sendable, Equatable {
    case reject(SMTPReply)
    case tempfail(SMTPReply)
    case deliver(SpamDelivery)

    /// The verdict on a reply rspamd gave.
    public init(_ reply: RspamdReply) {
        switch reply.action {
        case .reject:
            self = .reject(.spamRejected)
        case .softReject, .greylist:
            self = .tempfail(.spamDeferred)
        case .addHeader, .rewriteSubject:
            self = .deliver(SpamDelivery(headerFields: SpamHeaders.fields(reply, isSpam: true),
                                         subject: reply.action == .rewriteSubject ? reply.subject.flatMap(SpamHeaders.safeValue) : nil,
                                         toJunk: true))
        case .noAction, .other:
            self = .deliver(SpamDelivery(headerFields: SpamHeaders.fields(reply, isSpam: false), subject: nil, toJunk: false))
        }
    }

    /// The verdict when rspamd could not be asked (down, slow, bad reply): [spam] on_failure.
    /// Accepted mail gets no X-Spam-* fields: nobody scanned it, and none claims otherwise.
    public static func unscanned(_ policy: SpamFailurePolicy) -> SpamVerdict {
        switch policy {
        case .accept: return .deliver(SpamDelivery(headerFields: [], subject: nil, toJunk: false))
        case .tempfail: return .tempfail(.spamDeferred)
        }
    }
}
