// The POP3 command grammar (RFC 1939 §5–§7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH): one
// line in, one command or a reason out. Pure: no state; the state machine decides what is allowed.

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
    public static func parse(_ line: [UInt8]) -> Result<POP3Command, POP3ParseError> {
        guard !line.isEmpty else { return .failure(.empty) }
        guard !line.contains(where: { $0 == 0 || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) else {
            return .failure(.badArguments("control characters in the command"))
        }
        let text = String(decoding: line, as: UTF8.self)
        let keywordEnd = text.firstIndex(of: " ") ?? text.endIndex
        let keyword = text[..<keywordEnd].uppercased()
        let rest = keywordEnd < text.endIndex ? String(text[text.index(after: keywordEnd)...]) : ""
        let args = rest.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let hasArgs = keywordEnd < text.endIndex
        guard keyword.utf8.count <= 4, keyword.allSatisfy({ $0.isLetter }) else {
            return .failure(.unknownCommand(String(keyword.prefix(8))))
        }
        func none(_ c: POP3Command) -> Result<POP3Command, POP3ParseError> {
            hasArgs ? .failure(.badArguments("\(keyword) takes no argument")) : .success(c)
        }
        func number(_ s: String) -> Int? {
            guard !s.isEmpty, s.utf8.count <= maxNumberDigits, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int(s)
        }
        func optionalMessage(_ make: (Int?) -> POP3Command) -> Result<POP3Command, POP3ParseError> {
            guard hasArgs else { return .success(make(nil)) }
            guard args.count == 1, let n = number(args[0]) else { return .failure(.badArguments("\(keyword) [msg]")) }
            return .success(make(n))
        }
        func message(_ make: (Int) -> POP3Command) -> Result<POP3Command, POP3ParseError> {
            guard hasArgs, args.count == 1, let n = number(args[0]) else { return .failure(.badArguments("\(keyword) msg")) }
            return .success(make(n))
        }
        switch keyword {
        case "STAT": return none(.stat)
        case "NOOP": return none(.noop)
        case "RSET": return none(.rset)
        case "QUIT": return none(.quit)
        case "CAPA": return none(.capa)
        case "STLS": return none(.stls)
        case "LIST": return optionalMessage { .list($0) }
        case "UIDL": return optionalMessage { .uidl($0) }
        case "RETR": return message { .retr($0) }
        case "DELE": return message { .dele($0) }
        case "TOP":
            guard hasArgs, args.count == 2, let n = number(args[0]), let l = number(args[1]) else { return .failure(.badArguments("TOP msg n")) }
            return .success(.top(n, lines: l))
        case "USER":
            // RFC 1939 §7: "USER name"; RFC 2449 §4 bounds it to 40 octets.
            guard hasArgs, !rest.isEmpty, rest.utf8.count <= POP3Limits.rfcArgumentLength * 8 else { return .failure(.badArguments("USER name")) }
            return .success(.user(rest))
        case "PASS":
            // RFC 1939 §7: the password is the rest of the line and may contain spaces.
            guard hasArgs else { return .failure(.badArguments("PASS string")) }
            return .success(.pass(rest))
        case "AUTH":
            // RFC 5034 §4: AUTH mechanism [initial-response]
            guard hasArgs else { return .success(.auth(mechanism: nil, initial: nil)) }
            guard (1...2).contains(args.count), !args[0].isEmpty, args[0].utf8.count <= POP3Limits.rfcArgumentLength else {
                return .failure(.badArguments("AUTH mechanism [initial-response]"))
            }
            return .success(.auth(mechanism: args[0].uppercased(), initial: args.count == 2 ? args[1] : nil))
        case "APOP": return .success(.apop)
        default: return .failure(.unknownCommand(keyword))
        }
    }
}
