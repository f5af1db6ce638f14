// NIO user inbound events a worker sends to every live session channel when it stops (SIGTERM
// from the master at shutdown or reload, or a lost store). Each protocol's glue answers them in
// its own words (SMTP 421 4.3.2, IMAP `* BYE`, POP3 `-ERR`).
public enum WorkerSessionEvent: Sendable {
    /// The worker takes no new connections; open sessions may finish within the grace period.
    /// SMTP carries on, as Postfix's smtpd does across `postfix reload`/`stop`; a protocol whose
    /// clients reconnect on their own (IMAP IDLE) may say goodbye to idle sessions now.
    case draining
    /// The grace period is over: say goodbye now (after a reply the session is awaiting, if it
    /// comes quickly) and close; the process exits a moment later (`WorkerServer.goodbyeTime`).
    case shuttingDown
}
