// IMAPParser, SEARCH (RFC 9051 §6.4.4) with ESEARCH RETURN options (RFC 4731, RFC 5182 SAVE)
// and CONDSTORE's MODSEQ key (RFC 7162 §3.1.5). NOT, OR and parentheses are bounded by maxDepth.
import MailSyntax

extension IMAPCursor {
    /// search = "SEARCH" [search-return-opts] SP search-program
    /// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
    /// search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)
    mutating func search() throws(ParseFailure) -> SearchCommand {
        let returns = try searchReturns()
        var charset: String? = nil
        if takeWord("CHARSET") {
            try sp()
            charset = try self.charset()
            try sp()
        }
        return SearchCommand(returns: returns, charset: charset, key: try searchKeys())
    }

    /// [search-return-opts SP], nil when absent (also ESORT's, RFC 5267 §3).
    mutating func searchReturns() throws(ParseFailure) -> Set<SearchReturn>? {
        guard takeWord("RETURN") else { return nil }
        try sp()
        let options = try parenList(allowEmpty: true, "search return options") { (c: inout IMAPCursor) throws(ParseFailure) in
            guard let r = SearchReturn(rawValue: try c.keyword("search return option")) else {
                throw ParseFailure("unknown search return option")
            }
            return r
        }
        try sp()
        // RFC 4731 §3.1: "RETURN ()" is "RETURN (ALL)".
        return options.isEmpty ? [.all] : Set(options)
    }

    /// charset = atom / quoted (uppercased)
    mutating func charset() throws(ParseFailure) -> String {
        peek() == ASCII.dquote ? try text(try quoted(), "charset").uppercased() : try keyword("charset")
    }

    /// search-key *(SP search-key), as one key (a list is `.and`).
    mutating func searchKeys() throws(ParseFailure) -> SearchKey {
        var keys: [SearchKey] = []
        repeat {
            guard keys.count < limits.maxSequenceItems else { throw ParseFailure("too many search keys", code: IMAPResponseCodes.limit) }
            keys.append(try searchKey())
        } while take(ASCII.space)
        return keys.count == 1 ? keys[0] : .and(keys)
    }

    /// search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date / "BODY" SP astring /
    ///   "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring / "KEYWORD" SP flag-keyword /
    ///   "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" / "SINCE" SP date / "SUBJECT" SP astring /
    ///   "TEXT" SP astring / "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
    ///   "UNKEYWORD" SP flag-keyword / "UNSEEN" / "DRAFT" / "HEADER" SP header-fld-name SP astring /
    ///   "LARGER" SP number64 / "NOT" SP search-key / "OR" SP search-key SP search-key /
    ///   "SENTBEFORE" SP date / "SENTON" SP date / "SENTSINCE" SP date / "SMALLER" SP number64 /
    ///   "UID" SP sequence-set / "UNDRAFT" / sequence-set / "(" search-key *(SP search-key) ")" /
    ///   "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer      (RFC 7162)
    mutating func searchKey() throws(ParseFailure) -> SearchKey {
        guard let first = peek() else { throw ParseFailure("missing search key") }
        if first == ASCII.lparen {
            let keys = try parenList("search keys") { (c: inout IMAPCursor) throws(ParseFailure) in try c.searchKey() }
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if ASCII.isDigit(first) || first == IMAPGrammar.star || first == IMAPGrammar.dollar {
            return .sequences(try sequenceSet())
        }
        let name = try keyword("search key")
        if let simple = Self.simpleSearchKey(name) { return simple }
        try sp()
        if let make = Self.stringSearchKey(name) { return make(try astringText()) }
        if let make = Self.dateSearchKey(name) { return make(try date()) }
        switch name {
        case "KEYWORD": return .flag(.keyword(try atom("keyword")), set: true)
        case "UNKEYWORD": return .flag(.keyword(try atom("keyword")), set: false)
        case "HEADER":
            let field = try astring("header field name")
            guard field.allSatisfy(ASCII.isFtext) else { throw ParseFailure("invalid header field name") }
            try sp()
            return .header(String(decoding: field, as: UTF8.self), try astringText())
        case "LARGER": return .larger(try number64("size"))
        case "SMALLER": return .smaller(try number64("size"))
        case "UID": return .uids(try sequenceSet())
        case "NOT":
            try enter(); defer { leave() }
            return .not(try searchKey())
        case "OR":
            try enter(); defer { leave() }
            let a = try searchKey()
            try sp()
            return .or(a, try searchKey())
        case "MODSEQ":
            // entry-name = DQUOTE "/flags/" attr-flag DQUOTE; entry-type-req = "priv" / "shared" / "all"
            if peek() == ASCII.dquote {
                _ = try quoted()
                try sp()
                guard ["PRIV", "SHARED", "ALL"].contains(try keyword("entry type")) else { throw ParseFailure("invalid entry type") }
                try sp()
            }
            return .modSeq(try number64("mod-sequence"))
        default:
            throw ParseFailure("unknown search key")
        }
    }

    // Tables as functions, not static dictionaries: a global holding boxed (indirect) enum
    // values is reported as a leak by LeakSanitizer under the fuzzer.

    /// Keys with an astring argument (a substring to look for).
    static func stringSearchKey(_ name: String) -> ((String) -> SearchKey)? {
        switch name {
        case "BCC": return SearchKey.bcc
        case "BODY": return SearchKey.body
        case "CC": return SearchKey.cc
        case "FROM": return SearchKey.from
        case "SUBJECT": return SearchKey.subject
        case "TEXT": return SearchKey.text
        case "TO": return SearchKey.to
        default: return nil
        }
    }

    /// Keys with a date argument (days since the epoch).
    static func dateSearchKey(_ name: String) -> ((Int) -> SearchKey)? {
        switch name {
        case "BEFORE": return SearchKey.before
        case "ON": return SearchKey.on
        case "SINCE": return SearchKey.since
        case "SENTBEFORE": return SearchKey.sentBefore
        case "SENTON": return SearchKey.sentOn
        case "SENTSINCE": return SearchKey.sentSince
        default: return nil
        }
    }

    /// Keys without arguments.
    static func simpleSearchKey(_ name: String) -> SearchKey? {
        switch name {
        case "ALL": return .all
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        default: break
        }
        let unset = name.hasPrefix("UN")
        let flag: Flag
        switch unset ? String(name.dropFirst(2)) : name {
        case "ANSWERED": flag = .answered
        case "DELETED": flag = .deleted
        case "FLAGGED": flag = .flagged
        case "SEEN": flag = .seen
        case "DRAFT": flag = .draft
        default: return nil
        }
        return .flag(flag, set: !unset)
    }
}
