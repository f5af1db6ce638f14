// SEARCH evaluated on one message (DESIGN §9: search runs in the store). CONTRACT STUB: the
// implementation (RFC 9051 §6.4.4 semantics, decoded text) lands separately.
import MIME

/// What SEARCH can look at of one message; `body` reads the whole message when a text key
/// needs it (called at most once per message by the evaluator).
public struct SearchableMessage {
    public var uid: UInt32, modSeq: UInt64, flags: SystemFlags, keywords: Set<String>
    public var internalDate: Int64, size: UInt64
    public var info: MessageInfo
    public var body: () throws -> [UInt8]
    public init(uid: UInt32, modSeq: UInt64, flags: SystemFlags, keywords: Set<String>, internalDate: Int64, size: UInt64,
                info: MessageInfo, body: @escaping () throws -> [UInt8]) {
        self.uid = uid; self.modSeq = modSeq; self.flags = flags; self.keywords = keywords
        self.internalDate = internalDate; self.size = size; self.info = info; self.body = body
    }
}

public enum SearchEvaluator {
    /// Whether `message` matches `query`. Keywords compare case-insensitively.
    public static func matches(_ query: SearchQuery, _ message: SearchableMessage) throws -> Bool {
        if case .all = query { return true }
        return false
    }
    /// Whether evaluating `query` can need the message bytes (TEXT, BODY, HEADER …, sent dates).
    public static func needsContent(_ query: SearchQuery) -> Bool { true }
}
