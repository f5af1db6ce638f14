// Postfix lookup-table semantics (DESIGN §4 lookupd) above the store's protocols: what each
// map answers, built on AccountStore's primitives, so any store implementation gets them.
import MailStore
import LookupProtocol

public struct PostfixMaps: Sendable {
    let accounts: any AccountStore
    public init(accounts: any AccountStore) { self.accounts = accounts }

    /// The value Postfix gets for `key` in `map`, or nil for "not found".
    public func lookup(_ map: LookupMap, key: String) throws -> String? {
        switch map {
        case .domains:
            return try accounts.hasDomain(key) ? "OK" : nil
        case .recipients:
            // Postfix asks "@domain" last: yes only for a catch-all.
            if key.hasPrefix("@") { return try accounts.hasCatchAll(domain: String(key.dropFirst())) ? "OK" : nil }
            if case .deliver = try accounts.resolve(key) { return "OK" }
            return nil
        case .aliases:
            // Exact entries only. Postfix does not retry tcp/socketmap tables with partial keys
            // (tcp_table(5)): "+detail" and catch-all forms are answered by the recipients map
            // and expanded by the store at delivery.
            let t = try accounts.aliasTargets(key)
            return t.isEmpty ? nil : t.joined(separator: ",")
        case .senders:
            // smtpd_sender_login_maps: which logins may use this address as sender.
            let logins = try accounts.senderLogins(key)
            return logins.isEmpty ? nil : logins.joined(separator: ",")
        }
    }
}
