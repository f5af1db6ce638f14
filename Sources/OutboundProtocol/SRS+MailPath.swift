// SRS (MailSyntax/SRS.swift, shared with the store) over this module's MailPath and Date, and
// postsrsd's text secrets: the API the outbound side and its tests use.
import Foundation
import MailSyntax
import SMTPProtocol

public typealias SRS = MailSyntax.SRS

extension MailSyntax.SRS {
    /// Text secrets, as postsrsd's secrets file holds them (one per line, the first signs).
    public init(secrets: [String], domain: String, hmac: @escaping HMAC, hashLength: Int = defaultHashLength,
                maxAgeDays: Int = defaultMaxAgeDays, separator: Character = "=", alwaysRewrite: Bool = false) {
        self.init(secretKeys: secrets.map { Array($0.utf8) }, domain: domain, hmac: hmac, hashLength: hashLength,
                  maxAgeDays: maxAgeDays, separator: separator, alwaysRewrite: alwaysRewrite)
    }

    public func forward(sender: MailPath, now: Date) -> MailPath {
        let a = forward(Address(localPart: sender.localPart, domain: sender.domain), at: Self.seconds(now))
        return a.localPart == sender.localPart && a.domain == sender.domain ? sender : MailPath(localPart: a.localPart, domain: a.domain)
    }

    public func reverse(address: MailPath, now: Date) throws(Error) -> MailPath {
        let a = try reverse(Address(localPart: address.localPart, domain: address.domain), at: Self.seconds(now))
        return MailPath(localPart: a.localPart, domain: a.domain)
    }

    static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
}
