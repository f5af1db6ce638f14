// HEADER.FIELDS / HEADER.FIELDS.NOT (RFC 9051 §6.4.5) over raw header bytes: the one filter both
// imapd (SectionLocator) and the store (FETCH batches filtered before they cross the RPC) use, so
// the two answer byte for byte alike. Linear; reads only the buffer it is given.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum HeaderFieldFilter {
    /// The names of a HEADER.FIELDS list as `append` takes them: lowercased bytes, each once
    /// (made once per FETCH, not once per message).
    public static func fieldNames(_ names: [String]) -> [[UInt8]] {
        var wanted: [[UInt8]] = []
        for n in names { let b = Array(n.lowercased().utf8); if !wanted.contains(b) { wanted.append(b) } }
        return wanted
    }

    /// The fields the store keeps of each message at delivery (its `header_fields`, as
    /// Dovecot's dovecot.index.cache keeps the fields clients ask for): the union of the
    /// HEADER.FIELDS lists of Thunderbird, Apple Mail, Roundcube, mutt and K-9, lowercase. A
    /// HEADER.FIELDS naming only these is answered by filtering the kept bytes, which equals
    /// filtering the whole header (the same fields in the same order). Changing the list needs a
    /// migration that empties `header_fields` (the store refills it at start).
    public static let keptFields: [[UInt8]] = [
        "date", "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "message-id", "in-reply-to", "references",
        "content-type", "content-description", "priority", "x-priority", "importance", "newsgroups", "lines",
        "list-id", "list-post", "list-subscribe", "list-unsubscribe", "disposition-notification-to", "x-label", "x-original-to",
    ].map { Array($0.utf8) }
    private static let kept = Set(keptFields)

    /// Whether every name of `wanted` (from `fieldNames`) is one of `keptFields`.
    public static func keptCovers(_ wanted: [[UInt8]]) -> Bool { !wanted.isEmpty && wanted.allSatisfy(kept.contains) }

    /// Appends to `out` the fields of `header` whose name is (or with `not`, is not) one of
    /// `wanted` (from `fieldNames`), compared case-insensitively, with their folded lines, in
    /// message order, each line ending CRLF, then the blank line CRLF — unless the header has
    /// none (RFC 3501 §6.4.5: "the blank line is included in all header fetches, except in the
    /// case of a message which has no body and no blank line"). Lines that are no field (no
    /// colon) are dropped by FIELDS and kept by FIELDS.NOT.
    public static func append(_ header: UnsafeRawBufferPointer, fieldNames wanted: [[UInt8]], not: Bool, to out: inout [UInt8]) {
        var it = HeaderFieldIterator(header)
        while let field = it.next() {
            let named: Bool
            if field.isMalformed {
                named = false
            } else {
                let start = field.start, count = field.nameEnd - field.start
                named = wanted.contains { w in
                    guard w.count == count else { return false }
                    var i = 0
                    while i < count { if w[i] != ASCII.lower(header[start + i]) { return false }; i += 1 }
                    return true
                }
            }
            guard named != not else { continue }
            appendCRLFLines(header[field.start..<field.end], to: &out)
        }
        if endsWithBlankLine(header) {
            out.append(ASCII.cr)
            out.append(ASCII.lf)
        }
    }

    /// Whether a header section ends with its empty separator line (CRLF or bare LF).
    public static func endsWithBlankLine(_ h: UnsafeRawBufferPointer) -> Bool {
        guard h.last == ASCII.lf else { return false }
        var i = h.count - 1
        if i > 0 && h[i - 1] == ASCII.cr { i -= 1 }
        return i == 0 || h[i - 1] == ASCII.lf
    }

    /// Copies lines, each ending CRLF whether it ended CRLF, bare LF or not at all.
    private static func appendCRLFLines(_ b: Slice<UnsafeRawBufferPointer>, to out: inout [UInt8]) {
        // Already CRLF throughout and ending with it (the usual case): copied as it is, in one
        // copy, after looking at each LF (found by memchr) and the byte before it.
        if let last = b.last, last == ASCII.lf, let base = b.base.baseAddress {
            var i = b.startIndex, clean = true
            while i < b.endIndex, let p = memchr(base + i, Int32(ASCII.lf), b.endIndex - i) {
                let at = base.distance(to: UnsafeRawPointer(p))
                if at == b.startIndex || b.base[at - 1] != ASCII.cr { clean = false; break }
                i = at + 1
            }
            if clean {
                out.append(contentsOf: UnsafeBufferPointer(start: (base + b.startIndex).assumingMemoryBound(to: UInt8.self), count: b.count))
                return
            }
        }
        var lineHasContent = false
        for c in b {
            if c == ASCII.lf {
                if out.last != ASCII.cr { out.append(ASCII.cr) }
                out.append(ASCII.lf)
                lineHasContent = false
            } else {
                out.append(c)
                lineHasContent = true
            }
        }
        if lineHasContent {
            if out.last != ASCII.cr { out.append(ASCII.cr) }
            out.append(ASCII.lf)
        }
    }
}
