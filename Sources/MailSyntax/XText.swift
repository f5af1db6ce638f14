// xtext (RFC 3461 §4): how ENVID= and ORCPT= carry arbitrary text in an SMTP parameter.
// `encode` for what we send; `decode` strictly checks what a client sent (nil when malformed).

public enum XText {
    //  xtext = *( xchar / hexchar )
    //  xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except "+" and "="
    //  hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
    public static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in text.utf8 {
            if isXChar(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "+"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The decoded bytes of `text`, or nil when it is not xtext (a character outside xchar, a
    /// "+" not followed by two upper-case hex digits).
    public static func decode<S: Collection>(_ text: S) -> [UInt8]? where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i != text.endIndex {
            let b = text[i]
            i = text.index(after: i)
            if b == UInt8(ascii: "+") {
                guard i != text.endIndex, let hi = hexValue(text[i]) else { return nil }
                i = text.index(after: i)
                guard i != text.endIndex, let lo = hexValue(text[i]) else { return nil }
                i = text.index(after: i)
                out.append(hi << 4 | lo)
            } else {
                guard isXChar(b) else { return nil }
                out.append(b)
            }
        }
        return out
    }

    static func isXChar(_ b: UInt8) -> Bool { b >= 33 && b <= 126 && b != UInt8(ascii: "+") && b != UInt8(ascii: "=") }

    /// hexchar uses upper-case digits only (RFC 3461 §4).
    public static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
