// The store's protocols (DESIGN §3), split by concern, in store-domain types that know nothing
// of the RPC wire format or of Postfix: the store server holds `any` of them and maps to the
// wire; a PostgreSQL implementation later passes the same conformance suite. Methods may block.

@_exported import MailModel

/// What went wrong, in the store's own terms (the server maps kinds to RPC error codes).
public enum StoreErrorKind: Sendable, Equatable {
    case notFound, exists, invalid, denied, temporary
    /// A quota limit (RFC 9208) refuses it: IMAP `NO [OVERQUOTA]`.
    case overQuota
}

public struct StoreError: Error, CustomStringConvertible, Equatable {
    public var code: StoreErrorKind, message: String
    public init(_ code: StoreErrorKind, _ message: String) { self.code = code; self.message = message }
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

/// What became of one recipient of a delivery.
public enum DeliveryStatus: Sendable, Equatable {
    case delivered, unknownUser, notLocal, tempFail, overQuota
}

/// A mailbox whose contents a delivery changed.
public struct MailboxChange: Sendable, Equatable {
    public var user: Int64, mailboxID: Int64, mailbox: String, uidNext: UInt32, exists: UInt32, highestModSeq: UInt64
    public init(user: Int64, mailboxID: Int64, mailbox: String, uidNext: UInt32, exists: UInt32, highestModSeq: UInt64) {
        self.user = user; self.mailboxID = mailboxID; self.mailbox = mailbox; self.uidNext = uidNext; self.exists = exists; self.highestModSeq = highestModSeq
    }
}

public struct DeliveryOutcome: Sendable {
    public var statuses: [DeliveryStatus]
    public var changes: [MailboxChange]
    /// Queue rows the delivery added (remote recipients): the server wakes the outbound agent.
    public var queued: Int
    public init(statuses: [DeliveryStatus], changes: [MailboxChange], queued: Int = 0) {
        self.statuses = statuses; self.changes = changes; self.queued = queued
    }
}

/// What a queue report changed besides the queue rows it names: the mailboxes its notice went
/// into (IMAP watchers are told) and the rows it queued (a notice to a remote sender).
public struct QueueReportOutcome: Sendable, Equatable {
    public var changes: [MailboxChange]
    public var queued: Int
    public init(changes: [MailboxChange] = [], queued: Int = 0) { self.changes = changes; self.queued = queued }
}

/// A message of a mailbox whose MODSEQ is above some value: new, or its flags changed.
public struct MessageChange: Sendable, Equatable {
    public var uid: UInt32, modSeq: UInt64, flags: UInt32
    public init(uid: UInt32, modSeq: UInt64, flags: UInt32) {
        self.uid = uid; self.modSeq = modSeq; self.flags = flags
    }
}

/// A message as export lists it; `body` is an opaque reference for `body(_:)`.
public struct StoredMessage: Sendable, Equatable {
    public var mailbox: String, uid: UInt32, internalDate: Int64, sender: String, size: UInt64, body: Int64
    public init(mailbox: String, uid: UInt32, internalDate: Int64, sender: String, size: UInt64, body: Int64) {
        self.mailbox = mailbox; self.uid = uid; self.internalDate = internalDate; self.sender = sender; self.size = size; self.body = body
    }
}

public struct AliasRecord: Sendable, Equatable {
    /// "local@domain", or "@domain" for the catch-all.
    public var source: String, target: String
    public init(source: String, target: String) {
        self.source = source; self.target = target
    }
}

public struct QueuedRecipient: Sendable, Equatable {
    public var id: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: Int, lastError: String
    public init(id: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: Int, lastError: String) {
        self.id = id; self.sender = sender; self.recipient = recipient; self.created = created; self.nextAttempt = nextAttempt; self.attempts = attempts; self.lastError = lastError
    }
}

/// Domains, users, aliases and authentication.
public protocol AccountStore: AnyObject, Sendable {
    func resolve(_ address: String) throws -> Resolution
    func authenticate(_ address: String, password: String) throws -> UserRef?
    func user(named address: String) throws -> UserRef?

    func addDomain(_ name: String) throws
    func removeDomain(_ name: String) throws
    func domains() throws -> [String]
    func hasDomain(_ name: String) throws -> Bool
    func addUser(_ address: String, password: String) throws
    func removeUser(_ address: String) throws
    func setPassword(_ address: String, password: String) throws
    /// The user's spam setting: marked mail to Junk (true, the default) or to INBOX.
    func setSpamToJunk(_ address: String, _ on: Bool) throws
    func users(domain: String) throws -> [String]
    func addAlias(_ source: String, target: String) throws
    func removeAlias(_ source: String, target: String) throws
    func aliases(domain: String) throws -> [AliasRecord]

    /// The logins (user addresses) that may use `address` as envelope sender: the user it names
    /// (also with "+detail"), and every user an alias of that name reaches. A catch-all grants nothing.
    func senderLogins(_ address: String) throws -> [String]
    /// The targets of exactly this alias source ("local@domain" or "@domain"), in creation order.
    func aliasTargets(_ source: String) throws -> [String]
    func hasCatchAll(domain: String) throws -> Bool
}

/// A message body being received (DESIGN §3): appended as it arrives — a small one in memory
/// (no more than the store would keep in its row), a larger one to a temporary file, never held
/// whole in memory; it becomes the stored body through `deliver(…staged:…)` or is
/// discarded. Temporary files that outlive their process are cleared by `sweep`.
public protocol StagedBody: AnyObject, Sendable {
    /// Bytes appended so far.
    var size: Int { get }
    /// Appends the next bytes of the body (calls one at a time, in body order).
    func append(_ bytes: UnsafeRawBufferPointer) throws
    /// Drops the body and its temporary file; idempotent, and harmless after a delivery took it.
    func discard()
    /// Whether appending `count` more bytes touches the disk (false: a cheap copy in memory,
    /// fine on an event loop). Implementations that always write say true.
    func needsIO(appending count: Int) -> Bool
}

/// What a delivery carries besides its sender, recipients and body: the RFC 3461 parameters
/// the queue keeps for the remote recipients it queues (smtpd's submission roles give them).
public struct DeliveryOptions: Sendable, Equatable {
    /// RET and ENVID of MAIL.
    public var envelopeDSN: QueueEnvelopeDSN
    /// NOTIFY and ORCPT per recipient of the delivery, in order; empty: none given. An alias
    /// that expands to several remote targets gives each of them its recipient's parameters.
    public var recipientDSN: [QueueRecipientDSN]
    /// Local copies go to this mailbox instead of INBOX (spam filtering's Junk, issue 14); nil: INBOX.
    public var mailbox: DeliveryMailbox?
    /// One answer covers every recipient (SMTP's reply to DATA, RFC 5321 §4.1.1.4, unlike
    /// LMTP's one per recipient): when a recipient cannot take the message (over quota), none
    /// gets it, so the single failure reply is true for all and a retry duplicates nothing.
    public var allOrNothing: Bool
    public init(envelopeDSN: QueueEnvelopeDSN = QueueEnvelopeDSN(), recipientDSN: [QueueRecipientDSN] = [], mailbox: DeliveryMailbox? = nil,
                allOrNothing: Bool = false) {
        self.envelopeDSN = envelopeDSN; self.recipientDSN = recipientDSN; self.mailbox = mailbox; self.allOrNothing = allOrNothing
    }
    /// The parameters of recipient `index`.
    public func dsn(ofRecipient index: Int) -> QueueRecipientDSN {
        index < recipientDSN.count ? recipientDSN[index] : QueueRecipientDSN()
    }
}

/// Durable delivery (DESIGN §3).
public protocol DeliveryStore: AnyObject, Sendable {
    /// A new, empty staged body for `deliver(…staged:…)`.
    func stageBody() throws -> any StagedBody
    /// `deliver(…body:…)` with a body staged by this store's `stageBody()`. The delivery takes the
    /// staged body over: it becomes the stored body, or is discarded when the delivery fails.
    func deliver(sender: String, recipients: [String], staged: any StagedBody, submitter: UserRef?, options: DeliveryOptions,
                 completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void)
    /// `completion` runs after blob and metadata are fsynced. With a `submitter` (an
    /// authenticated submission) the sender must be one of the user's `senderLogins` and remote
    /// recipients are queued for outbound delivery (origin submission); without one, only local
    /// recipients are accepted (never an open relay), and the remote targets of local aliases
    /// are queued as forwards with the sender SRS-rewritten when the store has SRS configured.
    func deliver(sender: String, recipients: [String], body: [UInt8], submitter: UserRef?, options: DeliveryOptions,
                 completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void)
    /// Start-up sweep: drops bodies nothing references. Must run before the store serves anyone.
    @discardableResult func sweep() throws -> (rows: Int, blobs: Int)
}

extension DeliveryStore {
    /// A delivery without RFC 3461 parameters.
    public func deliver(sender: String, recipients: [String], staged: any StagedBody, submitter: UserRef?,
                        completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void) {
        deliver(sender: sender, recipients: recipients, staged: staged, submitter: submitter, options: DeliveryOptions(), completion: completion)
    }

    /// A delivery without RFC 3461 parameters.
    public func deliver(sender: String, recipients: [String], body: [UInt8], submitter: UserRef?,
                        completion: @escaping @Sendable (Result<DeliveryOutcome, Error>) -> Void) {
        deliver(sender: sender, recipients: recipients, body: body, submitter: submitter, options: DeliveryOptions(), completion: completion)
    }
}

/// Mailboxes and their messages (IMAP, POP3, export).
public protocol MailboxStore: AnyObject, Sendable {
    func mailboxes(user: Int64) throws -> [MailboxSummary]
    func mailbox(user: Int64, name: String) throws -> MailboxSummary?
    /// Messages of mailbox `id` with MODSEQ above `since`, in MODSEQ order, at most `limit`;
    /// `complete` false when there are more. Nil when the mailbox is gone.
    func changes(mailbox id: Int64, since: UInt64, limit: Int) throws -> (summary: MailboxSummary, messages: [MessageChange], complete: Bool)?
    /// Every message of `user` (one mailbox, or all when nil), in mailbox/UID order.
    func messages(user: Int64, mailbox: String?) throws -> [StoredMessage]
    /// The bytes of a message `messages` listed.
    func body(_ ref: Int64) throws -> [UInt8]

    // MARK: IMAP (DESIGN §9). Every call names the user a session authenticated; a mailbox id
    // that is not that user's mailbox is `.notFound`, exactly like one that does not exist.
    // Mutations bump the mailbox's HIGHESTMODSEQ and give each touched message the new MODSEQ;
    // they return the mailboxes they changed so the server can notify watchers (DESIGN §2).

    /// RFC 9051 §6.3.4. The name is already validated (MailboxName). `.exists` if taken.
    func createMailbox(user: Int64, name: String, specialUse: String) throws -> MailboxSummary
    /// RFC 9051 §6.3.5: removes the mailbox and its messages (bodies nothing else references go
    /// too). INBOX → `.denied`; a mailbox with children → `.denied` ("has children").
    func deleteMailbox(user: Int64, name: String) throws
    /// RFC 9051 §6.3.6: renames the mailbox and every child ("a/b" with "a"); `.exists` if the
    /// target or a child's target is taken. Renaming INBOX moves its messages to a new mailbox
    /// of that name and leaves INBOX empty (same UIDVALIDITY for INBOX).
    func renameMailbox(user: Int64, from: String, to: String) throws
    /// Subscriptions are names, apart from mailboxes (RFC 9051 §6.3.7): a name may be
    /// subscribed that does not exist.
    func subscriptions(user: Int64) throws -> [String]
    func setSubscribed(user: Int64, name: String, _ subscribed: Bool) throws
    /// STATUS of a mailbox by name; nil when it does not exist.
    func status(user: Int64, name: String) throws -> MailboxStatus?
    /// SELECT: the whole view in one read transaction (consistent).
    func view(user: Int64, mailbox: Int64) throws -> MailboxView
    /// Changes with MODSEQ above `since` (at most `limit` changed entries) and expunged UIDs
    /// whose tombstone MODSEQ is above it.
    func delta(user: Int64, mailbox: Int64, since: UInt64, limit: Int) throws -> MailboxDelta
    /// Details of the given UIDs (ascending), skipping UIDs that are gone.
    func details(user: Int64, mailbox: Int64, uids: [UInt32]) throws -> [MessageDetails]
    /// The same, `info` left empty unless asked, each with its top-level header or whole bytes
    /// (`prefix`) when they are at most `prefixLimit` bytes (else nil). Default: details only.
    func details(user: Int64, mailbox: Int64, uids: [UInt32], info: Bool, prefix: MessagePrefix?, prefixLimit: Int) throws -> [(MessageDetails, [UInt8]?)]
    /// Bytes `[offset, offset + length)` of a message's body, cut at its end; `.notFound` when
    /// the UID is gone.
    func read(user: Int64, mailbox: Int64, uid: UInt32, offset: Int, length: Int) throws -> [UInt8]
    /// Whole bodies of those `uids` present that are at most `maxSize` bytes, in one read
    /// transaction (POP3 read-ahead); the others are left out.
    func bodies(user: Int64, mailbox: Int64, uids: [UInt32], maxSize: Int) throws -> [(uid: UInt32, bytes: [UInt8])]
    /// STORE (RFC 9051 §6.4.6) on the UIDs present; a keyword the mailbox has not named yet
    /// gets the next id (`.invalid` "too many keywords" past `maxKeywordsPerMailbox`). With
    /// `unchangedSince`, messages whose MODSEQ is above it are left alone and reported in
    /// `modified`. Entries whose flags did not actually change are not in `changed` and keep
    /// their MODSEQ.
    func storeFlags(user: Int64, mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags,
                    keywords: [String], unchangedSince: UInt64?) throws -> (FlagUpdate, [MailboxChange])
    /// COPY/MOVE of the UIDs present, in UID order; flags and keywords (by name) and the internal
    /// date go along. With `move` the sources are expunged (tombstoned) in the same transaction
    /// (RFC 6851). Durable before it returns.
    func copy(user: Int64, from: Int64, uids: [UInt32], to: Int64, move: Bool) throws -> (CopyResult, [MailboxChange])
    /// Expunges the messages among `uids` (all when nil) that have `\Deleted`; tombstones keep
    /// their UIDs and MODSEQ for VANISHED; bodies nothing references any more are removed
    /// (never shared ones). Returns the expunged UIDs, ascending.
    func expunge(user: Int64, mailbox: Int64, uids: [UInt32]?) throws -> ([UInt32], [MailboxChange])
    /// POP3's UPDATE state (RFC 1939 §6): expunges exactly the `uids` present, with `force`
    /// whatever their flags (without it, only those with `\Deleted`), in one transaction: all or
    /// none. Tombstones and body removal as `expunge`. Returns the expunged UIDs, ascending.
    func expunge(user: Int64, mailbox: Int64, uids: [UInt32], force: Bool) throws -> ([UInt32], [MailboxChange])
    /// APPEND with the durability contract of delivery (DESIGN §3): `completion` runs after body
    /// and metadata are fsynced (group commit with deliveries). `internalDate` nil: now.
    func append(user: Int64, mailbox: Int64, flags: SystemFlags, keywords: [String], internalDate: Int64?, body: [UInt8],
                completion: @escaping @Sendable (Result<(AppendResult, [MailboxChange]), Error>) -> Void)
    /// SEARCH (DESIGN §9): the UIDs matching, ascending.
    func search(user: Int64, mailbox: Int64, query: SearchQuery) throws -> [UInt32]
    /// SORT (RFC 5256 §3, RFC 5957): the UIDs matching `query` in the order of `criteria`.
    func sort(user: Int64, mailbox: Int64, criteria: [SortCriterion], query: SearchQuery) throws -> [UInt32]
    /// THREAD (RFC 5256 §3): the UIDs matching `query` as threads.
    func thread(user: Int64, mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery) throws -> ThreadForest
}

/// The outbound queue (DESIGN §4): the store owns it; the outbound agent claims due
/// recipients with a lease, reads bodies by range, and reports results (with the DSN to store
/// in the same transaction). A lease that runs out makes its rows claimable again, so a killed
/// agent loses nothing (at-least-once). `now` is seconds since the epoch.
public protocol QueueStore: AnyObject, Sendable {
    func queue() throws -> [QueuedRecipient]
    /// Now, in seconds since the epoch, by the store's clock (injected in tests): the `now` the
    /// store server passes to the calls below.
    var queueNow: Int64 { get }

    /// Claims, for `lease` seconds, the due rows (`next_attempt <= now`, not held, lease run
    /// out) of at most `limit` messages, oldest first, grouped by message.
    func claimQueue(now: Int64, lease: Int64, limit: Int) throws -> QueueClaim
    /// Bytes `[offset, offset + length)` of a queued message as it is sent: the stored body
    /// without its leading `Return-Path:` field (DESIGN §4). `.notFound` once no queue row
    /// names the message.
    func queueBody(message: Int64, offset: Int, length: Int) throws -> [UInt8]
    /// Records `results` (rows not leased to the caller any more are ignored: another agent
    /// has them) and stores `notice`, all in one durable transaction; `completion` runs after
    /// the fsync. Delivered and failed rows leave the queue; a body no row or mailbox
    /// references any more goes too.
    func reportQueue(_ results: [QueueResult], notice: QueueNotice?, now: Int64,
                     completion: @escaping @Sendable (Result<Void, Error>) -> Void)
    /// `reportQueue` that also says what the notice changed (the store server notifies the
    /// mailbox watchers and, for a queued notice, the queue watchers).
    func commitQueueReport(_ results: [QueueResult], notice: QueueNotice?, now: Int64,
                           completion: @escaping @Sendable (Result<QueueReportOutcome, Error>) -> Void)
    /// The queue as the administrator sees it, oldest first.
    func queueEntries() throws -> [QueueEntryInfo]
    /// A page of it: at most `limit` entries with a row id above `after`, in row id (queue) order.
    func queueEntries(after: Int64, limit: Int) throws -> [QueueEntryInfo]
    /// Applies `action` to the rows of `message` (every message for `.flush` with nil); returns
    /// how many rows it touched (0: no such message).
    @discardableResult func queueAdmin(_ action: QueueAdminAction, message: Int64?, now: Int64) throws -> Int
}

/// Per-user quotas (RFC 9208, issue 11): limits set by the administrator, usage kept exact in the
/// same transaction as every message row (SQLiteMailStore+Quota.swift). Deliveries, APPEND and
/// COPY that would cross a limit are refused with nothing stored (`.overQuota`, or the
/// recipient's `DeliveryStatus.overQuota`); MOVE, expunges and deletions are never refused.
public protocol QuotaStore: AnyObject, Sendable {
    /// The limits and usage of user `user` (an authenticated session's).
    func quota(user: Int64) throws -> QuotaUsage
    /// The same by address (admin); `.notFound` when there is no such user.
    func quota(_ address: String) throws -> QuotaUsage
    /// Changes the limits of `address` (admin); returns the result. A limit below the usage is
    /// kept: the user receives nothing until expunges bring usage back under it.
    @discardableResult func setQuota(_ address: String, storage: QuotaLimitChange, messages: QuotaLimitChange) throws -> QuotaUsage
}

extension QuotaStore {
    /// RCPT-time check: whether `resolution` is exactly one local user (no remote target: those
    /// are queued whatever the quota) with no room for anything more, or for a message of the
    /// `declaredSize` the client announced (RFC 1870; 0: unknown).
    public func isFull(_ resolution: Resolution, declaredSize: UInt64 = 0) throws -> Bool {
        guard case .deliver(let users, let remote) = resolution, users.count == 1, remote.isEmpty else { return false }
        return !(try quota(user: users[0].id).allows(bytes: max(declaredSize, 1), messages: 1))
    }
}

/// Everything the store process serves.
public typealias MailStore = AccountStore & DeliveryStore & MailboxStore & QueueStore & QuotaStore
