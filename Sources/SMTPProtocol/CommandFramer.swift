// Framing stage for command mode: splits input into command lines (RFC 5321 §2.3.8),
// enforcing maxCommandLine without ever buffering more than that for one line. AUTH
// command lines and SASL continuation lines get the larger `authMaxLine` (RFC 4954 §4).

struct CommandFramer: Sendable {
    enum Frame: Equatable {
        /// A complete line; `range` excludes the CRLF (or the bare LF).
        case line(Range<Int>, bareLF: Bool)
        /// A line longer than the limit ended; its bytes were discarded. RFC 5321 §4.5.3.1.4.
        case tooLong
        /// No complete line yet.
        case needMore
    }

    /// Longest command line including CRLF.
    let maxLine: Int
    /// Longest AUTH line / SASL continuation line including CRLF; nil when AUTH is off.
    let authMaxLine: Int?
    /// Inside an over-long line: drop bytes until its LF.
    private(set) var discarding = false

    init(maxLine: Int, authMaxLine: Int? = nil) {
        let base = max(maxLine, 3)
        self.maxLine = base
        self.authMaxLine = authMaxLine.map { max($0, base) }
    }

    private static let authPrefix: [UInt8] = Array("auth ".utf8)

    /// The limit for the line starting at `p[start]`: `authMaxLine` for a SASL continuation
    /// and for lines starting "AUTH " (case-insensitive; a shorter partial line that could
    /// still become one counts too), else `maxLine`. Depends only on the line's own bytes,
    /// so the result never depends on how the input was split.
    private func limit(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, continuation: Bool) -> Int {
        guard let authMax = authMaxLine else { return maxLine }
        if continuation { return authMax }
        let n = min(p.count - start, Self.authPrefix.count)
        for k in 0..<n where ASCII.lower(p[start + k]) != Self.authPrefix[k] {
            return maxLine
        }
        return authMax
    }

    /// Looks for the next line in `p[start...]`. Returns the frame and the index of the first
    /// byte not consumed. For `.needMore` the partial line is left unconsumed (so the caller
    /// keeps it) unless it is already over the limit, in which case it is consumed and
    /// dropped and the framer remembers to skip the rest of the line. `continuation`: the
    /// line is a SASL response (RFC 4954 §4).
    mutating func next(_ p: UnsafeBufferPointer<UInt8>, from start: Int, continuation: Bool = false) -> (Frame, Int) {
        let n = p.count
        var j = start
        while j < n, p[j] != ASCII.lf { j &+= 1 }
        if discarding {
            if j == n { return (.needMore, n) }
            discarding = false
            return (.tooLong, j + 1)
        }
        let maxLine = limit(p, start, continuation: continuation)
        if j == n {
            if n - start >= maxLine {
                // Even a LF as the very next byte would make the line too long.
                discarding = true
                return (.needMore, n)
            }
            return (.needMore, start)
        }
        if j + 1 - start > maxLine {
            return (.tooLong, j + 1)
        }
        let hasCR = j > start && p[j - 1] == ASCII.cr
        return (.line(start..<(hasCR ? j - 1 : j), bareLF: !hasCR), j + 1)
    }

    /// Forgets a partially discarded over-long line (after STARTTLS drops the input).
    mutating func reset() {
        discarding = false
    }
}
