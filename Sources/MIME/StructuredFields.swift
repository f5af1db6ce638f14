// Parsers for the MIME structured fields: Content-Type (RFC 2045 §5.1), Content-Transfer-Encoding
// (RFC 2045 §6.1), Content-Disposition (RFC 2183 §2), Content-Language (RFC 3282 §2). Lenient; never throw.
import MailSyntax

/// RFC 822 / RFC 2045 lexical scanner over one unfolded field value.
struct FieldLexer {
    let s: [UInt8]
    var i = 0

    init(_ s: [UInt8]) { self.s = s }

    var atEnd: Bool { i >= s.count }
    var peek: UInt8? { i < s.count ? s[i] : nil }

    /// RFC 2045 §5.1 tspecials.
    static func isTSpecial(_ c: UInt8) -> Bool {
        switch c {
        case 0x28, 0x29, 0x3C, 0x3E, 0x40, 0x2C, 0x3B, 0x3A, 0x5C, 0x22, 0x2F, 0x5B, 0x5D, 0x3F, 0x3D: return true
        default: return false
        }
    }

    /// token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials> (RFC 2045 §5.1).
    /// 8-bit bytes are not token characters, so types, attributes and encodings stay ASCII.
    static func isTokenChar(_ c: UInt8) -> Bool {
        c > 0x20 && c < 0x7F && !isTSpecial(c)
    }

    /// Skips whitespace and comments. RFC 822 §3.3: comments nest and may contain quoted-pairs.
    /// An unterminated comment runs to the end of the value.
    mutating func skipCFWS() {
        while i < s.count {
            let c = s[i]
            if c == ASCII.space || c == ASCII.tab || c == ASCII.cr || c == ASCII.lf {
                i += 1
            } else if c == ASCII.lparen {
                skipComment()
            } else {
                return
            }
        }
    }

    /// At "(": skips a (nested) comment. Iterative, so nesting depth costs no stack.
    mutating func skipComment() {
        var depth = 0
        while i < s.count {
            let c = s[i]
            i += 1
            if c == ASCII.backslash {
                i += 1
            } else if c == ASCII.lparen {
                depth += 1
            } else if c == ASCII.rparen {
                depth -= 1
                if depth == 0 { return }
            }
        }
        i = min(i, s.count)
    }

    mutating func token() -> ArraySlice<UInt8>? {
        let start = i
        while i < s.count && FieldLexer.isTokenChar(s[i]) { i += 1 }
        return i > start ? s[start..<i] : nil
    }

    /// At '"': quoted-string := DQUOTE *(qtext / quoted-pair) DQUOTE (RFC 822 §3.3), returned
    /// unquoted with quoted-pairs resolved. Unterminated: runs to the end.
    mutating func quotedString() -> [UInt8] {
        var out = [UInt8]()
        i += 1
        while i < s.count {
            let c = s[i]
            i += 1
            if c == ASCII.dquote { return out }
            if c == ASCII.backslash && i < s.count {
                out.append(s[i])
                i += 1
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Advances to the next `c` (not consuming it), skipping quoted strings and comments on the way.
    mutating func skip(to c: UInt8) {
        while i < s.count && s[i] != c {
            if s[i] == ASCII.dquote {
                _ = quotedString()
            } else if s[i] == ASCII.lparen {
                skipComment()
            } else {
                i += 1
            }
        }
    }
}

enum StructuredFields {
    /// RFC 2045 §5.1: content := "Content-Type" ":" type "/" subtype *(";" parameter)
    /// Returns nil when type "/" subtype is missing or garbled (caller applies the RFC 2045 §5.2 default).
    static func contentType(_ v: [UInt8]) -> (type: String, subtype: String, parameters: [[String]])? {
        var lx = FieldLexer(v)
        lx.skipCFWS()
        guard let t = lx.token() else { return nil }
        lx.skipCFWS()
        guard lx.peek == ASCII.slash else { return nil }
        lx.i += 1
        lx.skipCFWS()
        guard let st = lx.token() else { return nil }
        return (lowercasedASCII(t), lowercasedASCII(st), parameters(&lx))
    }

    /// parameter := attribute "=" value; value := token / quoted-string (RFC 2045 §5.1).
    /// Lenient: junk between parameters is skipped up to the next ";", an unquoted value runs to
    /// the next ";" (so `boundary==_x` and `name=a b.pdf` survive), a trailing ";" is allowed.
    static func parameters(_ lx: inout FieldLexer) -> [[String]] {
        var out: [[String]] = []
        while true {
            lx.skipCFWS()
            guard let c = lx.peek else { break }
            if c != ASCII.semicolon {
                lx.skip(to: ASCII.semicolon)
                continue
            }
            lx.i += 1
            lx.skipCFWS()
            guard !lx.atEnd else { break }
            guard let attr = lx.token() else { continue }
            lx.skipCFWS()
            guard lx.peek == ASCII.equals else { continue }
            lx.i += 1
            lx.skipCFWS()
            let value: [UInt8]
            if lx.peek == ASCII.dquote {
                value = lx.quotedString()
            } else {
                let start = lx.i
                while lx.i < lx.s.count && lx.s[lx.i] != ASCII.semicolon && lx.s[lx.i] != ASCII.lparen { lx.i += 1 }
                value = Array(trimWSP(Array(lx.s[start..<lx.i])))
            }
            out.append([lowercasedASCII(attr), String(lossyUTF8: value)])
        }
        return out
    }

    /// RFC 2045 §6.1: encoding := "Content-Transfer-Encoding" ":" mechanism; lowercased, default "7bit".
    static func transferEncoding(_ v: [UInt8]) -> String {
        var lx = FieldLexer(v)
        lx.skipCFWS()
        guard let t = lx.token() else { return "7bit" }
        return lowercasedASCII(t)
    }

    /// RFC 2183 §2: disposition := disposition-type *(";" disposition-parm).
    static func disposition(_ v: [UInt8]) -> (String, [[String]])? {
        var lx = FieldLexer(v)
        lx.skipCFWS()
        guard let t = lx.token() else { return nil }
        return (lowercasedASCII(t), parameters(&lx))
    }

    /// RFC 3282 §2: Content-Language := Language-List, Language-List := [CFWS] Language-Tag [CFWS]
    /// *("," [CFWS] Language-Tag [CFWS]). Empty list → nil.
    static func languages(_ v: [UInt8]) -> [String]? {
        var lx = FieldLexer(v)
        var out: [String] = []
        while !lx.atEnd {
            lx.skipCFWS()
            if let t = lx.token() {
                out.append(String(lossyUTF8: t))
            }
            lx.skipCFWS()
            if lx.peek == ASCII.comma {
                lx.i += 1
            } else if !lx.atEnd {
                lx.skip(to: ASCII.comma)
            }
        }
        return out.isEmpty ? nil : out
    }
}
