// Fuzz entry point and structural invariant checks for parser output; a fuzzer (or a test loop)
// drives `MessageParser.fuzz`, which traps on any violated invariant or codec mismatch.

extension MessageParser {
    /// Parses `data` under default and tiny limits, checks the invariants, round-trips the result
    /// through the binary codec, and feeds `data` to the strict decoder. Traps on any failure.
    public static func fuzz(_ data: [UInt8]) {
        for limits in [MIMELimits(), MIMELimits(maxDepth: 2, maxParts: 4, maxHeaderBytes: 64)] {
            let info = parse(data, limits: limits)
            if let problem = info.invariantViolation() {
                preconditionFailure("MIME invariant violated: \(problem)")
            }
            precondition(info.partCount <= max(1, limits.maxParts), "MIME part limit exceeded")
            let enc = info.encoded()
            guard let dec = try? MessageInfo(encoded: enc), dec == info else {
                preconditionFailure("MIME codec round trip failed")
            }
        }
        _ = try? MessageInfo(encoded: data)
    }
}

extension MessageInfo {
    /// Number of BodyPart nodes (encapsulated bodies included).
    public var partCount: Int {
        func count(_ p: BodyPart) -> Int {
            var n = 1
            for c in p.parts { n += count(c) }
            if let m = p.message { n += count(m.body) }
            return n
        }
        return count(body)
    }

    /// nil when this value has the shape MessageParser guarantees; otherwise a description of the
    /// first problem. Guarantees: offsets ordered and within the message; children inside their
    /// parent's body, in order, not overlapping; an encapsulated body spans exactly its part's
    /// body; multiparts have at least one child, other parts none; types lowercased.
    public func invariantViolation() -> String? {
        guard size >= 0 else { return "negative size" }
        guard headerSize == body.bodyStart else { return "headerSize \(headerSize) != body.bodyStart \(body.bodyStart)" }
        guard body.headerStart == 0, body.bodyEnd == size else { return "top-level part does not span the message" }
        guard lines >= 0, lines <= size else { return "bad line count \(lines)" }
        return MessageInfo.check(body, size: size, path: "TEXT")
    }

    private static func check(_ p: BodyPart, size: Int, path: String) -> String? {
        guard 0 <= p.headerStart, p.headerStart <= p.bodyStart, p.bodyStart <= p.bodyEnd, p.bodyEnd <= size else {
            return "\(path): offsets out of order: \(p.headerStart) \(p.bodyStart) \(p.bodyEnd) size \(size)"
        }
        guard p.lines >= 0, p.lines <= p.bodyEnd - p.bodyStart else { return "\(path): bad line count \(p.lines)" }
        guard p.type == p.type.lowercased(), p.subtype == p.subtype.lowercased(), p.encoding == p.encoding.lowercased() else {
            return "\(path): not lowercased"
        }
        if p.type == "multipart" {
            guard !p.parts.isEmpty else { return "\(path): multipart without children" }
            guard p.message == nil else { return "\(path): multipart with a message" }
        } else {
            guard p.parts.isEmpty else { return "\(path): non-multipart with children" }
        }
        var prevEnd = p.bodyStart
        for (n, c) in p.parts.enumerated() {
            guard c.headerStart >= prevEnd, c.bodyEnd <= p.bodyEnd else {
                return "\(path).\(n + 1): child outside parent body or overlapping sibling"
            }
            prevEnd = c.bodyEnd
            if let problem = check(c, size: size, path: "\(path).\(n + 1)") { return problem }
        }
        if let m = p.message {
            guard m.body.headerStart == p.bodyStart, m.body.bodyEnd == p.bodyEnd else {
                return "\(path): encapsulated message does not span the part body"
            }
            if let problem = check(m.body, size: size, path: "\(path).MSG") { return problem }
        }
        return nil
    }
}
