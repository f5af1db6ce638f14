// A `listen` entry of a service whose listeners have roles ("imaps@[::]:993", "pop3@…"):
// one type and one parser for [imap] and [pop3].

/// One `listen` entry: a role and an address. Its text ("imap@127.0.0.1:143") is also the
/// listener's key in the service table and its name in the fd contract.
public struct RoleListener<Role>: Sendable, Equatable, CustomStringConvertible
where Role: RawRepresentable & CaseIterable & Sendable & Equatable, Role.RawValue == String {
    public var role: Role
    public var address: ListenAddress
    public init(_ role: Role, _ address: ListenAddress) { self.role = role; self.address = address }
    public var description: String { "\(role.rawValue)@\(address)" }

    /// "ROLE@ADDRESS" (`example` shows one in the error).
    static func parse(_ entry: String, _ s: TableReader, _ context: ConfigContext, example: String) throws -> RoleListener {
        let roles = Role.allCases.map(\.rawValue).joined(separator: " or ")
        guard let at = entry.firstIndex(of: "@"), let role = Role(rawValue: String(entry[..<at])) else {
            throw s.error("listen", "\"\(entry)\" does not start with a role: \(roles), then @ and the address (\(example))")
        }
        guard let address = ListenAddress(parsing: String(entry[entry.index(after: at)...]), relativeTo: context.runDir) else {
            throw s.error("listen", "\"\(entry)\": the address is not unix:/path, HOST:PORT or [V6]:PORT")
        }
        return RoleListener(role, address)
    }
}
