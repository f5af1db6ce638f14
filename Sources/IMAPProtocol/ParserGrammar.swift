// The RFC 9051 §9 terminals shared by IMAPFramer and IMAPParser: byte classes and the cursor
// the parser reads a unit with. Every read is bounded by the unit; nothing recurses here.
import MailSyntax

/// Byte classes of RFC 9051 §9 (pure functions of one byte).
enum IMAPGrammar {
    static let lbrace = UInt8(ascii: "{"), rbrace = UInt8(ascii: "}"), plus = UInt8(ascii: "+")
    static let tilde = UInt8(ascii: "~"), star = UInt8(ascii: "*"), percent = UInt8(ascii: "%")
    static let dollar = UInt8(ascii: "$")

    /// CHAR = %x01-7F; CTL = %x00-1F / %x7F.
    @inline(__always) static func isCTL(_ b: UInt8) -> Bool { b < 0x20 || b == 0x7F }

    /// ATOM-CHAR = <any CHAR except atom-specials>;
    /// atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
    static func isAtomChar(_ b: UInt8) -> Bool {
        guard b < 0x80, !isCTL(b) else { return false }
        switch b {
        case ASCII.lparen, ASCII.rparen, lbrace, ASCII.space, star, percent, ASCII.dquote, ASCII.backslash, ASCII.rbracket:
            return false
        default:
            return true
        }
    }

    /// ASTRING-CHAR = ATOM-CHAR / resp-specials
    @inline(__always) static func isAstringChar(_ b: UInt8) -> Bool { isAtomChar(b) || b == ASCII.rbracket }

    /// tag = 1*<any ASTRING-CHAR except "+">
    @inline(__always) static func isTagChar(_ b: UInt8) -> Bool { isAstringChar(b) && b != plus }

    /// list-char = ATOM-CHAR / list-wildcards / resp-specials
    @inline(__always) static func isListChar(_ b: UInt8) -> Bool { isAstringChar(b) || b == star || b == percent }

    /// A run of decimal digits as an Int; nil when empty or too large.
    static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for d in digits {
            guard ASCII.isDigit(d) else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int(d - 0x30))
            if o1 || o2 { return nil }
            value = s
        }
        return value
    }
}

/// Reply codes the parser attaches to its errors (RFC 9051 §7.1, RFC 7889).
public enum IMAPResponseCodes {
    /// A limit of the server was hit (nesting, list length).
    public static let limit = "LIMIT"
    /// A literal over the size limit.
    public static let tooBig = "TOOBIG"
    /// The client broke a rule it should know (e.g. VANISHED without CHANGEDSINCE).
    public static let clientBug = "CLIENTBUG"
    /// RFC 5530 §3: well-formed, but never possible as asked (an 8-bit mailbox name before
    /// UTF8=ACCEPT). The session answers NO, not BAD: the command is not a syntax error.
    public static let cannot = "CANNOT"
}

/// A parse failure before the tag is attached.
struct ParseFailure: Error {
    var message: String
    var code: String? = nil
    init(_ message: String, code: String? = nil) { self.message = message; self.code = code }
}

/// The read position in one unit, with the options that decide how names are decoded.
struct IMAPCursor {
    var c: ByteCursor
    let options: IMAPParserOptions
    /// Current parenthesis / NOT / OR nesting (bounded by `limits.maxDepth`).
    var depth = 0

    init(_ bytes: [UInt8], end: Int, options: IMAPParserOptions) {
        c = ByteCursor(bytes, from: 0, to: end)
        self.options = options
    }

    var limits: IMAPLimits { options.limits }
    var atEnd: Bool { c.atEnd }
    func peek(_ offset: Int = 0) -> UInt8? { c.peek(offset) }

    // MARK: punctuation

    mutating func sp() throws(ParseFailure) {
        guard c.take(ASCII.space) else { throw ParseFailure(c.atEnd ? "missing argument" : "expected a single space") }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(ParseFailure) {
        guard c.take(byte) else { throw ParseFailure("expected \(what)") }
    }

    mutating func take(_ byte: UInt8) -> Bool { c.take(byte) }

    /// Consumes `word` (case-insensitive) when it is next and not followed by an atom char.
    mutating func takeWord(_ word: String) -> Bool {
        let save = c.pos
        guard c.takeCaseInsensitive(word) else { return false }
        if let b = c.peek(), IMAPGrammar.isAtomChar(b) { c.pos = save; return false }
        return true
    }

    mutating func enter() throws(ParseFailure) {
        depth += 1
        guard depth <= limits.maxDepth else { throw ParseFailure("nested too deeply", code: IMAPResponseCodes.limit) }
    }
    mutating func leave() { depth -= 1 }

    /// "(" [elem *(SP elem)] ")" — at most `maxSequenceItems` elements; `allowEmpty` for "()".
    mutating func parenList<T>(allowEmpty: Bool = false, _ what: String,
                               _ element: (inout IMAPCursor) throws(ParseFailure) -> T) throws(ParseFailure) -> [T] {
        try expect(ASCII.lparen, "( before \(what)")
        try enter()
        defer { leave() }
        var out: [T] = []
        if c.take(ASCII.rparen) {
            guard allowEmpty else { throw ParseFailure("empty \(what)") }
            return out
        }
        while true {
            guard out.count < limits.maxSequenceItems else { throw ParseFailure("too many \(what)", code: IMAPResponseCodes.limit) }
            out.append(try element(&self))
            if c.take(ASCII.rparen) { return out }
            try sp()
        }
    }

    // MARK: atoms and strings

    /// atom = 1*ATOM-CHAR
    mutating func atom(_ what: String = "atom") throws(ParseFailure) -> String {
        let start = c.pos
        while let b = c.peek(), IMAPGrammar.isAtomChar(b) { c.pos += 1 }
        guard c.pos > start else { throw ParseFailure("expected \(what)") }
        return c.string(start..<c.pos)
    }

    /// An atom, uppercased (command names, keywords of the grammar).
    mutating func keyword(_ what: String = "keyword") throws(ParseFailure) -> String {
        try atom(what).uppercased()
    }

    /// astring = 1*ASTRING-CHAR / string
    mutating func astring(_ what: String = "string") throws(ParseFailure) -> [UInt8] {
        if startsString {
            return try string(what)
        }
        return try run(what, IMAPGrammar.isAstringChar)
    }

    /// A quoted string, literal or literal8 is next ("~" alone is an atom char).
    var startsString: Bool {
        guard let b = c.peek() else { return false }
        return b == ASCII.dquote || b == IMAPGrammar.lbrace || (b == IMAPGrammar.tilde && c.peek(1) == IMAPGrammar.lbrace)
    }

    /// 1*<bytes of the class>
    mutating func run(_ what: String, _ isMember: (UInt8) -> Bool) throws(ParseFailure) -> [UInt8] {
        let start = c.pos
        while let b = c.peek(), isMember(b) { c.pos += 1 }
        guard c.pos > start else { throw ParseFailure("expected \(what)") }
        return Array(c.bytes[start..<c.pos])
    }

    /// string = quoted / literal (literal8 is refused here: only APPEND takes it)
    mutating func string(_ what: String = "string") throws(ParseFailure) -> [UInt8] {
        if c.peek() == ASCII.dquote { return try quoted() }
        let (bytes, binary) = try literal()
        guard !binary else { throw ParseFailure("literal8 not allowed for \(what)") }
        return bytes
    }

    /// nstring = string / nil
    mutating func nstring() throws(ParseFailure) -> [UInt8]? {
        if takeWord("NIL") { return nil }
        return try string()
    }

    /// quoted = DQUOTE *QUOTED-CHAR DQUOTE
    /// QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
    mutating func quoted() throws(ParseFailure) -> [UInt8] {
        try expect(ASCII.dquote, "quoted string")
        var out: [UInt8] = []
        var eightBit = false
        while true {
            guard let b = c.peek() else { throw ParseFailure("unterminated quoted string") }
            c.pos += 1
            switch b {
            case ASCII.dquote:
                if eightBit, !ASCII.isValidUTF8(out[...]) { throw ParseFailure("invalid UTF-8 in quoted string") }
                return out
            case ASCII.backslash:
                guard let e = c.peek(), e == ASCII.dquote || e == ASCII.backslash else {
                    throw ParseFailure("invalid escape in quoted string")
                }
                c.pos += 1
                out.append(e)
            case 0, ASCII.cr, ASCII.lf:
                throw ParseFailure("NUL, CR or LF in quoted string")
            default:
                if b >= 0x80 { eightBit = true }
                out.append(b)
            }
        }
    }

    /// literal = "{" number64 ["+"] "}" CRLF *CHAR8 (RFC 7888 for "+")
    /// literal8 = "~{" number64 ["+"] "}" CRLF *OCTET (RFC 3516 §4.4)
    /// Returns the data and whether it was a literal8.
    mutating func literal() throws(ParseFailure) -> ([UInt8], binary: Bool) {
        let binary = c.take(IMAPGrammar.tilde)
        try expect(IMAPGrammar.lbrace, binary ? "literal8" : "string")
        let start = c.pos
        while let b = c.peek(), ASCII.isDigit(b) { c.pos += 1 }
        guard let size = IMAPGrammar.decimal(c.bytes[start..<c.pos]) else { throw ParseFailure("invalid literal size") }
        _ = c.take(IMAPGrammar.plus)
        try expect(IMAPGrammar.rbrace, "} after the literal size")
        _ = c.take(ASCII.cr)
        guard c.take(ASCII.lf) else { throw ParseFailure("expected CRLF after the literal size") }
        guard size <= c.remaining else { throw ParseFailure("literal data truncated") }
        let data = Array(c.bytes[c.pos..<(c.pos + size)])
        c.pos += size
        if !binary, data.contains(0) { throw ParseFailure("NUL in literal (use literal8)") }
        return (data, binary)
    }

    /// Bytes as text: UTF-8 only.
    func text(_ bytes: [UInt8], _ what: String = "string") throws(ParseFailure) -> String {
        guard ASCII.isValidUTF8(bytes[...]) else { throw ParseFailure("invalid UTF-8 in \(what)") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An astring as text.
    mutating func astringText(_ what: String = "string") throws(ParseFailure) -> String {
        try text(try astring(what), what)
    }

    // MARK: mailbox names

    /// mailbox = "INBOX" / astring — decoded per the options (RFC 9051 §5.1.3, RFC 6855 §3).
    mutating func mailbox() throws(ParseFailure) -> String {
        try mailboxName(try astring("mailbox name"))
    }

    /// list-mailbox = 1*list-char / string
    mutating func listMailbox() throws(ParseFailure) -> String {
        if startsString {
            return try mailboxName(try string("mailbox pattern"), inbox: false)
        }
        return try mailboxName(try run("mailbox pattern", IMAPGrammar.isListChar), inbox: false)
    }

    /// UTF-8 under UTF8=ACCEPT / IMAP4rev2, else modified UTF-7; "INBOX" in any case is "INBOX".
    func mailboxName(_ raw: [UInt8], inbox: Bool = true) throws(ParseFailure) -> String {
        let name: String
        if options.utf8Accept {
            name = try text(raw, "mailbox name")
        } else {
            guard raw.allSatisfy({ $0 < 0x80 }), let decoded = ModifiedUTF7.decode(String(decoding: raw, as: UTF8.self)) else {
                // RFC 3501 §5.1.3: without UTF8=ACCEPT names are modified UTF-7. A raw UTF-8
                // name is a valid quoted string (RFC 9051 §4.3), so this is NO [CANNOT], as
                // Dovecot answers: mbsync 1.4 sends local folder names as they are, and a BAD
                // cancels its whole store instead of that one folder.
                throw ParseFailure("Mailbox name is not valid modified UTF-7 (UTF-8 names need ENABLE UTF8=ACCEPT)",
                                   code: IMAPResponseCodes.cannot)
            }
            name = decoded
        }
        if inbox, Self.isInbox(raw) { return "INBOX" }
        return name
    }

    static let inboxBytes: [UInt8] = Array("inbox".utf8)
    static func isInbox(_ raw: [UInt8]) -> Bool {
        raw.count == inboxBytes.count && zip(raw, inboxBytes).allSatisfy { ASCII.lower($0) == $1 }
    }

    // MARK: numbers

    /// 1*DIGIT up to `max`.
    mutating func digits(_ what: String, max: UInt64) throws(ParseFailure) -> UInt64 {
        let start = c.pos
        var value: UInt64 = 0
        while let b = c.peek(), ASCII.isDigit(b) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            guard !o1, !o2, s <= max else { throw ParseFailure("\(what) out of range") }
            value = s
            c.pos += 1
        }
        guard c.pos > start else { throw ParseFailure("expected \(what)") }
        return value
    }

    /// number = 1*DIGIT (unsigned 32-bit)
    mutating func number(_ what: String = "number") throws(ParseFailure) -> UInt32 {
        UInt32(try digits(what, max: UInt64(UInt32.max)))
    }

    /// nz-number = digit-nz *DIGIT
    mutating func nzNumber(_ what: String = "number") throws(ParseFailure) -> UInt32 {
        guard c.peek() != UInt8(ascii: "0") else { throw ParseFailure("\(what) must not be 0 or start with 0") }
        return try number(what)
    }

    /// number64 = 1*DIGIT (unsigned 63-bit)
    mutating func number64(_ what: String = "number") throws(ParseFailure) -> UInt64 {
        try digits(what, max: UInt64(Int64.max))
    }

    // MARK: sequence sets

    /// sequence-set = (seq-number / seq-range) ["," sequence-set] / "$" (RFC 5182)
    /// seq-range = seq-number ":" seq-number; seq-number = nz-number / "*"
    mutating func sequenceSet() throws(ParseFailure) -> SequenceSet {
        if c.take(IMAPGrammar.dollar) { return .saved }
        var ranges: [ClosedRange<UInt32>] = []
        repeat {
            guard ranges.count < limits.maxSequenceItems else {
                throw ParseFailure("sequence set too long", code: IMAPResponseCodes.limit)
            }
            let a = try seqNumber()
            var b = a
            if c.take(ASCII.colon) { b = try seqNumber() }
            ranges.append(min(a, b)...max(a, b))
        } while c.take(ASCII.comma)
        return .ranges(ranges)
    }

    mutating func seqNumber() throws(ParseFailure) -> UInt32 {
        if c.take(IMAPGrammar.star) { return SequenceSet.star }
        return try nzNumber("sequence number")
    }

    // MARK: dates

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].map { Array($0.utf8) }

    /// date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-" date-year
    /// Days since 1970-01-01.
    mutating func date() throws(ParseFailure) -> Int {
        let q = c.take(ASCII.dquote)
        let day = try fixedDigits(c.peek(1).map(ASCII.isDigit) == true ? 2 : 1, "day")
        let days = try monthYear(day: day)
        if q { try expect(ASCII.dquote, "closing quote of date") }
        return days
    }

    /// "-" date-month "-" date-year after the day, as days since the epoch.
    private mutating func monthYear(day: Int) throws(ParseFailure) -> Int {
        try expect(ASCII.dash, "- in date")
        guard c.remaining >= 3 else { throw ParseFailure("expected month") }
        let m = (0..<3).map { ASCII.lower(c.bytes[c.pos + $0]) }
        guard let month = Self.months.firstIndex(of: m) else { throw ParseFailure("invalid month") }
        c.pos += 3
        try expect(ASCII.dash, "- in date")
        let start = c.pos
        let year = Int(try digits("year", max: 9999))
        guard c.pos - start == 4 else { throw ParseFailure("year must have 4 digits") }
        guard day >= 1, day <= CivilDate.daysIn(month: month + 1, year: year) else { throw ParseFailure("invalid day") }
        return CivilDate.days(year: year, month: month + 1, day: day)
    }

    /// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    /// date-day-fixed = (SP DIGIT) / 2DIGIT; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT;
    /// zone = ("+" / "-") 4DIGIT. Seconds since the epoch, UTC.
    mutating func dateTime() throws(ParseFailure) -> Int64 {
        try expect(ASCII.dquote, "date-time")
        let day = try fixedDigits(c.take(ASCII.space) ? 1 : (c.peek(1).map(ASCII.isDigit) == true ? 2 : 1), "day")
        let days = try monthYear(day: day)
        try sp()
        let hh = try fixedDigits(2, "hour"); try expect(ASCII.colon, ": in time")
        let mm = try fixedDigits(2, "minute"); try expect(ASCII.colon, ": in time")
        let ss = try fixedDigits(2, "second")
        guard hh < 24, mm < 60, ss < 61 else { throw ParseFailure("invalid time") }
        try sp()
        let sign: Int
        if c.take(UInt8(ascii: "+")) { sign = 1 } else if c.take(ASCII.dash) { sign = -1 } else { throw ParseFailure("expected zone") }
        let zone = try fixedDigits(4, "zone")
        guard zone % 100 < 60 else { throw ParseFailure("invalid zone") }
        try expect(ASCII.dquote, "closing quote of date-time")
        let offset = sign * ((zone / 100) * 3600 + (zone % 100) * 60)
        return Int64(days) * 86_400 + Int64(hh * 3600 + mm * 60 + ss - offset)
    }

    mutating func fixedDigits(_ n: Int, _ what: String) throws(ParseFailure) -> Int {
        guard c.remaining >= n else { throw ParseFailure("expected \(what)") }
        var v = 0
        for _ in 0..<n {
            guard let b = c.peek(), ASCII.isDigit(b) else { throw ParseFailure("expected \(what)") }
            v = v * 10 + Int(b - 0x30)
            c.pos += 1
        }
        return v
    }

    // MARK: flags

    /// flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword / flag-extension
    /// flag-extension = "\" atom; flag-keyword = atom
    mutating func flag() throws(ParseFailure) -> Flag {
        if c.take(ASCII.backslash) {
            let name = try atom("flag")
            switch name.uppercased() {
            case "SEEN": return .seen
            case "ANSWERED": return .answered
            case "FLAGGED": return .flagged
            case "DELETED": return .deleted
            case "DRAFT": return .draft
            case "RECENT": return .recent
            default: return .extension("\\" + name)
            }
        }
        return .keyword(try atom("flag"))
    }

    /// flag-list = "(" [flag *(SP flag)] ")"
    mutating func flagList() throws(ParseFailure) -> [Flag] {
        try parenList(allowEmpty: true, "flags") { (c: inout IMAPCursor) throws(ParseFailure) in try c.flag() }
    }
}

/// Proleptic Gregorian calendar arithmetic (H. Hinnant's days_from_civil).
enum CivilDate {
    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the date (negative before).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
