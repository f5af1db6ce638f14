// RFC 3461 (DSN) parameters of MAIL (RET, ENVID) and RCPT (NOTIFY, ORCPT): the values the
// engine keeps in the envelope and their pure, strict parsers (501 5.5.4 on any malformed value).
import MailSyntax

/// MAIL's DSN parameters (RFC 3461 §4.3, §4.4).
public struct MailDSNParameters: Sendable, Equatable {
    /// RET: what a failure DSN returns of the message.
    public enum Return: String, Sendable, Equatable {
        case full = "FULL"
        case headers = "HDRS"
    }
    public var ret: Return?
    /// ENVID with its xtext decoded (printable US-ASCII).
    public var envelopeID: String?
    public init(ret: Return? = nil, envelopeID: String? = nil) { self.ret = ret; self.envelopeID = envelopeID }
}

/// RCPT's DSN parameters (RFC 3461 §4.1, §4.2).
public struct RcptDSNParameters: Sendable, Equatable {
    /// NOTIFY conditions; the empty set is NEVER. Raw values are the queue's (MailModel
    /// QueueRecipientDSN.notify).
    public struct Notify: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let success = Notify(rawValue: 1)
        public static let failure = Notify(rawValue: 2)
        public static let delay = Notify(rawValue: 4)
    }
    /// nil: NOTIFY not given.
    public var notify: Notify?
    /// ORCPT as "addr-type;address" with the address's xtext decoded; nil: not given.
    public var originalRecipient: String?
    public init(notify: Notify? = nil, originalRecipient: String? = nil) {
        self.notify = notify; self.originalRecipient = originalRecipient
    }
}

enum DSNParameterParser {
    /// RFC 3461 §4.4: "The ENVID parameter … MUST NOT exceed 100 characters".
    static let maxEnvelopeID = 100
    /// RFC 3461 §4.2: the ORCPT parameter's value "MUST NOT exceed 500 characters".
    static let maxOriginalRecipient = 500
    /// What a command line may grow by when DSN is offered: RFC 3461 §4.2 adds 500 characters
    /// to RCPT (ORCPT) and §4.4 100 to MAIL (ENVID); the keywords and NOTIFY/RET are extra.
    static let commandLineAllowance = maxOriginalRecipient + " ORCPT= NOTIFY=SUCCESS,FAILURE,DELAY".utf8.count

    // ret-value = "FULL" / "HDRS"                                   (RFC 3461 §4.3)
    static func ret(_ value: String?) -> MailDSNParameters.Return? {
        value.flatMap { MailDSNParameters.Return(rawValue: $0.uppercased()) }
    }

    // envid-value = xtext, at most 100 characters, printable US-ASCII once decoded (§4.4)
    static func envelopeID(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= maxEnvelopeID,
              let decoded = XText.decode(value.utf8), decoded.allSatisfy(isPrintable) else { return nil }
        return String(decoding: decoded, as: UTF8.self)
    }

    // notify-esmtp-value  = "NEVER" / 1#notify-list-element       (RFC 3461 §4.1)
    // notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"
    // "NEVER" MUST NOT appear with any other keyword; a repeated element is refused too.
    static func notify(_ value: String?) -> RcptDSNParameters.Notify? {
        guard let value, !value.isEmpty else { return nil }
        let words = value.uppercased().split(separator: ",", omittingEmptySubsequences: false)
        if words == ["NEVER"] { return [] }
        var set: RcptDSNParameters.Notify = []
        for word in words {
            let element: RcptDSNParameters.Notify
            switch word {
            case "SUCCESS": element = .success
            case "FAILURE": element = .failure
            case "DELAY": element = .delay
            default: return nil
            }
            guard !set.contains(element) else { return nil }
            set.insert(element)
        }
        return set
    }

    // orcpt-parameter = "ORCPT=" original-recipient-address          (RFC 3461 §4.2)
    // original-recipient-address = addr-type ";" xtext
    // addr-type = atom                      ; "rfc822", "utf-8" (RFC 6533) …
    // At most 500 characters; the decoded address printable US-ASCII (§4.2). In an SMTPUTF8
    // transaction a "utf-8" address may also be utf-8-addr-unitext (RFC 6533 §3): kept as sent.
    static func originalRecipient(_ value: String?, smtpUTF8: Bool = false) -> String? {
        guard let value, value.utf8.count <= maxOriginalRecipient, let semi = value.utf8.firstIndex(of: ASCII.semicolon) else { return nil }
        let type = value.utf8[..<semi], address = value.utf8[value.utf8.index(after: semi)...]
        guard !type.isEmpty, type.allSatisfy(ASCII.isAtext), !address.isEmpty else { return nil }
        let typeName = String(decoding: type, as: UTF8.self)
        if smtpUTF8, typeName.lowercased() == "utf-8", address.contains(where: { $0 >= 0x80 }) {
            return isUnitext(address) ? value : nil
        }
        guard let decoded = XText.decode(address), decoded.allSatisfy(isPrintable) else { return nil }
        return typeName + ";" + String(decoding: decoded, as: UTF8.self)
    }

    // utf-8-addr-unitext = 1*(QUCHAR / EmbeddedUnicodeChar)          (RFC 6533 §3)
    // QUCHAR = QCHAR / UTF8-2 / UTF8-3 / UTF8-4
    // QCHAR  = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e                  ; not "+", "=", "\"
    // EmbeddedUnicodeChar = %x5C.78 "{" HEXPOINT "}"                  ; "\x{…}", checked loosely
    // The value is valid UTF-8 already (the parameter parser checked it).
    static func isUnitext<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") {
                // "\x{" 2–6 hex digits "}"
                var j = bytes.index(after: i), digits = 0
                guard j != bytes.endIndex, bytes[j] == UInt8(ascii: "x") else { return false }
                j = bytes.index(after: j)
                guard j != bytes.endIndex, bytes[j] == UInt8(ascii: "{") else { return false }
                j = bytes.index(after: j)
                while j != bytes.endIndex, XText.hexValue(bytes[j]) != nil { digits += 1; j = bytes.index(after: j) }
                guard (2...6).contains(digits), j != bytes.endIndex, bytes[j] == UInt8(ascii: "}") else { return false }
                i = bytes.index(after: j)
                continue
            }
            guard b >= 0x80 || (b >= 0x21 && b <= 0x7E && b != UInt8(ascii: "+") && b != UInt8(ascii: "=")) else { return false }
            i = bytes.index(after: i)
        }
        return true
    }

    static func isPrintable(_ b: UInt8) -> Bool { b >= 32 && b <= 126 }
}
