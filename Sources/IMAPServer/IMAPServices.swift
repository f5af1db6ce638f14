// What the IMAP engine asks of the store (DESIGN §4: engine, services, glue), in the mailbox
// domain's terms (MailModel). RPCIMAPServices answers over the store RPC (the imapd role,
// every call scoped to the store session of this connection's login); tests run the same
// engine over the real store in-process. Calls may be made from any task; errors are
// IMAPServiceError, whose kind the session turns into NO/BAD with a response code.
import MailModel
import MailWorker

/// The store's answer to a login (tempFail is [UNAVAILABLE]).
public typealias IMAPAuthOutcome = StoreLoginOutcome

public struct IMAPServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound       // [NONEXISTENT] / [TRYCREATE] depending on the command
        case exists         // [ALREADYEXISTS]
        case denied         // [CANNOT] / [NOPERM]
        case invalid        // [CANNOT] / BAD
        case limit          // [LIMIT]
        case temporary      // [UNAVAILABLE]: the store is unreachable or did not answer in time
        case overQuota      // [OVERQUOTA] (RFC 9208): APPEND or COPY would cross a limit
    }
    public var kind: Kind, message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// A watch on a mailbox (DESIGN §2 notify-then-pull): `onChange` runs, at most once per pull,
/// when something in the mailbox changed past the MODSEQ the session last pulled.
public protocol IMAPWatch: AnyObject, Sendable {
    func cancel()
}

/// One instance per connection: after `authenticate` succeeds, every other call acts for that
/// user only. `close` ends the store session (fire and forget).
public protocol IMAPServices: AnyObject, Sendable {
    /// Verifies the credentials (never logged) of a login from `client`, whose failures the store
    /// counts (DESIGN §5).
    func authenticate(user: String, password: String, client: String) async -> IMAPAuthOutcome
    func close()

    func mailboxes() async throws -> [MailboxSummary]
    func subscriptions() async throws -> [String]
    func setSubscribed(_ name: String, _ subscribed: Bool) async throws
    func createMailbox(_ name: String, specialUse: String) async throws
    func deleteMailbox(_ name: String) async throws
    func renameMailbox(from: String, to: String) async throws
    /// nil when there is no such mailbox.
    func status(_ name: String) async throws -> MailboxStatus?

    /// SELECT: the mailbox by name and its whole view (streamed from the store).
    func select(_ name: String) async throws -> MailboxView
    /// Starts notifications for a selected mailbox (`onChange` gets the HIGHESTMODSEQ reached).
    func watch(mailbox: Int64, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> any IMAPWatch
    /// `select` then `watch` of the mailbox selected, in as few round trips as the services can.
    func selectWatching(_ name: String, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> (MailboxView, any IMAPWatch)
    func delta(mailbox: Int64, since: UInt64, limit: Int) async throws -> MailboxDelta
    func details(mailbox: Int64, uids: [UInt32]) async throws -> [MessageDetails]
    /// The same in as few round trips as the services can, `info` empty unless asked, each with
    /// its top-level header (`whole` false) or whole bytes when at most `prefixLimit` bytes
    /// (`withPrefix`), else nil; with `fields`, the header kept to those fields by the store.
    /// Default (FetchPlan.swift): details only.
    func details(mailbox: Int64, uids: [UInt32], info: Bool, withPrefix: Bool, whole: Bool,
                 prefixLimit: Int, fields: HeaderFieldSelection?) async throws -> [(MessageDetails, [UInt8]?)]
    /// Bytes of a message by range (DESIGN §2: bodies are read by range, chunks of at most
    /// `maxReadChunk`).
    func read(mailbox: Int64, uid: UInt32, offset: Int, length: Int) async throws -> [UInt8]
    func storeFlags(mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags,
                    keywords: [String], unchangedSince: UInt64?) async throws -> FlagUpdate
    /// `to` is a mailbox name (`.notFound` → the session answers [TRYCREATE]).
    func copy(mailbox: Int64, uids: [UInt32], to: String, move: Bool) async throws -> CopyResult
    func expunge(mailbox: Int64, uids: [UInt32]?) async throws -> [UInt32]
    /// Durable when it returns (DESIGN §3). `to` by name ([TRYCREATE] when missing).
    func append(to: String, flags: SystemFlags, keywords: [String], internalDate: Int64?, body: [UInt8]) async throws -> AppendResult
    func search(mailbox: Int64, query: SearchQuery) async throws -> [UInt32]
    /// The logged-in user's quota limits and usage (RFC 9208).
    func quota() async throws -> QuotaUsage
    /// SORT (RFC 5256): the matching UIDs in sort order.
    func sort(mailbox: Int64, criteria: [SortCriterion], query: SearchQuery) async throws -> [UInt32]
    /// THREAD (RFC 5256): the matching UIDs as threads.
    func thread(mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery) async throws -> ThreadForest
}

/// The largest range one `read` asks for (keeps the store connection fair, DESIGN §2).
public let maxReadChunk = 256 * 1024

extension IMAPServices {
    /// One after the other.
    public func selectWatching(_ name: String, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> (MailboxView, any IMAPWatch) {
        let view = try await select(name)
        return (view, try await watch(mailbox: view.summary.id, onChange: onChange))
    }
}
