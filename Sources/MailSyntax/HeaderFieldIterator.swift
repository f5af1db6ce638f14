// Iterates the fields of an RFC 5322 header section in a byte buffer: each field's name, raw
// (still folded) value and byte offsets, up to the empty line. Reads only [from, to); linear.
//
//     header-section = *field CRLF              (RFC 5322 §2.1, §3.5)
//     field          = field-name ":" unstructured CRLF      ; §2.2
//     folding        = CRLF 1*WSP                             ; §2.2.3: the field continues
//     field-name     = 1*ftext                  ; §3.6.8; obs: WSP before ":" (§4.5)
//
// Tolerated as mail really is: lines ending in a bare LF, and lines that are no field (no colon,
// or a name outside ftext, or a continuation with nothing before it), which are returned as
// malformed so each caller keeps its own policy for them.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One field (or one malformed line) with its continuation lines. Offsets index the buffer.
public struct HeaderField: Sendable, Equatable {
    /// First byte of the field's first line.
    public var start: Int
    /// End of the field name, WSP before the colon excluded (== `start` for a malformed line).
    public var nameEnd: Int
    /// The colon; nil for a malformed line.
    public var colon: Int?
    /// End of the value: the last line's content, its line ending excluded. The value is
    /// `colon + 1 ..< valueEnd`, folds (CRLF / LF and the WSP after) included.
    public var valueEnd: Int
    /// The first line's LF, or the end of the input when it has none.
    public var firstLineEnd: Int
    /// Just past the last line ending: where the next field or the empty line starts.
    public var end: Int
    /// More than one line.
    public var isFolded: Bool

    public var isMalformed: Bool { colon == nil }

    /// The same field with every offset moved by `delta` (the buffer's start moved).
    public func shifted(by delta: Int) -> HeaderField {
        HeaderField(start: start + delta, nameEnd: nameEnd + delta, colon: colon.map { $0 + delta }, valueEnd: valueEnd + delta,
                    firstLineEnd: firstLineEnd + delta, end: end + delta, isFolded: isFolded)
    }
    public var name: Range<Int> { start..<nameEnd }
    public var value: Range<Int> { (colon.map { $0 + 1 } ?? start)..<valueEnd }
}

/// Why the iteration stopped.
public enum HeaderSectionEnd: Sendable, Equatable {
    /// The empty line (CRLF or a bare LF); the body starts at `bodyStart`.
    case emptyLine(bodyStart: Int)
    /// The input ended without an empty line (a lone CR at the very end counts as no line).
    case endOfInput
    /// Only when not `complete`: the next field cannot be told complete yet. Feed more bytes
    /// and start again at `position`.
    case needMoreBytes
}

public struct HeaderFieldIterator: IteratorProtocol {
    private let bytes: UnsafeRawBufferPointer
    private let limit: Int
    private let complete: Bool
    /// Start of the next field (or of the empty line).
    public private(set) var position: Int
    /// Set once `next()` has returned nil.
    public private(set) var end: HeaderSectionEnd?
    /// With `.needMoreBytes` in the middle of a folded field: the field as far as it is known
    /// (whole lines only), to pass as `resuming` once more bytes came, so that they are read
    /// once and not again from the field's start.
    public private(set) var partial: HeaderField?
    private var resume: HeaderField?

    /// Iterates `bytes[from..<to]` (`to` defaults to the end: that is the bound). With
    /// `complete` false the input may continue, so a field is returned only once the first byte
    /// after its last line shows it is not folded further.
    ///
    /// `resuming`: a `partial` field from an earlier, shorter view of the same bytes (same
    /// offsets); iteration goes on from its last line instead of from `from`.
    public init(_ bytes: UnsafeRawBufferPointer, from: Int = 0, to: Int? = nil, complete: Bool = true,
                resuming: HeaderField? = nil) {
        self.bytes = bytes
        self.limit = min(to ?? bytes.count, bytes.count)
        self.complete = complete
        if let r = resuming, r.start >= 0, r.end <= limit {
            resume = r
            position = r.start
        } else {
            position = min(max(from, 0), limit)
        }
    }

    @inline(__always) private func lf(from i: Int) -> Int? {
        guard i < limit, let base = bytes.baseAddress, let p = memchr(base + i, Int32(ASCII.lf), limit - i) else { return nil }
        return base.distance(to: UnsafeRawPointer(p))
    }

    /// End of the line content starting at `ls` whose LF (or input end) is at `e`: one CR dropped.
    @inline(__always) private func contentEnd(_ ls: Int, _ e: Int) -> Int {
        e > ls && bytes[e - 1] == ASCII.cr ? e - 1 : e
    }

    public mutating func next() -> HeaderField? {
        guard end == nil else { return nil }
        if let r = resume {
            resume = nil
            return continuation(of: r)
        }
        let ls = position
        guard ls < limit else {
            end = complete ? .endOfInput : .needMoreBytes
            return nil
        }
        let firstLF = lf(from: ls)
        if firstLF == nil && !complete { end = .needMoreBytes; return nil }
        let le = contentEnd(ls, firstLF ?? limit)
        if le == ls {
            if let firstLF {
                position = firstLF + 1
                end = .emptyLine(bodyStart: firstLF + 1)
            } else {
                end = .endOfInput          // a lone CR at the end of the input
            }
            return nil
        }
        var field = HeaderField(start: ls, nameEnd: ls, colon: nil, valueEnd: le,
                                firstLineEnd: firstLF ?? limit, end: firstLF.map { $0 + 1 } ?? limit, isFolded: false)
        if let (nameEnd, colon) = Self.fieldName(bytes, lineStart: ls, lineEnd: le) {
            field.nameEnd = nameEnd
            field.colon = colon
        }
        return continuation(of: field)
    }

    /// `field` (its first line read) with the lines that continue it.
    private mutating func continuation(of first: HeaderField) -> HeaderField? {
        var field = first
        // RFC 5322 §2.2.3: a line starting with WSP continues the field.
        while field.end < limit || !complete {
            guard field.end < limit else { end = .needMoreBytes; partial = field; return nil }
            guard ASCII.isWSP(bytes[field.end]) else { break }
            let next = lf(from: field.end)
            if next == nil && !complete { end = .needMoreBytes; partial = field; return nil }
            field.valueEnd = contentEnd(field.end, next ?? limit)
            field.end = next.map { $0 + 1 } ?? limit
            field.isFolded = true
        }
        position = field.end
        return field
    }

    /// The field name of the line `[lineStart, lineEnd)`: (end of name, colon), or nil when the
    /// line is no "field-name [WSP] ':'" line (RFC 5322 §3.6.8, obs-optional WSP §4.5).
    public static func fieldName(_ bytes: UnsafeRawBufferPointer, lineStart: Int, lineEnd: Int) -> (nameEnd: Int, colon: Int)? {
        guard lineStart < lineEnd, let base = bytes.baseAddress,
              let p = memchr(base + lineStart, Int32(ASCII.colon), lineEnd - lineStart) else { return nil }
        let colon = base.distance(to: UnsafeRawPointer(p))
        var ne = colon
        while ne > lineStart && ASCII.isWSP(bytes[ne - 1]) { ne -= 1 }
        guard ne > lineStart else { return nil }
        for i in lineStart..<ne where !ASCII.isFtext(bytes[i]) { return nil }
        return (ne, colon)
    }

    /// Whether the name of `field` equals `lowercased` ASCII, ignoring case (RFC 5322 §1.2.2).
    public static func nameEquals(_ bytes: UnsafeRawBufferPointer, _ field: HeaderField, _ lowercased: [UInt8]) -> Bool {
        guard !field.isMalformed, field.nameEnd - field.start == lowercased.count else { return false }
        for (k, c) in lowercased.enumerated() where ASCII.lower(bytes[field.start + k]) != c { return false }
        return true
    }
}
