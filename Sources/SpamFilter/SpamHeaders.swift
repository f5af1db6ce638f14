// The X-Spam-* header fields a scanned message carries, and their insertion: prepended above
// the message's own fields, any X-Spam-* field it arrived with removed (a sender cannot vouch
// for itself), the Subject replaced when rspamd rewrote it. Lines stay within RFC 5322 §2.1.1.
import MailSyntax

public enum SpamHeaders {
    public static let status = "X-Spam-Status"
    public static let score = "X-Spam-Score"
    public static let symbols = "X-Spam-Symbols"
    /// The fields this server writes; the same names arriving from outside are dropped.
    static let ownNames: [[UInt8]] = [status, score, symbols].map { Array($0.lowercased().utf8) }
    /// RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; symbol lists fold to stay there.
    static let foldWidth = 78
    static let subjectName: [UInt8] = Array("subject".utf8)

    /// "X-Spam-Status: Yes, score=66.00 required=100.00", "X-Spam-Score: 66.00",
    /// "X-Spam-Symbols: A, B, C" (the symbols that fired, by name).
    public static func fields(_ reply: RspamdReply, isSpam: Bool) -> [SpamHeaderField] {
        var out = [
            SpamHeaderField(status, "\(isSpam ? "Yes" : "No"), score=\(number(reply.score)) required=\(number(reply.requiredScore))"),
            SpamHeaderField(score, number(reply.score)),
        ]
        let names = reply.symbols.map(\.name).compactMap(safeValue)
        if !names.isEmpty { out.append(SpamHeaderField(symbols, names.joined(separator: ", "))) }
        return out
    }

    static func number(_ d: Double) -> String {
        let hundredths = Int((d * 100).rounded())
        let sign = hundredths < 0 ? "-" : ""
        let a = abs(hundredths)
        return "\(sign)\(a / 100).\(a % 100 < 10 ? "0" : "")\(a % 100)"
    }

    /// A value from rspamd made safe for a header: printable ASCII and spaces only (no CR/LF
    /// that would start a field of its own); nil when nothing is left.
    public static func safeValue(_ s: String) -> String? {
        let kept = String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F || $0.value >= 0xA0 }))
        let trimmed = kept.trimmingSpaces()
        return trimmed.isEmpty ? nil : trimmed
    }

    /// One field as CRLF-terminated lines, folded at ", " or spaces past `foldWidth`.
    static func render(_ f: SpamHeaderField) -> [UInt8] {
        var out = Array("\(f.name):".utf8)
        var lineLength = out.count
        for (i, word) in f.value.split(separator: " ", omittingEmptySubsequences: true).enumerated() {
            let w = Array(word.utf8)
            if i > 0, lineLength + 1 + w.count > foldWidth {
                out += [ASCII.cr, ASCII.lf, ASCII.space]; lineLength = 1
            } else {
                out.append(ASCII.space); lineLength += 1
            }
            out += w; lineLength += w.count
        }
        return out + [ASCII.cr, ASCII.lf]
    }

    /// The message as delivered: `delivery`'s fields first, then the message's own header section
    /// without X-Spam-* fields (and with the new Subject in the old one's place), then the body
    /// untouched. Unchanged bytes when there is nothing to add, remove or rewrite.
    public static func apply(_ delivery: SpamDelivery, to message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for f in delivery.headerFields { out += render(f) }
        message.withUnsafeBytes { raw in
            var it = HeaderFieldIterator(raw)
            var copied = 0   // message bytes before this are in `out` or dropped
            var sawSubject = false
            while let f = it.next() {
                let own = !f.isMalformed && ownNames.contains { HeaderFieldIterator.nameEquals(raw, f, $0) }
                let isSubject = !f.isMalformed && HeaderFieldIterator.nameEquals(raw, f, subjectName)
                guard own || (isSubject && delivery.subject != nil && !sawSubject) else { continue }
                out += raw[copied..<f.start]
                if isSubject, let s = delivery.subject { out += render(SpamHeaderField("Subject", s)); sawSubject = true }
                copied = f.end
            }
            if let s = delivery.subject, !sawSubject {
                // No Subject before: the new one goes with the fields above the message's own.
                out += render(SpamHeaderField("Subject", s))
            }
            out += raw[copied...]
        }
        return out
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
