// Single-pass MIME structure parser: message bytes → MessageInfo (ENVELOPE, BODYSTRUCTURE, offsets).
// Guarantees: every line is examined once (against at most maxDepth boundaries), bodies are never
// copied or decoded, recursion is bounded by MIMELimits, and any input yields a result (no throws, no traps).
import MailSyntax

public enum MessageParser {
    /// Parses a whole message. `bytes` must stay valid for the duration of the call only.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: MIMELimits = .init()) -> MessageInfo {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return MessageInfo(size: 0, headerSize: 0, lines: 0, envelope: Envelope(), body: BodyPart())
        }
        var p = StructureParser(Bytes(base: base, count: bytes.count), limits)
        let (body, fields, _) = p.parsePart(depth: 0, inDigest: false)
        let b = p.b
        return MessageInfo(size: b.count, headerSize: body.bodyStart, lines: p.lfCount,
                           envelope: p.envelope(fields), body: body)
    }

    public static func parse(_ bytes: [UInt8], limits: MIMELimits = .init()) -> MessageInfo {
        bytes.withUnsafeBytes { parse($0, limits: limits) }
    }
}

/// The parser state: a cursor over the bytes, the LF count before the cursor (so line counts of
/// any part are O(1)), and the stack of active multipart boundaries, outermost first.
struct StructureParser {
    let b: Bytes
    let maxDepth: Int
    let maxHeaderBytes: Int
    var partsLeft: Int
    var pos = 0
    /// Number of LF bytes in [0, pos).
    var lfCount = 0
    var boundaries: [[UInt8]] = []

    /// A boundary delimiter line found at `lineStart` (not yet consumed: `pos == lineStart`).
    struct Stop {
        /// Index into `boundaries` of the matched boundary.
        var index: Int
        /// Close delimiter ("--boundary--").
        var close: Bool
        var lineStart: Int
    }

    init(_ b: Bytes, _ limits: MIMELimits) {
        self.b = b
        self.maxDepth = max(0, min(limits.maxDepth, MIMELimits.hardMaxDepth))
        self.maxHeaderBytes = max(0, limits.maxHeaderBytes)
        self.partsLeft = max(1, limits.maxParts)
    }

    // MARK: Lines and boundaries

    /// Moves past the line at `pos` (through its LF, or to the end).
    mutating func consumeLine() {
        if let lf = b.find(ASCII.lf, from: pos, to: b.count) {
            pos = lf + 1
            lfCount += 1
        } else {
            pos = b.count
        }
    }

    /// RFC 2046 §5.1.1: a delimiter line is "--" boundary followed only by transport padding
    /// (WSP); a close delimiter is "--" boundary "--" (anything after it is tolerated). Every
    /// active boundary is checked, so an enclosing boundary ends inner parts; when several
    /// match (one boundary a prefix of another) the longest wins, the innermost on a tie (a
    /// nested multipart that reuses its parent's boundary gets its own parts, as in Dovecot and
    /// Python's email package).
    func matchBoundary(at ls: Int) -> Stop? {
        guard !boundaries.isEmpty, ls + 2 <= b.count, b[ls] == ASCII.dash, b[ls + 1] == ASCII.dash else { return nil }
        let le = b.find(ASCII.lf, from: ls, to: b.count) ?? b.count
        var best: Stop?
        var bestLen = -1
        for (idx, bd) in boundaries.enumerated() {
            let bl = bd.count
            guard bl >= bestLen, ls + 2 + bl <= le, b.matches(at: ls + 2, bd) else { continue }
            var j = ls + 2 + bl
            let close: Bool
            if j + 2 <= le && b[j] == ASCII.dash && b[j + 1] == ASCII.dash {
                close = true
            } else {
                while j < le && (ASCII.isWSP(b[j]) || b[j] == ASCII.cr) { j += 1 }
                guard j == le else { continue }
                close = false
            }
            best = Stop(index: idx, close: close, lineStart: ls)
            bestLen = bl
        }
        return best
    }

    /// Skips body lines until a line matching an active boundary (returned, not consumed) or the
    /// end (nil). Without active boundaries it only counts LFs up to the end.
    mutating func skipBody() -> Stop? {
        if boundaries.isEmpty {
            lfCount += b.countLF(from: pos, to: b.count)
            pos = b.count
            return nil
        }
        while pos < b.count {
            if b[pos] == ASCII.dash, let s = matchBoundary(at: pos) { return s }
            guard let lf = b.find(ASCII.lf, from: pos, to: b.count) else {
                pos = b.count
                return nil
            }
            pos = lf + 1
            lfCount += 1
        }
        return nil
    }

    /// Length of the line ending (CRLF = 2, LF = 1, none = 0) just before `ls`.
    func eolBefore(_ ls: Int) -> Int {
        guard ls >= 1, b[ls - 1] == ASCII.lf else { return 0 }
        return ls >= 2 && b[ls - 2] == ASCII.cr ? 2 : 1
    }

    // MARK: Header

    /// Whether the line starting at `ls` is a "name:" field line. Lets a junk first line (an
    /// mbox "From " line, say) stay inside a header section that continues with real fields.
    func lineIsField(at ls: Int) -> Bool {
        guard ls < b.count else { return false }
        let le = b.find(ASCII.lf, from: ls, to: b.count) ?? b.count
        return HeaderFieldIterator.fieldName(b.raw, lineStart: ls, lineEnd: le) != nil
    }

    /// Scans a header section starting at `pos` and records the interesting fields; returns the
    /// body start. RFC 5322 §2.2: fields are "name:" lines plus continuation lines starting with
    /// WSP (MailSyntax's `HeaderFieldIterator`); the header ends after the first empty line.
    /// Tolerated: LF-only line ends, no blank line (headers run to the end, or to a boundary
    /// line, which is left unconsumed), a first line that is not a field and not followed by one
    /// (then there is no header at all: the body starts right there), other junk lines without a
    /// valid field name (ignored).
    mutating func parseHeader(_ f: inout HeaderFields) -> Int {
        let start = pos
        let windowEnd = maxHeaderBytes >= b.count - start ? b.count : start + maxHeaderBytes
        var fields = HeaderFieldIterator(b.raw, from: start)
        var bodyStart = b.count
        var first = true
        while let field = fields.next() {
            let ls = field.start
            if b[ls] == ASCII.dash, matchBoundary(at: ls) != nil {
                bodyStart = ls
                break
            }
            if field.isMalformed {
                if first && (ASCII.isWSP(b[ls]) || field.isFolded || !lineIsField(at: field.end)) {
                    bodyStart = ls
                    break
                }
            } else if ls < windowEnd, let id = FieldID.lookup(b, ls, field.nameEnd), !f.has(id) || id.collectsRepeats {
                let value = field.value
                f.add(id, value.lowerBound..<max(value.lowerBound, min(value.upperBound, windowEnd)))
            }
            first = false
        }
        if case .emptyLine(let body)? = fields.end { bodyStart = body }
        lfCount += b.countLF(from: start, to: bodyStart)
        pos = bodyStart
        return bodyStart
    }

    // MARK: Parts

    /// Parses one entity (header + body) starting at `pos`. Returns the part, its header fields
    /// (for an envelope) and the boundary line that ended it (nil: it ran to the end).
    mutating func parsePart(depth: Int, inDigest: Bool) -> (BodyPart, HeaderFields, Stop?) {
        partsLeft -= 1
        var part = BodyPart(headerStart: pos)
        var f = HeaderFields()
        part.bodyStart = parseHeader(&f)
        let lfAtBodyStart = lfCount
        applyMIMEFields(&part, f, inDigest: inDigest)

        let stop: Stop?
        if part.type == "multipart" {
            if let bd = part.parameter("boundary"), !bd.isEmpty {
                if depth >= maxDepth || partsLeft <= 0 {
                    makeOpaque(&part)
                    stop = skipBody()
                } else {
                    stop = parseMultipart(&part, boundary: Array(bd.utf8), depth: depth)
                }
            } else {
                // RFC 2046 §5.1.1: boundary is required; invalid Content-Type → RFC 2045 §5.2 default.
                part.type = "text"
                part.subtype = "plain"
                part.parameters = [["charset", "us-ascii"]]
                stop = skipBody()
            }
        } else if part.type == "message" && (part.subtype == "rfc822" || part.subtype == "global") {
            // RFC 2046 §5.2.1 / RFC 6532 §3.5: only an identity-encoded message can be parsed in place.
            if part.encoding != "7bit" && part.encoding != "8bit" && part.encoding != "binary" {
                stop = skipBody()
            } else if depth >= maxDepth || partsLeft <= 0 {
                makeOpaque(&part)
                stop = skipBody()
            } else {
                let (inner, innerFields, s) = parsePart(depth: depth + 1, inDigest: false)
                part.message = EncapsulatedMessage(envelope: envelope(innerFields), body: inner)
                stop = s
            }
        } else {
            stop = skipBody()
        }

        // Where the body ends: at the end, or before the CRLF that belongs to the delimiter
        // (RFC 2046 §5.1.1). A part cut short by a delimiter has all its offsets clamped to it.
        if let s = stop {
            let e = eolBefore(s.lineStart)
            let end = s.lineStart - e
            if end <= part.bodyStart {
                part.headerStart = min(part.headerStart, end)
                part.bodyStart = end
                part.bodyEnd = end
                part.lines = 0
            } else {
                part.bodyEnd = end
                part.lines = lfCount - (e > 0 ? 1 : 0) - lfAtBodyStart
            }
        } else {
            part.bodyEnd = b.count
            part.lines = lfCount - lfAtBodyStart
        }
        if part.type == "multipart" && part.parts.isEmpty {
            // IMAP needs at least one child (RFC 3501 body-type-mpart); like Dovecot, an empty text/plain one.
            partsLeft -= 1
            part.parts = [BodyPart(headerStart: part.bodyEnd, bodyStart: part.bodyEnd, bodyEnd: part.bodyEnd)]
        }
        return (part, f, stop)
    }

    /// RFC 2046 §5.1.1 multipart body: preamble, delimiter-separated parts, close delimiter,
    /// epilogue. Missing close delimiter: the last part runs to the end of the enclosing body.
    mutating func parseMultipart(_ part: inout BodyPart, boundary: [UInt8], depth: Int) -> Stop? {
        let k = boundaries.count
        boundaries.append(boundary)
        let digest = part.subtype == "digest"
        var children: [BodyPart] = []
        var s = skipBody() // preamble
        var result: Stop?
        while true {
            guard let st = s else {
                boundaries.removeLast()
                result = nil
                break
            }
            if st.index < k { // an enclosing boundary ends this multipart
                boundaries.removeLast()
                result = st
                break
            }
            consumeLine()
            if st.close {
                boundaries.removeLast()
                result = skipBody() // epilogue
                break
            }
            if partsLeft <= 0 {
                s = skipBody()
                continue
            }
            let (child, _, cs) = parsePart(depth: depth + 1, inDigest: digest)
            children.append(child)
            s = cs
        }
        part.parts = children
        return result
    }

    /// A container beyond the limits: an opaque leaf.
    func makeOpaque(_ part: inout BodyPart) {
        part.type = "application"
        part.subtype = "octet-stream"
        part.parameters = []
    }

    // MARK: Field interpretation

    /// Fills the BODYSTRUCTURE fields from the MIME header fields (RFC 2045, RFC 2183, RFC 3282,
    /// RFC 2557, RFC 1864). Default type text/plain; charset=us-ascii (RFC 2045 §5.2), or
    /// message/rfc822 inside multipart/digest (RFC 2046 §5.1.5), also for a garbled Content-Type.
    func applyMIMEFields(_ part: inout BodyPart, _ f: HeaderFields, inDigest: Bool) {
        if let r = f[.contentType], let ct = StructuredFields.contentType(b.unfolded(r)) {
            part.type = ct.type
            part.subtype = ct.subtype
            part.parameters = ct.parameters
        } else if inDigest {
            part.type = "message"
            part.subtype = "rfc822"
            part.parameters = []
        }
        if let r = f[.contentTransferEncoding] {
            part.encoding = StructuredFields.transferEncoding(b.unfolded(r))
        }
        if let r = f[.contentDisposition], let d = StructuredFields.disposition(b.unfolded(r)) {
            part.disposition = d.0
            part.dispositionParameters = d.1
        }
        if let r = f[.contentLanguage] {
            part.language = StructuredFields.languages(b.unfolded(r))
        }
        part.id = b.nonEmptyFieldString(f, .contentID)
        part.description = b.nonEmptyFieldString(f, .contentDescription)
        part.location = b.nonEmptyFieldString(f, .contentLocation)
        part.md5 = b.nonEmptyFieldString(f, .contentMD5)
    }

    /// RFC 3501 §7.4.2 ENVELOPE from a message header. An address field that occurs more than
    /// once gives the addresses of all its occurrences (Dovecot's reading); other fields the first.
    func envelope(_ f: HeaderFields) -> Envelope {
        func addresses(_ id: FieldID) -> [Address] {
            f.all(id).flatMap { AddressParser.parse(b.unfolded($0)) }
        }
        let from = addresses(.from)
        let sender = addresses(.sender)
        let replyTo = addresses(.replyTo)
        return Envelope(
            date: b.fieldString(f, .date),
            subject: b.fieldString(f, .subject),
            from: from,
            sender: sender.isEmpty ? from : sender,
            replyTo: replyTo.isEmpty ? from : replyTo,
            to: addresses(.to),
            cc: addresses(.cc),
            bcc: addresses(.bcc),
            inReplyTo: b.fieldString(f, .inReplyTo),
            messageID: b.fieldString(f, .messageID))
    }
}
