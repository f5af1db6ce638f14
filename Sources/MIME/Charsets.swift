// Text in a MIME charset (RFC 2046 §4.1.2, IANA names) to Swift Strings: UTF-8, US-ASCII,
// ISO-8859-1 and windows-1252 in Swift, every other charset through the C library's iconv (as
// Dovecot does). A known charset never fails: each undecodable byte becomes U+FFFD.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MailSyntax

public enum Charsets {
    /// Longest charset name handed to iconv; a longer one is no IANA name.
    static let maxNameLength = 64
    /// Bytes iconv writes per call before the output is appended.
    static let iconvBufferSize = 16 * 1024
    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]   // U+FFFD in UTF-8

    /// Names that mail uses for a charset iconv knows under another name, or that a superset
    /// decodes better (GBK text labelled gb2312, Windows code page 949 labelled euc-kr, …).
    static let aliases: [String: String] = [
        "ks_c_5601-1987": "CP949", "ks_c_5601": "CP949", "euc-kr": "CP949", "x-windows-949": "CP949",
        "gb2312": "GB18030", "gbk": "GB18030", "x-gbk": "GB18030", "cp936": "GB18030", "csgb2312": "GB18030",
        "shift_jis": "CP932", "shift-jis": "CP932", "sjis": "CP932", "x-sjis": "CP932", "ms_kanji": "CP932",
        "iso-2022-jp": "ISO-2022-JP-2", "csiso2022jp": "ISO-2022-JP-2",
        "big5": "BIG5-HKSCS", "x-x-big5": "BIG5-HKSCS",
        "iso-8859-8-i": "ISO-8859-8", "iso-8859-6-i": "ISO-8859-6", "windows-874": "CP874",
        "unicode-1-1-utf-7": "UTF-7", "x-unknown": "", "unknown-8bit": "", "x-user-defined": "",
    ]

    /// `bytes` in `charset` as a String, or nil when the charset is unknown. Names compare
    /// case-insensitively; utf-8 and us-ascii decode as UTF-8 with invalid sequences repaired.
    public static func toUTF8(_ bytes: [UInt8], charset: String) -> String? {
        guard let name = normalizedName(charset) else { return nil }
        switch name {
        case "utf-8", "utf8":
            return String(decoding: bytes, as: UTF8.self)
        // 8-bit bytes under an ASCII label are mostly UTF-8, else windows-1252 (WHATWG Encoding).
        case "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "cp367", "csascii":
            return ASCII.isValidUTF8(bytes[...]) ? String(decoding: bytes, as: UTF8.self) : windows1252(bytes, strict: false)
        // WHATWG Encoding: ISO-8859-1 labels mean windows-1252 (C1 bytes there are quotes, €, …);
        // bytes windows-1252 leaves undefined stay the ISO-8859-1 control characters.
        case "iso-8859-1", "iso_8859-1", "iso8859-1", "latin1", "l1", "cp819", "ibm819", "csisolatin1":
            return windows1252(bytes, strict: false)
        case "windows-1252", "cp1252", "x-cp1252":
            return windows1252(bytes, strict: true)
        default:
            let target = aliases[name] ?? name
            guard !target.isEmpty, let utf8 = iconvToUTF8(bytes, from: target) else { return nil }
            return String(decoding: utf8, as: UTF8.self)
        }
    }

    /// Lowercased, unquoted, trimmed charset name; nil when it cannot be a charset name (iconv
    /// must never see its own "//" option syntax or a path).
    static func normalizedName(_ charset: String) -> String? {
        var name = TransferDecoder.token(charset)
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
        guard !name.isEmpty, name.utf8.count <= maxNameLength else { return nil }
        for b in name.utf8 {
            guard ASCII.isLetDig(b) || b == ASCII.dash || b == UInt8(ascii: "_") || b == ASCII.dot || b == ASCII.colon else { return nil }
        }
        return name
    }

    /// Code points of windows-1252 bytes 0x80…0x9F; 0 where it defines none.
    static let windows1252High: [UInt16] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
        0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
    ]

    /// windows-1252 (a superset of ISO-8859-1's printable characters). A byte it leaves
    /// undefined is U+FFFD when `strict`, else the ISO-8859-1 control character.
    static func windows1252(_ bytes: [UInt8], strict: Bool) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.reserveCapacity(bytes.count)
        for b in bytes {
            var v = UInt32(b)
            if b >= 0x80 && b <= 0x9F {
                let mapped = windows1252High[Int(b - 0x80)]
                v = mapped != 0 ? UInt32(mapped) : strict ? 0xFFFD : v
            }
            scalars.append(Unicode.Scalar(v)!)
        }
        return String(scalars)
    }

    /// UTF-8 bytes of `bytes` in the iconv charset `name`, nil when iconv does not know it.
    /// An invalid byte becomes U+FFFD and conversion goes on after it; an incomplete
    /// sequence at the end becomes one U+FFFD.
    static func iconvToUTF8(_ bytes: [UInt8], from name: String) -> [UInt8]? {
        let cd = iconv_open("UTF-8", name)
        guard let cd, cd != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(cd) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        var buffer = [UInt8](repeating: 0, count: iconvBufferSize)
        var input = bytes
        input.withUnsafeMutableBufferPointer { ib in
            buffer.withUnsafeMutableBufferPointer { ob in
                let outBase = UnsafeMutableRawPointer(ob.baseAddress!).assumingMemoryBound(to: CChar.self)
                var inPtr = ib.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }
                var inLeft = ib.count
                var flushed = false
                while !flushed {
                    var outPtr: UnsafeMutablePointer<CChar>? = outBase
                    var outLeft = ob.count
                    let r: Int
                    if inLeft > 0 {
                        r = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                    } else {
                        r = iconv(cd, nil, nil, &outPtr, &outLeft)   // the shift state's closing bytes
                        flushed = true
                    }
                    let err = errno
                    out.append(contentsOf: UnsafeBufferPointer(start: ob.baseAddress, count: ob.count - outLeft))
                    guard r == -1 else { continue }
                    switch err {
                    case E2BIG:
                        flushed = false
                    case EILSEQ:
                        out.append(contentsOf: replacement)
                        inPtr = inPtr.map { $0 + 1 }
                        inLeft -= 1
                    default:                                         // EINVAL: incomplete at the end
                        if inLeft > 0 { out.append(contentsOf: replacement) }
                        inLeft = 0
                    }
                }
            }
        }
        return out
    }
}
