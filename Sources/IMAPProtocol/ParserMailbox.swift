// IMAPParser, the mailbox commands' arguments: SELECT/EXAMINE parameters (RFC 7162), CREATE
// (RFC 6154), LIST (RFC 5258, RFC 5819), STATUS and APPEND (RFC 3502, RFC 3516).
import MailSyntax

extension IMAPCursor {
    /// select = "SELECT" SP mailbox [select-params]
    /// select-params = SP "(" select-param *(SP select-param) ")"
    /// select-param = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    ///                [SP known-uids] [SP seq-match-data] ")"     (RFC 7162 §7)
    mutating func select() throws(ParseFailure) -> (String, SelectParameters) {
        let name = try mailbox()
        var params = SelectParameters()
        guard take(ASCII.space) else { return (name, params) }
        let list = try parenList("select parameters") { (c: inout IMAPCursor) throws(ParseFailure) -> SelectParameters.QResync? in
            switch try c.keyword("select parameter") {
            case "CONDSTORE": return nil
            case "QRESYNC": try c.sp(); return try c.qresync()
            default: throw ParseFailure("unknown select parameter")
            }
        }
        params.condstore = list.contains { $0 == nil }
        let qresyncs = list.compactMap { $0 }
        guard qresyncs.count <= 1 else { throw ParseFailure("QRESYNC given twice") }
        params.qresync = qresyncs.first
        return (name, params)
    }

    /// "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
    /// seq-match-data = "(" known-sequence-set SP known-uid-set ")"
    mutating func qresync() throws(ParseFailure) -> SelectParameters.QResync {
        try expect(ASCII.lparen, "( after QRESYNC")
        let uidValidity = try nzNumber("UIDVALIDITY")
        try sp()
        var q = SelectParameters.QResync(uidValidity: uidValidity, modSeq: try number64("mod-sequence"))
        guard take(ASCII.space) else { try expect(ASCII.rparen, ") after QRESYNC"); return q }
        if peek() != ASCII.lparen {
            q.knownUIDs = try sequenceSet()
            guard take(ASCII.space) else { try expect(ASCII.rparen, ") after QRESYNC"); return q }
        }
        try expect(ASCII.lparen, "( of sequence match data")
        // inside seq-match-data
        let sequences = try sequenceSet()
        try sp()
        q.seqMatch = SelectParameters.SeqMatch(sequences: sequences, uids: try sequenceSet())
        try expect(ASCII.rparen, ") after sequence match data")
        try expect(ASCII.rparen, ") after QRESYNC")
        return q
    }

    /// create = "CREATE" SP mailbox [create-params]   (RFC 4466, RFC 6154 §6)
    /// create-param = "USE" SP "(" [use-attr *(SP use-attr)] ")"
    mutating func create() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let name = try mailbox()
        var uses: [String] = []
        if take(ASCII.space) {
            let lists = try parenList("create parameters") { (c: inout IMAPCursor) throws(ParseFailure) -> [String] in
                guard try c.keyword("create parameter") == "USE" else { throw ParseFailure("unknown create parameter") }
                try c.sp()
                return try c.parenList(allowEmpty: true, "special-use attributes") { (c: inout IMAPCursor) throws(ParseFailure) in
                    try c.expect(ASCII.backslash, "special-use attribute")
                    return Self.canonicalSpecialUse(try c.atom("special-use attribute"))
                }
            }
            uses = lists.flatMap { $0 }
        }
        return .create(mailbox: name, specialUse: uses)
    }

    static let specialUses = ["\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"]

    /// use-attr = "\All" / "\Archive" / "\Drafts" / "\Flagged" / "\Junk" / "\Sent" / "\Trash" / use-attr-ext
    /// Known attributes in their RFC 6154 spelling, others as given.
    static func canonicalSpecialUse(_ atom: String) -> String {
        let given = "\\" + atom
        return specialUses.first { $0.uppercased() == given.uppercased() } ?? given
    }

    /// list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    /// list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"
    /// mbox-or-pat = list-mailbox / patterns; patterns = "(" list-mailbox *(SP list-mailbox) ")"
    /// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"   (RFC 5258 §6)
    mutating func list() throws(ParseFailure) -> ListCommand {
        try sp()
        var selection: Set<ListSelection> = []
        if peek() == ASCII.lparen {
            let options = try parenList(allowEmpty: true, "selection options") { (c: inout IMAPCursor) throws(ParseFailure) in
                guard let o = ListSelection(rawValue: try c.keyword("selection option")) else {
                    throw ParseFailure("unknown LIST selection option")
                }
                return o
            }
            selection = Set(options)
            // RFC 5258 §3: RECURSIVEMATCH alone is an error.
            if selection == [.recursiveMatch] { throw ParseFailure("RECURSIVEMATCH needs another selection option") }
            try sp()
        }
        let reference = try mailboxName(try astring("reference"), inbox: false)
        try sp()
        let patterns: [String]
        if peek() == ASCII.lparen {
            patterns = try parenList("patterns") { (c: inout IMAPCursor) throws(ParseFailure) in try c.listMailbox() }
        } else {
            patterns = [try listMailbox()]
        }
        var command = ListCommand(reference: reference, patterns: patterns, selection: selection)
        guard take(ASCII.space) else { return command }
        guard takeWord("RETURN") else { throw ParseFailure("expected RETURN") }
        try sp()
        // return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / "STATUS" SP "(" status-att *(SP status-att) ")"
        let returns = try parenList(allowEmpty: true, "return options") { (c: inout IMAPCursor) throws(ParseFailure) -> (ListReturn, [StatusItem]) in
            guard let r = ListReturn(rawValue: try c.keyword("return option")) else { throw ParseFailure("unknown LIST return option") }
            guard r == .status else { return (r, []) }
            try c.sp()
            return (r, try c.statusItems())
        }
        guard returns.filter({ $0.0 == .status }).count <= 1 else { throw ParseFailure("STATUS given twice") }
        command.returns = Set(returns.map { $0.0 })
        command.statusItems = returns.flatMap { $0.1 }
        return command
    }

    /// "(" status-att *(SP status-att) ")"
    /// status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE" /
    ///              "RECENT" / "HIGHESTMODSEQ" / "APPENDLIMIT"
    mutating func statusItems() throws(ParseFailure) -> [StatusItem] {
        try parenList("status items") { (c: inout IMAPCursor) throws(ParseFailure) in
            guard let item = StatusItem(rawValue: try c.keyword("status item")) else { throw ParseFailure("unknown status item") }
            return item
        }
    }

    /// append = "APPEND" SP mailbox 1*append-message           (RFC 3502 §6)
    /// append-message = append-opts SP append-data; append-opts = [SP flag-list] [SP date-time]
    /// append-data = literal / literal8                          (RFC 3516 §4.4)
    mutating func append() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let name = try mailbox()
        var messages: [AppendMessage] = []
        repeat {
            try sp()
            var message = AppendMessage(data: [])
            if peek() == ASCII.lparen {
                message.flags = try flagList()
                try sp()
            }
            if peek() == ASCII.dquote {
                message.internalDate = try dateTime()
                try sp()
            }
            guard let b = peek(), b == IMAPGrammar.lbrace || b == IMAPGrammar.tilde else { throw ParseFailure("expected message literal") }
            (message.data, message.binary) = try literal()
            messages.append(message)
        } while !atEnd
        return .append(mailbox: name, messages: messages)
    }
}
