// IMAPParser: one framed unit (IMAPFramer) to an IMAPCommand, strictly per RFC 9051 §9 and the
// extensions of DESIGN §4. Pure and total: any input gives a command or an error (with the tag
// once one was read); loops are bounded by the unit, recursion by IMAPLimits.maxDepth.
import MailSyntax

public struct IMAPParserOptions: Sendable {
    /// Mailbox names are UTF-8 (ENABLE UTF8=ACCEPT, RFC 6855, or IMAP4rev2); otherwise they are
    /// modified UTF-7 (RFC 3501 §5.1.3), decoded with ModifiedUTF7.decode, invalid ones refused.
    public var utf8Accept: Bool
    public var limits: IMAPLimits
    public init(utf8Accept: Bool = false, limits: IMAPLimits = IMAPLimits()) {
        self.utf8Accept = utf8Accept; self.limits = limits
    }
}

public struct IMAPParseError: Error, Sendable, Equatable {
    /// nil if none could be read: the session answers "* BAD".
    public var tag: String?
    public var message: String
    /// A response code for the reply, e.g. "CLIENTBUG", "TOOBIG", "LIMIT" (IMAPResponseCodes).
    public var code: String?
    public init(tag: String?, message: String, code: String? = nil) {
        self.tag = tag; self.message = message; self.code = code
    }
}

public enum IMAPParser {
    /// The name Command.swift's header uses.
    public typealias Options = IMAPParserOptions

    /// command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF
    public static func parse(_ unit: [UInt8], options: IMAPParserOptions) -> Result<IMAPCommand, IMAPParseError> {
        var end = unit.count
        let terminated = end > 0 && unit[end - 1] == ASCII.lf
        if terminated {
            end -= 1
            if end > 0, unit[end - 1] == ASCII.cr { end -= 1 }
        }
        var c = IMAPCursor(unit, end: end, options: options)
        // tag = 1*<any ASTRING-CHAR except "+">
        let tagStart = c.c.pos
        while let b = c.peek(), IMAPGrammar.isTagChar(b) { c.c.pos += 1 }
        guard c.c.pos > tagStart else {
            return .failure(IMAPParseError(tag: nil, message: "missing or invalid tag"))
        }
        let tag = c.c.string(tagStart..<c.c.pos)
        do throws(ParseFailure) {
            try c.sp()
            let kind = try c.command()
            guard c.atEnd else { throw ParseFailure("unexpected characters after the command") }
            guard terminated else { throw ParseFailure("missing CRLF") }
            return .success(IMAPCommand(tag: tag, kind: kind))
        } catch {
            return .failure(IMAPParseError(tag: tag, message: error.message, code: error.code))
        }
    }
}

extension IMAPCursor {
    /// The command name and its arguments.
    mutating func command() throws(ParseFailure) -> IMAPCommand.Kind {
        let name = try keyword("command name")
        switch name {
        // command-any = "CAPABILITY" / "LOGOUT" / "NOOP" / id
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "ID": try sp(); return .id(try idParams())
        // command-nonauth = login / authenticate / "STARTTLS"
        case "STARTTLS": return .starttls
        case "LOGIN":
            // login = "LOGIN" SP userid SP password
            try sp(); let user = try astringText("user name")
            try sp(); let password = try astringText("password")
            return .login(user: user, password: password)
        case "AUTHENTICATE": return try authenticate()
        // command-auth
        case "ENABLE": return .enable(try enableCapabilities())
        case "SELECT": try sp(); let (m, p) = try select(); return .select(mailbox: m, p)
        case "EXAMINE": try sp(); let (m, p) = try select(); return .examine(mailbox: m, p)
        case "CREATE": return try create()
        case "DELETE": try sp(); return .delete(mailbox: try mailbox())
        case "RENAME":
            // rename = "RENAME" SP mailbox SP mailbox
            try sp(); let from = try mailbox()
            try sp(); let to = try mailbox()
            return .rename(from: from, to: to)
        case "SUBSCRIBE": try sp(); return .subscribe(mailbox: try mailbox())
        case "UNSUBSCRIBE": try sp(); return .unsubscribe(mailbox: try mailbox())
        case "LIST": return .list(try list())
        case "LSUB":
            // lsub = "LSUB" SP mailbox SP list-mailbox
            try sp(); let reference = try mailboxName(try astring("reference"), inbox: false)
            try sp(); let pattern = try listMailbox()
            return .lsub(reference: reference, pattern: pattern)
        case "NAMESPACE": return .namespace
        case "STATUS":
            // status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
            try sp(); let m = try mailbox()
            try sp(); return .status(mailbox: m, items: try statusItems())
        case "APPEND": return try append()
        case "IDLE": return .idle
        // compress = "COMPRESS" SP algorithm (RFC 4978 §5)
        case "COMPRESS": try sp(); return .compress(mechanism: try keyword("compression algorithm"))
        // RFC 9208 §7: getquota = "GETQUOTA" SP quota-root-name; getquotaroot = "GETQUOTAROOT" SP mailbox;
        // setquota = "SETQUOTA" SP quota-root-name SP setquota-list; quota-root-name = astring
        case "GETQUOTA": try sp(); return .getQuota(root: try astringText("quota root"))
        case "GETQUOTAROOT": try sp(); return .getQuotaRoot(mailbox: try mailbox())
        case "SETQUOTA": return try setQuota()
        // command-select
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge
        case "SEARCH": try sp(); return .search(try search(), uid: false)
        case "SORT": try sp(); return .sort(try sort(), uid: false)
        case "THREAD": try sp(); return .thread(try thread(), uid: false)
        case "FETCH": try sp(); return .fetch(try fetch(uid: false), uid: false)
        case "STORE": try sp(); return .store(try store(), uid: false)
        case "COPY": try sp(); let (s, m) = try copyArguments(); return .copy(s, mailbox: m, uid: false)
        case "MOVE": try sp(); let (s, m) = try copyArguments(); return .move(s, mailbox: m, uid: false)
        case "UID": try sp(); return try uidCommand()
        default: throw ParseFailure("unknown command \(name.prefix(32))")
        }
    }

    /// setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"
    /// setquota-resource = resource-name SP resource-limit; resource-limit = number64 (RFC 9208 §7)
    mutating func setQuota() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp(); let root = try astringText("quota root")
        try sp()
        let limits = try parenList(allowEmpty: true, "quota resources") { (c: inout IMAPCursor) throws(ParseFailure) in
            let name = try c.keyword("resource name")
            try c.sp()
            return QuotaLimit(resource: name, limit: try c.number64("resource limit"))
        }
        return .setQuota(root: root, limits: limits)
    }

    /// uid = "UID" SP (copy / move / fetch / search / store / uid-expunge / sort / thread)
    mutating func uidCommand() throws(ParseFailure) -> IMAPCommand.Kind {
        let name = try keyword("UID command")
        try sp()
        switch name {
        case "FETCH": return .fetch(try fetch(uid: true), uid: true)
        case "STORE": return .store(try store(), uid: true)
        case "SEARCH": return .search(try search(), uid: true)
        case "SORT": return .sort(try sort(), uid: true)
        case "THREAD": return .thread(try thread(), uid: true)
        case "COPY": let (s, m) = try copyArguments(); return .copy(s, mailbox: m, uid: true)
        case "MOVE": let (s, m) = try copyArguments(); return .move(s, mailbox: m, uid: true)
        // uid-expunge = "EXPUNGE" SP sequence-set (RFC 4315)
        case "EXPUNGE": return .uidExpunge(try sequenceSet())
        default: throw ParseFailure("unknown UID command \(name.prefix(32))")
        }
    }

    /// copy = "COPY" SP sequence-set SP mailbox; move = "MOVE" SP sequence-set SP mailbox
    mutating func copyArguments() throws(ParseFailure) -> (SequenceSet, String) {
        let set = try sequenceSet()
        try sp()
        return (set, try mailbox())
    }

    /// id-params-list = "(" *(string SP nstring) ")" / nil (RFC 2971 §4; at most 30 pairs)
    mutating func idParams() throws(ParseFailure) -> [IDField]? {
        if takeWord("NIL") { return nil }
        try expect(ASCII.lparen, "( or NIL")
        var fields: [IDField] = []
        if take(ASCII.rparen) { return fields }
        while true {
            guard fields.count < limits.maxIDPairs else { throw ParseFailure("too many ID fields", code: IMAPResponseCodes.limit) }
            let key = try text(try string("ID field name"), "ID field name")
            try sp()
            let value = try nstring().map { (v: [UInt8]) throws(ParseFailure) in try text(v, "ID field value") }
            fields.append(IDField(key: key, value: value))
            if take(ASCII.rparen) { return fields }
            try sp()
        }
    }

    /// authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")] (RFC 4959)
    mutating func authenticate() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let mechanism = try keyword("mechanism")
        guard take(ASCII.space) else { return .authenticate(mechanism: mechanism, initial: nil) }
        if take(ASCII.equals) { return .authenticate(mechanism: mechanism, initial: "") }
        // base64 = *(4base64-char) [base64-terminal]
        let data = try run("initial response", { ASCII.isLetDig($0) || $0 == UInt8(ascii: "+") || $0 == ASCII.slash || $0 == ASCII.equals })
        let padding = data.firstIndex(of: ASCII.equals).map { data.count - $0 } ?? 0
        guard data.count % 4 == 0, padding <= 2, data.suffix(padding).allSatisfy({ $0 == ASCII.equals }) else { throw ParseFailure("invalid base64 initial response") }
        return .authenticate(mechanism: mechanism, initial: String(decoding: data, as: UTF8.self))
    }

    /// enable = "ENABLE" 1*(SP capability); capability = atom
    mutating func enableCapabilities() throws(ParseFailure) -> [String] {
        var caps: [String] = []
        repeat {
            guard caps.count < limits.maxSequenceItems else { throw ParseFailure("too many capabilities", code: IMAPResponseCodes.limit) }
            try sp()
            caps.append(try keyword("capability"))
        } while !atEnd
        return caps
    }
}
