// The mailbox domain (DESIGN §3, §9) as plain values shared by the store (MailStore), the RPC
// layer (MailIPC carries them in the mailbox family) and imapd/pop3d: no wire format, no SQL,
// no IMAP syntax. Flags are bits; keywords are small per-mailbox ids (bit i of `keywords` is
// the mailbox's keyword number i, named in `MailboxView.keywords`).

/// A mailbox and its counters.
public struct MailboxSummary: Sendable, Equatable {
    public var id: Int64, name: String, specialUse: String, uidValidity: UInt32, uidNext: UInt32
    public var highestModSeq: UInt64, messages: UInt32, subscribed: Bool
    public init(id: Int64, name: String, specialUse: String, uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, messages: UInt32, subscribed: Bool) {
        self.id = id; self.name = name; self.specialUse = specialUse; self.uidValidity = uidValidity; self.uidNext = uidNext; self.highestModSeq = highestModSeq; self.messages = messages; self.subscribed = subscribed
    }
}

/// The system flags the store keeps, one bit each (the `flags` column).
public struct SystemFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let seen = SystemFlags(rawValue: 1), answered = SystemFlags(rawValue: 2), flagged = SystemFlags(rawValue: 4)
    public static let deleted = SystemFlags(rawValue: 8), draft = SystemFlags(rawValue: 16)
    public static let all: SystemFlags = [.seen, .answered, .flagged, .deleted, .draft]
}

/// Most keywords one mailbox can name (bits of `ViewEntry.keywords`). When they are used up,
/// IMAP drops `\*` from PERMANENTFLAGS and refuses new keywords (RFC 9051 §7.1 allows it).
public let maxKeywordsPerMailbox = 64

/// One message of a mailbox as the IMAP view holds it. `size` (RFC822.SIZE) never changes for
/// a UID, so FETCH answers it from the view; `unknownSize` where the entry came without it (a
/// STORE's reply, a message over 4 GiB): FETCH asks the store then. The field fills padding:
/// an entry is 32 bytes with it or without.
public struct ViewEntry: Sendable, Equatable {
    public var uid: UInt32, modSeq: UInt64, flags: SystemFlags, size: UInt32, keywords: UInt64
    public static let unknownSize = UInt32.max
    public init(uid: UInt32, modSeq: UInt64, flags: SystemFlags, keywords: UInt64 = 0, size: UInt32 = ViewEntry.unknownSize) {
        self.uid = uid; self.modSeq = modSeq; self.flags = flags; self.size = size; self.keywords = keywords
    }

    /// This entry with `known`'s size when it has none of its own (sizes never change for a UID).
    public func keepingSize(of known: ViewEntry) -> ViewEntry {
        guard size == Self.unknownSize else { return self }
        var e = self
        e.size = known.size
        return e
    }
}

/// What SELECT loads: the mailbox, its keyword names (index = keyword id) and every message in
/// UID order.
public struct MailboxView: Sendable, Equatable {
    public var summary: MailboxSummary
    public var keywords: [String]
    public var entries: [ViewEntry]
    public init(summary: MailboxSummary, keywords: [String], entries: [ViewEntry]) {
        self.summary = summary; self.keywords = keywords; self.entries = entries
    }
}

/// Changes to a mailbox since a MODSEQ (DESIGN §2: notify, then pull): messages added or whose
/// flags changed (MODSEQ order) and UIDs expunged (ascending; from tombstones), with the
/// mailbox's state and keyword names now. `complete` false: ask again from the last MODSEQ.
public struct MailboxDelta: Sendable, Equatable {
    public var summary: MailboxSummary
    public var keywords: [String]
    public var changed: [ViewEntry]
    public var vanished: [UInt32]
    public var complete: Bool
    public init(summary: MailboxSummary, keywords: [String], changed: [ViewEntry], vanished: [UInt32], complete: Bool) {
        self.summary = summary; self.keywords = keywords; self.changed = changed; self.vanished = vanished; self.complete = complete
    }
}

/// What FETCH needs of one message besides its flags: `info` is `MIME.MessageInfo.encoded()`
/// (ENVELOPE, BODYSTRUCTURE and part offsets, computed at delivery).
public struct MessageDetails: Sendable, Equatable {
    public var uid: UInt32, internalDate: Int64, size: UInt64, info: [UInt8]
    public init(uid: UInt32, internalDate: Int64, size: UInt64, info: [UInt8]) {
        self.uid = uid; self.internalDate = internalDate; self.size = size; self.info = info
    }
}

/// STATUS (RFC 9051 §6.3.11): the summary and the counts it does not hold.
public struct MailboxStatus: Sendable, Equatable {
    public var summary: MailboxSummary
    public var unseen: UInt32, deleted: UInt32, size: UInt64
    public init(summary: MailboxSummary, unseen: UInt32, deleted: UInt32, size: UInt64) {
        self.summary = summary; self.unseen = unseen; self.deleted = deleted; self.size = size
    }
}

public enum FlagOperation: UInt8, Sendable { case replace = 0, add = 1, remove = 2 }

/// The result of a STORE: entries whose flags changed (their new MODSEQ), UIDs refused by
/// UNCHANGEDSINCE (RFC 7162 §3.1.3 MODIFIED), and the mailbox's keyword names after it.
public struct FlagUpdate: Sendable, Equatable {
    public var changed: [ViewEntry], modified: [UInt32], keywords: [String], highestModSeq: UInt64
    public init(changed: [ViewEntry], modified: [UInt32], keywords: [String], highestModSeq: UInt64) {
        self.changed = changed; self.modified = modified; self.keywords = keywords; self.highestModSeq = highestModSeq
    }
}

/// COPY/MOVE (RFC 4315 COPYUID, RFC 6851): the destination's UIDVALIDITY and the UID pairs.
public struct CopyResult: Sendable, Equatable {
    public var uidValidity: UInt32, sourceUIDs: [UInt32], destinationUIDs: [UInt32]
    public init(uidValidity: UInt32, sourceUIDs: [UInt32], destinationUIDs: [UInt32]) {
        self.uidValidity = uidValidity; self.sourceUIDs = sourceUIDs; self.destinationUIDs = destinationUIDs
    }
}

/// APPEND (RFC 4315 APPENDUID).
public struct AppendResult: Sendable, Equatable {
    public var uidValidity: UInt32, uid: UInt32
    public init(uidValidity: UInt32, uid: UInt32) { self.uidValidity = uidValidity; self.uid = uid }
}

/// SEARCH in store terms (DESIGN §9: it runs in the store, which answers with UIDs). imapd has
/// already turned sequence numbers and `$` into UIDs. Dates are days since 1970-01-01 (UTC);
/// string keys match case-insensitively as substrings (RFC 9051 §6.4.4) after RFC 2047 and
/// transfer decoding; header names compare case-insensitively.
public indirect enum SearchQuery: Sendable, Equatable {
    case all
    case and([SearchQuery])
    case or(SearchQuery, SearchQuery)
    case not(SearchQuery)
    case uids([ClosedRange<UInt32>])
    /// Every flag of the mask set (`set` true) or every one clear.
    case flags(SystemFlags, set: Bool)
    case keyword(String, set: Bool)
    case internalDate(DateRelation, day: Int)
    case sentDate(DateRelation, day: Int)
    case larger(UInt64), smaller(UInt64)
    /// A header field containing the string ("" : the field is present).
    case header(String, String)
    case body(String), text(String)
    /// MODSEQ at least this (RFC 7162 §3.1.5).
    case modSeq(UInt64)

    public enum DateRelation: UInt8, Sendable { case before = 0, on = 1, since = 2 }
}
