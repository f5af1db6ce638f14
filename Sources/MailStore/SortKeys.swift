// SORT keys (RFC 5256 §2–3, RFC 5957) as pure values: base-subject extraction (§2.1), the sent
// date (§2.2), address keys, and the comparator. Strings compare by i;unicode-casemap (RFC 5051),
// numbers numerically; messages equal on every criterion keep sequence (= UID) order.
import Foundation
import MIME
import MailModel
import MailSyntax

/// What SORT and THREAD look at of one message.
public struct SortableMessage: Sendable {
    public var uid: UInt32, internalDate: Int64, size: UInt64
    public var envelope: Envelope
    public init(uid: UInt32, internalDate: Int64, size: UInt64, envelope: Envelope) {
        self.uid = uid; self.internalDate = internalDate; self.size = size; self.envelope = envelope
    }

    /// RFC 5256 §2.2: the Date: header in UTC; "If the sent date cannot be determined (a Date:
    /// header is missing or cannot be parsed), the internal date of the message is used."
    public var sentDate: Int64 {
        guard let d = envelope.date, let t = RFC5322Date.parse(d) else { return internalDate }
        return t
    }
}

/// RFC 5256 §2.1 base subject.
public enum BaseSubject {
    /// The base subject of a Subject: value as the envelope holds it (raw, unfolded), and
    /// whether extraction found it to be a reply or forward (a "Re:"/"Fwd:" leader, a "(fwd)"
    /// trailer or a "[fwd: …]" wrapper, as RFC 5256 §3 REFERENCES step 5 needs).
    public static func extract(_ raw: String) -> (subject: String, replyOrForward: Bool) {
        // (1) RFC 2047 words decoded; tabs and continuations to space; runs of spaces to one.
        var s: [UInt8] = []
        for b in EncodedWords.decode(raw).utf8 {
            let c = ASCII.isWSP(b) || b == ASCII.cr || b == ASCII.lf ? ASCII.space : b
            if c == ASCII.space, s.last == ASCII.space { continue }
            s.append(c)
        }
        var replyOrForward = false
        var lo = 0, hi = s.count
        while true {
            // (2) subj-trailer = "(fwd)" / WSP, repeated.
            while hi > lo {
                if s[hi - 1] == ASCII.space { hi -= 1; continue }
                if hi - lo >= 5, matches(s, hi - 5, "(fwd)") { hi -= 5; replyOrForward = true; continue }
                break
            }
            // (5) repeat (3) and (4) until nothing more is removed.
            var changed = true
            while changed {
                changed = false
                // (3) subj-leader = (*subj-blob subj-refwd) / WSP
                while lo < hi {
                    if s[lo] == ASCII.space { lo += 1; changed = true; continue }
                    if let end = leader(s, lo, hi) { lo = end; replyOrForward = true; changed = true; continue }
                    break
                }
                // (4) a subj-blob, when what follows it is not empty.
                if let end = blob(s, lo, hi), end < hi { lo = end; changed = true }
            }
            // (6) subj-fwd = "[fwd:" subject "]": unwrap and start again at (2).
            if hi - lo >= 6, matches(s, lo, "[fwd:"), s[hi - 1] == ASCII.rbracket {
                lo += 5; hi -= 1; replyOrForward = true
                continue
            }
            break
        }
        return (String(decoding: s[lo..<hi], as: UTF8.self), replyOrForward)
    }

    /// subj-blob = "[" *BLOBCHAR "]" *WSP; the index after it.
    static func blob(_ s: [UInt8], _ lo: Int, _ hi: Int) -> Int? {
        guard lo < hi, s[lo] == ASCII.lbracket else { return nil }
        var i = lo + 1
        // BLOBCHAR = %x01-5a / %x5c / %x5e-ff: anything but "[" and "]".
        while i < hi, s[i] != ASCII.lbracket, s[i] != ASCII.rbracket { i += 1 }
        guard i < hi, s[i] == ASCII.rbracket else { return nil }
        i += 1
        while i < hi, s[i] == ASCII.space { i += 1 }
        return i
    }

    /// *subj-blob subj-refwd, subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; the index after it.
    static func leader(_ s: [UInt8], _ lo: Int, _ hi: Int) -> Int? {
        var i = lo
        while let end = blob(s, i, hi) { i = end }
        if hi - i >= 3, matches(s, i, "fwd") { i += 3 }
        else if hi - i >= 2, matches(s, i, "fw") || matches(s, i, "re") { i += 2 }
        else { return nil }
        while i < hi, s[i] == ASCII.space { i += 1 }
        if let end = blob(s, i, hi) { i = end }
        guard i < hi, s[i] == ASCII.colon else { return nil }
        return i + 1
    }

    /// Case-insensitive ASCII match of `word` at `at` (the caller checked the length).
    static func matches(_ s: [UInt8], _ at: Int, _ word: StaticString) -> Bool {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for k in 0..<w.count where ASCII.lower(s[at + k]) != w[k] { return false }
        return true
    }
}

/// The i;unicode-casemap collation (RFC 5051 §2): each character to its (simple) titlecase,
/// then compatibility decomposition (NFKD); keys compare as UTF-8 octets. ASCII text is
/// simply uppercased (ASCII's titlecase), without touching Foundation.
public enum UnicodeCasemap {
    public static func key(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        if u.allSatisfy({ $0 < 0x80 }) { return u.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 } }
        var t = String.UnicodeScalarView()
        for scalar in s.unicodeScalars {
            let title = scalar.properties.titlecaseMapping.unicodeScalars
            if title.count == 1 { t.append(title.first!) } else { t.append(scalar) }
        }
        return Array(String(t).decomposedStringWithCompatibilityMapping.utf8)
    }
}

/// One message's value for one sort key: numbers compare numerically, texts as octets.
enum SortValue {
    case number(Int64), text([UInt8])

    /// Bytes it holds besides the fixed cost of an entry (SortValueCache's bound).
    var heldBytes: Int { if case .text(let t) = self { return t.count }; return 0 }
}

public enum SortKeys {
    /// The UIDs of `messages` in the order of `criteria` (RFC 5256 §3): equal on every
    /// criterion, by sequence number (ascending UID), which REVERSE does not turn.
    public static func sort(_ messages: [SortableMessage], by criteria: [SortCriterion]) -> [UInt32] {
        sort(uids: messages.map(\.uid), ranked: criteria.map { c in ranks(messages.map { value($0, c.key) }) }, by: criteria)
    }

    /// The same over each key's values as integers of the same order (`ranks`; the store keeps
    /// them between SORTs: SortValueCache).
    static func sort(uids: [UInt32], ranked: [[Int64]], by criteria: [SortCriterion]) -> [UInt32] {
        // Every key as an integer first (a string by its rank among the others, REVERSE by
        // complement, which cannot overflow), so the sort compares plain numbers in one table.
        let n = uids.count, width = criteria.count
        var table = [Int64](repeating: 0, count: n * width)
        for (k, c) in criteria.enumerated() {
            let column = ranked[k]
            for i in 0..<n { table[i * width + k] = c.reverse ? ~column[i] : column[i] }
        }
        let order = table.withUnsafeBufferPointer { t in
            (0..<n).sorted { i, j in
                for k in 0..<width where t[i * width + k] != t[j * width + k] { return t[i * width + k] < t[j * width + k] }
                return uids[i] < uids[j]
            }
        }
        return order.map { uids[$0] }
    }

    /// Each value as an integer of the same order: numbers as they are, strings by rank.
    static func ranks(_ values: [SortValue]) -> [Int64] {
        var texts: [[UInt8]] = [], at: [Int] = []
        for (i, v) in values.enumerated() { if case .text(let t) = v { texts.append(t); at.append(i) } }
        var out = values.map { v -> Int64 in if case .number(let x) = v { return x }; return 0 }
        guard !texts.isEmpty else { return out }
        let sorted = texts.indices.sorted { precedes(texts[$0], texts[$1]) }
        var rank: Int64 = 0
        for (r, t) in sorted.enumerated() {
            if r > 0 && texts[t] != texts[sorted[r - 1]] { rank += 1 }
            out[at[t]] = rank
        }
        return out
    }

    /// Octet order (RFC 5051's keys compare as octets), by memcmp: a shorter prefix comes first.
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let n = min(a.count, b.count)
        let c = n == 0 ? 0 : a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in memcmp(p.baseAddress!, q.baseAddress!, n) } }
        return c != 0 ? c < 0 : a.count < b.count
    }

    /// Whether sorting by `criteria` looks at the envelope (otherwise the store need not decode it).
    public static func needsEnvelope(_ criteria: [SortCriterion]) -> Bool {
        criteria.contains { needsEnvelope($0.key) }
    }

    /// Whether a key's value comes from the envelope (DATE falls back to the internal date).
    static func needsEnvelope(_ key: SortCriterion.Key) -> Bool { key != .arrival && key != .size }

    static func value(_ m: SortableMessage, _ key: SortCriterion.Key) -> SortValue {
        switch key {
        case .arrival: return .number(m.internalDate)
        case .date: return .number(m.sentDate)
        case .size: return .number(Int64(clamping: m.size))
        case .subject: return .text(subjectKey(m.envelope.subject))
        case .from: return .text(mailboxKey(m.envelope.from))
        case .to: return .text(mailboxKey(m.envelope.to))
        case .cc: return .text(mailboxKey(m.envelope.cc))
        case .displayFrom: return .text(displayKey(m.envelope.from))
        case .displayTo: return .text(displayKey(m.envelope.to))
        }
    }

    /// The collated base subject ("" when there is no Subject:).
    public static func subjectKey(_ subject: String?) -> [UInt8] {
        UnicodeCasemap.key(BaseSubject.extract(subject ?? "").subject)
    }

    /// RFC 5256 §3 FROM/TO/CC: "[IMAP] addr-mailbox of the first … address"; "" when there is
    /// none. For a list that opens with RFC 5322 group syntax the first address structure is
    /// the group marker, whose addr-mailbox "holds the group name phrase" (RFC 3501 §7.4.2), as
    /// Dovecot has it too.
    static func mailboxKey(_ list: [Address]) -> [UInt8] {
        UnicodeCasemap.key(firstAddress(list)?.mailbox ?? "")
    }

    /// RFC 5957 §3: the display name of the first address, RFC 2047 decoded; when it has none
    /// (or only blanks), its addr-spec "mailbox@host" (a group marker: the group name).
    static func displayKey(_ list: [Address]) -> [UInt8] {
        guard let a = firstAddress(list) else { return [] }
        let name = EncodedWords.decode(a.name ?? "").trimmingCharacters(in: .whitespaces)
        if !name.isEmpty { return UnicodeCasemap.key(name) }
        let host = a.host ?? ""
        return UnicodeCasemap.key((a.mailbox ?? "") + (host.isEmpty ? "" : "@" + host))
    }

    static func firstAddress(_ list: [Address]) -> Address? { list.first }
}
