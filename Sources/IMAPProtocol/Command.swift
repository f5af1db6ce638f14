// The parsed IMAP command (RFC 9051 §6, RFC 3501 §6 and the extensions of DESIGN §4) as plain
// values: what IMAPParser produces and IMAPSession consumes. Strings that name mailboxes are
// already decoded (modified UTF-7 undone unless UTF8=ACCEPT is on, see IMAPParser.Options).
// Nothing here knows sockets or the store.

import MailModel

/// One field of ID (RFC 2971 §3.3); `value` nil for NIL.
public struct IDField: Sendable, Equatable {
    public var key: String, value: String?
    public init(key: String, value: String?) { self.key = key; self.value = value }
}

/// A command tag (RFC 9051 §9 `tag`): any ASTRING-CHAR but "+".
public typealias Tag = String

public struct IMAPCommand: Sendable, Equatable {
    public var tag: Tag
    public var kind: Kind
    public init(tag: Tag, kind: Kind) { self.tag = tag; self.kind = kind }

    public enum Kind: Sendable, Equatable {
        // any state (RFC 9051 §6.1)
        case capability, noop, logout
        /// RFC 2971
        case id([IDField]?)
        // not authenticated (RFC 9051 §6.2)
        case starttls
        case login(user: String, password: String)
        /// RFC 9051 §6.2.2, SASL-IR (RFC 4959): `initial` nil when absent, "" for "=".
        case authenticate(mechanism: String, initial: String?)
        // authenticated (RFC 9051 §6.3)
        /// RFC 5161
        case enable([String])
        case select(mailbox: String, SelectParameters)
        case examine(mailbox: String, SelectParameters)
        case create(mailbox: String, specialUse: [String])
        case delete(mailbox: String)
        case rename(from: String, to: String)
        case subscribe(mailbox: String)
        case unsubscribe(mailbox: String)
        case list(ListCommand)
        case lsub(reference: String, pattern: String)
        case namespace
        case status(mailbox: String, items: [StatusItem])
        /// MULTIAPPEND (RFC 3502): one or more messages.
        case append(mailbox: String, messages: [AppendMessage])
        case idle
        /// RFC 4978 §3: the mechanism as given, uppercased (only DEFLATE is defined).
        case compress(mechanism: String)
        /// RFC 9208 §4.2 GETQUOTA, §4.3 GETQUOTAROOT, §4.1 SETQUOTA (resource name, limit)
        case getQuota(root: String), getQuotaRoot(mailbox: String), setQuota(root: String, limits: [QuotaLimit])
        // selected (RFC 9051 §6.4)
        case check, close, unselect
        case expunge
        /// RFC 4315 UID EXPUNGE
        case uidExpunge(SequenceSet)
        case search(SearchCommand, uid: Bool)
        /// RFC 5256 SORT (with RFC 5267 ESORT return options).
        case sort(SortCommand, uid: Bool)
        /// RFC 5256 THREAD.
        case thread(ThreadCommand, uid: Bool)
        case fetch(FetchCommand, uid: Bool)
        case store(StoreCommand, uid: Bool)
        case copy(SequenceSet, mailbox: String, uid: Bool)
        case move(SequenceSet, mailbox: String, uid: Bool)
    }
}

/// RFC 9051 §9 `sequence-set`: ranges of numbers, `*` as `UInt32.max` until resolved, or the
/// saved search result `$` (RFC 5182).
public enum SequenceSet: Sendable, Equatable {
    case ranges([ClosedRange<UInt32>])
    case saved

    /// `*` in a parsed set (the largest number in use; resolved by the session).
    public static let star = UInt32.max
}

/// SELECT/EXAMINE parameters (RFC 7162 §3.1.8, §3.2.5).
public struct SelectParameters: Sendable, Equatable {
    public var condstore = false
    public var qresync: QResync? = nil
    public init(condstore: Bool = false, qresync: QResync? = nil) { self.condstore = condstore; self.qresync = qresync }

    /// QRESYNC (uidvalidity modseq [known-uids [seq-match-data]]).
    public struct QResync: Sendable, Equatable {
        public var uidValidity: UInt32, modSeq: UInt64
        public var knownUIDs: SequenceSet?
        /// (known-sequence-set known-uid-set)
        public var seqMatch: SeqMatch?
        public init(uidValidity: UInt32, modSeq: UInt64, knownUIDs: SequenceSet? = nil, seqMatch: SeqMatch? = nil) {
            self.uidValidity = uidValidity; self.modSeq = modSeq; self.knownUIDs = knownUIDs; self.seqMatch = seqMatch
        }
    }
    public struct SeqMatch: Sendable, Equatable {
        public var sequences: SequenceSet, uids: SequenceSet
        public init(sequences: SequenceSet, uids: SequenceSet) { self.sequences = sequences; self.uids = uids }
    }
}

/// LIST with LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819).
public struct ListCommand: Sendable, Equatable {
    public var reference: String
    /// One or more patterns (`%`, `*` wildcards), already decoded.
    public var patterns: [String]
    public var selection: Set<ListSelection>
    public var returns: Set<ListReturn>
    /// RETURN (STATUS (...)); empty when not asked.
    public var statusItems: [StatusItem]
    public init(reference: String, patterns: [String], selection: Set<ListSelection> = [], returns: Set<ListReturn> = [], statusItems: [StatusItem] = []) {
        self.reference = reference; self.patterns = patterns; self.selection = selection; self.returns = returns; self.statusItems = statusItems
    }
}

public enum ListSelection: String, Sendable, Hashable { case subscribed = "SUBSCRIBED", remote = "REMOTE", recursiveMatch = "RECURSIVEMATCH", specialUse = "SPECIAL-USE" }
public enum ListReturn: String, Sendable, Hashable { case subscribed = "SUBSCRIBED", children = "CHILDREN", specialUse = "SPECIAL-USE", status = "STATUS" }

/// STATUS data items (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT).
public enum StatusItem: String, Sendable, Hashable, CaseIterable {
    case messages = "MESSAGES", uidNext = "UIDNEXT", uidValidity = "UIDVALIDITY", unseen = "UNSEEN"
    case deleted = "DELETED", size = "SIZE", recent = "RECENT", highestModSeq = "HIGHESTMODSEQ", appendLimit = "APPENDLIMIT"
}

/// One message of APPEND: flags, date, and the literal's bytes (bounded by the literal limit).
public struct AppendMessage: Sendable, Equatable {
    public var flags: [Flag]
    /// Seconds since the epoch from the `date-time` argument; nil when absent.
    public var internalDate: Int64?
    public var data: [UInt8]
    /// `~{n}` literal8 (RFC 3516 §4.4): the message may contain NUL.
    public var binary: Bool
    public init(flags: [Flag] = [], internalDate: Int64? = nil, data: [UInt8], binary: Bool = false) {
        self.flags = flags; self.internalDate = internalDate; self.data = data; self.binary = binary
    }
}

/// A flag or keyword (RFC 9051 §2.3.2). System flags are recognised case-insensitively.
public enum Flag: Sendable, Hashable {
    case seen, answered, flagged, deleted, draft
    /// `\Recent` (IMAP4rev1 only; never settable).
    case recent
    /// A keyword (atom), as the client spelled it.
    case keyword(String)
    /// A backslash-flag we do not know (`\Foo`): refused where it cannot be stored.
    case `extension`(String)
}

// MARK: SEARCH

/// SEARCH (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731, RFC 9051) and SAVE (RFC 5182).
public struct SearchCommand: Sendable, Equatable {
    /// nil: no RETURN given (IMAP4rev1 untagged SEARCH, or ESEARCH ALL under IMAP4rev2).
    public var returns: Set<SearchReturn>?
    /// The CHARSET argument, uppercased (only "UTF-8" and "US-ASCII" are accepted by the session).
    public var charset: String?
    public var key: SearchKey
    public init(returns: Set<SearchReturn>? = nil, charset: String? = nil, key: SearchKey) {
        self.returns = returns; self.charset = charset; self.key = key
    }
}

public enum SearchReturn: String, Sendable, Hashable { case min = "MIN", max = "MAX", all = "ALL", count = "COUNT", save = "SAVE" }

/// RFC 9051 §6.4.4 search keys; a list of keys is `.and`. Dates are days since the epoch
/// (the date part only, per the RFC); strings are compared case-insensitively as substrings.
public indirect enum SearchKey: Sendable, Equatable {
    case all
    case and([SearchKey])
    case or(SearchKey, SearchKey)
    case not(SearchKey)
    case sequences(SequenceSet)
    case uids(SequenceSet)
    case flag(Flag, set: Bool)            // ANSWERED/UNANSWERED, KEYWORD/UNKEYWORD, ...
    case new, old, recent                 // IMAP4rev1
    case before(Int), on(Int), since(Int)             // internal date
    case sentBefore(Int), sentOn(Int), sentSince(Int) // Date: header
    case larger(UInt64), smaller(UInt64)
    case header(String, String)           // field name, substring ("" matches any message with the field)
    case from(String), to(String), cc(String), bcc(String), subject(String)
    case body(String), text(String)
    /// CONDSTORE (RFC 7162 §3.1.5): MODSEQ [entry-name entry-type] value.
    case modSeq(UInt64)
}

// MARK: SORT and THREAD

/// SORT (RFC 5256 §3) with ESORT's RETURN (RFC 5267 §3; nil: the plain `* SORT` answer).
public struct SortCommand: Sendable, Equatable {
    /// Criteria one SORT may name (nine keys, each maybe REVERSEd, fit many times over).
    public static let maxCriteria = 32
    public var returns: Set<SearchReturn>?
    public var criteria: [SortCriterion]
    /// Mandatory in SORT (RFC 5256 §3), uppercased.
    public var charset: String
    public var key: SearchKey
    public init(returns: Set<SearchReturn>? = nil, criteria: [SortCriterion], charset: String, key: SearchKey) {
        self.returns = returns; self.criteria = criteria; self.charset = charset; self.key = key
    }
}

/// THREAD (RFC 5256 §3).
public struct ThreadCommand: Sendable, Equatable {
    public var algorithm: ThreadAlgorithm
    public var charset: String
    public var key: SearchKey
    public init(algorithm: ThreadAlgorithm, charset: String, key: SearchKey) {
        self.algorithm = algorithm; self.charset = charset; self.key = key
    }
}

// MARK: FETCH

public struct FetchCommand: Sendable, Equatable {
    public var sequences: SequenceSet
    public var attributes: [FetchAttribute]
    /// CHANGEDSINCE (RFC 7162 §3.1.4.1).
    public var changedSince: UInt64?
    /// VANISHED (RFC 7162 §3.2.6), only with UID FETCH and CHANGEDSINCE.
    public var vanished: Bool
    public init(sequences: SequenceSet, attributes: [FetchAttribute], changedSince: UInt64? = nil, vanished: Bool = false) {
        self.sequences = sequences; self.attributes = attributes; self.changedSince = changedSince; self.vanished = vanished
    }
}

/// RFC 9051 §6.4.5. The macros ALL, FAST, FULL are expanded by the parser.
public enum FetchAttribute: Sendable, Hashable {
    case uid, flags, internalDate, rfc822Size, envelope, bodyStructure
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    case body
    case modSeq
    /// RFC822 (= BODY[]), RFC822.HEADER (= BODY.PEEK[HEADER]), RFC822.TEXT (= BODY[TEXT]):
    /// kept apart because their response names differ.
    case rfc822, rfc822Header, rfc822Text
    /// BODY[section]<partial> and BODY.PEEK[...].
    case bodySection(Section, partial: Partial?, peek: Bool)
    /// BINARY[part]<partial> and BINARY.PEEK (RFC 3516).
    case binary(part: [Int], partial: Partial?, peek: Bool)
    case binarySize(part: [Int])
}

/// `<offset.length>` of a partial fetch.
public struct Partial: Sendable, Hashable {
    public var offset: UInt32, length: UInt32
    public init(offset: UInt32, length: UInt32) { self.offset = offset; self.length = length }
}

/// RFC 9051 §6.4.5 `section`: a part path (1-based numbers, empty for the whole message) and
/// what of it.
public struct Section: Sendable, Hashable {
    public var part: [Int]
    public var text: Text?
    public init(part: [Int] = [], text: Text? = nil) { self.part = part; self.text = text }

    public enum Text: Sendable, Hashable {
        case header, text, mime
        /// Field names as given (compared case-insensitively).
        case headerFields([String]), headerFieldsNot([String])
    }
}

// MARK: STORE

public struct StoreCommand: Sendable, Equatable {
    public enum Operation: Sendable, Equatable { case replace, add, remove }
    public var sequences: SequenceSet
    public var operation: Operation
    public var silent: Bool
    public var flags: [Flag]
    /// UNCHANGEDSINCE (RFC 7162 §3.1.3).
    public var unchangedSince: UInt64?
    public init(sequences: SequenceSet, operation: Operation, silent: Bool, flags: [Flag], unchangedSince: UInt64? = nil) {
        self.sequences = sequences; self.operation = operation; self.silent = silent; self.flags = flags; self.unchangedSince = unchangedSince
    }
}

/// One `setquota-resource` of SETQUOTA (RFC 9208 §7): a resource name (uppercased) and its limit.
public struct QuotaLimit: Sendable, Equatable {
    public var resource: String, limit: UInt64
    public init(resource: String, limit: UInt64) { self.resource = resource; self.limit = limit }
}
