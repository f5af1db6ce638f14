// Header fix-ups for message submission (RFC 6409 §8.2, §8.3): find the end of the header
// section (RFC 5322 §2.1) and whether Message-ID and Date are present, and build the lines to
// prepend when they are missing. Pure; one pass over the bytes, fed whole or in pieces.
import Foundation

/// What `HeaderScanner` found in a message's header section.
public struct MessageHeaderScan: Sendable, Equatable {
    /// Offset of the first body byte, just past the empty line that ends the header section;
    /// nil if no empty line was seen (a message without body, or more than `maxHeaderBytes`
    /// of header).
    public var headerEnd: Int?
    /// A `Message-ID:` field is present (RFC 5322 §3.6.4; `Resent-Message-ID` does not count).
    public var hasMessageID: Bool
    /// A `Date:` field is present (RFC 5322 §3.6.1; `Resent-Date` does not count).
    public var hasDate: Bool
    /// The first line ended in a bare LF: lines added should end in LF too.
    public var usesBareLF: Bool

    public init(headerEnd: Int? = nil, hasMessageID: Bool = false, hasDate: Bool = false, usesBareLF: Bool = false) {
        self.headerEnd = headerEnd
        self.hasMessageID = hasMessageID
        self.hasDate = hasDate
        self.usesBareLF = usesBareLF
    }
}

/// Incremental scanner of the header section. Feed the message (e.g. each `messageChunk`)
/// until `isDone`; call `finish()` at the end of the message.
///
///     header-section = *field CRLF body       (RFC 5322 §2.1, §3.5)
///     field          = field-name ":" unstructured CRLF *(WSP text CRLF)   ; folded
///     field-name     = 1*ftext                 ; obs: WSP allowed before ":" (§4.5)
///
/// Lines may end in CRLF or a bare LF; a line starting with SP/HTAB continues the previous
/// field, so a folded " Date: x" is never taken for a Date field.
public struct HeaderScanner: Sendable {
    private enum State: Sendable {
        case lineStart
        case name              // reading a field name
        case value             // after the colon, or in a continuation / malformed line
        case valueCR           // CR inside a line
        case blankCR           // CR at the start of a line
        case done
    }

    public private(set) var result = MessageHeaderScan()
    private var state: State = .lineStart
    private var offset = 0
    private var name: [UInt8] = []
    private var sawLineEnd = false
    /// Scanning stops after this many bytes without an empty line.
    public let maxHeaderBytes: Int

    public init(maxHeaderBytes: Int = 1 << 20) {
        self.maxHeaderBytes = max(maxHeaderBytes, 0)
    }

    /// The empty line was found, or `maxHeaderBytes` were scanned, or `finish` was called.
    public var isDone: Bool { if case .done = state { return true } else { return false } }

    private static let messageID = Array("message-id".utf8)
    private static let date = Array("date".utf8)

    public mutating func feed<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes {
            if isDone { return }
            step(b)
            offset += 1
            if !isDone, offset >= maxHeaderBytes { state = .done }
        }
    }

    /// The message ended: a header section without an empty line ends here.
    public mutating func finish() {
        state = .done          // a last line without colon is no field
    }

    private mutating func lineEnd(bareLF: Bool) {
        if !sawLineEnd {
            sawLineEnd = true
            result.usesBareLF = bareLF
        }
        state = .lineStart
    }

    private mutating func step(_ b: UInt8) {
        switch state {
        case .done:
            return
        case .lineStart:
            switch b {
            case ASCII.cr: state = .blankCR
            case ASCII.lf:
                if !sawLineEnd { result.usesBareLF = true; sawLineEnd = true }
                result.headerEnd = offset + 1
                state = .done
            case ASCII.space, ASCII.tab: state = .value          // folded continuation
            default:
                name = [b]
                state = .name
            }
        case .name:
            switch b {
            case UInt8(ascii: ":"):
                fieldName()
                state = .value
            case ASCII.cr: state = .valueCR                       // a line without colon
            case ASCII.lf: lineEnd(bareLF: true)
            default:
                if name.count <= 16 { name.append(b) }
            }
        case .value:
            if b == ASCII.cr { state = .valueCR } else if b == ASCII.lf { lineEnd(bareLF: true) }
        case .valueCR:
            if b == ASCII.lf {
                lineEnd(bareLF: false)
            } else {
                state = .value                                    // bare CR inside a line
                step(b)
            }
        case .blankCR:
            if b == ASCII.lf {
                if !sawLineEnd { sawLineEnd = true }
                result.headerEnd = offset + 1
                state = .done
            } else {
                state = .value                                    // bare CR at a line start
                step(b)
            }
        }
    }

    /// Evaluates the collected field name (WSP before the colon is obsolete but allowed).
    private mutating func fieldName() {
        while let last = name.last, last == ASCII.space || last == ASCII.tab { name.removeLast() }
        let lower = name.map(ASCII.lower)
        if lower == Self.messageID { result.hasMessageID = true }
        if lower == Self.date { result.hasDate = true }
        name = []
    }
}

/// Builders for the fields a submission server adds (RFC 6409 §8.2 Date, §8.3 Message-ID).
public enum SubmissionHeaders {
    /// Scans a whole message (or its first bytes; then pass `complete: false`).
    public static func scan<S: Sequence>(_ message: S, complete: Bool = true, maxHeaderBytes: Int = 1 << 20) -> MessageHeaderScan
    where S.Element == UInt8 {
        var scanner = HeaderScanner(maxHeaderBytes: maxHeaderBytes)
        scanner.feed(message)
        if complete { scanner.finish() }
        return scanner.result
    }

    /// "<time.random@hostname>" (RFC 5322 §3.6.4 msg-id with a dot-atom id-left).
    public static func messageID<R: RandomNumberGenerator>(hostname: String, date: Date, using rng: inout R) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var random: [UInt8] = []
        for _ in 0..<20 { random.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
        let seconds = max(Int64(date.timeIntervalSince1970.rounded(.down)), 0)
        var host = String(decoding: hostname.utf8.filter { ASCII.isLetDig($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") },
                          as: UTF8.self)
        while host.hasPrefix(".") { host.removeFirst() }
        while host.hasSuffix(".") { host.removeLast() }
        if host.isEmpty { host = "localhost" }
        return "<\(String(seconds, radix: 36)).\(String(decoding: random, as: UTF8.self))@\(host)>"
    }

    /// `Message-ID: <...>` CRLF (or LF).
    public static func messageIDLine<R: RandomNumberGenerator>(hostname: String, date: Date, bareLF: Bool = false,
                                                               using rng: inout R) -> [UInt8] {
        Array("Message-ID: \(messageID(hostname: hostname, date: date, using: &rng))\(bareLF ? "\n" : "\r\n")".utf8)
    }

    /// `Date: Tue, 1 Jul 2025 10:00:00 +0000` CRLF (or LF), RFC 5322 §3.3.
    public static func dateLine(_ date: Date, timeZone: TimeZone = TraceHeaders.utc, bareLF: Bool = false) -> [UInt8] {
        Array("Date: \(TraceHeaders.rfc5322Date(date, timeZone: timeZone))\(bareLF ? "\n" : "\r\n")".utf8)
    }

    /// The lines to prepend to a submitted message: Message-ID if missing, then Date if
    /// missing; empty if both are present. Line ends follow `scan.usesBareLF`.
    public static func missingHeaders<R: RandomNumberGenerator>(for scan: MessageHeaderScan, hostname: String, date: Date,
                                                                 timeZone: TimeZone = TraceHeaders.utc,
                                                                 using rng: inout R) -> [UInt8] {
        var out: [UInt8] = []
        if !scan.hasMessageID {
            out += messageIDLine(hostname: hostname, date: date, bareLF: scan.usesBareLF, using: &rng)
        }
        if !scan.hasDate {
            out += dateLine(date, timeZone: timeZone, bareLF: scan.usesBareLF)
        }
        return out
    }

    /// `missingHeaders` with the system random number generator.
    public static func missingHeaders(for scan: MessageHeaderScan, hostname: String, date: Date,
                                      timeZone: TimeZone = TraceHeaders.utc) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return missingHeaders(for: scan, hostname: hostname, date: date, timeZone: timeZone, using: &rng)
    }
}
