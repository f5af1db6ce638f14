// The multi-line writer for RETR and TOP (RFC 1939 §3): streams a message's stored bytes in
// chunks, doubling a "." that starts a line, and ends with CRLF "." CRLF. For TOP it passes the
// header whole and then at most `bodyLines` lines of the body. Holds no more than one chunk.

public struct DotStuffer: Sendable {
    private var atLineStart = true
    /// Body lines still to pass (TOP); nil passes everything.
    private var linesLeft: Int?
    /// Bytes of header still to come before TOP starts counting lines.
    private var headerLeft: Int
    /// TOP's line budget is spent: the rest of the message is dropped.
    public private(set) var done = false

    /// `headerSize` and `bodyLines` for TOP (RFC 1939 §7: the header, the blank line, then
    /// `bodyLines` lines of the body); RETR uses the defaults.
    public init(headerSize: Int = 0, bodyLines: Int? = nil) {
        self.headerLeft = bodyLines == nil ? 0 : max(headerSize, 0)
        self.linesLeft = bodyLines
    }

    /// Appends `chunk` dot-stuffed to `out`.
    public mutating func feed<C: Collection>(_ chunk: C, into out: inout [UInt8]) where C.Element == UInt8 {
        out.reserveCapacity(out.count + chunk.count + 16)
        for b in chunk {
            if done { return }
            if headerLeft == 0, let left = linesLeft, left == 0, atLineStart { done = true; return }
            if atLineStart && b == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(b)
            atLineStart = b == UInt8(ascii: "\n")
            if headerLeft > 0 {
                headerLeft -= 1
            } else if atLineStart, let left = linesLeft {
                linesLeft = left - 1
            }
        }
    }

    /// The end: CRLF if the message did not end with one, then ".\r\n".
    public mutating func finish(into out: inout [UInt8]) {
        if !atLineStart { out += [13, 10] }
        out += [UInt8(ascii: "."), 13, 10]
        atLineStart = true
    }
}
