// NIO user inbound events the worker fires into every live session channel. Each protocol's
// glue handles them by asking its engine what to say; none of them is an error.

public enum WorkerSessionEvent: Sendable {
    /// The worker is draining (SIGTERM, reload): finish what is in progress, say goodbye
    /// (SMTP 421 4.3.2, RFC 5321 §3.8) and close.
    case shuttingDown
}
