// The MailStore protocol (DESIGN §3): what the store process offers, independent of SQLite,
// so a PostgreSQL-backed implementation can stand in later. All methods may block.
import MailIPC

public struct StoreError: Error, CustomStringConvertible, Equatable {
    public var code: ErrorCode, message: String
    public init(_ code: ErrorCode, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}

public struct UserRef: Sendable, Equatable, Hashable {
    public var id: Int64, address: String
    public init(id: Int64, address: String) { self.id = id; self.address = address }
}

/// Where mail for one envelope recipient goes.
public enum Resolution: Sendable, Equatable {
    case deliver(users: [UserRef], remote: [String])   // after alias expansion, deduplicated
    case unknownUser
    case notLocal
}

public struct MailboxChange: Sendable, Equatable {
    public var user: Int64, mailbox: String, uidNext: UInt32, exists: UInt32
}

public struct DeliveryOutcome: Sendable {
    public var statuses: [RecipientStatus]
    public var changes: [MailboxChange]
}

public protocol MailStore: AnyObject, Sendable {
    func resolve(_ address: String) throws -> Resolution
    /// Durable delivery (DESIGN §3): completion runs after blob and metadata are fsynced.
    /// With a `submitter` (an authenticated submission) the sender must be one of the user's
    /// addresses and remote recipients are queued for outbound delivery; without one, only
    /// local recipients are accepted (never an open relay).
    func deliver(sender: String, recipients: [String], body: [UInt8], submitter: UserRef?,
                 completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void)
    func authenticate(_ address: String, password: String) throws -> UserRef?
    func user(named address: String) throws -> UserRef?
    func mailboxes(user: Int64) throws -> [MailboxInfo]

    func addDomain(_ name: String) throws
    func removeDomain(_ name: String) throws
    func domains() throws -> [String]
    func addUser(_ address: String, password: String) throws
    func removeUser(_ address: String) throws
    func setPassword(_ address: String, password: String) throws
    func users(domain: String) throws -> [String]
    func addAlias(_ source: String, target: String) throws
    func removeAlias(_ source: String, target: String) throws
    func aliases(domain: String) throws -> [[String]]
    func queue() throws -> [String]
    /// Postfix-style lookups for lookupd: map is recipients | aliases | domains | senders; nil = not found.
    func lookup(map: String, key: String) throws -> String?
    /// Calls `each` for every message of `user` (one mailbox, or all when nil), in mailbox/UID order.
    func export(user: Int64, mailbox: String?, each: (ExportedMessage, [UInt8]) throws -> Void) throws
}
