// FETCH BODY[section]<partial> (RFC 9051 §6.4.5): which bytes of a stored message a section
// names, from the part offsets kept at delivery, so the body is read by range and never whole.
// Pure functions; part lookup follows Dovecot 2.3 (lib-imap-storage/imap-msgpart.c).
import MIME
import MailSyntax

/// What to send for a section, in absolute offsets of the message.
public enum SectionPlan: Sendable, Equatable {
    /// The bytes `[start, end)`.
    case range(Int, Int)
    /// The header `[start, end)`, kept to the named fields (or all but them, `not`) by
    /// `SectionLocator.filterHeader`.
    case headerFields(Int, Int, names: [String], not: Bool)
    /// An empty string: the part does not exist, or HEADER/TEXT asked of a part that is no
    /// message/rfc822 (Dovecot answers both with "" and no error, as most servers do).
    case empty
}

public enum SectionLocator {
    /// The plan for `section` of the message `info`; nil for a section no client may send: MIME
    /// without a part number, or a part number below 1 (the session answers BAD).
    ///
    /// RFC 9051 §6.4.5: part numbers walk the multipart children, 1-based; a non-multipart
    /// entity has only part 1, itself (so BODY[2.1] is BODY[2] for a leaf, as in Dovecot); a
    /// number after a message/rfc822 part walks the encapsulated message's body. `N.MIME` is the
    /// part's MIME header; `HEADER`, `HEADER.FIELDS[.NOT]` and `TEXT` after a part number apply to
    /// the message encapsulated in that message/rfc822 part.
    public static func locate(_ section: Section, in info: MessageInfo) -> SectionPlan? {
        guard section.part.allSatisfy({ $0 >= 1 }) else { return nil }
        if section.part.isEmpty {
            return messagePlan(section.text, header: 0, body: info.headerSize, end: info.size)
        }
        guard let part = find(section.part, in: info.body) else { return .empty }
        switch section.text {
        case nil: return .range(part.bodyStart, part.bodyEnd)
        case .mime?: return .range(part.headerStart, part.bodyStart)
        default:
            // RFC 9051 §6.4.5: only a MESSAGE/RFC822 part has a header and text of its own.
            guard let inner = encapsulatedBody(of: part) else { return .empty }
            return messagePlan(section.text, header: inner.headerStart, body: inner.bodyStart, end: inner.bodyEnd)
        }
    }

    /// A section of a message whose header starts at `header`, body at `body`, ending at `end`.
    private static func messagePlan(_ text: Section.Text?, header: Int, body: Int, end: Int) -> SectionPlan? {
        switch text {
        case nil: return .range(header, end)
        case .header?: return .range(header, body)
        case .text?: return .range(body, end)
        case .headerFields(let names)?: return .headerFields(header, body, names: names, not: false)
        case .headerFieldsNot(let names)?: return .headerFields(header, body, names: names, not: true)
        case .mime?: return nil   // a message has no MIME header of its own here
        }
    }

    /// The entity a part path names (the top-level body for an empty path), by the rules of
    /// `locate`; nil when there is none or a number is below 1. For BINARY[part] and
    /// BINARY.SIZE (RFC 3516 §4.2), which decode the part's body by its `encoding`.
    public static func part(_ path: [Int], in info: MessageInfo) -> BodyPart? {
        guard path.allSatisfy({ $0 >= 1 }) else { return nil }
        return path.isEmpty ? info.body : find(path, in: info.body)
    }

    /// The entity a non-empty part path names, or nil when there is none.
    static func find(_ path: [Int], in root: BodyPart) -> BodyPart? {
        var cur = root
        for (i, n) in path.enumerated() {
            let more = i + 1 < path.count
            if cur.type == "multipart" {
                guard n <= cur.parts.count else { return nil }
                cur = cur.parts[n - 1]
            } else {
                // Only part 1 below a non-multipart; a path goes on only into a message.
                guard n == 1, !more || encapsulatedBody(of: cur) != nil else { return nil }
            }
            if more, let inner = encapsulatedBody(of: cur) { cur = inner }
        }
        return cur
    }

    /// The body of the message a message/rfc822 (or message/global) part encapsulates. One left
    /// unparsed (transfer-encoded, against RFC 2046 §5.2.1) reads as a message that is all header
    /// and has an empty text/plain body — what its BODYSTRUCTURE says (BodyStructure.swift) and
    /// what Dovecot 2.3 answers for its sections.
    static func encapsulatedBody(of part: BodyPart) -> BodyPart? {
        if let m = part.message { return m.body }
        guard IMAPWriter.isMediaMessage(part) else { return nil }
        return BodyPart(headerStart: part.bodyStart, bodyStart: part.bodyEnd, bodyEnd: part.bodyEnd)
    }

    /// HEADER.FIELDS / HEADER.FIELDS.NOT (RFC 9051 §6.4.5): the fields of `header` whose name is
    /// (or with `not`, is not) one of `names`, compared case-insensitively, with their folded
    /// lines, in message order, each line ending CRLF, then the blank line CRLF — unless the
    /// header has none (RFC 3501 §6.4.5: "the blank line is included in all header fetches,
    /// except in the case of a message which has no body and no blank line"). Lines that are
    /// no field (no colon) are dropped by FIELDS and kept by FIELDS.NOT.
    public static func filterHeader(_ header: [UInt8], names: [String], not: Bool) -> [UInt8] {
        filterHeader(header, fieldNames: fieldNames(names), not: not)
    }

    /// The names of a HEADER.FIELDS list as `filterHeader(_:fieldNames:not:)` takes them:
    /// lowercased bytes, each once (made once per FETCH, not once per message).
    public static func fieldNames(_ names: [String]) -> [[UInt8]] { HeaderFieldFilter.fieldNames(names) }

    /// `filterHeader` with the names from `fieldNames` (MailSyntax's HeaderFieldFilter, which the
    /// store's FETCH batches use too).
    public static func filterHeader(_ header: [UInt8], fieldNames wanted: [[UInt8]], not: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(not ? header.count : min(header.count, 512))
        header.withUnsafeBytes { HeaderFieldFilter.append($0, fieldNames: wanted, not: not, to: &out) }
        return out
    }

    /// Whether a header section ends with its empty separator line (CRLF or bare LF).
    static func endsWithBlankLine(_ h: [UInt8]) -> Bool { h.withUnsafeBytes { HeaderFieldFilter.endsWithBlankLine($0) } }

    /// `<offset.length>` (RFC 9051 §6.4.5) applied to `n` bytes: the slice to send, relative to
    /// the section. An origin at or past the end gives an empty slice (the response still names
    /// the requested origin, `BODY[]<origin>`); nil partial is the whole section.
    public static func applyPartial(_ p: Partial?, toLength n: Int) -> (offset: Int, length: Int) {
        guard let p else { return (0, max(0, n)) }
        let offset = min(Int(p.offset), max(0, n))
        return (offset, min(Int(p.length), max(0, n) - offset))
    }
}

extension IMAPWriter {
    /// The name of a body section in a FETCH response (RFC 9051 §7.5.2 msg-att-static):
    /// `BODY[1.2.HEADER.FIELDS (FROM TO)]<origin>`. As Dovecot echoes it: section keywords and
    /// field names uppercased, field names as astrings, the origin alone (no length).
    public mutating func bodySectionName(_ s: Section, origin: UInt32?) {
        raw("BODY[")
        var first = true
        for n in s.part {
            if !first { bytes.append(ASCII.dot) }
            number(n)
            first = false
        }
        if let text = s.text {
            if !first { bytes.append(ASCII.dot) }
            switch text {
            case .header: raw("HEADER")
            case .text: raw("TEXT")
            case .mime: raw("MIME")
            case .headerFields(let names): raw("HEADER.FIELDS "); headerList(names)
            case .headerFieldsNot(let names): raw("HEADER.FIELDS.NOT "); headerList(names)
            }
        }
        bytes.append(ASCII.rbracket)
        partialOrigin(origin)
    }

    /// `BINARY[1.2]<origin>`, or `BINARY.SIZE[1.2]` with `size` (RFC 3516 §4.2, RFC 9051 §7.5.2).
    public mutating func binarySectionName(part: [Int], origin: UInt32?, size: Bool) {
        raw(size ? "BINARY.SIZE[" : "BINARY[")
        for (i, n) in part.enumerated() {
            if i > 0 { bytes.append(ASCII.dot) }
            number(n)
        }
        bytes.append(ASCII.rbracket)
        if !size { partialOrigin(origin) }
    }

    /// header-list = "(" header-fld-name *(SP header-fld-name) ")"
    private mutating func headerList(_ names: [String]) {
        bytes.append(ASCII.lparen)
        for (i, name) in names.enumerated() {
            if i > 0 { sp() }
            astring(name.uppercased())
        }
        bytes.append(ASCII.rparen)
    }

    private mutating func partialOrigin(_ origin: UInt32?) {
        guard let origin else { return }
        bytes.append(ASCII.lt)
        number(origin)
        bytes.append(ASCII.gt)
    }
}
