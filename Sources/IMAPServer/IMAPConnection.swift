// The seam between the IMAP engine (IMAPSession) and its NIO glue (DESIGN §4): the glue frames
// bytes into command units (IMAPFramer) and feeds them, with the other inputs, to the session's
// `run`; the session writes through IMAPConnection. Policy stays in the session.
import IMAPProtocol

/// What the session asks of its connection. Calls come from the session's task, in order.
public protocol IMAPConnection: AnyObject, Sendable {
    /// Queues bytes for the client and flushes; returns when they are handed to the channel
    /// (suspends while the client is not reading: back-pressure).
    func write(_ bytes: [UInt8]) async
    /// Upgrades to TLS after the tagged OK of STARTTLS was written; any plaintext the client
    /// pipelined after the command is discarded (RFC 9051 §6.2.1). Throws if the handshake fails
    /// (the session then ends).
    func startTLS() async throws
    /// Closes the connection after what was written is flushed.
    func close() async
    /// The login succeeded (the glue logs the user with the session and switches from the
    /// login timeout to the autologout timeout).
    func authenticated(user: String)
    /// Whether the connection is encrypted now (implicit TLS or after STARTTLS).
    var isTLS: Bool { get }
    /// Writes `reply` (the tagged OK of COMPRESS) uncompressed, then compresses both directions
    /// (RFC 4978 §3), including what the client sent behind the command. Throws if the
    /// connection is gone or already compressed.
    func startCompression(reply: [UInt8]) async throws
    /// Whether COMPRESS=DEFLATE is on.
    var isCompressed: Bool { get }
}

/// What the glue feeds the session.
public enum IMAPSessionInput: Sendable {
    /// A framed unit from IMAPFramer (a command with its literals, or a continuation line).
    case framed(IMAPFramer.Event)
    /// The client closed or the connection failed.
    case closed
    /// The worker is shutting down: say BYE now (DESIGN §1; WorkerSessionEvent.shuttingDown).
    case shutdown
    /// A watched mailbox changed up to this MODSEQ (from IMAPServices.watch).
    case mailboxChanged(UInt64)
    /// The idle/command timer fired (the glue arms it from `IMAPSession.timeoutAfter`).
    case timeout
}
