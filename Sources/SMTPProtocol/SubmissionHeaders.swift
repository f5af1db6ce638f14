// Header fix-ups for message submission (RFC 6409 §8.2, §8.3): find the end of the header
// section (RFC 5322 §2.1) and whether Message-ID and Date are present, and build the lines to
// prepend when they are missing. Pure; one pass over the bytes, fed whole or in pieces.
import Foundation
import MailSyntax

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
/// The fields come from MailSyntax's `HeaderFieldIterator`. Lines may end in CRLF or a bare
/// LF; a line starting with SP/HTAB continues the previous field, so a folded " Date: x" is
/// never taken for a Date field. Only the first `maxHeaderBytes` bytes are looked at, and only
/// the field not yet complete is kept between feeds.
public struct HeaderScanner: Sendable {
    public private(set) var result = MessageHeaderScan()
    public private(set) var isDone = false
    /// Bytes from the start of the field not yet known complete.
    private var pending: [UInt8] = []
    /// Message offset of `pending[0]`.
    private var consumed = 0
    /// The folded field at the start of `pending`, as far as it was read.
    private var partial: HeaderField?
    private var sawLineEnd = false
    /// Scanning stops after this many bytes without an empty line.
    public let maxHeaderBytes: Int

    public init(maxHeaderBytes: Int = 1 << 20) {
        self.maxHeaderBytes = max(maxHeaderBytes, 0)
    }

    private static let messageID = Array("message-id".utf8)
    private static let date = Array("date".utf8)

    public mutating func feed<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        guard !isDone else { return }
        feed(Array(bytes))
    }

    /// The same for an array: a copy of its prefix, no byte-at-a-time walk of an unspecialised
    /// generic sequence from another module (smtpd's hottest path under load).
    public mutating func feed(_ bytes: [UInt8]) {
        guard !isDone else { return }
        let cap = max(maxHeaderBytes, 1)            // the first byte is always looked at
        let before = pending.count
        pending.append(contentsOf: bytes.prefix(cap - consumed - pending.count))
        guard pending.count > before else { return }
        let atCap = consumed + pending.count >= cap
        // A field can only complete once a line ends and the byte after it arrived.
        if atCap || pending[before...].contains(ASCII.lf) || (before > 0 && pending[before - 1] == ASCII.lf) {
            scan(complete: atCap)
        }
    }

    /// The message ended: a header section without an empty line ends here.
    public mutating func finish() {
        if !isDone { scan(complete: true) }
    }

    private mutating func scan(complete: Bool) {
        var found = (messageID: false, date: false)
        var firstLineBareLF: Bool?
        let (sawLineEnd, resuming) = (self.sawLineEnd, partial)
        let (end, position, partial) = pending.withUnsafeBytes { buf -> (HeaderSectionEnd?, Int, HeaderField?) in
            if !sawLineEnd, let lf = buf.firstIndex(of: ASCII.lf) {
                firstLineBareLF = lf == 0 || buf[lf - 1] != ASCII.cr
            }
            var fields = HeaderFieldIterator(buf, complete: complete, resuming: resuming)
            while let field = fields.next() {
                if HeaderFieldIterator.nameEquals(buf, field, Self.messageID) { found.messageID = true }
                if HeaderFieldIterator.nameEquals(buf, field, Self.date) { found.date = true }
            }
            return (fields.end, fields.position, fields.partial)
        }
        self.partial = partial?.shifted(by: -position)
        if let bare = firstLineBareLF {
            self.sawLineEnd = true
            result.usesBareLF = bare
        }
        if found.messageID { result.hasMessageID = true }
        if found.date { result.hasDate = true }
        switch end {
        case .emptyLine(let bodyStart)?:
            result.headerEnd = consumed + bodyStart
            isDone = true
        case .needMoreBytes? where !complete:
            pending.removeFirst(position)
            consumed += position
        default:
            isDone = true
        }
        if isDone { pending = [] }
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
