// [quota]: how deliveries to a user over a quota limit (RFC 9208, issue 11) are answered. The
// limits themselves are per user, set with `postern user quota` and kept by the store.

public struct QuotaConfig: Sendable, Equatable {
    /// false (the default): `552 5.2.2` — permanent, the sender is told at once that the mail
    /// did not arrive. true: `452 4.2.2` — senders retry for days, which helps only if a full
    /// mailbox is soon emptied, and hides the problem from them meanwhile (Dovecot's
    /// quota_full_tempfail, also off by default).
    public var fullTempfail = false

    public init() {}
}

extension QuotaConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        fullTempfail = try s.bool("full_tempfail") ?? fullTempfail
    }
}
