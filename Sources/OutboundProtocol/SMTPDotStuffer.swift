// Transparency for DATA (RFC 5321 §4.5.2): a leading "." of a line is doubled, every line ends
// in CRLF (bare CR and bare LF become CRLF, so no "\n.\r\n" or "\r.\r\n" can reach the server,
// RFC 5321 §2.3.8), and the body ends with CRLF "." CRLF. Chunk boundaries never matter.

public struct SMTPDotStuffer: Sendable {
    private var atLineStart = true
    private var pendingCR = false

    public init() {}

    /// `chunk` as it must go on the wire, appended to `out`. Contiguous bytes (the store's body
    /// ranges are) take `stuff(bytes:into:)`, which copies each run between line ends whole.
    public mutating func stuff<C: Collection>(_ chunk: C, into out: inout [UInt8]) where C.Element == UInt8 {
        if chunk.withContiguousStorageIfAvailable({ stuff(bytes: $0, into: &out) }) != nil { return }
        [UInt8](chunk).withUnsafeBufferPointer { stuff(bytes: $0, into: &out) }
    }

    /// The same transformation over a buffer: a leading dot is doubled, the bytes up to the next
    /// CR or LF are appended as one run, and each line end is written as CRLF.
    public mutating func stuff(bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out.reserveCapacity(out.count + bytes.count + bytes.count / 64 + 2)
        var i = 0
        let n = bytes.count
        while i < n {
            if pendingCR {
                pendingCR = false
                out.append(ASCII.cr)
                out.append(ASCII.lf)
                atLineStart = true
                if bytes[i] == ASCII.lf {
                    i += 1
                    continue
                }
            }
            if atLineStart, bytes[i] == ASCII.dot { out.append(ASCII.dot) }
            var end = i
            while end < n, bytes[end] != ASCII.cr, bytes[end] != ASCII.lf { end += 1 }
            if end > i {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<end]))
                atLineStart = false
            }
            guard end < n else { return }
            if bytes[end] == ASCII.cr {
                pendingCR = true
            } else {
                out.append(ASCII.cr)
                out.append(ASCII.lf)
                atLineStart = true
            }
            i = end + 1
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
