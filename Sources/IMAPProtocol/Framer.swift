// IMAPFramer: cuts the client's byte stream into command units (a line, with every literal
// it announces inline, RFC 9051 §4.3) and enforces the limits before buffering: it never holds
// more than one unit within IMAPLimits plus the bytes of one `feed` not yet asked for.
import MailSyntax

public struct IMAPFramer: Sendable {
    public enum Event: Sendable, Equatable {
        /// A complete unit exactly as on the wire — command line(s) with literal bytes inline,
        /// ending with CRLF (or a bare LF) — or a continuation line (AUTHENTICATE data, DONE).
        case unit([UInt8])
        /// A synchronizing literal of `size` bytes was announced and is within the limit: the
        /// glue sends a continuation request ("+ ") now.
        case continuationNeeded(size: Int)
        /// A synchronizing literal over its limit (refused before any byte is buffered): answer
        /// `tag NO [TOOBIG]`; the client sends no data, the rest of the command is dropped.
        case literalRefused(tag: String?, size: Int)
        /// A command line over the limit: skipped to its end; answer `tag BAD`.
        case lineTooLong(tag: String?)
        /// Unrecoverable (e.g. a non-synchronizing literal over the limit, RFC 7888 §4): the
        /// glue says BYE and closes.
        case fatal(tag: String?, reason: String)
    }

    public var limits: IMAPLimits

    /// Bytes received: `buffer[unitStart...]` are the current unit and what follows it.
    private var buffer: [UInt8] = []
    private var unitStart = 0
    /// Start of the current line (after the last literal's data) inside the unit.
    private var lineStart = 0
    /// Everything before `scanned` has been looked at (no LF in the current line before it).
    private var scanned = 0
    /// Literal bytes still to come before the line continues.
    private var literalLeft = 0
    /// Inside an over-long line: bytes are dropped up to its LF, then `.lineTooLong(tag)`.
    private var discarding = false
    private var discardTag: String? = nil
    /// After `.fatal` nothing more is framed.
    private var dead = false

    public init(limits: IMAPLimits = IMAPLimits()) { self.limits = limits }

    /// Adds bytes read from the client.
    public mutating func feed(_ bytes: [UInt8]) {
        guard !dead else { return }
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Drops everything buffered and any unit in progress (after STARTTLS: RFC 9051 §6.2.1,
    /// plaintext pipelined after the command must not be acted on).
    public mutating func reset() {
        self = IMAPFramer(limits: limits)
    }

    /// Takes the bytes buffered after the last unit returned and empties the framer (COMPRESS:
    /// what the client sent after the command is compressed, RFC 4978 §3). Call between units.
    public mutating func takeRemaining() -> [UInt8] {
        let rest = Array(buffer[unitStart...])
        self = IMAPFramer(limits: limits)
        return rest
    }

    /// Bytes buffered and not yet returned (the glue stops reading past a bound).
    public var buffered: Int { buffer.count - unitStart }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        while !dead {
            if literalLeft > 0 {
                let take = min(literalLeft, buffer.count - scanned)
                scanned += take
                literalLeft -= take
                if literalLeft > 0 { return nil }
                lineStart = scanned
                continue
            }
            guard let lf = findLF() else {
                if discarding {
                    buffer.removeSubrange(scanned...)      // drop what we have of the long line
                    return nil
                }
                scanned = buffer.count
                // maxCommand is checked at the line's end (a line within maxLine may still
                // turn out too long, and the events must not depend on how input was split).
                if scanned - lineStart > limits.maxLine { startDiscarding() }
                return nil
            }
            if discarding {
                discarding = false
                dropUnit(through: lf)
                return .lineTooLong(tag: discardTag)
            }
            if lf + 1 - lineStart > limits.maxLine {
                let tag = tagOfUnit()
                dropUnit(through: lf)
                return .lineTooLong(tag: tag)
            }
            if lf + 1 - unitStart > limits.maxCommand { return fail("command too large") }
            if let literal = literalAnnouncement(endingAt: lf) {
                let limit = isAppend() ? limits.maxAppend : limits.maxLiteral
                if literal.size > limit {
                    let tag = tagOfUnit()
                    if literal.synchronizing {
                        // RFC 9051 §4.3: the client waits for "+" and sends nothing on NO.
                        dropUnit(through: lf)
                        return .literalRefused(tag: tag, size: literal.size)
                    }
                    // RFC 7888 §4: the data is on its way and there is no way to skip it.
                    return fail("non-synchronizing literal of \(literal.size) bytes over the limit", tag: tag)
                }
                if lf + 1 - unitStart > limits.maxCommand - literal.size { return fail("command too large") }
                scanned = lf + 1
                lineStart = scanned
                literalLeft = literal.size
                if literal.synchronizing { return .continuationNeeded(size: literal.size) }
                continue
            }
            let unit = Array(buffer[unitStart...lf])
            unitStart = lf + 1
            lineStart = unitStart
            scanned = unitStart
            return .unit(unit)
        }
        return nil
    }

    // MARK: internals

    private func findLF() -> Int? {
        var i = scanned
        while i < buffer.count {
            if buffer[i] == ASCII.lf { return i }
            i += 1
        }
        return nil
    }

    private mutating func fail(_ reason: String, tag: String? = nil) -> Event {
        let tag = tag ?? tagOfUnit()
        dead = true
        buffer = []
        unitStart = 0; lineStart = 0; scanned = 0; literalLeft = 0
        return .fatal(tag: tag, reason: reason)
    }

    /// Enters "skip to the LF" mode for an over-long line, keeping only its tag.
    private mutating func startDiscarding() {
        discardTag = tagOfUnit()
        discarding = true
        buffer.removeSubrange(unitStart...)
        scanned = unitStart
        lineStart = unitStart
    }

    /// Forgets the current unit up to and including the byte at `index`.
    private mutating func dropUnit(through index: Int) {
        unitStart = index + 1
        lineStart = unitStart
        scanned = unitStart
        literalLeft = 0
    }

    /// Moves the unconsumed bytes to the front when enough has been consumed (amortised O(1)).
    private mutating func compact() {
        guard unitStart > 0 else { return }
        if unitStart == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.keptCapacity)
        } else if unitStart >= buffer.count / 2 || unitStart >= Self.keptCapacity {
            buffer.removeSubrange(..<unitStart)
        } else {
            return
        }
        scanned -= unitStart
        lineStart -= unitStart
        unitStart = 0
    }

    /// A buffer at most this large is kept allocated between units.
    private static let keptCapacity = 16 * 1024
    /// Longest tag worth reporting in an error reply.
    static let maxReportedTag = 64

    /// The unit's first token when it is a valid tag (RFC 9051 §9 `tag`) followed by SP.
    private func tagOfUnit() -> String? {
        var i = unitStart
        // The tag and its SP must lie within the first maxLine bytes, which are always
        // buffered when a line is cut — so the answer does not depend on how the line arrived.
        let end = min(buffer.count, unitStart + min(Self.maxReportedTag, limits.maxLine) + 1)
        while i < end, IMAPGrammar.isTagChar(buffer[i]) { i += 1 }
        guard i > unitStart, i < end, buffer[i] == ASCII.space else { return nil }
        return String(decoding: buffer[unitStart..<i], as: UTF8.self)
    }

    private static let appendWord: [UInt8] = Array("APPEND ".utf8)

    /// `tag SP "APPEND" SP`, case-insensitive: its literals get `maxAppend` (RFC 7889).
    private func isAppend() -> Bool {
        var i = unitStart
        while i < buffer.count, IMAPGrammar.isTagChar(buffer[i]) { i += 1 }
        guard i > unitStart, i < buffer.count, buffer[i] == ASCII.space else { return false }
        i += 1
        guard buffer.count - i >= Self.appendWord.count else { return false }
        for (k, expected) in Self.appendWord.enumerated() where ASCII.lower(buffer[i + k]) != ASCII.lower(expected) {
            return false
        }
        return true
    }

    /// `{n}`, `{n+}`, `~{n}`, `~{n+}` just before the line end at `lf` (RFC 9051 §4.3,
    /// RFC 7888 §4, RFC 3516 §4.2); nil when the line announces none or the number is not a
    /// plain decimal that fits an Int (the parser then answers BAD).
    private func literalAnnouncement(endingAt lf: Int) -> (size: Int, synchronizing: Bool)? {
        var i = lf
        if i > lineStart, buffer[i - 1] == ASCII.cr { i -= 1 }
        guard i > lineStart, buffer[i - 1] == IMAPGrammar.rbrace else { return nil }
        i -= 1
        var synchronizing = true
        if i > lineStart, buffer[i - 1] == IMAPGrammar.plus { synchronizing = false; i -= 1 }
        let digitsEnd = i
        while i > lineStart, ASCII.isDigit(buffer[i - 1]) { i -= 1 }
        guard i < digitsEnd, i > lineStart, buffer[i - 1] == IMAPGrammar.lbrace else { return nil }
        guard let size = IMAPGrammar.decimal(buffer[i..<digitsEnd]) else { return nil }
        return (size, synchronizing)
    }
}

/// Every limit of the IMAP engine, named (configurable in postern.toml [imap]).
public struct IMAPLimits: Sendable, Equatable {
    /// Longest command line, not counting literal data.
    public var maxLine = 64 * 1024
    /// Largest literal outside APPEND (mailbox names, search strings, passwords).
    public var maxLiteral = 64 * 1024
    /// Largest APPEND message (advertised as APPENDLIMIT, RFC 7889).
    public var maxAppend = 50 * 1024 * 1024
    /// Largest whole unit (all lines and literals of one command, MULTIAPPEND included).
    public var maxCommand = 64 * 1024 * 1024
    /// Deepest parenthesis nesting (SEARCH, FETCH lists).
    public var maxDepth = 32
    /// Most items (ranges) in one sequence set, and most elements in one parenthesised list.
    public var maxSequenceItems = 100_000
    /// Most key/value pairs in ID (RFC 2971 §3.3: at most 30).
    public var maxIDPairs = 30
    public init() {}
}
