// IMAPParser, SORT and THREAD (RFC 5256 §5) with DISPLAYFROM/DISPLAYTO (RFC 5957 §4) and ESORT's
// RETURN options (RFC 5267 §3). The search criteria are SEARCH's keys after a mandatory charset.
import MailModel
import MailSyntax

extension IMAPCursor {
    /// sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria
    /// search-criteria = charset 1*(SP search-key)
    mutating func sort() throws(ParseFailure) -> SortCommand {
        let returns = try searchReturns()
        let criteria = try sortCriteria()
        try sp()
        let charset = try self.charset()
        try sp()
        return SortCommand(returns: returns, criteria: criteria, charset: charset, key: try searchKeys())
    }

    /// sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
    /// sort-criterion = ["REVERSE" SP] sort-key
    /// sort-key = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO" /
    ///            "DISPLAYFROM" / "DISPLAYTO"                                     (RFC 5957 §4)
    mutating func sortCriteria() throws(ParseFailure) -> [SortCriterion] {
        let criteria = try parenList("sort criteria") { (c: inout IMAPCursor) throws(ParseFailure) in
            var name = try c.keyword("sort key")
            let reverse = name == "REVERSE"
            if reverse { try c.sp(); name = try c.keyword("sort key") }
            guard let key = Self.sortKey(name) else { throw ParseFailure("unknown sort key") }
            return SortCriterion(key, reverse: reverse)
        }
        guard criteria.count <= SortCommand.maxCriteria else { throw ParseFailure("too many sort criteria", code: IMAPResponseCodes.limit) }
        return criteria
    }

    static func sortKey(_ name: String) -> SortCriterion.Key? {
        switch name {
        case "ARRIVAL": return .arrival
        case "CC": return .cc
        case "DATE": return .date
        case "FROM": return .from
        case "SIZE": return .size
        case "SUBJECT": return .subject
        case "TO": return .to
        case "DISPLAYFROM": return .displayFrom
        case "DISPLAYTO": return .displayTo
        default: return nil
        }
    }

    /// thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
    /// thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext
    mutating func thread() throws(ParseFailure) -> ThreadCommand {
        let algorithm: ThreadAlgorithm
        switch try keyword("thread algorithm") {
        case "ORDEREDSUBJECT": algorithm = .orderedSubject
        case "REFERENCES": algorithm = .references
        default: throw ParseFailure("unknown thread algorithm")
        }
        try sp()
        let charset = try self.charset()
        try sp()
        return ThreadCommand(algorithm: algorithm, charset: charset, key: try searchKeys())
    }
}
