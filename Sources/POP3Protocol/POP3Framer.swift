// POP3LineFramer: cuts the client's bytes into lines (CRLF, or a bare LF) with the line length
// limit enforced before buffering: it never holds more than `maxLine` bytes of a line plus the
// bytes of one `feed` not yet asked for. An over-long line is dropped up to its end and reported.

public struct POP3LineFramer: Sendable {
    public enum Event: Sendable, Equatable {
        /// A line without its CRLF (or LF).
        case line([UInt8])
        /// A line over `maxLine`: its bytes were dropped up to its LF (answer -ERR).
        case lineTooLong
    }

    public let maxLine: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private var discarding = false

    public init(maxLine: Int = POP3Limits().maxLine) { self.maxLine = max(maxLine, 3) }

    public mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { feed($0) } }

    /// The same, straight from the glue's read buffer (no array made per read).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start); scanned -= start; start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Drops everything buffered (after STLS: RFC 2595 §4, pipelined plaintext is discarded).
    public mutating func reset() { self = POP3LineFramer(maxLine: maxLine) }

    /// Bytes buffered and not yet returned.
    public var buffered: Int { buffer.count - start }

    public mutating func next() -> Event? {
        while scanned < buffer.count {
            if buffer[scanned] == UInt8(ascii: "\n") {
                let end = scanned
                scanned += 1
                defer { start = scanned }
                if discarding { discarding = false; return .lineTooLong }
                if end + 1 - start > maxLine { return .lineTooLong }
                var line = Array(buffer[start..<end])
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return .line(line)
            }
            scanned += 1
            if scanned - start > maxLine {
                // Over the limit before its end: drop what is held and the rest up to the LF.
                discarding = true
                start = scanned
            } else if discarding {
                start = scanned
            }
        }
        return nil
    }
}
