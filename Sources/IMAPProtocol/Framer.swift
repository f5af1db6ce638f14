// IMAPFramer: cuts the client's byte stream into command units (a line, with every literal
// it announces inline, RFC 9051 §4.3) and enforces the limits before buffering. CONTRACT ONLY:
// the implementation lands with the parser.

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
    public init(limits: IMAPLimits = IMAPLimits()) { self.limits = limits }

    /// Adds bytes read from the client.
    public mutating func feed(_ bytes: [UInt8]) { fatalError("IMAPFramer: not implemented yet") }
    /// The next event, or nil when more bytes are needed.
    public mutating func next() -> Event? { nil }
    /// Bytes buffered and not yet returned (the glue stops reading past a bound).
    public var buffered: Int { 0 }
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
    public init() {}
}
