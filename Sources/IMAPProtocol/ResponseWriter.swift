// IMAPWriter: builds server responses (RFC 9051 §7, RFC 3501 §7) into a byte buffer. Guarantees
// that every string it writes is well-formed on the wire: quoted only when RFC 9051 §9 allows it,
// a literal otherwise; mailbox names in modified UTF-7 unless UTF8=ACCEPT / IMAP4rev2 is on.
import MailSyntax
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct IMAPWriter: Sendable {
    /// The response bytes written so far.
    public var bytes: [UInt8]
    /// UTF8=ACCEPT (RFC 6855) or IMAP4rev2 is enabled: strings and mailbox names may be UTF-8
    /// (quoted). Off: an 8-bit string goes as a literal, a mailbox name as modified UTF-7.
    public var utf8: Bool

    /// Longest string written quoted; longer ones go as literals (a client's line buffer stays
    /// small, and Dovecot draws no line at all here, so any bound works for interop).
    public static let maxQuoted = 1024
    /// Most `"` and `\` a quoted string carries; with more, a literal is shorter (Dovecot's
    /// QUOTED_MAX_ESCAPE_CHARS, kept so our output matches its byte for byte).
    public static let maxQuotedEscapes = 4

    public init(utf8: Bool = false) {
        self.bytes = []
        self.utf8 = utf8
    }

    /// Response status (RFC 9051 §7.1). Tagged responses use `.ok`, `.no`, `.bad`.
    public enum Status: String, Sendable {
        case ok = "OK", no = "NO", bad = "BAD", preauth = "PREAUTH", bye = "BYE"
    }

    // MARK: Tokens

    public mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }
    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    public mutating func sp() { bytes.append(ASCII.space) }
    public mutating func crlf() { bytes.append(ASCII.cr); bytes.append(ASCII.lf) }
    /// `NIL`.
    public mutating func nilAtom() { raw("NIL") }

    /// An atom, written as given (not checked: no assertion a client's keyword could trip): the
    /// caller passes a known-valid atom (a keyword, a capability). `isAtom` tells whether a
    /// string is one; flags with a backslash go through `flags` or `raw`.
    public mutating func atom(_ s: String) { raw(s) }

    /// A number in decimal, written digit by digit (no String in between: FETCH writes several a message).
    public mutating func number(_ n: some BinaryInteger) {
        if n < 0 { bytes.append(UInt8(ascii: "-")) }
        var v = UInt64(truncatingIfNeeded: n.magnitude)
        guard v >= 10 else { bytes.append(UInt8(ascii: "0") + UInt8(v)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: UInt64.max has 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 { d[count] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10; count += 1 }
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    /// RFC 9051 §9 `string`: quoted when the bytes allow it, else a literal.
    public mutating func string(_ s: String) { string(bytes: Array(s.utf8)) }

    /// RFC 9051 §9 `string` from raw bytes. Quoted when at most `maxQuoted` bytes, no CR, LF or
    /// NUL, at most `maxQuotedEscapes` quoted-specials, and 7-bit (or valid UTF-8 with `utf8`
    /// on); `\` and `"` are escaped. Else a literal
    /// `{n}`: a NUL inside makes it invalid for a non-binary literal (RFC 9051 §4.3), so callers
    /// pass text here; message bodies go through `literal8` or their own streaming.
    public mutating func string(bytes b: [UInt8]) {
        if canQuote(b) { quoted(b) } else { literal(b) }
    }

    /// `nstring`: NIL for nil.
    public mutating func nstring(_ s: String?) {
        if let s { string(s) } else { nilAtom() }
    }

    /// RFC 9051 §9 `astring`: as an atom when every byte is an ASTRING-CHAR, else a string.
    /// Never the atom NIL (it would read as nil where an nstring may also stand), like Dovecot.
    public mutating func astring(_ s: String) {
        if Self.isAstringAtom(s) && s.uppercased() != "NIL" { raw(s) } else { string(s) }
    }

    /// RFC 9051 §9 `mailbox`: INBOX (any case) as the atom INBOX; other names as astrings, in
    /// modified UTF-7 (RFC 9051 §5.1.3) unless `utf8` is on.
    public mutating func mailbox(_ name: String) {
        if name.uppercased() == "INBOX" { raw("INBOX"); return }
        astring(utf8 ? name : ModifiedUTF7.encode(name))
    }

    /// `{n}` CRLF and the bytes (RFC 9051 §4.3), NUL replaced as `literalContent` does.
    public mutating func literal(_ b: [UInt8]) {
        literalHeader(count: b.count, binary: false)
        literalContent(b)
    }

    /// What a non-binary literal may not carry: RFC 9051 §9 literal = "{" number64 ["+"] "}"
    /// CRLF *CHAR8, CHAR8 = %x01-ff. A NUL of a message (BODY[...] of a part with NUL octets)
    /// goes out as this octet instead, as Dovecot does; BINARY sends the real bytes in a literal8.
    public static let nulReplacement: UInt8 = 0x80

    /// Bytes of a `{n}` literal announced with `literalHeader(binary: false)`, in one piece or in
    /// chunks: the same count, with every NUL replaced by `nulReplacement`.
    public mutating func literalContent(_ b: [UInt8]) {
        let hasNUL = b.withUnsafeBufferPointer { p in p.baseAddress.map { memchr($0, 0, p.count) != nil } ?? false }
        if hasNUL {
            bytes.append(contentsOf: b.map { $0 == 0 ? Self.nulReplacement : $0 })
        } else {
            bytes.append(contentsOf: b)
        }
    }

    /// `~{n}` CRLF and the bytes: literal8 (RFC 3516 §4.2), which may hold NUL; only in BINARY
    /// responses and APPEND data.
    public mutating func literal8(_ b: [UInt8]) {
        literalHeader(count: b.count, binary: true)
        bytes.append(contentsOf: b)
    }

    /// Only the announcement `{n}` CRLF (or `~{n}` CRLF); the caller streams the n bytes after.
    public mutating func literalHeader(count: Int, binary: Bool) {
        if binary { bytes.append(UInt8(ascii: "~")) }
        bytes.append(UInt8(ascii: "{"))
        number(count)
        bytes.append(UInt8(ascii: "}"))
        crlf()
    }

    /// A parenthesised flag list `(\Seen $Junk)` (RFC 9051 §2.3.2); the flags are atoms.
    public mutating func flags(_ f: [String]) {
        bytes.append(ASCII.lparen)
        for (i, flag) in f.enumerated() {
            if i > 0 { sp() }
            raw(flag)
        }
        bytes.append(ASCII.rparen)
    }

    /// RFC 9051 §9 `sequence-set` from ranges, in the given order (COPYUID pairs its two sets by
    /// position), a range that continues the one before merged into it: `1:3,5`. `UInt32.max`
    /// is written `*`. Nothing is written for no ranges (the caller never asks for that).
    public mutating func sequenceSet(_ ranges: [ClosedRange<UInt32>]) {
        var merged: [ClosedRange<UInt32>] = []
        for r in ranges {
            if let last = merged.last, last.upperBound < UInt32.max, last.upperBound + 1 == r.lowerBound {
                merged[merged.count - 1] = last.lowerBound...r.upperBound
            } else {
                merged.append(r)
            }
        }
        for (i, r) in merged.enumerated() {
            if i > 0 { bytes.append(ASCII.comma) }
            setNumber(r.lowerBound)
            if r.upperBound != r.lowerBound {
                bytes.append(ASCII.colon)
                setNumber(r.upperBound)
            }
        }
    }

    /// A UID set from single UIDs (sorted ascending for COPYUID, VANISHED, ESEARCH ALL): runs of
    /// consecutive UIDs compacted into ranges, order kept: `[1,2,3,5,9,10]` → `1:3,5,9:10`.
    public mutating func uidSet(_ uids: [UInt32]) {
        sequenceSet(uids.map { $0...$0 })
    }

    // MARK: Whole responses

    /// `tag OK [code] text` CRLF (RFC 9051 §7.1). An empty text writes no trailing space.
    public mutating func tagged(_ tag: String, _ status: Status, code: String?, _ text: String) {
        raw(tag)
        sp()
        statusTail(status, code: code, text)
    }

    /// `* OK [code] text` CRLF and the other untagged status responses (RFC 9051 §7.1).
    public mutating func untagged(_ status: Status, code: String?, _ text: String) {
        raw("* ")
        statusTail(status, code: code, text)
    }

    /// `* ` text CRLF: untagged data whose body the caller formatted (`EXISTS`, `CAPABILITY ...`).
    public mutating func untagged(_ text: String) {
        raw("* ")
        raw(text)
        crlf()
    }

    /// `+ text` CRLF: a continuation request (RFC 9051 §7.6).
    public mutating func continuation(_ text: String) {
        raw("+ ")
        raw(Self.oneLine(text))
        crlf()
    }

    // MARK: Character classes (RFC 9051 §9)

    /// `atom`: one or more ATOM-CHARs.
    public static func isAtom(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy(isAtomChar)
    }

    /// The atom form of `astring`: one or more ASTRING-CHARs (ATOM-CHAR or "]").
    public static func isAstringAtom(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { isAtomChar($0) || $0 == ASCII.rbracket }
    }

    /// ATOM-CHAR: any 7-bit CHAR except atom-specials: `(` `)` `{` SP CTL `%` `*` `"` `\` `]`.
    public static func isAtomChar(_ c: UInt8) -> Bool {
        guard c > 0x20 && c < 0x7F else { return false }
        switch c {
        case ASCII.lparen, ASCII.rparen, UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
             ASCII.dquote, ASCII.backslash, ASCII.rbracket:
            return false
        default:
            return true
        }
    }

    // MARK: Private

    private func canQuote(_ b: [UInt8]) -> Bool {
        guard b.count <= Self.maxQuoted else { return false }
        var eightBit = false
        var escapes = 0
        for c in b {
            if c == 0 || c == ASCII.cr || c == ASCII.lf { return false }
            if c >= 0x80 { eightBit = true }
            if c == ASCII.dquote || c == ASCII.backslash {
                escapes += 1
                if escapes > Self.maxQuotedEscapes { return false }
            }
        }
        return !eightBit || (utf8 && ASCII.isValidUTF8(b[...]))
    }

    /// DQUOTE *QUOTED-CHAR DQUOTE with `\` and `"` escaped (RFC 9051 §9 `quoted`).
    private mutating func quoted(_ b: [UInt8]) {
        bytes.append(ASCII.dquote)
        for c in b {
            if c == ASCII.dquote || c == ASCII.backslash { bytes.append(ASCII.backslash) }
            bytes.append(c)
        }
        bytes.append(ASCII.dquote)
    }

    private mutating func setNumber(_ n: UInt32) {
        if n == UInt32.max { bytes.append(UInt8(ascii: "*")) } else { number(n) }
    }

    private mutating func statusTail(_ status: Status, code: String?, _ text: String) {
        raw(status.rawValue)
        if let code {
            raw(" [")
            raw(Self.oneLine(code))
            raw("]")
        }
        let t = Self.oneLine(text)
        if !t.isEmpty {
            sp()
            raw(t)
        }
        crlf()
    }

    /// Text that must stay on one line (resp-text): CR and LF become spaces.
    private static func oneLine(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf }) else { return s }
        return String(decoding: s.utf8.map { $0 == ASCII.cr || $0 == ASCII.lf ? ASCII.space : $0 }, as: UTF8.self)
    }
}
