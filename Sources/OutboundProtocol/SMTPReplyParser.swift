// Incremental parser of SMTP server replies (RFC 5321 §4.2) for the outbound client: bytes in,
// complete `SMTPReply` values out, enhanced status codes (RFC 3463, RFC 2034) split from the
// text. Every buffer is bounded by `Limits`; a malformed reply is an error that ends the parse.
import MailSyntax
import SMTPProtocol

public struct SMTPReplyParser: Sendable {
    /// Named limits. A server that exceeds one is treated as broken, never buffered without bound.
    public struct Limits: Sendable, Equatable {
        /// Longest reply line including CRLF. RFC 5321 §4.5.3.1.5 says 512; real servers send
        /// longer texts, so the default allows more, like Postfix's `line_length_limit`.
        public var maxLineLength: Int
        /// Most lines in one multi-line reply (an EHLO reply lists one keyword a line).
        public var maxLines: Int

        public init(maxLineLength: Int = 2048, maxLines: Int = 100) {
            self.maxLineLength = maxLineLength
            self.maxLines = maxLines
        }
    }

    public enum Error: Swift.Error, Sendable, Equatable {
        /// A line longer than `maxLineLength` (or one that never ends).
        case lineTooLong
        /// More than `maxLines` lines in one reply.
        case tooManyLines
        /// The line is not Reply-code [ ("-" / SP) textstring ]; the bytes of the line, lossily decoded.
        case malformed(String)
        /// A continuation line carries another code than the first line (RFC 5321 §4.2.1).
        case inconsistentCode(first: Int, then: Int)
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0
    private var pendingCode: Int?
    private var pendingEnhanced: String?
    private var pendingLines: [String] = []
    /// Set once a parse failed: the connection is unusable and every later call fails alike.
    public private(set) var failure: Error?

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Bytes received but not yet part of a returned reply.
    public var bufferedCount: Int { buffer.count - start }
    /// True when no partial reply or line is held (e.g. right after the 220 to STARTTLS, so
    /// no plaintext byte can be mistaken for a reply under TLS; RFC 3207 §4.2).
    public var isEmpty: Bool { bufferedCount == 0 && pendingCode == nil }

    public mutating func append<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        guard failure == nil else { return }
        buffer.append(contentsOf: bytes)
    }

    /// Drops everything held (after a STARTTLS 220: later plaintext must never count).
    public mutating func reset() {
        buffer = []
        start = 0
        pendingCode = nil
        pendingEnhanced = nil
        pendingLines = []
    }

    /// The next complete reply, nil when more bytes are needed.
    ///
    ///     Reply-line = *( Reply-code "-" [ textstring ] CRLF )
    ///                  Reply-code [ SP textstring ] CRLF          ; RFC 5321 §4.2
    ///     Reply-code = %x32-35 %x30-35 %x30-39
    ///
    /// A bare LF also ends a line (Postfix's client accepts it too); a CR before the LF is dropped.
    public mutating func next() throws(Error) -> SMTPReply? {
        if let failure { throw failure }
        while true {
            guard let lf = buffer[start...].firstIndex(of: ASCII.lf) else {
                if buffer.count - start >= limits.maxLineLength { try fail(.lineTooLong) }
                compact()
                return nil
            }
            if lf + 1 - start > limits.maxLineLength { try fail(.lineTooLong) }
            var end = lf
            if end > start, buffer[end - 1] == ASCII.cr { end -= 1 }
            let line = buffer[start..<end]
            start = lf + 1
            if let reply = try take(line) {
                compact()
                return reply
            }
        }
    }

    /// All complete replies now buffered.
    public mutating func replies() throws(Error) -> [SMTPReply] {
        var out: [SMTPReply] = []
        while let reply = try next() { out.append(reply) }
        return out
    }

    private mutating func fail(_ error: Error) throws(Error) -> Never {
        failure = error
        buffer = []
        start = 0
        throw error
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096 {
            buffer.removeFirst(start)
            start = 0
        }
    }

    /// One line; returns the reply when it was the last line.
    private mutating func take(_ line: ArraySlice<UInt8>) throws(Error) -> SMTPReply? {
        let b = Array(line)
        guard b.count >= 3, (0x32...0x35).contains(b[0]), (0x30...0x35).contains(b[1]), ASCII.isDigit(b[2]),
              b.count == 3 || b[3] == ASCII.space || b[3] == ASCII.dash else {
            try fail(.malformed(String(decoding: b.prefix(80), as: UTF8.self)))
        }
        let code = Int(b[0] - 0x30) * 100 + Int(b[1] - 0x30) * 10 + Int(b[2] - 0x30)
        if let first = pendingCode, first != code { try fail(.inconsistentCode(first: first, then: code)) }
        let last = b.count == 3 || b[3] == ASCII.space
        var text = b.count > 4 ? String(decoding: b[4...], as: UTF8.self) : ""
        let enhanced = Self.splitEnhanced(&text, code: code)
        if pendingCode == nil {
            pendingCode = code
            pendingEnhanced = enhanced
        }
        pendingLines.append(text)
        guard pendingLines.count <= limits.maxLines else { try fail(.tooManyLines) }
        guard last else { return nil }
        let reply = SMTPReply(code: code, enhanced: pendingEnhanced, lines: pendingLines)
        pendingCode = nil
        pendingEnhanced = nil
        pendingLines = []
        return reply
    }

    /// Removes a leading enhanced status code from `text` and returns it.
    ///
    ///     status-code = class "." subject "." detail      ; RFC 3463 §2
    ///     class = "2" / "4" / "5"; subject = 1*3digit; detail = 1*3digit
    ///
    /// Only when its class matches the reply's first digit (RFC 2034 §3); 1xx/3xx replies carry none.
    static func splitEnhanced(_ text: inout String, code: Int) -> String? {
        let cls = code / 100
        guard cls == 2 || cls == 4 || cls == 5 else { return nil }
        let bytes = Array(text.utf8)
        guard let first = bytes.first, Int(first) - 0x30 == cls, bytes.count >= 5, bytes[1] == ASCII.dot else { return nil }
        var i = 2
        for part in 0..<2 {
            let digitsStart = i
            while i < bytes.count, ASCII.isDigit(bytes[i]), i - digitsStart < 3 { i += 1 }
            guard i > digitsStart else { return nil }
            if part == 0 {
                guard i < bytes.count, bytes[i] == ASCII.dot else { return nil }
                i += 1
            }
        }
        guard i == bytes.count || bytes[i] == ASCII.space else { return nil }
        let status = String(decoding: bytes[..<i], as: UTF8.self)
        text = i < bytes.count ? String(decoding: bytes[(i + 1)...], as: UTF8.self) : ""
        return status
    }
}
