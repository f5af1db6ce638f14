// What the POP3 engine's driver asks of the store (DESIGN §4: engine, services, glue).
// RPCPOP3Services answers over the store RPC (role pop3d, every call scoped to the store session
// of this connection's login, INBOX only); tests run the same driver over the real store
// in-process. Errors are POP3ServiceError, which the driver turns into -ERR with a code.
import NIOCore
import MailWorker
import POP3Protocol

/// The store's answer to a login.
public typealias POP3AuthOutcome = StoreLoginOutcome   // tempFail is [SYS/TEMP]

public struct POP3ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case inUse          // another session holds the maildrop lock: [IN-USE]
        case notFound       // the message is gone
        case denied
        case temporary      // the store is unreachable or did not answer in time: [SYS/TEMP]
    }
    public var kind: Kind, message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// One instance per connection: after `authenticate` succeeds, every other call acts for that
/// user's INBOX only. `close` ends the store session (which releases the lock).
public protocol POP3Services: AnyObject, Sendable {
    /// Verifies the credentials (never logged) of a login from `client` (DESIGN §5).
    func authenticate(user: String, password: String, client: String) async -> POP3AuthOutcome
    /// RFC 1939 §4: takes the exclusive maildrop lock (`.inUse` when another session holds
    /// it), then the snapshot of INBOX: its messages in UID order and their sizes.
    func openMaildrop() async throws -> POP3Maildrop
    /// The stored header size (header and its blank line) of a message, for TOP.
    func headerSize(mailbox: Int64, uid: UInt32) async throws -> Int
    /// Bytes `[offset, offset + length)` of a message, cut at its end (one store read).
    func read(mailbox: Int64, uid: UInt32, offset: Int, length: Int) async throws -> [UInt8]
    /// Whole bodies of the `uids` that are at most `maxSize` bytes (read-ahead for RETR in
    /// order); UIDs left out are read with `read` when asked for.
    func readAhead(mailbox: Int64, uids: [UInt32], maxSize: Int) async throws -> [UInt32: ByteBuffer]
    /// RFC 1939 §6: expunges exactly these UIDs in one transaction; returns those removed.
    func delete(mailbox: Int64, uids: [UInt32]) async throws -> [UInt32]
    func close()
}

/// The largest range one `read` asks for.
public let pop3ReadChunk = 256 * 1024
