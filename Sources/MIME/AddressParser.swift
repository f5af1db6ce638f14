// Lenient RFC 5322 §3.4 address-list parser producing IMAP ENVELOPE addresses (RFC 3501 §7.4.2).
// Never throws; every loop consumes input, so hostile values cost linear time.
import MailSyntax

enum AddressParser {
    enum Token {
        /// atom or dot-atom (8-bit bytes allowed, RFC 6532), or quoted-string: `raw` as written, `text` unquoted.
        case word(raw: [UInt8], text: [UInt8])
        /// domain-literal "[...]", raw.
        case literal([UInt8])
        /// comment content without the outer parentheses.
        case comment([UInt8])
        /// one of < > @ , ; :
        case special(UInt8)
    }

    /// RFC 5322 §3.2.3 specials, minus "." (kept inside atoms so "john.doe" and "Q." stay one word).
    static func isAtomChar(_ c: UInt8) -> Bool {
        switch c {
        case ASCII.space, ASCII.tab, ASCII.cr, ASCII.lf, ASCII.lparen, ASCII.rparen, ASCII.lt, ASCII.gt,
             ASCII.lbracket, ASCII.rbracket, ASCII.colon, ASCII.semicolon, ASCII.at, ASCII.comma, ASCII.dquote:
            return false
        default:
            return c >= 0x20 && c != 0x7F || c >= 0x80
        }
    }

    /// RFC 5322 §3.2 lexical tokens; CFWS dropped except comments (kept for the name fallback).
    static func tokenize(_ s: [UInt8]) -> [Token] {
        var out: [Token] = []
        var i = 0
        let n = s.count
        while i < n {
            let c = s[i]
            switch c {
            case ASCII.space, ASCII.tab, ASCII.cr, ASCII.lf:
                i += 1
            case ASCII.lparen:
                // RFC 5322 §3.2.2 comment: nested, quoted-pairs allowed; iterative.
                var depth = 0
                let start = i + 1
                var end = n
                while i < n {
                    let d = s[i]
                    i += 1
                    if d == ASCII.backslash {
                        i += 1
                    } else if d == ASCII.lparen {
                        depth += 1
                    } else if d == ASCII.rparen {
                        depth -= 1
                        if depth == 0 {
                            end = i - 1
                            break
                        }
                    }
                }
                i = min(i, n)
                out.append(.comment(start < end ? Array(s[start..<min(end, n)]) : []))
            case ASCII.dquote:
                // RFC 5322 §3.2.4 quoted-string
                let start = i
                var text = [UInt8]()
                i += 1
                while i < n {
                    let d = s[i]
                    i += 1
                    if d == ASCII.dquote { break }
                    if d == ASCII.backslash && i < n {
                        text.append(s[i])
                        i += 1
                    } else {
                        text.append(d)
                    }
                }
                i = min(i, n)
                out.append(.word(raw: Array(s[start..<i]), text: text))
            case ASCII.lbracket:
                // RFC 5322 §3.4.1 domain-literal
                let start = i
                i += 1
                while i < n && s[i] != ASCII.rbracket {
                    if s[i] == ASCII.backslash { i += 1 }
                    i += 1
                }
                i = min(i + 1, n)
                out.append(.literal(Array(s[start..<i])))
            case ASCII.lt, ASCII.gt, ASCII.at, ASCII.comma, ASCII.semicolon, ASCII.colon:
                out.append(.special(c))
                i += 1
            case ASCII.rparen, ASCII.rbracket:
                i += 1 // stray closer: ignored
            default:
                let start = i
                while i < n && isAtomChar(s[i]) { i += 1 }
                if i == start {
                    i += 1 // control character: ignored
                } else {
                    let w = Array(s[start..<i])
                    out.append(.word(raw: w, text: w))
                }
            }
        }
        return out
    }

    /// address-list := (address *("," address)) / obs-addr-list (RFC 5322 §3.4).
    static func parse(_ value: [UInt8]) -> [Address] {
        var p = ListParser(tokens: tokenize(value))
        return p.run()
    }

    struct ListParser {
        let tokens: [Token]
        var i = 0
        var out: [Address] = []

        init(tokens: [Token]) { self.tokens = tokens }

        func isSpecial(_ c: UInt8) -> Bool {
            if i < tokens.count, case .special(let d) = tokens[i], d == c { return true }
            return false
        }

        mutating func run() -> [Address] {
            while i < tokens.count {
                if isSpecial(ASCII.comma) || isSpecial(ASCII.semicolon) {
                    i += 1
                    continue
                }
                let before = i
                address(inGroup: false)
                if i == before { i += 1 }
            }
            return out
        }

        static func string(_ parts: [[UInt8]], separator: [UInt8]) -> String {
            var b = [UInt8]()
            for (k, p) in parts.enumerated() {
                if k > 0 { b += separator }
                b += p
            }
            return String(lossyUTF8: b)
        }

        static func name(_ words: [[UInt8]], _ comment: [UInt8]?) -> String? {
            if !words.isEmpty {
                let s = string(words, separator: [ASCII.space])
                return s.isEmpty ? nil : s
            }
            if let c = comment {
                let t = trimWSP(c)
                return t.isEmpty ? nil : String(lossyUTF8: t)
            }
            return nil
        }

        /// address := mailbox / group; mailbox := name-addr / addr-spec (RFC 5322 §3.4).
        /// Stops before "," or ";" (callers consume them) or at the end.
        mutating func address(inGroup: Bool) {
            // Unquoted: a display name, a group name, or a local part — RFC 9051 §9 addr-mailbox
            // "holds [RFC5322] local-part after removing [RFC5322] quoting".
            var words: [[UInt8]] = []
            var comment: [UInt8]?
            while i < tokens.count {
                switch tokens[i] {
                case .word(_, let text):
                    words.append(text)
                    i += 1
                case .literal(let raw):
                    words.append(raw)
                    i += 1
                case .comment(let c):
                    if comment == nil { comment = c }
                    i += 1
                case .special(let c):
                    switch c {
                    case ASCII.comma, ASCII.semicolon:
                        bare(words, comment)
                        return
                    case ASCII.lt:
                        i += 1
                        angleAddr(name: ListParser.name(words, comment))
                        skipJunk()
                        return
                    case ASCII.at:
                        // addr-spec := local-part "@" domain (RFC 5322 §3.4.1)
                        i += 1
                        var c2 = comment
                        let host = domain(&c2)
                        out.append(Address(name: ListParser.name([], c2), adl: nil,
                                           mailbox: ListParser.string(words, separator: []), host: host))
                        skipJunk()
                        return
                    case ASCII.colon where !inGroup:
                        // group := display-name ":" [group-list] ";" [CFWS] (RFC 5322 §3.4);
                        // IMAP: start marker (mailbox = name, host NIL), members, end marker (RFC 3501 §7.4.2).
                        i += 1
                        out.append(Address(name: nil, adl: nil, mailbox: ListParser.string(words, separator: [ASCII.space]), host: nil))
                        while i < tokens.count {
                            if isSpecial(ASCII.semicolon) {
                                i += 1
                                break
                            }
                            if isSpecial(ASCII.comma) {
                                i += 1
                                continue
                            }
                            let before = i
                            address(inGroup: true)
                            if i == before { i += 1 }
                        }
                        out.append(Address(name: nil, adl: nil, mailbox: nil, host: nil))
                        return
                    default:
                        i += 1 // stray ">" or ":" inside a group: ignored
                    }
                }
            }
            bare(words, comment)
        }

        /// A mailbox without "@domain" (RFC 5322 obsolete/lenient): host "" so it is not a group marker.
        mutating func bare(_ words: [[UInt8]], _ comment: [UInt8]?) {
            guard !words.isEmpty else { return }
            out.append(Address(name: ListParser.name([], comment), adl: nil,
                               mailbox: ListParser.string(words, separator: []), host: ""))
        }

        /// After "<": angle-addr := "<" addr-spec ">" / obs-angle-addr := "<" obs-route addr-spec ">"
        /// with obs-route := obs-domain-list ":" and obs-domain-list := *(CFWS / ",") "@" domain
        /// *("," [CFWS] ["@" domain]) (RFC 5322 §3.4, §4.4).
        mutating func angleAddr(name: String?) {
            var adl: String?
            if isSpecial(ASCII.at) {
                var route = [UInt8]()
                var sawColon = false
                while i < tokens.count {
                    if isSpecial(ASCII.at) {
                        i += 1
                        route.append(ASCII.at)
                        while i < tokens.count {
                            if case .word(let raw, _) = tokens[i] { route += raw; i += 1 }
                            else if case .literal(let raw) = tokens[i] { route += raw; i += 1 }
                            else if case .comment = tokens[i] { i += 1 }
                            else { break }
                        }
                    } else if isSpecial(ASCII.comma) {
                        i += 1
                        if !route.isEmpty && route.last != ASCII.comma { route.append(ASCII.comma) }
                    } else if isSpecial(ASCII.colon) {
                        i += 1
                        sawColon = true
                        break
                    } else if case .comment = tokens[i] {
                        i += 1
                    } else {
                        break
                    }
                }
                if route.last == ASCII.comma { route.removeLast() }
                if sawColon {
                    adl = String(lossyUTF8: route)
                } else {
                    // "<@host>" or garbage: no route after all; keep what we saw as the host.
                    if isSpecial(ASCII.gt) { i += 1 }
                    let h = route.first == ASCII.at ? Array(route.dropFirst()) : route
                    out.append(Address(name: name, adl: nil, mailbox: "", host: String(lossyUTF8: h)))
                    return
                }
            }
            var local: [[UInt8]] = []
            while i < tokens.count {
                if case .word(_, let text) = tokens[i] { local.append(text); i += 1 }
                else if case .literal(let raw) = tokens[i] { local.append(raw); i += 1 }
                else if case .comment = tokens[i] { i += 1 }
                else { break }
            }
            var host: String?
            if isSpecial(ASCII.at) {
                i += 1
                var ignored: [UInt8]?
                host = domain(&ignored)
            }
            if isSpecial(ASCII.gt) { i += 1 }
            if local.isEmpty && host == nil && adl == nil && name == nil { return } // "<>"
            out.append(Address(name: name, adl: adl, mailbox: ListParser.string(local, separator: []), host: host ?? ""))
        }

        /// domain := dot-atom / domain-literal / obs-domain (RFC 5322 §3.4.1), raw; records a comment:
        /// the last one, so in `(x) a@b (Name)` the comment after the address names it (as Dovecot reads it).
        mutating func domain(_ comment: inout [UInt8]?) -> String {
            var parts: [[UInt8]] = []
            while i < tokens.count {
                switch tokens[i] {
                case .word(let raw, _): parts.append(raw)
                case .literal(let raw): parts.append(raw)
                case .comment(let c): comment = c
                case .special: return ListParser.string(parts, separator: [])
                }
                i += 1
            }
            return ListParser.string(parts, separator: [])
        }

        /// Skips anything up to the next "," or ";" (trailing garbage after an address).
        mutating func skipJunk() {
            while i < tokens.count && !isSpecial(ASCII.comma) && !isSpecial(ASCII.semicolon) { i += 1 }
        }
    }
}
