// The multi-line writer for RETR and TOP (RFC 1939 §3): streams a message's stored bytes in
// chunks, doubling a "." that starts a line, and ends with CRLF "." CRLF. For TOP it passes the
// header whole and then at most `bodyLines` lines of the body. Holds no more than one chunk.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Appends `chunk` dot-stuffed to `out`. Not generic (a cross-module generic would run
    /// unspecialised, per byte): RETR's bytes go through here.
    public mutating func feed(_ chunk: [UInt8], into out: inout [UInt8]) { feed(chunk[...], into: &out) }

    public mutating func feed(_ chunk: ArraySlice<UInt8>, into out: inout [UInt8]) {
        if linesLeft == nil && headerLeft == 0 {
            chunk.withUnsafeBytes { raw in feed(raw) { out.append(contentsOf: $0) } }
            return
        }
        var i = chunk.startIndex
        let end = chunk.endIndex
        while i < end && !done {
            if headerLeft == 0, let left = linesLeft {
                if left == 0 && atLineStart { done = true; return }
                // TOP's body: one line at a time, counted.
                guard let nl = chunk[i..<end].firstIndex(of: UInt8(ascii: "\n")) else {
                    append(chunk[i..<end], to: &out); return
                }
                append(chunk[i...nl], to: &out)
                linesLeft = left - 1
                i = nl + 1
                continue
            }
            // RETR, or TOP's header: runs up to the next LF (and the header's end) in bulk.
            var stop = end
            if headerLeft > 0 { stop = min(end, i + headerLeft) }
            let nl = chunk[i..<stop].firstIndex(of: UInt8(ascii: "\n"))
            let runEnd = nl.map { $0 + 1 } ?? stop
            append(chunk[i..<runEnd], to: &out)
            if headerLeft > 0 { headerLeft -= runEnd - i }
            i = runEnd
        }
    }

    /// RETR's bulk path: `chunk` dot-stuffed, handed to `emit` in runs, in order — the stored
    /// bytes up to each "." that starts a line, then that line's extra "." — the dots found with
    /// memchr and each checked for a line end before it: a body with few dots (base64, most
    /// bytes of mail) is one call, prose about one per sentence. TOP's line counting goes the slow way.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        guard linesLeft == nil && headerLeft == 0 else {
            var out: [UInt8] = []
            feed(Array(chunk)[...], into: &out)
            return out.withUnsafeBytes(emit)
        }
        guard let base = chunk.baseAddress, chunk.count > 0 else { return }
        let n = chunk.count
        var i = 0, from = 0
        withUnsafeBytes(of: Self.dot) { dot in
            while from < n, let hit = memchr(base + from, Int32(Self.dot), n - from) {
                let at = base.distance(to: UnsafeRawPointer(hit))
                from = at + 1
                // A line starts here: at a line end in this chunk, or the last one's.
                guard at == 0 ? atLineStart : chunk[at - 1] == UInt8(ascii: "\n") else { continue }
                if at > i { emit(UnsafeRawBufferPointer(start: base + i, count: at - i)) }
                emit(dot)
                i = at
            }
        }
        emit(UnsafeRawBufferPointer(start: base + i, count: n - i))
        atLineStart = chunk[n - 1] == UInt8(ascii: "\n")
    }

    static let dot = UInt8(ascii: ".")

    /// Appends a run that holds at most one LF, at its end; doubles a leading ".".
    private mutating func append(_ run: ArraySlice<UInt8>, to out: inout [UInt8]) {
        guard let first = run.first else { return }
        if atLineStart && first == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
        out.append(contentsOf: run)
        atLineStart = run.last == UInt8(ascii: "\n")
    }

    /// The end: CRLF if the message did not end with one, then ".\r\n".
    public mutating func finish(into out: inout [UInt8]) {
        out += trailer
        atLineStart = true
    }

    /// What `finish` appends.
    public var trailer: [UInt8] { atLineStart ? Self.end : Self.crlfEnd }
    static let end: [UInt8] = Array(".\r\n".utf8)
    static let crlfEnd: [UInt8] = Array("\r\n.\r\n".utf8)
}
