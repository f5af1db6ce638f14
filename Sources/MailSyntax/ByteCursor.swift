// A read position over a byte array for hand-written grammars: peek, take, case-insensitive
// literals. Never reads outside [pos, end); never allocates except in `string`.

public struct ByteCursor: Sendable {
    public let bytes: [UInt8]
    public var pos: Int
    public let end: Int

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.pos = start
        self.end = end ?? bytes.count
    }

    public var atEnd: Bool { pos >= end }
    public var remaining: Int { end - pos }
    public func peek(_ offset: Int = 0) -> UInt8? { pos + offset < end ? bytes[pos + offset] : nil }

    public mutating func take(_ byte: UInt8) -> Bool {
        if pos < end, bytes[pos] == byte { pos += 1; return true }
        return false
    }

    /// Consumes `literal` (ASCII, compared case-insensitively) if it is next.
    public mutating func takeCaseInsensitive(_ literal: String) -> Bool {
        let utf8 = literal.utf8
        guard remaining >= utf8.count else { return false }
        var i = pos
        for expected in utf8 {
            if ASCII.lower(bytes[i]) != ASCII.lower(expected) { return false }
            i += 1
        }
        pos = i
        return true
    }

    /// Skips SP and HTAB.
    public mutating func skipSpaces() {
        while pos < end, ASCII.isWSP(bytes[pos]) { pos += 1 }
    }

    public func string(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
}
