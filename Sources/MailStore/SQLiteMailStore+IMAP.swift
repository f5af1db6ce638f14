// MailboxStore's IMAP operations on SQLite. STUB: every call fails until the implementation lands.
import Foundation
import GRDB

extension SQLiteMailStore {
    private func unimplemented() -> StoreError { StoreError(.temporary, "not implemented") }
    public func createMailbox(user: Int64, name: String, specialUse: String) throws -> MailboxSummary { throw unimplemented() }
    public func deleteMailbox(user: Int64, name: String) throws { throw unimplemented() }
    public func renameMailbox(user: Int64, from: String, to: String) throws { throw unimplemented() }
    public func subscriptions(user: Int64) throws -> [String] { throw unimplemented() }
    public func setSubscribed(user: Int64, name: String, _ subscribed: Bool) throws { throw unimplemented() }
    public func status(user: Int64, name: String) throws -> MailboxStatus? { throw unimplemented() }
    public func view(user: Int64, mailbox: Int64) throws -> MailboxView { throw unimplemented() }
    public func delta(user: Int64, mailbox: Int64, since: UInt64, limit: Int) throws -> MailboxDelta { throw unimplemented() }
    public func details(user: Int64, mailbox: Int64, uids: [UInt32]) throws -> [MessageDetails] { throw unimplemented() }
    public func read(user: Int64, mailbox: Int64, uid: UInt32, offset: Int, length: Int) throws -> [UInt8] { throw unimplemented() }
    public func storeFlags(user: Int64, mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags,
                           keywords: [String], unchangedSince: UInt64?) throws -> (FlagUpdate, [MailboxChange]) { throw unimplemented() }
    public func copy(user: Int64, from: Int64, uids: [UInt32], to: Int64, move: Bool) throws -> (CopyResult, [MailboxChange]) { throw unimplemented() }
    public func expunge(user: Int64, mailbox: Int64, uids: [UInt32]?) throws -> ([UInt32], [MailboxChange]) { throw unimplemented() }
    public func append(user: Int64, mailbox: Int64, flags: SystemFlags, keywords: [String], internalDate: Int64?, body: [UInt8],
                       completion: @escaping @Sendable (Result<(AppendResult, [MailboxChange]), Error>) -> Void) { completion(.failure(unimplemented())) }
    public func search(user: Int64, mailbox: Int64, query: SearchQuery) throws -> [UInt32] { throw unimplemented() }
}
