// Byte constants and byte classes shared by the mail grammars (RFC 5234 core rules, RFC 5322
// atext, RFC 3629 UTF-8). Pure functions of one byte (or a slice); no allocation.

public enum ASCII {
    public static let tab: UInt8 = 0x09
    public static let lf: UInt8 = 0x0A
    public static let cr: UInt8 = 0x0D
    public static let space: UInt8 = 0x20
    public static let dquote: UInt8 = 0x22
    public static let lparen: UInt8 = 0x28
    public static let rparen: UInt8 = 0x29
    public static let comma: UInt8 = 0x2C
    public static let dash: UInt8 = 0x2D
    public static let dot: UInt8 = 0x2E
    public static let slash: UInt8 = 0x2F
    public static let colon: UInt8 = 0x3A
    public static let semicolon: UInt8 = 0x3B
    public static let lt: UInt8 = 0x3C
    public static let equals: UInt8 = 0x3D
    public static let gt: UInt8 = 0x3E
    public static let at: UInt8 = 0x40
    public static let lbracket: UInt8 = 0x5B
    public static let backslash: UInt8 = 0x5C
    public static let rbracket: UInt8 = 0x5D

    /// RFC 5234 WSP = SP / HTAB.
    @inline(__always) public static func isWSP(_ b: UInt8) -> Bool { b == space || b == tab }
    /// ASCII lowercase; other bytes unchanged.
    @inline(__always) public static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
    @inline(__always) public static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
    @inline(__always) public static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    @inline(__always) public static func isHex(_ b: UInt8) -> Bool { isDigit(b) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66) }
    @inline(__always) public static func isLetDig(_ b: UInt8) -> Bool { isAlpha(b) || isDigit(b) }
    /// RFC 5322 §3.6.8 ftext = %d33-57 / %d59-126 (a field-name byte).
    @inline(__always) public static func isFtext(_ b: UInt8) -> Bool { b >= 33 && b <= 126 && b != colon }

    /// RFC 3629 §4 UTF8-octets: no overlong forms, no surrogates, nothing above U+10FFFF.
    /// (Hand-written because String(validating:as:) needs macOS 15.)
    public static func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        var i = bytes.startIndex
        let end = bytes.endIndex
        while i < end {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF    // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return false
            }
            guard end - i >= length else { return false }
            guard bytes[i + 1] >= low, bytes[i + 1] <= high else { return false }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return false }
            i += length
        }
        return true
    }

    /// RFC 5322 §3.2.3 atext.
    public static func isAtext(_ b: UInt8) -> Bool {
        if isLetDig(b) { return true }
        switch b {
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"),
             UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
             UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
