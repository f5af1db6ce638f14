// DKIM "relaxed" canonicalisation (RFC 6376 §3.4.2 header, §3.4.4 body) as pure values over
// bytes. The body canonicaliser streams: chunks may split anywhere (even a CRLF) and memory
// stays constant whatever the body's size.
import MailSyntax

public enum RelaxedHeader {
    /// RFC 6376 §3.4.2: the field name lower-cased, WSP around the colon removed, the value
    /// unfolded (CRLF removed), runs of WSP reduced to one SP, WSP at the value's start and end
    /// removed; then ":" and CRLF unless `terminated` is false (the DKIM-Signature itself, §3.7).
    public static func canonicalize(name: some Collection<UInt8>, value: some Collection<UInt8>, terminated: Bool = true) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(name.count + value.count + 3)
        for b in name { out.append(ASCII.lower(b)) }
        out.append(ASCII.colon)
        let valueStart = out.count
        var pendingSpace = false
        var previous: UInt8 = 0
        func emit(_ b: UInt8) {
            if pendingSpace && out.count > valueStart { out.append(ASCII.space) }
            pendingSpace = false
            out.append(b)
        }
        for b in value {
            defer { previous = b }
            // Unfold: line ends go (a bare LF too); a CR is dropped only as part of one.
            if previous == ASCII.cr && b != ASCII.lf { emit(ASCII.cr) }
            switch b {
            case ASCII.cr, ASCII.lf: continue
            case ASCII.space, ASCII.tab: pendingSpace = true
            default: emit(b)
            }
        }
        if previous == ASCII.cr { emit(ASCII.cr) }
        if terminated { out.append(ASCII.cr); out.append(ASCII.lf) }
        return out
    }

    /// The canonical form of one field of `bytes` as HeaderFieldIterator found it.
    public static func canonicalize(_ bytes: UnsafeRawBufferPointer, _ field: HeaderField, terminated: Bool = true) -> [UInt8] {
        canonicalize(name: bytes[field.name], value: bytes[field.value], terminated: terminated)
    }
}

/// RFC 6376 §3.4.4, streaming: WSP runs inside a line become one SP, WSP at line ends is
/// dropped, empty lines at the end of the body are dropped, and a non-empty body ends in exactly
/// one CRLF. An empty body canonicalises to nothing (RFC 6376 errata 3192). A bare LF ends a
/// line like CRLF (the SMTP client sends every line with CRLF).
public struct RelaxedBodyCanonicalizer: Sendable {
    /// Line ends seen since the last content, not yet written (they may be trailing empty lines).
    private var pendingLineEnds = 0
    /// WSP seen in the current line since its last content.
    private var pendingSpace = false
    /// A CR at the end of the previous input: a line end if an LF follows.
    private var pendingCR = false
    /// Content has been written (so the canonical body is not empty).
    private var wroteContent = false

    public init() {}

    /// Canonicalises `chunk` and hands the output to `sink` (possibly several times, possibly
    /// with nothing held back: some output waits for the next chunk or `finish`).
    public mutating func update(_ chunk: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) -> Void) {
        var out = [UInt8]()
        out.reserveCapacity(chunk.count + 8)
        for b in chunk {
            if pendingCR {
                pendingCR = false
                if b == ASCII.lf { lineEnd(); continue }
                content(ASCII.cr, &out)
            }
            switch b {
            case ASCII.cr: pendingCR = true
            case ASCII.lf: lineEnd()
            case ASCII.space, ASCII.tab: pendingSpace = true
            default: content(b, &out)
            }
        }
        out.withUnsafeBytes(sink)
    }

    /// The rest: the final CRLF of a non-empty body.
    public mutating func finish(_ sink: (UnsafeRawBufferPointer) -> Void) {
        var out = [UInt8]()
        if pendingCR { pendingCR = false; content(ASCII.cr, &out) }
        if wroteContent { out.append(ASCII.cr); out.append(ASCII.lf) }
        pendingLineEnds = 0
        pendingSpace = false
        out.withUnsafeBytes(sink)
    }

    @inline(__always) private mutating func lineEnd() {
        pendingLineEnds += 1
        pendingSpace = false
    }

    @inline(__always) private mutating func content(_ b: UInt8, _ out: inout [UInt8]) {
        for _ in 0..<pendingLineEnds { out.append(ASCII.cr); out.append(ASCII.lf) }
        pendingLineEnds = 0
        if pendingSpace { out.append(ASCII.space); pendingSpace = false }
        out.append(b)
        wroteContent = true
    }

    /// The whole canonical body of `body` (tests, small bodies).
    public static func canonicalize(_ body: [UInt8]) -> [UInt8] {
        var c = RelaxedBodyCanonicalizer()
        var out = [UInt8]()
        body.withUnsafeBytes { c.update($0) { out.append(contentsOf: $0) } }
        c.finish { out.append(contentsOf: $0) }
        return out
    }
}
