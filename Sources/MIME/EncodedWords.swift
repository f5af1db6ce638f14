// Non-ASCII text in headers: RFC 2047 encoded words ("=?charset?B|Q?text?=") and RFC 2231
// parameter values (continuations, charset and language). Lenient like Dovecot; linear in input.
import MailSyntax

public enum EncodedWords {
    /// Longest encoded word looked for (RFC 2047 §2 allows 75 bytes; mail in the wild is longer).
    /// Bounds the search for "?=" so that a header full of "=?" stays linear.
    static let maxWordLength = 1024
    /// Highest RFC 2231 continuation number taken (RFC 2231 §3: "name*0", "name*1", …).
    static let maxContinuation = 999

    /// `s` with every RFC 2047 encoded word decoded (B and Q, RFC 2047 §4). Whitespace between
    /// two adjacent encoded words is dropped (§6.2); a word in a charset that is not known stays
    /// as written; words in the same charset are joined before conversion, so a character split
    /// across two words survives. 8-bit text around the words is kept as it is.
    public static func decode(_ s: String) -> String {
        let b = Array(s.utf8)
        guard b.count >= 2, b.contains(ASCII.equals) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var run: (charset: String, bytes: [UInt8])?
        func flush() {
            guard let r = run else { return }
            out.append(contentsOf: (Charsets.toUTF8(r.bytes, charset: r.charset) ?? String(decoding: r.bytes, as: UTF8.self)).utf8)
            run = nil
        }
        var i = 0
        while i < b.count {
            if let word = word(b, at: i) {
                if let r = run, r.charset == word.charset {
                    run!.bytes.append(contentsOf: word.bytes)
                } else {
                    flush()
                    run = (word.charset, word.bytes)
                }
                var j = word.end
                while j < b.count && (ASCII.isWSP(b[j]) || b[j] == ASCII.cr || b[j] == ASCII.lf) { j += 1 }
                i = j > word.end && self.word(b, at: j) != nil ? j : word.end
                continue
            }
            flush()
            out.append(b[i])
            i += 1
        }
        flush()
        return String(decoding: out, as: UTF8.self)
    }

    //  encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
    //                                            (RFC 2047 §2, RFC 2231 §5 for the language)
    /// The encoded word starting at `i`: its charset (language dropped), decoded bytes and end;
    /// nil when there is none or its charset is not known.
    static func word(_ b: [UInt8], at i: Int) -> (charset: String, bytes: [UInt8], end: Int)? {
        guard i + 1 < b.count, b[i] == ASCII.equals, b[i + 1] == UInt8(ascii: "?") else { return nil }
        let limit = min(b.count, i + maxWordLength)
        var k = i + 2
        let csStart = k
        while k < limit && b[k] != UInt8(ascii: "?") && b[k] > ASCII.space && b[k] < 0x7F { k += 1 }
        guard k + 2 < limit, k > csStart, b[k] == UInt8(ascii: "?"), b[k + 2] == UInt8(ascii: "?") else { return nil }
        let encoding = ASCII.lower(b[k + 1])
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q") else { return nil }
        var charset = String(decoding: b[csStart..<k], as: UTF8.self)
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }
        let textStart = k + 3
        var e = textStart
        while e + 1 < limit && !(b[e] == UInt8(ascii: "?") && b[e + 1] == ASCII.equals) { e += 1 }
        guard e + 1 < limit, Charsets.toUTF8([], charset: charset) != nil else { return nil }
        let text = b[textStart..<e]
        let bytes = encoding == UInt8(ascii: "b") ? TransferDecoder.decode(Array(text), encoding: "base64") ?? [] : qDecode(text)
        return (charset.lowercased(), bytes, e + 2)
    }

    /// RFC 2047 §4.2: "_" is a space, "=XX" a byte; a malformed "=" stays.
    static func qDecode(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var raw = [UInt8]()
        raw.reserveCapacity(text.count)
        for c in text { raw.append(c == UInt8(ascii: "_") ? ASCII.space : c) }
        var out = [UInt8]()
        TransferDecoder.qpText(raw[...], into: &out)
        return out
    }

    /// The value of parameter `name` of a BodyPart's `parameters` (or `dispositionParameters`),
    /// which keep RFC 2231 forms raw: `name*` (charset'language'%XX…), `name*0`, `name*1*`, …
    /// (continuations in numeric order up to the first gap, RFC 2231 §3–4), else plain `name`
    /// (RFC 2047 words in it decoded, as mailers put them there). The RFC 2231 form wins when
    /// both are present. Names compare case-insensitively.
    public static func parameter(_ params: [[String]], _ name: String) -> String? {
        let n = name.lowercased()
        var plain: String?, extended: String?
        var segments: [(index: Int, encoded: Bool, value: String)] = []
        for p in params where p.count >= 2 {
            let key = p[0].lowercased()
            if key == n {
                if plain == nil { plain = p[1] }
                continue
            }
            guard key.count > n.count, key.hasPrefix(n + "*") else { continue }
            var rest = Substring(key.dropFirst(n.count + 1))
            if rest.isEmpty {
                if extended == nil { extended = p[1] }
                continue
            }
            let encoded = rest.hasSuffix("*")
            if encoded { rest = rest.dropLast() }
            guard !rest.isEmpty, rest.utf8.allSatisfy(ASCII.isDigit), rest == "0" || !rest.hasPrefix("0"),
                  let index = Int(rest), index <= maxContinuation else { continue }
            segments.append((index, encoded, p[1]))
        }
        if let extended { return extendedValue([(0, true, extended)]) }
        if !segments.isEmpty { return extendedValue(segments) }
        return plain.map(decode)
    }

    /// Joins continuation segments 0, 1, 2 … (first one of each number; stops at a gap). The
    /// charset and language come from segment 0 when it is encoded (RFC 2231 §4).
    static func extendedValue(_ segments: [(index: Int, encoded: Bool, value: String)]) -> String? {
        var byIndex: [Int: (encoded: Bool, value: String)] = [:]
        for s in segments where byIndex[s.index] == nil { byIndex[s.index] = (s.encoded, s.value) }
        guard byIndex[0] != nil else { return nil }
        var charset = ""
        var bytes: [UInt8] = []
        var index = 0
        while let seg = byIndex[index] {
            var value = Substring(seg.value)
            if index == 0 && seg.encoded {
                let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                if parts.count == 3 {
                    charset = String(parts[0])
                    value = parts[2]
                }
            }
            if seg.encoded { percentDecode(value.utf8, into: &bytes) } else { bytes.append(contentsOf: value.utf8) }
            index += 1
        }
        if !charset.isEmpty, let s = Charsets.toUTF8(bytes, charset: charset) { return s }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 2231 §4 extended-other-values: "%XX" is a byte; a malformed "%" stays.
    static func percentDecode<C: Collection>(_ s: C, into out: inout [UInt8]) where C.Element == UInt8 {
        let a = Array(s)
        var i = 0
        while i < a.count {
            if a[i] == UInt8(ascii: "%"), i + 2 < a.count,
               let hi = TransferDecoder.hexValue(a[i + 1]), let lo = TransferDecoder.hexValue(a[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(a[i])
                i += 1
            }
        }
    }
}
