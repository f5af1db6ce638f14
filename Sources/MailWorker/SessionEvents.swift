// NIO user inbound events a worker sends to every live session channel. Each protocol's glue
// answers them in its own words (SMTP 421 4.3.2, IMAP `* BYE`, POP3 `-ERR`).
public enum WorkerSessionEvent: Sendable {
    /// The worker is draining (SIGTERM, reload, lost store): finish what is in progress, say goodbye, close.
    case shuttingDown
}
