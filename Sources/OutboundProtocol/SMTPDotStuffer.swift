// Transparency for DATA (RFC 5321 §4.5.2): a leading "." of a line is doubled, every line ends
// in CRLF (bare CR and bare LF become CRLF, so no "\n.\r\n" or "\r.\r\n" can reach the server,
// RFC 5321 §2.3.8), and the body ends with CRLF "." CRLF. Chunk boundaries never matter.

public struct SMTPDotStuffer: Sendable {
    private var atLineStart = true
    private var pendingCR = false

    public init() {}

    /// `chunk` as it must go on the wire, appended to `out`.
    public mutating func stuff<C: Collection>(_ chunk: C, into out: inout [UInt8]) where C.Element == UInt8 {
        out.reserveCapacity(out.count + chunk.count + chunk.count / 64 + 2)
        for b in chunk {
            if pendingCR {
                pendingCR = false
                out.append(ASCII.cr)
                out.append(ASCII.lf)
                atLineStart = true
                if b == ASCII.lf { continue }
            }
            switch b {
            case ASCII.cr:
                pendingCR = true
            case ASCII.lf:
                out.append(ASCII.cr)
                out.append(ASCII.lf)
                atLineStart = true
            default:
                if atLineStart, b == ASCII.dot { out.append(ASCII.dot) }
                out.append(b)
                atLineStart = false
            }
        }
    }

    /// The end of the body: a CRLF if the last line had none, then "." CRLF.
    public mutating func finish(into out: inout [UInt8]) {
        if pendingCR || !atLineStart {
            out.append(ASCII.cr)
            out.append(ASCII.lf)
        }
        pendingCR = false
        atLineStart = true
        out.append(contentsOf: [ASCII.dot, ASCII.cr, ASCII.lf])
    }
}
