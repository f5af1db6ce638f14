// Framing stage for DATA: dot-unstuffing and end detection (RFC 5321 §4.5.2, §4.1.1.4),
// bare CR/LF policy, size and text-line limits. Only a real CRLF "." CRLF ends a message.
//
// The scanner is a byte-level state machine whose state survives across input pieces, so
// feeding a body in one piece or one byte at a time produces the same chunks. Ordinary text
// is scanned with a tight loop over an UnsafeBufferPointer and copied a line (or a whole
// buffer) at a time into fixed-size chunks.

/// Why a message is being discarded; decides the reply after the final dot.
enum DataAbortReason: Sendable, Equatable {
    case tooBig          // 552 5.3.4, RFC 1870 §6
    case bareLinefeed    // 550 5.5.2, policy .reject
    case lineTooLong     // 500 5.5.2, RFC 5321 §4.5.3.1.6 / §4.5.3.1.10
    case abandoned       // the session ended mid-message (timeout)

    var reply: SMTPReply {
        switch self {
        case .tooBig: return .messageTooBig
        case .bareLinefeed: return .bareLinefeed
        case .lineTooLong: return .lineTooLong
        case .abandoned: return .localError
        }
    }
}

struct DataReader: Sendable {
    /// Where the scanner is. "Soft" line starts follow a bare LF or bare CR: for content they
    /// count as line starts (dot-unstuffing still applies), but "." CRLF there is ordinary
    /// content, never the end of the message — that is what defeats SMTP smuggling via
    /// `\n.\n`, `\n.\r\n` and `\r.\r\n`.
    enum State: UInt8, Sendable {
        case lineStart        // after CRLF, or at the start of DATA
        case lineStartSoft    // after a bare LF / bare CR
        case dot              // "." at a line start
        case dotSoft          // "." at a soft line start
        case dotCR            // "." CR at a line start: LF ends the message
        case dotCRSoft        // "." CR at a soft line start
        case text             // inside a line
        case textCR           // CR inside a line, LF not seen yet
    }

    private(set) var state: State = .lineStart
    /// Wire bytes of the current line so far, excluding its line end.
    private var lineLength = 0
    private var body: BodyChunker
    /// Body bytes delivered so far (after unstuffing and normalization).
    var size: Int { body.size }
    var abortReason: DataAbortReason? { body.abortReason }

    let policy: BareLinefeedPolicy
    let maxSize: Int
    /// Longest line content allowed (maxTextLine minus CRLF), or Int.max.
    let maxLineContent: Int

    init(limits: SMTPLimits, policy: BareLinefeedPolicy) {
        self.policy = policy
        self.maxSize = max(limits.maxMessageSize, 0)
        self.maxLineContent = limits.enforcesTextLine ? max(limits.maxTextLine - 2, 0) : Int.max
        self.body = BodyChunker(chunkSize: limits.messageChunkSize)
    }

    private static let crlf: [UInt8] = [ASCII.cr, ASCII.lf]
    private static let dotByte: [UInt8] = [UInt8(ascii: ".")]
    private static let dotCRLF: [UInt8] = [UInt8(ascii: "."), ASCII.cr, ASCII.lf]

    /// Consumes `p[start...]` until the end of the message or of the input. Returns the
    /// index of the first unconsumed byte and whether the final CRLF "." CRLF was seen.
    /// Appends `messageChunk` (full chunks only) and at most one `abortMessage` to `actions`.
    mutating func consume(_ p: UnsafeBufferPointer<UInt8>, from start: Int, actions: inout [SMTPAction]) -> (next: Int, ended: Bool) {
        let n = p.count
        var i = start
        while i < n {
            switch state {
            case .text:
                // Fast path: run to the next CR or LF.
                var j = i
                while j < n {
                    let b = p[j]
                    if b <= ASCII.cr, b == ASCII.cr || b == ASCII.lf { break }
                    j &+= 1
                }
                if j > i {
                    let newLength = lineLength &+ (j &- i)
                    if newLength > maxLineContent, abortReason == nil {
                        // Hand out exactly the bytes before the first one over the limit, so
                        // the actions do not depend on how the input was split.
                        emit(p, i, i + max(maxLineContent - lineLength, 0), &actions)
                        fail(.lineTooLong, &actions)
                    }
                    lineLength = newLength
                }
                if j == n {
                    emit(p, i, n, &actions)
                    return (n, false)
                }
                if p[j] == ASCII.cr {
                    if j + 1 < n {
                        if p[j + 1] == ASCII.lf {
                            emit(p, i, j + 2, &actions)      // the line and its CRLF in one copy
                            state = .lineStart
                            i = j + 2
                        } else {
                            emit(p, i, j, &actions)
                            bareNewline(&actions)           // bare CR inside a line
                            state = .lineStartSoft
                            i = j + 1
                        }
                    } else {
                        emit(p, i, j, &actions)
                        state = .textCR                     // CR is the last byte: decide later
                        i = j + 1
                    }
                } else {
                    emit(p, i, j, &actions)
                    bareNewline(&actions)                   // bare LF
                    state = .lineStartSoft
                    i = j + 1
                }

            case .textCR:
                if p[i] == ASCII.lf {
                    emitConstant(Self.crlf, &actions)
                    state = .lineStart
                    i += 1
                } else {
                    bareNewline(&actions)                   // bare CR; p[i] starts a soft line
                    state = .lineStartSoft
                }

            case .lineStart, .lineStartSoft:
                lineLength = 0
                if p[i] == UInt8(ascii: ".") {
                    state = state == .lineStart ? .dot : .dotSoft
                    lineLength = 1
                    i += 1
                } else {
                    state = .text
                }

            case .dot, .dotSoft:
                let b = p[i]
                if b == ASCII.cr {
                    state = state == .dot ? .dotCR : .dotCRSoft
                    i += 1
                } else if b == ASCII.lf {
                    // "." + bare LF: content, never the end.
                    emitConstant(Self.dotByte, &actions)
                    bareNewline(&actions)
                    state = .lineStartSoft
                    i += 1
                } else {
                    // RFC 5321 §4.5.2: a line starting with "." and other characters loses the
                    // first "." (so ".." becomes "."); `b` is then ordinary text.
                    state = .text
                }

            case .dotCR, .dotCRSoft:
                if p[i] == ASCII.lf {
                    i += 1
                    if state == .dotCR {
                        // CRLF "." CRLF: end of mail data. The CRLF before the "." belongs to the body.
                        state = .lineStart
                        return (i, true)
                    }
                    emitConstant(Self.dotCRLF, &actions)     // "." CRLF after a bare LF/CR: content
                    state = .lineStart
                } else {
                    emitConstant(Self.dotByte, &actions)     // "." + bare CR: content
                    bareNewline(&actions)
                    state = .lineStartSoft
                }
            }
        }
        return (n, false)
    }

    /// Called after `consume` reported the end: emits the last chunk and `endMessage`, or
    /// returns why the message was refused (the glue already got `abortMessage`).
    mutating func finish(actions: inout [SMTPAction]) -> DataAbortReason? {
        body.finish(actions: &actions)
    }

    /// The session is dropped mid-message (timeout): make sure the glue discards the body.
    mutating func abandon(actions: inout [SMTPAction]) {
        fail(.abandoned, &actions)
    }

    // MARK: - Output

    /// A bare LF or bare CR ended a line: refuse the message or write CRLF instead.
    @inline(__always)
    private mutating func bareNewline(_ actions: inout [SMTPAction]) {
        if policy == .reject {
            fail(.bareLinefeed, &actions)
        } else {
            emitConstant(Self.crlf, &actions)
        }
    }

    private mutating func fail(_ reason: DataAbortReason, _ actions: inout [SMTPAction]) {
        body.refuse(reason, announce: true, &actions)
    }

    private mutating func emitConstant(_ bytes: [UInt8], _ actions: inout [SMTPAction]) {
        guard abortReason == nil else { return }
        bytes.withUnsafeBufferPointer { emit($0, 0, $0.count, &actions) }
    }

    /// Appends `p[from..<to]` to the body, cutting chunks at exact `chunkSize` boundaries.
    @inline(__always)
    private mutating func emit(_ p: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, _ actions: inout [SMTPAction]) {
        guard abortReason == nil, to > from else { return }
        var to = to
        var tooBig = false
        if to &- from > maxSize &- size {
            to = from &+ (maxSize &- size)     // what still fits; then refuse (see lineTooLong)
            tooBig = true
        }
        body.append(p, from, to, &actions)
        if tooBig { fail(.tooBig, &actions) }
    }
}
