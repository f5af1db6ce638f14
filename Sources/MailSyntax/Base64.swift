// Base64 (RFC 4648 §4) as SASL (RFC 4954 §4) and MIME use it: a strict decoder that returns nil
// for anything outside the alphabet, and an encoder with padding. Linear; no partial results.

public enum Base64 {
    // base64 = *(4base64-char) [base64-terminal]            (RFC 4954 §4, RFC 4648 §4)
    // base64-char = ALPHA / DIGIT / "+" / "/"
    // base64-terminal = (2base64-char "==") / (3base64-char "=")
    // Unpadded input is accepted too (some clients omit the padding); whitespace is not.
    public static func decode(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var body = bytes
        var padding = 0
        while body.last == UInt8(ascii: "="), padding < 2 {
            body = body.dropLast()
            padding += 1
        }
        if padding > 0, bytes.count % 4 != 0 { return nil }
        if body.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 3 / 4)
        var acc = Accumulator()
        for b in body {
            let v = values[Int(b)]
            if v == invalid { return nil }
            acc.push(v, into: &out)
        }
        return out
    }

    /// The 6-bit value of each byte of the alphabet; `invalid` for every other byte.
    public static let values: [UInt8] = {
        var t = [UInt8](repeating: invalid, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()
    public static let invalid: UInt8 = 0xFF

    /// Turns 6-bit values into bytes as they come (the strict decoder here and MIME's lenient,
    /// streaming one share it).
    public struct Accumulator: Sendable {
        var bits: UInt32 = 0, count = 0
        public init() {}
        public mutating func push(_ v: UInt8, into out: inout [UInt8]) {
            bits = (bits << 6) | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
                bits &= (1 << UInt32(count)) - 1
            }
        }
        /// Drops a partial quantum (a "=" ends one).
        public mutating func reset() { bits = 0; count = 0 }
    }

    public static func decode(_ bytes: [UInt8]) -> [UInt8]? { decode(bytes[...]) }

    /// Padded base64 of `bytes`.
    public static func encode(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            out.append(table[Int(v >> 18 & 63)])
            out.append(table[Int(v >> 12 & 63)])
            out.append(n > 1 ? table[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? table[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
