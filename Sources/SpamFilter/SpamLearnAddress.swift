// The learning addresses of [spam] (learn_spam_address / learn_ham_address): "spam@" matches
// that local part at any domain the server serves, "spam@example.org" that address only.
import MailCore

public struct SpamLearnAddresses: Sendable, Equatable {
    public var spam: String
    public var ham: String

    public init(spam: String, ham: String) { self.spam = spam; self.ham = ham }
    public init(_ config: SpamConfig) { self.init(spam: config.learnSpamAddress, ham: config.learnHamAddress) }

    public var isEmpty: Bool { spam.isEmpty && ham.isEmpty }

    /// What mail to `recipient` teaches, nil when it is no learning address. The caller has
    /// already checked that the recipient's domain is local.
    public func kind(of recipient: String) -> LearnKind? {
        if Self.matches(spam, recipient) { return .spam }
        if Self.matches(ham, recipient) { return .ham }
        return nil
    }

    static func matches(_ pattern: String, _ address: String) -> Bool {
        guard !pattern.isEmpty, let at = address.lastIndex(of: "@") else { return false }
        let p = pattern.lowercased(), a = address.lowercased()
        if p.hasSuffix("@") { return a[...at] == p[...] }
        return a == p
    }
}
