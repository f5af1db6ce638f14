// Connection roles (DESIGN §2). The store learns a connection's role from the master, never
// from the worker; what each role may ask is declared on each request (`static roles`) and
// checked once before dispatch. `Role.allowedRequests` shows the resulting table.
public enum Role: String, Sendable, CaseIterable {
    case lmtpd, smtpd, imapd, pop3d, lookupd, outbound, admin

    public var allowedRequests: Set<MessageType> { Set(MessageType.allCases.filter { $0.roles.contains(self) }) }
    public func may(_ t: MessageType) -> Bool { t == .hello || t.roles.contains(self) }
}

/// Shorthands for the `roles` of requests.
extension Set where Element == Role {
    public static let workersThatDeliver: Set<Role> = [.lmtpd, .smtpd]
    public static let sessionRoles: Set<Role> = [.smtpd, .imapd, .pop3d]
    public static let mailboxRoles: Set<Role> = [.imapd, .pop3d]
    public static let adminOnly: Set<Role> = [.admin]
    public static let none: Set<Role> = []
}
