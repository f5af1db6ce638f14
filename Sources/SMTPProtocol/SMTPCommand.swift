// Grammar stage for SMTP/LMTP command lines (framing is done by CommandFramer): the
// command table with its flags, and parsers for each verb's arguments (RFC 5321 §4.1.1).

/// Verbs the engine knows. Verbs are case-insensitive (RFC 5321 §2.4).
enum SMTPVerb: String, CaseIterable, Sendable {
    case helo = "HELO", ehlo = "EHLO", lhlo = "LHLO"
    case mail = "MAIL", rcpt = "RCPT", data = "DATA"
    case rset = "RSET", noop = "NOOP", quit = "QUIT"
    case vrfy = "VRFY", expn = "EXPN", help = "HELP"
    // ESMTP extensions: answered 502 5.5.1 unless configured (see SMTPOptionalCommands).
    case bdat = "BDAT", starttls = "STARTTLS", auth = "AUTH"
    // Known but not implemented: answered 502 5.5.1 (RFC 5321 §4.2.4).
    case etrn = "ETRN", turn = "TURN", atrn = "ATRN"
}

/// Extension commands the session has configured; the others are answered 502 5.5.1
/// whatever their arguments.
struct SMTPOptionalCommands: OptionSet, Sendable {
    let rawValue: UInt8
    static let startTLS = SMTPOptionalCommands(rawValue: 1 << 0)   // RFC 3207
    static let auth = SMTPOptionalCommands(rawValue: 1 << 1)       // RFC 4954
    static let bdat = SMTPOptionalCommands(rawValue: 1 << 2)       // RFC 3030
}

/// Properties of a verb, in the style of Postfix's smtpd_cmd_table. The parser reads
/// `smtpOnly`, `lmtpOnly` and `unimplemented`; the session checks the state guards
/// (`needsHello` … `needsTransaction`) in `SMTPSession.tableRefusal` before the verb runs,
/// and `discardsPipelinedInput` after it, so this table is the one place they are decided.
struct SMTPCommandFlags: OptionSet, Sendable {
    let rawValue: UInt16
    /// Only valid in SMTP (RFC 2033 §4.1: an LMTP server refuses HELO/EHLO).
    static let smtpOnly = SMTPCommandFlags(rawValue: 1 << 0)
    /// Only valid in LMTP.
    static let lmtpOnly = SMTPCommandFlags(rawValue: 1 << 1)
    /// Needs a prior HELO/EHLO/LHLO (RFC 5321 §4.1.4): 503 5.5.1 "Send HELO/EHLO first".
    static let needsHello = SMTPCommandFlags(rawValue: 1 << 2)
    /// May only appear last in a pipelined group (RFC 2920 §3.1); the glue's
    /// flush-when-input-runs-out already satisfies this, the flag documents it.
    static let endsGroup = SMTPCommandFlags(rawValue: 1 << 3)
    /// Recognised but not implemented: 502 5.5.1.
    static let unimplemented = SMTPCommandFlags(rawValue: 1 << 4)
    /// An ESMTP extension: needs a prior EHLO/LHLO (implies `needsHello`), refused after
    /// HELO (503 5.5.1 "Send EHLO first").
    static let needsEHLO = SMTPCommandFlags(rawValue: 1 << 5)
    /// Not allowed inside a mail transaction (503 5.5.1; for MAIL "Sender already specified").
    static let outsideTransaction = SMTPCommandFlags(rawValue: 1 << 6)
    /// Discards any input pipelined after it once accepted (RFC 3207 §4.2).
    static let discardsPipelinedInput = SMTPCommandFlags(rawValue: 1 << 7)
    /// Needs a mail transaction, i.e. a prior MAIL (503 5.5.1 "Need MAIL command").
    static let needsTransaction = SMTPCommandFlags(rawValue: 1 << 8)
    /// Refused once authenticated (RFC 4954 §4: 503 5.5.1 "Already authenticated").
    static let notAuthenticated = SMTPCommandFlags(rawValue: 1 << 9)
    /// Counts towards `SMTPLimits.maxJunkCommands` (postconf(5) smtpd_junk_command_limit);
    /// a repeated HELO/EHLO/LHLO counts too, decided by the session.
    static let junk = SMTPCommandFlags(rawValue: 1 << 10)
}

enum SMTPCommandTable {
    static func flags(_ verb: SMTPVerb) -> SMTPCommandFlags {
        switch verb {
        case .helo, .ehlo: return [.smtpOnly, .endsGroup]
        case .lhlo: return [.lmtpOnly, .endsGroup]
        case .mail: return [.needsHello, .outsideTransaction]
        case .rcpt: return [.needsHello, .needsTransaction]
        case .data: return [.needsHello, .needsTransaction, .endsGroup]
        case .rset: return [.junk]
        case .noop, .vrfy: return [.endsGroup, .junk]
        case .quit, .expn: return [.endsGroup]
        case .help: return [.junk]
        // Like Postfix, STARTTLS needs no prior EHLO (RFC 3207 does not require one).
        case .starttls: return [.outsideTransaction, .endsGroup, .discardsPipelinedInput]
        case .auth: return [.needsEHLO, .notAuthenticated, .outsideTransaction, .endsGroup]
        // BDAT's refusal is sent after its octets are read (RFC 3030 §2).
        case .bdat: return [.needsHello, .needsEHLO, .needsTransaction]
        case .etrn, .turn, .atrn: return [.unimplemented]
        }
    }

    /// Looks a verb up by its bytes, case-insensitively, without allocating.
    static func lookup(_ bytes: ArraySlice<UInt8>) -> SMTPVerb? {
        guard bytes.count >= 4, bytes.count <= 8 else { return nil }
        outer: for verb in SMTPVerb.allCases where verb.rawValue.utf8.count == bytes.count {
            var i = bytes.startIndex
            for expected in verb.rawValue.utf8 {
                if ASCII.lower(bytes[i]) != ASCII.lower(expected) { continue outer }
                i += 1
            }
            return verb
        }
        return nil
    }
}

/// One esmtp-param: keyword (uppercased) and optional value.
struct ESMTPParameter: Equatable, Sendable {
    var keyword: String
    var value: String?
}

/// A parsed command line.
enum SMTPCommand: Equatable, Sendable {
    case hello(SMTPVerb, domain: String)
    case mail(ParsedPath, [ESMTPParameter])
    case rcpt(ParsedPath, [ESMTPParameter])
    case data, rset, noop, quit, help
    case vrfy(String)
    case expn
    case unimplemented(SMTPVerb)
    case startTLS
    /// Mechanism uppercased; the initial response as sent (base64 or "="), if any.
    case auth(mechanism: String, initialResponse: ArraySlice<UInt8>?)
    /// Chunk size (clamped to Int.max) and whether LAST was given.
    case bdat(size: Int, last: Bool)
}

extension SMTPCommand {
    /// The verb whose table flags guard this command; nil for `.unimplemented`, which is
    /// answered 502 whatever the session state.
    var guardedVerb: SMTPVerb? {
        switch self {
        case .hello(let verb, _): return verb
        case .mail: return .mail
        case .rcpt: return .rcpt
        case .data: return .data
        case .rset: return .rset
        case .noop: return .noop
        case .quit: return .quit
        case .help: return .help
        case .vrfy: return .vrfy
        case .expn: return .expn
        case .unimplemented: return nil
        case .startTLS: return .starttls
        case .auth: return .auth
        case .bdat: return .bdat
        }
    }
}

/// A command that failed the grammar stage, with the reply to send.
struct SMTPCommandError: Error, Equatable {
    var reply: SMTPReply
}

enum SMTPCommandParser {
    /// Parses one command line (without its line ending). `smtpUTF8Advertised`: MAIL may
    /// carry a non-ASCII reverse-path when it also has the SMTPUTF8 parameter;
    /// `rcptAllowsUTF8`: the current transaction was started with SMTPUTF8 (RFC 6531 §3.4).
    /// `optional`: the extension commands configured; others are `.unimplemented`.
    static func parse(_ line: [UInt8], dialect: SMTPDialect, smtpUTF8Advertised: Bool, rcptAllowsUTF8: Bool,
                      optional: SMTPOptionalCommands = []) -> Result<SMTPCommand, SMTPCommandError> {
        var end = line.count
        while end > 0, line[end - 1] == ASCII.space || line[end - 1] == ASCII.tab { end -= 1 }
        var verbEnd = 0
        while verbEnd < end, line[verbEnd] != ASCII.space { verbEnd += 1 }
        guard let verb = SMTPCommandTable.lookup(line[0..<verbEnd]) else {
            return .failure(SMTPCommandError(reply: .syntaxError))
        }
        let flags = SMTPCommandTable.flags(verb)
        if flags.contains(.smtpOnly), dialect == .lmtp {
            return .failure(SMTPCommandError(reply: .heloNotAllowedInLMTP))   // RFC 2033 §4.1
        }
        if flags.contains(.lmtpOnly), dialect == .smtp {
            return .failure(SMTPCommandError(reply: .syntaxError))
        }
        var c = ByteCursor(line, from: verbEnd, to: end)
        let hasArgument = c.take(ASCII.space)
        c.skipSpaces()
        if flags.contains(.unimplemented) {
            return .success(.unimplemented(verb))
        }
        switch verb {
        case .starttls where !optional.contains(.startTLS),
             .auth where !optional.contains(.auth),
             .bdat where !optional.contains(.bdat):
            return .success(.unimplemented(verb))
        default:
            break
        }
        switch verb {
        case .helo, .ehlo, .lhlo:
            return parseHello(verb, &c)
        case .mail:
            return parseMail(&c, smtpUTF8Advertised: smtpUTF8Advertised)
        case .rcpt:
            return parseRcpt(&c, allowUTF8: rcptAllowsUTF8)
        case .data, .rset, .quit:
            // "DATA" CRLF, "RSET" CRLF, "QUIT" CRLF — no arguments (RFC 5321 §4.1.1.4/5/10).
            guard c.atEnd else { return .failure(SMTPCommandError(reply: .parameterError)) }
            switch verb {
            case .data: return .success(.data)
            case .rset: return .success(.rset)
            default: return .success(.quit)
            }
        case .noop:
            // "NOOP" [ SP String ] CRLF — argument ignored (RFC 5321 §4.1.1.9).
            return .success(.noop)
        case .help:
            // "HELP" [ SP String ] CRLF (RFC 5321 §4.1.1.8).
            return .success(.help)
        case .vrfy:
            // "VRFY" SP String CRLF (RFC 5321 §4.1.1.6).
            guard hasArgument, !c.atEnd else { return .failure(SMTPCommandError(reply: .parameterError)) }
            return .success(.vrfy(c.string(c.pos..<c.end)))
        case .expn:
            return .success(.expn)
        case .starttls:
            // "STARTTLS" CRLF — no arguments (RFC 3207 §4).
            guard c.atEnd else { return .failure(SMTPCommandError(reply: .parameterError)) }
            return .success(.startTLS)
        case .auth:
            return parseAuth(&c)
        case .bdat:
            return parseBDAT(&c)
        case .etrn, .turn, .atrn:
            return .success(.unimplemented(verb))
        }
    }

    // auth-command     = "AUTH" SP sasl-mech [SP initial-response] CRLF   (RFC 4954 §4)
    // sasl-mech        = 1*20mech-char                                      (RFC 4422 §3.1)
    // mech-char        = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE
    // initial-response = base64 / "="
    // Lower-case mechanism names are accepted. The response is checked by the session.
    static func parseAuth(_ c: inout ByteCursor) -> Result<SMTPCommand, SMTPCommandError> {
        let start = c.pos
        while let b = c.peek(), ASCII.isLetDig(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") { c.pos += 1 }
        guard c.pos > start, c.pos - start <= 20 else { return .failure(SMTPCommandError(reply: .parameterError)) }
        let mechanism = c.string(start..<c.pos).uppercased()
        if c.atEnd { return .success(.auth(mechanism: mechanism, initialResponse: nil)) }
        guard c.take(ASCII.space) else { return .failure(SMTPCommandError(reply: .parameterError)) }
        let responseStart = c.pos
        while let b = c.peek(), b != ASCII.space, b != ASCII.tab { c.pos += 1 }
        guard c.pos > responseStart, c.atEnd else { return .failure(SMTPCommandError(reply: .parameterError)) }
        return .success(.auth(mechanism: mechanism, initialResponse: c.bytes[responseStart..<c.pos]))
    }

    // bdat-cmd   = "BDAT" SP chunk-size [ SP end-marker ] CRLF   (RFC 3030 §2)
    // chunk-size = 1*DIGIT
    // end-marker = "LAST"
    // More than 20 digits is a syntax error; a value over Int.max is clamped (it can only
    // exceed the size limit, and the octets are read and discarded as announced).
    static func parseBDAT(_ c: inout ByteCursor) -> Result<SMTPCommand, SMTPCommandError> {
        let start = c.pos
        var size = 0
        while let b = c.peek(), ASCII.isDigit(b) {
            let (times10, o1) = size.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(b - 0x30))
            size = (o1 || o2) ? Int.max : sum
            c.pos += 1
        }
        guard c.pos > start, c.pos - start <= 20 else { return .failure(SMTPCommandError(reply: .parameterError)) }
        if c.atEnd { return .success(.bdat(size: size, last: false)) }
        guard c.take(ASCII.space) else { return .failure(SMTPCommandError(reply: .parameterError)) }
        c.skipSpaces()
        guard c.takeCaseInsensitive("LAST"), c.atEnd else { return .failure(SMTPCommandError(reply: .parameterError)) }
        return .success(.bdat(size: size, last: true))
    }

    // ehlo = "EHLO" SP ( Domain / address-literal ) CRLF
    // helo = "HELO" SP Domain CRLF
    // lhlo = "LHLO" SP Domain CRLF   (RFC 2033 §4.1)
    // Real clients send all sorts of names, so any printable ASCII word is accepted (policy
    // belongs to the glue); anything after the first word is ignored. The name ends up in
    // the Received header, so CTLs, spaces and non-ASCII are refused.
    static func parseHello(_ verb: SMTPVerb, _ c: inout ByteCursor) -> Result<SMTPCommand, SMTPCommandError> {
        let start = c.pos
        while let b = c.peek(), b != ASCII.space, b != ASCII.tab {
            guard b >= 0x21, b <= 0x7E else { return .failure(SMTPCommandError(reply: .parameterError)) }
            c.pos += 1
        }
        guard c.pos > start, c.pos - start <= AddressParser.maxDomainLength else {
            return .failure(SMTPCommandError(reply: .parameterError))
        }
        return .success(.hello(verb, domain: c.string(start..<c.pos)))
    }

    // mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF   (RFC 5321 §4.1.1.2)
    // A space after the colon is tolerated (common client bug, accepted by Postfix too).
    static func parseMail(_ c: inout ByteCursor, smtpUTF8Advertised: Bool) -> Result<SMTPCommand, SMTPCommandError> {
        guard c.takeCaseInsensitive("FROM:") else { return .failure(SMTPCommandError(reply: .parameterError)) }
        c.skipSpaces()
        // SMTPUTF8 is a parameter after the path; find the parameters first by parsing
        // the path permissively, then re-check the address against the parameters.
        let pathStart = c.pos
        let permissive: ParsedPath
        do {
            permissive = try AddressParser.parsePath(&c, allowUTF8: true, allowNull: true)
        } catch {
            return .failure(SMTPCommandError(reply: .badSenderAddress))
        }
        if let next = c.peek(), next != ASCII.space, next != ASCII.tab {
            return .failure(SMTPCommandError(reply: .badSenderAddress))    // "<a@b>junk"
        }
        let params: [ESMTPParameter]
        switch parseParameters(&c) {
        case .success(let p): params = p
        case .failure(let e): return .failure(e)
        }
        let utf8 = smtpUTF8Advertised && params.contains { $0.keyword == "SMTPUTF8" }
        if !utf8 {
            var strict = ByteCursor(c.bytes, from: pathStart, to: c.end)
            do {
                _ = try AddressParser.parsePath(&strict, allowUTF8: false, allowNull: true)
            } catch {
                return .failure(SMTPCommandError(reply: error == .nonASCII ? .nonASCIIAddress : .badSenderAddress))
            }
        }
        return .success(.mail(permissive, params))
    }

    // rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
    //        [SP Rcpt-parameters] CRLF                                 (RFC 5321 §4.1.1.3)
    static func parseRcpt(_ c: inout ByteCursor, allowUTF8: Bool) -> Result<SMTPCommand, SMTPCommandError> {
        guard c.takeCaseInsensitive("TO:") else { return .failure(SMTPCommandError(reply: .parameterError)) }
        c.skipSpaces()
        let path: ParsedPath
        do {
            path = try AddressParser.parsePath(&c, allowUTF8: allowUTF8, allowNull: false, allowPostmaster: true)
        } catch {
            return .failure(SMTPCommandError(reply: error == .nonASCII ? .nonASCIIAddress : .badAddress))
        }
        switch parseParameters(&c) {
        case .success(let params): return .success(.rcpt(path, params))
        case .failure(let e): return .failure(e)
        }
    }

    // Mail-parameters = esmtp-param *(SP esmtp-param)
    // esmtp-param     = esmtp-keyword ["=" esmtp-value]
    // esmtp-keyword   = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    // esmtp-value     = 1*(%d33-60 / %d62-126 / UTF8-non-ascii)    ; RFC 6531 §3.3
    // Anything glued to the path ("<a@b>junk") is a syntax error; keywords are uppercased.
    static func parseParameters(_ c: inout ByteCursor) -> Result<[ESMTPParameter], SMTPCommandError> {
        var params: [ESMTPParameter] = []
        if c.atEnd { return .success(params) }
        guard c.peek() == ASCII.space || c.peek() == ASCII.tab else {
            return .failure(SMTPCommandError(reply: .badAddress))
        }
        while true {
            c.skipSpaces()
            if c.atEnd { break }
            let keyStart = c.pos
            guard let first = c.peek(), ASCII.isLetDig(first) else {
                return .failure(SMTPCommandError(reply: .parameterError))
            }
            while let b = c.peek(), ASCII.isLetDig(b) || b == UInt8(ascii: "-") { c.pos += 1 }
            let keyword = c.string(keyStart..<c.pos).uppercased()
            var value: String? = nil
            if c.take(UInt8(ascii: "=")) {
                let valueStart = c.pos
                while let b = c.peek(), (b >= 33 && b != UInt8(ascii: "=") && b != 127) { c.pos += 1 }
                guard c.pos > valueStart,
                      ASCII.isValidUTF8(c.bytes[valueStart..<c.pos]) else {
                    return .failure(SMTPCommandError(reply: .parameterError))
                }
                value = c.string(valueStart..<c.pos)
            }
            guard c.atEnd || c.peek() == ASCII.space || c.peek() == ASCII.tab else {
                return .failure(SMTPCommandError(reply: .parameterError))
            }
            if params.contains(where: { $0.keyword == keyword }) {
                return .failure(SMTPCommandError(reply: .parameterError))
            }
            params.append(ESMTPParameter(keyword: keyword, value: value))
        }
        return .success(params)
    }
}
