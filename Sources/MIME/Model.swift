// The parsed shape of a message as IMAP needs it: ENVELOPE (RFC 3501 §7.4.2 / RFC 9051 §7.5.2),
// BODYSTRUCTURE fields and absolute byte offsets of every part. Plain values, all Sendable.

/// One address of an IMAP ENVELOPE address list (RFC 3501 §7.4.2).
/// Group syntax (RFC 5322 §3.4) is flattened the IMAP way: a start marker with `mailbox` = group
/// name and `host` = nil, the members, then an end marker with `mailbox` and `host` both nil.
/// An address without a domain has `host` = "" (never nil, which would read as a group marker).
public struct Address: Codable, Sendable, Equatable, Hashable {
    /// Display name, raw: quotes removed and words joined by one space, RFC 2047 NOT decoded.
    public var name: String?
    /// Obsolete source route ("@a,@b"), usually nil.
    public var adl: String?
    /// Local part with its quoting removed (RFC 9051 §9 addr-mailbox: "holds [RFC5322]
    /// local-part after removing [RFC5322] quoting"); group name for a group start.
    public var mailbox: String?
    /// Domain; nil only for group markers.
    public var host: String?

    public init(name: String? = nil, adl: String? = nil, mailbox: String?, host: String?) {
        self.name = name
        self.adl = adl
        self.mailbox = mailbox
        self.host = host
    }
}

/// IMAP ENVELOPE (RFC 3501 §7.4.2). Strings are raw header values, unfolded (RFC 5322 §2.2.3)
/// and trimmed of leading/trailing WSP; nil when the field is absent. An empty address list means NIL.
public struct Envelope: Codable, Sendable, Equatable {
    public var date: String?
    public var subject: String?
    public var from: [Address]
    /// Equal to `from` when Sender is absent or empty (RFC 3501 §7.4.2).
    public var sender: [Address]
    /// Equal to `from` when Reply-To is absent or empty (RFC 3501 §7.4.2).
    public var replyTo: [Address]
    public var to: [Address]
    public var cc: [Address]
    public var bcc: [Address]
    public var inReplyTo: String?
    public var messageID: String?

    public init(date: String? = nil, subject: String? = nil, from: [Address] = [], sender: [Address] = [],
                replyTo: [Address] = [], to: [Address] = [], cc: [Address] = [], bcc: [Address] = [],
                inReplyTo: String? = nil, messageID: String? = nil) {
        self.date = date
        self.subject = subject
        self.from = from
        self.sender = sender
        self.replyTo = replyTo
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.inReplyTo = inReplyTo
        self.messageID = messageID
    }
}

/// One MIME entity (RFC 2045 §2.4) with what BODYSTRUCTURE needs and where its bytes are.
///
/// Offsets are absolute in the whole message: the part's MIME header is `[headerStart, bodyStart)`
/// (it includes the blank separator line when there is one) and its body is `[bodyStart, bodyEnd)`.
/// The CRLF in front of a boundary delimiter belongs to the delimiter (RFC 2046 §5.1.1), so it is
/// never inside `bodyEnd`. For the top-level part `headerStart` is 0 and `bodyEnd` the message size.
public struct BodyPart: Codable, Sendable, Equatable {
    /// Lowercased media type; default "text" (RFC 2045 §5.2), "message" inside multipart/digest.
    public var type: String
    /// Lowercased subtype; default "plain" ("rfc822" inside multipart/digest, RFC 2046 §5.1.5).
    public var subtype: String
    /// `[[name, value]]`, names lowercased, values unquoted, in header order. RFC 2231
    /// continuations and charset/language forms are left raw (e.g. `["title*0*", "us-ascii'en'..."]`).
    public var parameters: [[String]]
    /// Content-ID, raw; nil when absent or empty.
    public var id: String?
    /// Content-Description, raw (RFC 2047 not decoded); nil when absent or empty.
    public var description: String?
    /// Content-Transfer-Encoding, lowercased; default "7bit" (RFC 2045 §6.1).
    public var encoding: String
    /// Content-Disposition type, lowercased (RFC 2183); nil when absent or unparsable.
    public var disposition: String?
    public var dispositionParameters: [[String]]
    /// Content-Language tags (RFC 3282); nil when absent or empty.
    public var language: [String]?
    /// Content-Location (RFC 2557), raw; nil when absent or empty.
    public var location: String?
    /// Content-MD5 (RFC 1864), raw; nil when absent or empty.
    public var md5: String?
    public var headerStart: Int
    public var bodyStart: Int
    public var bodyEnd: Int
    /// Lines of `[bodyStart, bodyEnd)`: its LF count, so a last line without a line end (the one
    /// before a boundary, whose CRLF belongs to the delimiter) is not counted — as Dovecot, UW
    /// imapd and Cyrus count body-fld-lines. Computed for every part; IMAP reports it for text/*
    /// and message/rfc822.
    public var lines: Int
    /// Children of a multipart (never empty for type "multipart"); empty otherwise.
    public var parts: [BodyPart]
    /// The encapsulated message of a parsed message/rfc822 or message/global part. nil for a
    /// message/* part whose content is transfer-encoded (base64 / quoted-printable) and so was
    /// not parsed: IMAP then writes it as a basic body (no envelope).
    public var message: EncapsulatedMessage?

    public init(type: String = "text", subtype: String = "plain", parameters: [[String]] = [["charset", "us-ascii"]],
                id: String? = nil, description: String? = nil, encoding: String = "7bit",
                disposition: String? = nil, dispositionParameters: [[String]] = [], language: [String]? = nil,
                location: String? = nil, md5: String? = nil, headerStart: Int = 0, bodyStart: Int = 0,
                bodyEnd: Int = 0, lines: Int = 0, parts: [BodyPart] = [], message: EncapsulatedMessage? = nil) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
        self.id = id
        self.description = description
        self.encoding = encoding
        self.disposition = disposition
        self.dispositionParameters = dispositionParameters
        self.language = language
        self.location = location
        self.md5 = md5
        self.headerStart = headerStart
        self.bodyStart = bodyStart
        self.bodyEnd = bodyEnd
        self.lines = lines
        self.parts = parts
        self.message = message
    }

    /// First value of parameter `name` (case-insensitive) of the Content-Type.
    public func parameter(_ name: String) -> String? {
        let n = name.lowercased()
        for p in parameters where p.count >= 2 && p[0] == n { return p[1] }
        return nil
    }

    /// First value of parameter `name` (case-insensitive) of the Content-Disposition.
    public func dispositionParameter(_ name: String) -> String? {
        let n = name.lowercased()
        for p in dispositionParameters where p.count >= 2 && p[0] == n { return p[1] }
        return nil
    }
}

/// The message inside a message/rfc822 (or message/global) part. A final class with immutable
/// fields (so a value in practice) because BodyPart cannot contain itself directly.
/// `body.headerStart` equals the enclosing part's `bodyStart`, `body.bodyEnd` its `bodyEnd`.
public final class EncapsulatedMessage: Codable, Sendable, Equatable {
    public let envelope: Envelope
    public let body: BodyPart

    public init(envelope: Envelope, body: BodyPart) {
        self.envelope = envelope
        self.body = body
    }

    public static func == (lhs: EncapsulatedMessage, rhs: EncapsulatedMessage) -> Bool {
        lhs === rhs || (lhs.envelope == rhs.envelope && lhs.body == rhs.body)
    }
}

/// Everything the store keeps about one message's bytes.
public struct MessageInfo: Codable, Sendable, Equatable {
    /// Message size in bytes (RFC822.SIZE).
    public var size: Int
    /// Bytes of the top-level header including the blank separator line; equals `body.bodyStart`.
    public var headerSize: Int
    /// Lines of the whole message (its LF count, like `BodyPart.lines`).
    public var lines: Int
    public var envelope: Envelope
    /// Top-level body; `body.headerStart` is 0 and `body.bodyEnd` is `size`.
    public var body: BodyPart

    public init(size: Int, headerSize: Int, lines: Int, envelope: Envelope, body: BodyPart) {
        self.size = size
        self.headerSize = headerSize
        self.lines = lines
        self.envelope = envelope
        self.body = body
    }
}
