// Content-Transfer-Encoding decoders (RFC 2045 §6) for SEARCH and IMAP BINARY: streaming, state
// carried across chunks, so any split of the input decodes to the same bytes. Never fails.
import MailSyntax

/// Decodes one part body chunk by chunk. base64 (RFC 2045 §6.8) skips whitespace and any byte
/// outside the alphabet, as Dovecot does; quoted-printable (RFC 2045 §6.7) keeps a malformed
/// "=" literally; 7bit, 8bit, binary and "" pass bytes through.
public struct TransferDecoder: Sendable {
    enum Kind: Sendable { case identity, base64, quotedPrintable }

    /// The line (or line start) that quoted-printable could not decide yet.
    static let qpCarryLimit = 4096

    let kind: Kind
    private var base64Bits = Base64.Accumulator()
    private var carry: [UInt8] = []

    /// nil for an encoding this decoder does not know (the part is then not decodable).
    public init?(encoding: String) {
        switch Self.token(encoding) {
        case "7bit", "8bit", "binary", "": kind = .identity
        case "base64": kind = .base64
        case "quoted-printable": kind = .quotedPrintable
        default: return nil
        }
    }

    /// The decoded bytes that `chunk` completes; some may be held back until the next chunk.
    public mutating func decode(_ chunk: [UInt8]) -> [UInt8] {
        switch kind {
        case .identity: return chunk
        case .base64: return base64(chunk)
        case .quotedPrintable: return quotedPrintable(chunk)
        }
    }

    /// The bytes held back at the end of the input (an incomplete base64 quantum is dropped).
    public mutating func finish() -> [UInt8] {
        switch kind {
        case .identity, .base64:
            base64Bits.reset()
            return []
        case .quotedPrintable:
            var out: [UInt8] = []
            Self.qpLine(carry[...], ended: false, into: &out)
            carry = []
            return out
        }
    }

    /// Decodes a whole body at once.
    public static func decode(_ bytes: [UInt8], encoding: String) -> [UInt8]? {
        guard var d = TransferDecoder(encoding: encoding) else { return nil }
        return d.decode(bytes) + d.finish()
    }

    // MARK: base64

    // RFC 2045 §6.8: "Any characters outside of the base64 alphabet are to be ignored". A "="
    // ends a quantum; what follows it is decoded as a new stream (concatenated base64 blocks).
    private mutating func base64(_ chunk: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(chunk.count / 4 * 3 + 3)
        let table = Base64.values
        for b in chunk {
            let v = table[Int(b)]
            if v == Base64.invalid {
                if b == ASCII.equals { base64Bits.reset() }
                continue
            }
            base64Bits.push(v, into: &out)
        }
        return out
    }

    // MARK: quoted-printable

    // Whole lines are decoded as they complete; the incomplete last line stays in `carry`, except
    // that a long one is decoded up to its last byte that a later byte cannot change.
    private mutating func quotedPrintable(_ chunk: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(chunk.count + carry.count)
        var input = carry
        input.append(contentsOf: chunk)
        var lineStart = 0
        var i = 0
        while i < input.count {
            if input[i] == ASCII.lf {
                Self.qpLine(input[lineStart..<i], ended: true, into: &out, crlf: i > lineStart && input[i - 1] == ASCII.cr)
                lineStart = i + 1
            }
            i += 1
        }
        var rest = input[lineStart...]
        if rest.count > Self.qpCarryLimit {
            let cut = Self.qpSafePrefix(rest)
            Self.qpText(rest[rest.startIndex..<cut], into: &out)
            rest = rest[cut...]
        }
        carry = Array(rest)
        return out
    }

    /// End of the prefix of an unfinished line that no later byte can change: trailing WSP/CR
    /// (maybe transport padding) and an "=" within the last two bytes stay undecided.
    static func qpSafePrefix(_ s: ArraySlice<UInt8>) -> Int {
        var cut = s.endIndex
        while cut > s.startIndex && (ASCII.isWSP(s[cut - 1]) || s[cut - 1] == ASCII.cr) { cut -= 1 }
        if cut > s.startIndex && s[cut - 1] == ASCII.equals {
            cut -= 1
        } else if cut - 1 > s.startIndex && s[cut - 2] == ASCII.equals {
            cut -= 2
        }
        return cut
    }

    /// One line without its LF. RFC 2045 §6.7 rule 3: trailing whitespace is deleted; rule 5: a
    /// final "=" is a soft line break (no line ending is written). `ended` false: end of input.
    static func qpLine(_ line: ArraySlice<UInt8>, ended: Bool, into out: inout [UInt8], crlf: Bool = false) {
        var end = line.endIndex
        while end > line.startIndex && (ASCII.isWSP(line[end - 1]) || line[end - 1] == ASCII.cr) { end -= 1 }
        if end > line.startIndex && line[end - 1] == ASCII.equals {
            qpText(line[line.startIndex..<(end - 1)], into: &out)
            return
        }
        qpText(line[line.startIndex..<end], into: &out)
        guard ended else { return }
        if crlf { out.append(ASCII.cr) }
        out.append(ASCII.lf)
    }

    /// "=XX" (hex digits in either case) becomes the byte; any other "=" stays as it is.
    static func qpText(_ s: ArraySlice<UInt8>, into out: inout [UInt8]) {
        var i = s.startIndex
        while i < s.endIndex {
            let b = s[i]
            if b == ASCII.equals, i + 2 < s.endIndex, let hi = hexValue(s[i + 1]), let lo = hexValue(s[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b)
                i += 1
            }
        }
    }

    /// A MIME token (encoding or charset name) lowercased, without surrounding whitespace.
    static func token(_ s: String) -> String {
        let u = Array(s.utf8)
        var lo = 0, hi = u.count
        while lo < hi && (ASCII.isWSP(u[lo]) || u[lo] == ASCII.cr || u[lo] == ASCII.lf) { lo += 1 }
        while hi > lo && (ASCII.isWSP(u[hi - 1]) || u[hi - 1] == ASCII.cr || u[hi - 1] == ASCII.lf) { hi -= 1 }
        return String(decoding: u[lo..<hi].map(ASCII.lower), as: UTF8.self)
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
}
