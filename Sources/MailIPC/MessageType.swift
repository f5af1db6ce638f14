// The one numbering authority for RPC message types (DESIGN §2): explicit raw values, a
// reserved range per family, never reused (Swift refuses duplicate raw values; a unit test
// checks ranges and the retired list). Each family's messages live in Messages+<Family>.swift.

public enum MessageFamily: String, Sendable, CaseIterable {
    case connection, delivery, accounts, events, control, mailbox, pop3, queue

    /// Reserved type numbers. A new message takes the next free number of its family.
    public var range: ClosedRange<UInt16> {
        switch self {
        case .connection: return 1...9
        case .delivery: return 10...29       // recipient checks, Postfix lookups, deliveries
        case .accounts: return 30...89       // sessions, domains, users, aliases, export
        case .events: return 90...109        // watch / notify / pull
        case .control: return 110...129      // the master's control socket
        case .mailbox: return 200...399      // IMAP
        case .pop3: return 400...449
        case .queue: return 450...499        // the outbound agent's claims, reads, reports and watch; administration
        }
    }
}

public enum MessageType: UInt16, Sendable, CaseIterable {
    // connection: Messages+Connection.swift
    case hello = 1, helloOK = 2, error = 3, ok = 4, streamCredit = 5
    // delivery: Messages+Delivery.swift
    case lookupRecipient = 10, recipient = 11, lookup = 12, lookupResult = 13, senderLogins = 14, localDomain = 15
    case deliverBegin = 20, deliverChunk = 21, deliverEnd = 22, deliverResult = 23, deliverAbort = 24
    // accounts: Messages+Accounts.swift
    case authenticate = 30, session = 31, sessionEnd = 32
    case mailboxList = 40, mailboxes = 41
    case domainAdd = 50, domainRemove = 51, domainList = 52, names = 53
    case userAdd = 60, userRemove = 61, userPasswd = 62, userList = 63, userSpamJunk = 64, userQuota = 65
    case aliasAdd = 70, aliasRemove = 71, aliasList = 72, aliasPairs = 74
    case export = 80, exportMessage = 81, exportChunk = 82, exportEnd = 83
    case reindex = 86, reindexProgress = 87
    // events: Messages+Events.swift
    case mailboxWatch = 91, watching = 92, mailboxUnwatch = 93, mailboxChanged = 94, mailboxChanges = 95, changes = 96
    case mailboxWatchByID = 97
    // control: Messages+Control.swift
    case status = 110, statusResult = 111, attach = 112, reload = 113
    // mailbox: Messages+Mailbox.swift
    case mailboxCreate = 200, mailboxDelete = 201, mailboxRename = 202, subscriptionList = 203, subscriptionSet = 204
    case mailboxStatusGet = 205, mailboxStatusReply = 206, mailboxSummaries = 207, summaryList = 208
    case mailboxSelect = 210, viewHeader = 211, viewChunk = 212, viewEnd = 213
    case mailboxDeltaGet = 215, deltaReply = 216
    case detailsGet = 220, detailsReply = 221
    case messageRead = 225, messageBytes = 226
    case flagsStore = 230, flagUpdateReply = 231
    case messagesCopy = 235, copyReply = 236
    case messagesExpunge = 240, uidList = 241
    case searchRun = 245, sortRun = 246, threadRun = 247, threadReply = 248
    case appendBegin = 250, appendReply = 251
    case quotaGet = 255, quotaReply = 256
    // pop3: Messages+POP3.swift
    case pop3Lock = 400, pop3Delete = 401, pop3Read = 402, pop3Bodies = 403
    // queue: Messages+Queue.swift
    case queueList = 450, queueEntries = 451
    case queueClaim = 452, queueJobs = 453, queueRead = 454, queueReport = 455
    case queueWatch = 456, queueChanged = 457
    case queueEntriesGet = 458, queueEntryList = 459, queueAdmin = 460, queueAdminReply = 461

    /// Numbers once used and withdrawn: never to be given out again.
    ///   73 pairs([[String]]) → 74 aliasPairs; 85 queueList (tab-formatted rows) → 450/451;
    ///   90 mailboxChanged(session, mailbox, uidNext, exists), pushed at AUTH → 91–96 watch/pull.
    public static let retired: Set<UInt16> = [73, 85, 90]

    public var family: MessageFamily { MessageFamily.allCases.first { $0.range.contains(rawValue) }! }

    /// The struct that carries this type (exhaustive: a new case does not compile without it).
    public var message: any RPCMessage.Type {
        switch self {
        case .hello: return Hello.self
        case .helloOK: return HelloOK.self
        case .error: return ErrorReply.self
        case .ok: return OK.self
        case .streamCredit: return StreamCredit.self
        case .lookupRecipient: return LookupRecipient.self
        case .recipient: return RecipientReply.self
        case .lookup: return Lookup.self
        case .lookupResult: return LookupResult.self
        case .senderLogins: return SenderLogins.self
        case .localDomain: return LocalDomain.self
        case .deliverBegin: return DeliverBegin.self
        case .deliverChunk: return DeliverChunk.self
        case .deliverEnd: return DeliverEnd.self
        case .deliverResult: return DeliverResult.self
        case .deliverAbort: return DeliverAbort.self
        case .authenticate: return Authenticate.self
        case .session: return SessionOpened.self
        case .sessionEnd: return SessionEnd.self
        case .mailboxList: return MailboxList.self
        case .mailboxes: return Mailboxes.self
        case .domainAdd: return DomainAdd.self
        case .domainRemove: return DomainRemove.self
        case .domainList: return DomainList.self
        case .names: return Names.self
        case .userAdd: return UserAdd.self
        case .userRemove: return UserRemove.self
        case .userPasswd: return UserPasswd.self
        case .userList: return UserList.self
        case .userSpamJunk: return UserSpamJunk.self
        case .userQuota: return UserQuota.self
        case .aliasAdd: return AliasAdd.self
        case .aliasRemove: return AliasRemove.self
        case .aliasList: return AliasList.self
        case .aliasPairs: return AliasPairs.self
        case .export: return Export.self
        case .exportMessage: return ExportMessage.self
        case .exportChunk: return ExportChunk.self
        case .exportEnd: return ExportEnd.self
        case .reindex: return Reindex.self
        case .reindexProgress: return ReindexProgress.self
        case .mailboxWatch: return MailboxWatch.self
        case .watching: return Watching.self
        case .mailboxUnwatch: return MailboxUnwatch.self
        case .mailboxChanged: return MailboxChanged.self
        case .mailboxChanges: return MailboxChanges.self
        case .changes: return Changes.self
        case .mailboxWatchByID: return MailboxWatchByID.self
        case .status: return Status.self
        case .statusResult: return StatusResult.self
        case .attach: return Attach.self
        case .reload: return Reload.self
        case .mailboxCreate: return MailboxCreate.self
        case .mailboxDelete: return MailboxDelete.self
        case .mailboxRename: return MailboxRename.self
        case .subscriptionList: return SubscriptionList.self
        case .subscriptionSet: return SubscriptionSet.self
        case .mailboxStatusGet: return MailboxStatusGet.self
        case .mailboxStatusReply: return MailboxStatusReply.self
        case .mailboxSummaries: return MailboxSummaries.self
        case .summaryList: return SummaryList.self
        case .mailboxSelect: return MailboxSelect.self
        case .viewHeader: return ViewHeader.self
        case .viewChunk: return ViewChunk.self
        case .viewEnd: return ViewEnd.self
        case .mailboxDeltaGet: return MailboxDeltaGet.self
        case .deltaReply: return DeltaReply.self
        case .detailsGet: return DetailsGet.self
        case .detailsReply: return DetailsReply.self
        case .messageRead: return MessageRead.self
        case .messageBytes: return MessageBytes.self
        case .flagsStore: return FlagsStore.self
        case .flagUpdateReply: return FlagUpdateReply.self
        case .messagesCopy: return MessagesCopy.self
        case .copyReply: return CopyReply.self
        case .messagesExpunge: return MessagesExpunge.self
        case .uidList: return UIDList.self
        case .searchRun: return SearchRun.self
        case .sortRun: return SortRun.self
        case .threadRun: return ThreadRun.self
        case .threadReply: return ThreadReply.self
        case .appendBegin: return AppendBegin.self
        case .appendReply: return AppendReply.self
        case .quotaGet: return QuotaGet.self
        case .quotaReply: return QuotaReply.self
        case .pop3Lock: return Pop3Lock.self
        case .pop3Delete: return Pop3Delete.self
        case .pop3Read: return Pop3Read.self
        case .pop3Bodies: return Pop3Bodies.self
        case .queueList: return QueueList.self
        case .queueEntries: return QueueEntries.self
        case .queueClaim: return QueueClaimRequest.self
        case .queueJobs: return QueueJobs.self
        case .queueRead: return QueueRead.self
        case .queueReport: return QueueReport.self
        case .queueWatch: return QueueWatch.self
        case .queueChanged: return QueueChanged.self
        case .queueEntriesGet: return QueueEntriesGet.self
        case .queueEntryList: return QueueEntryList.self
        case .queueAdmin: return QueueAdminRequest.self
        case .queueAdminReply: return QueueAdminReply.self
        }
    }

    /// Roles that may send this type as a request; empty for replies and events.
    public var roles: Set<Role> { (message as? any RPCRequest.Type)?.roles ?? [] }
}
