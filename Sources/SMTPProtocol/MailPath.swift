// Envelope addresses: MailPath and the RFC 5321 §4.1.2 path grammar (with RFC 6531 UTF-8).
// Parsing works on bytes, never allocates per byte, and lowercases nothing.
import MailSyntax

/// A mailbox from MAIL FROM / RCPT TO. `localPart` is in canonical wire form: a quoted
/// local part whose content is a valid Dot-string is stored unquoted (`"joe"@x` is `joe@x`,
/// RFC 5321 §4.1.2), any other quoted local part keeps its quotes with only `"` and `\`
/// escaped. So `address` is always a valid RFC 5321 Mailbox. Case is preserved; domains
/// compare case-insensitively, which the store handles.
public struct MailPath: Sendable, Hashable, CustomStringConvertible {
    public var localPart: String
    /// A domain name, or an address literal including its brackets ("[192.0.2.1]").
    public var domain: String

    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain
    }

    public var address: String { "\(localPart)@\(domain)" }
    public var description: String { "<\(address)>" }

    /// Parses a bare Mailbox such as `user@example.org` (no angle brackets).
    public init?(_ mailbox: String, allowUTF8: Bool = true) {
        let bytes = Array(mailbox.utf8)
        var cursor = ByteCursor(bytes)
        guard let path = try? AddressParser.parseMailbox(&cursor, allowUTF8: allowUTF8), cursor.atEnd else {
            return nil
        }
        self = path
    }

    /// Parses a Path with angle brackets, e.g. `<@relay:user@example.org>` (source route ignored).
    public static func parse(path: String, allowUTF8: Bool = true) -> MailPath? {
        var cursor = ByteCursor(Array(path.utf8))
        guard case .mailbox(let mailbox)? = try? AddressParser.parsePath(&cursor, allowUTF8: allowUTF8, allowNull: false),
              cursor.atEnd else { return nil }
        return mailbox
    }
}

/// Why a path was refused; the session maps this to a reply.
enum AddressError: Error, Equatable {
    case syntax      // 501 5.1.3 (5.1.7 for the sender)
    case nonASCII    // 553 5.6.7, RFC 6531 §3.5
}

/// What `parsePath` found.
enum ParsedPath: Equatable {
    case null                       // "<>" (reverse-path only)
    case postmaster(String)         // "<Postmaster>" without domain (RCPT only, RFC 5321 §4.1.1.3)
    case mailbox(MailPath)
}

/// RFC 5321 §4.1.2 grammar, extended per RFC 6531 §3.3 (UTF8-non-ascii in atext,
/// qtextSMTP and sub-domains) when `allowUTF8`. Non-ASCII bytes are always parsed so
/// that a missing SMTPUTF8 can be told apart (553 5.6.7) from bad syntax (501).
enum AddressParser {
    static let maxDomainLength = 255   // RFC 5321 §4.5.3.1.2
    static let maxLabelLength = 63     // RFC 1035 §2.3.4

    // Path         = "<" [ A-d-l ":" ] Mailbox ">"
    // Reverse-path = Path / "<>"
    // A-d-l        = At-domain *( "," At-domain )    ; source route, ignored (§4.1.1.3, App. C)
    // At-domain    = "@" Domain
    static func parsePath(_ c: inout ByteCursor, allowUTF8: Bool, allowNull: Bool, allowPostmaster: Bool = false) throws(AddressError) -> ParsedPath {
        guard c.take(UInt8(ascii: "<")) else { throw .syntax }
        if c.take(UInt8(ascii: ">")) {
            guard allowNull else { throw .syntax }
            return .null
        }
        if c.peek() == UInt8(ascii: "@") {
            repeat {
                guard c.take(UInt8(ascii: "@")) else { throw .syntax }
                _ = try parseDomain(&c, allowUTF8: allowUTF8)
            } while c.take(UInt8(ascii: ","))
            guard c.take(UInt8(ascii: ":")) else { throw .syntax }
        }
        if allowPostmaster {
            // "<Postmaster>" — RFC 5321 §4.1.1.3; case-insensitive (§2.4).
            let save = c.pos
            if c.takeCaseInsensitive("postmaster"), c.peek() == UInt8(ascii: ">") {
                let text = c.string(save..<c.pos)
                c.pos += 1
                return .postmaster(text)
            }
            c.pos = save
        }
        let mailbox = try parseMailbox(&c, allowUTF8: allowUTF8)
        guard c.take(UInt8(ascii: ">")) else { throw .syntax }
        return .mailbox(mailbox)
    }

    // Mailbox = Local-part "@" ( Domain / address-literal )
    static func parseMailbox(_ c: inout ByteCursor, allowUTF8: Bool) throws(AddressError) -> MailPath {
        let local = try parseLocalPart(&c, allowUTF8: allowUTF8)
        guard c.take(UInt8(ascii: "@")) else { throw .syntax }
        let domain: String
        if c.peek() == UInt8(ascii: "[") {
            domain = try parseAddressLiteral(&c)
        } else {
            domain = try parseDomain(&c, allowUTF8: allowUTF8)
        }
        return MailPath(localPart: local, domain: domain)
    }

    // Local-part   = Dot-string / Quoted-string
    // Dot-string   = Atom *("."  Atom)
    // Atom         = 1*atext
    // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    // QcontentSMTP = qtextSMTP / quoted-pairSMTP
    // quoted-pairSMTP = %d92 %d32-126
    // qtextSMTP    = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
    static func parseLocalPart(_ c: inout ByteCursor, allowUTF8: Bool) throws(AddressError) -> String {
        if c.take(ASCII.dquote) {
            var content: [UInt8] = []
            while true {
                guard let b = c.peek() else { throw .syntax }
                c.pos += 1
                if b == ASCII.dquote { break }
                if b == ASCII.backslash {
                    guard let q = c.peek(), q >= 32, q <= 126 else { throw .syntax }
                    c.pos += 1
                    content.append(q)
                } else if (b >= 32 && b <= 126) || b >= 0x80 {
                    content.append(b)
                } else {
                    throw .syntax
                }
            }
            try checkText(content[...], allowUTF8: allowUTF8)
            if isDotString(content[...]) {
                return String(decoding: content, as: UTF8.self)
            }
            var quoted: [UInt8] = [ASCII.dquote]
            for b in content {
                if b == ASCII.dquote || b == ASCII.backslash { quoted.append(ASCII.backslash) }
                quoted.append(b)
            }
            quoted.append(ASCII.dquote)
            return String(decoding: quoted, as: UTF8.self)
        }
        let start = c.pos
        while let b = c.peek(), ASCII.isAtext(b) || b == UInt8(ascii: ".") || b >= 0x80 {
            c.pos += 1
        }
        let slice = c.bytes[start..<c.pos]
        guard isDotString(slice) else { throw .syntax }
        try checkText(slice, allowUTF8: allowUTF8)
        return String(decoding: slice, as: UTF8.self)
    }

    /// True if `bytes` is Atom *("." Atom), treating non-ASCII as atext (RFC 6531 §3.3).
    static func isDotString(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        var previousDot = true
        for b in bytes {
            if b == UInt8(ascii: ".") {
                if previousDot { return false }
                previousDot = true
            } else if ASCII.isAtext(b) || b >= 0x80 {
                previousDot = false
            } else {
                return false
            }
        }
        return !previousDot
    }

    /// Non-ASCII must be valid UTF-8 and is only allowed with SMTPUTF8.
    static func checkText(_ bytes: ArraySlice<UInt8>, allowUTF8: Bool) throws(AddressError) {
        guard bytes.contains(where: { $0 >= 0x80 }) else { return }
        guard ASCII.isValidUTF8(bytes) else { throw .syntax }
        if !allowUTF8 { throw .nonASCII }
    }

    // Domain     = sub-domain *("." sub-domain)
    // sub-domain = Let-dig [Ldh-str] / U-label       ; U-label: RFC 6531 §3.3
    // Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
    static func parseDomain(_ c: inout ByteCursor, allowUTF8: Bool) throws(AddressError) -> String {
        let start = c.pos
        var labelStart = c.pos
        while true {
            // one label
            while let b = c.peek(), ASCII.isLetDig(b) || b == UInt8(ascii: "-") || b >= 0x80 {
                c.pos += 1
            }
            let labelLength = c.pos - labelStart
            guard labelLength > 0, labelLength <= maxLabelLength,
                  c.bytes[labelStart] != UInt8(ascii: "-"), c.bytes[c.pos - 1] != UInt8(ascii: "-")
            else { throw .syntax }
            guard c.peek() == UInt8(ascii: "."), let next = c.peek(1),
                  ASCII.isLetDig(next) || next >= 0x80 else { break }
            c.pos += 1
            labelStart = c.pos
        }
        guard c.pos - start <= maxDomainLength else { throw .syntax }
        let slice = c.bytes[start..<c.pos]
        try checkText(slice, allowUTF8: allowUTF8)
        return String(decoding: slice, as: UTF8.self)
    }

    // address-literal  = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal ) "]"
    // IPv6-address-literal = "IPv6:" IPv6-addr
    // General-address-literal = Standardized-tag ":" 1*dcontent
    // dcontent         = %d33-90 / %d94-126
    static func parseAddressLiteral(_ c: inout ByteCursor) throws(AddressError) -> String {
        let start = c.pos
        guard c.take(UInt8(ascii: "[")) else { throw .syntax }
        let innerStart = c.pos
        while let b = c.peek(), b != UInt8(ascii: "]") {
            guard (b >= 33 && b <= 90) || (b >= 94 && b <= 126) else { throw .syntax }
            c.pos += 1
        }
        let innerEnd = c.pos
        guard c.take(UInt8(ascii: "]")) else { throw .syntax }
        let inner = c.bytes[innerStart..<innerEnd]
        var tagCursor = ByteCursor(c.bytes, from: innerStart, to: innerEnd)
        if tagCursor.takeCaseInsensitive("IPv6:") {
            guard isIPv6(c.bytes[tagCursor.pos..<innerEnd]) else { throw .syntax }
        } else if let first = inner.first, ASCII.isDigit(first) {
            guard isIPv4(inner) else { throw .syntax }
        } else {
            // Standardized-tag = Ldh-str (RFC 5321 §4.1.3)
            guard let colon = inner.firstIndex(of: UInt8(ascii: ":")), colon > innerStart, colon + 1 < innerEnd else {
                throw .syntax
            }
            let tag = c.bytes[innerStart..<colon]
            guard tag.allSatisfy({ ASCII.isLetDig($0) || $0 == UInt8(ascii: "-") }),
                  let last = tag.last, ASCII.isLetDig(last) else { throw .syntax }
        }
        return c.string(start..<c.pos)
    }

    // IPv4-address-literal = Snum 3("."  Snum)
    // Snum = 1*3DIGIT   ; representing a decimal integer value in the range 0 through 255
    static func isIPv4(_ bytes: ArraySlice<UInt8>) -> Bool {
        var parts = 0
        var value = 0
        var digits = 0
        for b in bytes {
            if ASCII.isDigit(b) {
                digits += 1
                value = value * 10 + Int(b - 0x30)
                if digits > 3 || value > 255 { return false }
            } else if b == UInt8(ascii: ".") {
                guard digits > 0 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else {
                return false
            }
        }
        return digits > 0 && parts == 3
    }

    // IPv6-addr   = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp
    // IPv6-hex    = 1*4HEXDIG
    // IPv6-full   = IPv6-hex 7(":" IPv6-hex)
    // IPv6-comp   = [IPv6-hex *5(":" IPv6-hex)] "::" [IPv6-hex *5(":" IPv6-hex)]   ; at most 6 groups besides "::"
    // IPv6v4-full = IPv6-hex 5(":" IPv6-hex) ":" IPv4-address-literal
    // IPv6v4-comp = [IPv6-hex *3(":" IPv6-hex)] "::" [IPv6-hex *3(":" IPv6-hex) ":"] IPv4-address-literal
    static func isIPv6(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        let array = Array(bytes)
        // Split off a trailing IPv4 part.
        var hexPart = array[...]
        var hasIPv4 = false
        if array.contains(UInt8(ascii: ".")) {
            guard let lastColon = array.lastIndex(of: UInt8(ascii: ":")),
                  isIPv4(array[(lastColon + 1)...]) else { return false }
            hasIPv4 = true
            // keep the colon if it is part of "::" right before the IPv4 part
            if lastColon > 0, array[lastColon - 1] == UInt8(ascii: ":") {
                hexPart = array[..<(lastColon + 1)]
            } else {
                hexPart = array[..<lastColon]
            }
        }
        // Find "::" (at most one).
        var doubleColon: Int? = nil
        var i = hexPart.startIndex
        while i + 1 < hexPart.endIndex {
            if hexPart[i] == UInt8(ascii: ":"), hexPart[i + 1] == UInt8(ascii: ":") {
                if doubleColon != nil { return false }
                doubleColon = i
                i += 2
            } else {
                i += 1
            }
        }
        func groups(_ s: ArraySlice<UInt8>) -> Int? {
            if s.isEmpty { return 0 }
            var count = 0
            for group in s.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
                guard group.count >= 1, group.count <= 4, group.allSatisfy(ASCII.isHex) else { return nil }
                count += 1
            }
            return count
        }
        let maxGroups = hasIPv4 ? 6 : 8
        if let dc = doubleColon {
            guard let left = groups(hexPart[hexPart.startIndex..<dc]),
                  let right = groups(hexPart[(dc + 2)..<hexPart.endIndex]) else { return false }
            return left + right <= maxGroups - 2
        } else {
            if hexPart.isEmpty { return false }
            guard let count = groups(hexPart) else { return false }
            return count == maxGroups
        }
    }
}
