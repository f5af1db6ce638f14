// QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and SETQUOTA for the logged-in user. One quota root
// per user, named "" (RFC 9208's own examples' name): every mailbox of the user is under it, as
// the store keeps one set of limits and counters per user. Administrators set limits with
// `postern user quota`; SETQUOTA is refused (RFC 9208 §4.1.3 lets a server do so, and QUOTASET
// is not advertised).
import IMAPProtocol
import MailModel

extension IMAPSession {
    /// The name of the user's one quota root.
    static let quotaRoot = ""
    static let quotaCapabilities = ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"]

    /// RFC 9208 §4.2: the root's usage and limits.
    func getQuota(root: String) async throws -> Completion {
        let q = try await services.quota()
        guard root == Self.quotaRoot, q.isLimited else { return .no("No such quota root", code: "NONEXISTENT") }
        await emit(Self.quotaResponse(q))
        return .ok("Getquota completed")
    }

    /// RFC 9208 §4.3: the roots of the mailbox (none while the user has no limit), then each
    /// root's QUOTA response.
    func getQuotaRoot(mailbox raw: String) async throws -> Completion {
        let name: String
        do { name = try validName(raw) } catch { return .no("Mailbox does not exist", code: "NONEXISTENT") }
        guard try await services.status(name) != nil else { return .no("Mailbox does not exist", code: "NONEXISTENT") }
        let q = try await services.quota()
        var w = writer()
        w.raw("* QUOTAROOT "); w.mailbox(name)
        if q.isLimited { w.raw(" "); w.string(Self.quotaRoot) }
        w.crlf()
        await emit(w)
        if q.isLimited { await emit(Self.quotaResponse(q)) }
        return .ok("Getquotaroot completed")
    }

    /// RFC 9208 §4.1: limits are the administrator's (`postern user quota`).
    func setQuota() -> Completion {
        .no("Quotas are set by the administrator", code: "NOPERM")
    }

    /// RFC 9208 §5.1: `* QUOTA "" (STORAGE used limit MESSAGE used limit)`, STORAGE in units of
    /// 1024 octets. Only limited resources are listed: the grammar has no "unlimited" value.
    static func quotaResponse(_ q: QuotaUsage) -> String {
        var resources: [String] = []
        if let l = q.storageLimit { resources.append("STORAGE \(QuotaUsage.kibibytes(q.bytes)) \(QuotaUsage.kibibytes(l))") }
        if let l = q.messageLimit { resources.append("MESSAGE \(q.messages) \(l)") }
        return "* QUOTA \"\(quotaRoot)\" (\(resources.joined(separator: " ")))"
    }
}
