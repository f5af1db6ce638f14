// The POP3 command grammar (RFC 1939 §5–§7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH): one
// line in, one command or a reason out. Pure: no state; the state machine decides what is allowed.
import MailSyntax

public enum POP3Command: Sendable, Equatable {
    case user(String)
    case pass(String)
    case stat
    case list(Int?)
    case retr(Int)
    case dele(Int)
    case noop
    case rset
    case quit
    case top(Int, lines: Int)
    case uidl(Int?)
    case capa
    case stls
    /// AUTH with no mechanism lists the mechanisms (RFC 5034 §4 leaves it; many clients ask).
    case auth(mechanism: String?, initial: String?)
    case apop

    /// The keyword as it is logged and named in the command table.
    public var keyword: String {
        switch self {
        case .user: return "USER"
        case .pass: return "PASS"
        case .stat: return "STAT"
        case .list: return "LIST"
        case .retr: return "RETR"
        case .dele: return "DELE"
        case .noop: return "NOOP"
        case .rset: return "RSET"
        case .quit: return "QUIT"
        case .top: return "TOP"
        case .uidl: return "UIDL"
        case .capa: return "CAPA"
        case .stls: return "STLS"
        case .auth: return "AUTH"
        case .apop: return "APOP"
        }
    }
}

public enum POP3ParseError: Error, Sendable, Equatable {
    case empty
    case unknownCommand(String)
    case badArguments(String)
}

public enum POP3Parser {
    /// A message number: RFC 1939 §3 "msg" is 1*DIGIT without sign; a few digits are plenty.
    static let maxNumberDigits = 9

    /// command = keyword *(SP argument)   (RFC 1939 §3; keywords case-insensitive)
    /// Byte by byte: keywords are ASCII (RFC 1939 §3: "three or four characters"), so they are
    /// matched as one packed upper-case word, with no String built on the RETR path.
    public static func parse(_ line: [UInt8]) -> Result<POP3Command, POP3ParseError> {
        guard !line.isEmpty else { return .failure(.empty) }
        guard !line.contains(where: { $0 == 0 || $0 == ASCII.cr || $0 == ASCII.lf }) else {
            return .failure(.badArguments("control characters in the command"))
        }
        let keywordEnd = line.firstIndex(of: ASCII.space) ?? line.endIndex
        let hasArgs = keywordEnd < line.endIndex
        let rest = hasArgs ? line[(keywordEnd + 1)...] : []
        guard let keyword = Keyword(line[..<keywordEnd]) else {
            return .failure(.unknownCommand(String(decoding: upper(line[..<min(keywordEnd, 8)]), as: UTF8.self)))
        }
        let args = rest.split(separator: ASCII.space, omittingEmptySubsequences: false)
        func none(_ c: POP3Command) -> Result<POP3Command, POP3ParseError> {
            hasArgs ? .failure(.badArguments("\(keyword.name) takes no argument")) : .success(c)
        }
        func optionalMessage(_ make: (Int?) -> POP3Command) -> Result<POP3Command, POP3ParseError> {
            guard hasArgs else { return .success(make(nil)) }
            guard args.count == 1, let n = number(args[0]) else { return .failure(.badArguments("\(keyword.name) [msg]")) }
            return .success(make(n))
        }
        func message(_ make: (Int) -> POP3Command) -> Result<POP3Command, POP3ParseError> {
            guard hasArgs, args.count == 1, let n = number(args[0]) else { return .failure(.badArguments("\(keyword.name) msg")) }
            return .success(make(n))
        }
        switch keyword {
        case .retr: return message { .retr($0) }
        case .stat: return none(.stat)
        case .noop: return none(.noop)
        case .rset: return none(.rset)
        case .quit: return none(.quit)
        case .capa: return none(.capa)
        case .stls: return none(.stls)
        case .list: return optionalMessage { .list($0) }
        case .uidl: return optionalMessage { .uidl($0) }
        case .dele: return message { .dele($0) }
        case .top:
            guard hasArgs, args.count == 2, let n = number(args[0]), let l = number(args[1]) else { return .failure(.badArguments("TOP msg n")) }
            return .success(.top(n, lines: l))
        case .user:
            // RFC 1939 §7: "USER name"; RFC 2449 §4 bounds it to 40 octets.
            guard hasArgs, !rest.isEmpty, rest.count <= POP3Limits.rfcArgumentLength * 8 else { return .failure(.badArguments("USER name")) }
            return .success(.user(String(decoding: rest, as: UTF8.self)))
        case .pass:
            // RFC 1939 §7: the password is the rest of the line and may contain spaces.
            guard hasArgs else { return .failure(.badArguments("PASS string")) }
            return .success(.pass(String(decoding: rest, as: UTF8.self)))
        case .auth:
            // RFC 5034 §4: AUTH mechanism [initial-response]; RFC 4422 §3.1: mechanism names are ASCII.
            guard hasArgs else { return .success(.auth(mechanism: nil, initial: nil)) }
            guard (1...2).contains(args.count), !args[0].isEmpty, args[0].count <= POP3Limits.rfcArgumentLength else {
                return .failure(.badArguments("AUTH mechanism [initial-response]"))
            }
            return .success(.auth(mechanism: String(decoding: upper(args[0]), as: UTF8.self),
                                  initial: args.count == 2 ? String(decoding: args[1], as: UTF8.self) : nil))
        case .apop: return .success(.apop)
        }
    }

    /// msg = 1*DIGIT, at most `maxNumberDigits` of them.
    static func number(_ s: ArraySlice<UInt8>) -> Int? {
        guard !s.isEmpty, s.count <= maxNumberDigits else { return nil }
        var n = 0
        for b in s {
            guard ASCII.isDigit(b) else { return nil }
            n = n * 10 + Int(b - UInt8(ascii: "0"))
        }
        return n
    }

    /// The keywords, each its ASCII letters packed upper-case into one word.
    enum Keyword: UInt32 {
        case user = 0x5553_4552, pass = 0x5041_5353, stat = 0x5354_4154, list = 0x4C49_5354, retr = 0x5245_5452
        case dele = 0x4445_4C45, noop = 0x4E4F_4F50, rset = 0x5253_4554, quit = 0x5155_4954, top = 0x0054_4F50
        case uidl = 0x5549_444C, capa = 0x4341_5041, stls = 0x5354_4C53, auth = 0x4155_5448, apop = 0x4150_4F50

        /// nil unless `bytes` are 3 or 4 ASCII letters naming a command (any case).
        init?(_ bytes: ArraySlice<UInt8>) {
            guard bytes.count == 3 || bytes.count == 4 else { return nil }
            var word: UInt32 = 0
            for b in bytes {
                guard ASCII.isAlpha(b) else { return nil }
                word = word << 8 | UInt32(b & ~POP3Parser.caseBit)
            }
            self.init(rawValue: word)
        }

        /// As named in an error.
        var name: String { String(describing: self).uppercased() }
    }

    /// ASCII upper case; other bytes unchanged.
    static func upper<C: Collection<UInt8>>(_ bytes: C) -> [UInt8] { bytes.map { ASCII.isAlpha($0) ? $0 & ~caseBit : $0 } }
    /// Set in a lower-case ASCII letter, clear in its upper case.
    static let caseBit: UInt8 = 0x20
}
