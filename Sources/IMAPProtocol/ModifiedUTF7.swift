// Modified UTF-7 for mailbox names (RFC 3501 §5.1.3, kept by RFC 9051 §5.1.3 for clients that
// did not ENABLE UTF8=ACCEPT or IMAP4rev2): printable US-ASCII stands for itself except "&",
// written "&-"; other characters are UTF-16 in base64 with "," for "/", between "&" and "-".

public enum ModifiedUTF7 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)
    private static let values: [Int8] = {
        var v = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { v[Int(c)] = Int8(i) }
        return v
    }()

    /// The modified UTF-7 form of a (UTF-8) name.
    public static func encode(_ name: String) -> String {
        var out: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            out.append(UInt8(ascii: "&"))
            var bytes: [UInt8] = []
            for u in pending { bytes.append(UInt8(u >> 8)); bytes.append(UInt8(u & 0xff)) }
            var i = 0
            while i < bytes.count {
                let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
                let n = min(3, bytes.count - i)
                out.append(alphabet[b0 >> 2])
                out.append(alphabet[((b0 & 3) << 4) | (b1 >> 4)])
                if n > 1 { out.append(alphabet[((b1 & 15) << 2) | (b2 >> 6)]) }
                if n > 2 { out.append(alphabet[b2 & 63]) }
                i += 3
            }
            out.append(UInt8(ascii: "-"))
            pending.removeAll()
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7e {
                flush()
                out.append(UInt8(scalar.value))
                if scalar == "&" { out.append(UInt8(ascii: "-")) }
            } else {
                pending.append(contentsOf: Array(String(scalar).utf16))
            }
        }
        flush()
        return String(decoding: out, as: UTF8.self)
    }

    /// The UTF-8 name a modified UTF-7 string stands for; nil when it is not valid modified
    /// UTF-7 (bad base64, an encoded printable ASCII character, a lone surrogate, bits left over,
    /// 8-bit bytes, or "&...-&...-" adjacency that a correct encoder never writes).
    public static func decode(_ s: String) -> String? {
        let bytes = Array(s.utf8)
        var out = ""
        var i = 0
        var lastWasShift = false
        while i < bytes.count {
            let c = bytes[i]
            guard c >= 0x20 && c <= 0x7e else { return nil }
            if c != UInt8(ascii: "&") {
                out.unicodeScalars.append(Unicode.Scalar(c)); i += 1; lastWasShift = false; continue
            }
            i += 1
            if i < bytes.count && bytes[i] == UInt8(ascii: "-") { out.append("&"); i += 1; lastWasShift = false; continue }
            if lastWasShift { return nil }   // RFC 3501 §5.1.3: no two encoded runs in a row
            var bits = 0, acc = 0
            var units: [UInt16] = []
            var closed = false
            while i < bytes.count {
                let d = bytes[i]; i += 1
                if d == UInt8(ascii: "-") { closed = true; break }
                let v = values[Int(d)]
                guard v >= 0 else { return nil }
                acc = (acc << 6) | Int(v); bits += 6
                if bits >= 16 { bits -= 16; units.append(UInt16((acc >> bits) & 0xffff)); acc &= (1 << bits) - 1 }
            }
            guard closed, !units.isEmpty, bits < 6, acc == 0 else { return nil }
            var decoded = ""
            var iterator = units.makeIterator()
            var utf16 = UTF16()
            loop: while true {
                switch utf16.decode(&iterator) {
                case .scalarValue(let sc):
                    if sc.value >= 0x20 && sc.value <= 0x7e { return nil }   // must have been written plainly
                    decoded.unicodeScalars.append(sc)
                case .emptyInput: break loop
                case .error: return nil
                }
            }
            out += decoded
            lastWasShift = true
        }
        return out
    }
}
