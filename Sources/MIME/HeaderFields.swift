// The header fields the parser interprets (MIME + ENVELOPE), located as byte ranges during the
// single header scan, and unfolded into values on demand (RFC 5322 §2.2, §2.2.3).
import MailSyntax

/// Field names the parser cares about. Raw values are indices into `HeaderFields` storage.
enum FieldID: Int, CaseIterable {
    case contentType, contentTransferEncoding, contentID, contentDescription, contentDisposition
    case contentLanguage, contentLocation, contentMD5
    case date, subject, from, sender, replyTo, to, cc, bcc, inReplyTo, messageID

    /// Lowercased field names, indexed by raw value.
    static let names: [[UInt8]] = [
        "content-type", "content-transfer-encoding", "content-id", "content-description",
        "content-disposition", "content-language", "content-location", "content-md5",
        "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id",
    ].map { Array($0.utf8) }

    /// Address-list fields whose repeated occurrences are all read (RFC 5322 §3.6 allows one
    /// each; a message with several gets one ENVELOPE list of all their addresses, as Dovecot does).
    var collectsRepeats: Bool {
        switch self {
        case .from, .sender, .replyTo, .to, .cc, .bcc: return true
        default: return false
        }
    }

    /// Case-insensitive lookup of the field name `b[from..<to]` (RFC 5322 §1.2.2: names are case-insensitive).
    static func lookup(_ b: Bytes, _ from: Int, _ to: Int) -> FieldID? {
        let len = to - from
        guard len >= 2 && len <= 25 else { return nil }
        let c0 = ASCII.lower(b[from])
        outer: for (idx, name) in names.enumerated() where name.count == len && name[0] == c0 {
            var i = 1
            while i < len {
                if ASCII.lower(b[from + i]) != name[i] { continue outer }
                i += 1
            }
            return FieldID(rawValue: idx)
        }
        return nil
    }
}

/// Byte ranges of the first occurrence of each interesting field's value (text after the colon up
/// to the end of its last continuation line, CRLFs of folds included), and of the later
/// occurrences of the fields that `collectsRepeats`.
struct HeaderFields {
    private var starts = [Int](repeating: -1, count: FieldID.allCases.count)
    private var ends = [Int](repeating: -1, count: FieldID.allCases.count)
    private var repeats: [(FieldID, Range<Int>)] = []

    subscript(id: FieldID) -> Range<Int>? {
        let s = starts[id.rawValue]
        return s < 0 ? nil : s..<ends[id.rawValue]
    }

    func has(_ id: FieldID) -> Bool { starts[id.rawValue] >= 0 }

    /// Records an occurrence: the first of any field, a later one of a field that `collectsRepeats`.
    mutating func add(_ id: FieldID, _ r: Range<Int>) {
        if !has(id) {
            starts[id.rawValue] = r.lowerBound
            ends[id.rawValue] = r.upperBound
        } else if id.collectsRepeats {
            repeats.append((id, r))
        }
    }

    /// Every recorded occurrence of `id`, in header order.
    func all(_ id: FieldID) -> [Range<Int>] {
        guard let first = self[id] else { return [] }
        return [first] + repeats.lazy.filter { $0.0 == id }.map { $0.1 }
    }
}

extension Bytes {
    /// Unfolded value bytes of a field range: CRLF / LF removed (RFC 5322 §2.2.3 unfolding; the
    /// following WSP is kept), then leading/trailing WSP trimmed.
    func unfolded(_ r: Range<Int>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(r.count)
        var i = r.lowerBound
        let end = r.upperBound
        while i < end {
            let c = self[i]
            if c == ASCII.lf {
                i += 1
                continue
            }
            if c == ASCII.cr && i + 1 < end && self[i + 1] == ASCII.lf {
                i += 2
                continue
            }
            out.append(c)
            i += 1
        }
        return Array(trimWSP(out))
    }

    /// Unfolded field value as a String (lossy UTF-8), nil when the field is absent.
    func fieldString(_ f: HeaderFields, _ id: FieldID) -> String? {
        guard let r = f[id] else { return nil }
        return String(lossyUTF8: unfolded(r))
    }

    /// Like `fieldString` but nil for an empty value too.
    func nonEmptyFieldString(_ f: HeaderFields, _ id: FieldID) -> String? {
        guard let r = f[id] else { return nil }
        let v = unfolded(r)
        return v.isEmpty ? nil : String(lossyUTF8: v)
    }
}
