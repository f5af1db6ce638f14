// The POP3 engine's named limits (RFC 1939, RFC 2449 §4): every bound the framer, parser and
// state machine enforce is here, with the RFC's number where it gives one.

public struct POP3Limits: Sendable, Equatable {
    /// RFC 2449 §4: "Commands ... MUST NOT exceed 255 octets, including the terminating CRLF".
    /// A SASL response line (RFC 5034 §4) may be longer, up to `maxLine`.
    public static let rfcCommandLength = 255
    /// RFC 2449 §4: "Keywords and arguments ... MUST NOT exceed 40 octets" (PASS excepted).
    public static let rfcArgumentLength = 40
    /// Longest line the framer accepts (a command, or a base64 SASL response), CRLF included.
    public var maxLine = 8 * 1024
    /// Invalid commands in a row after which the session ends.
    public var maxBadCommands = 20
    /// Failed logins in one session after which it ends.
    public var maxAuthFailures = 3

    public init(maxLine: Int = 8 * 1024, maxBadCommands: Int = 20, maxAuthFailures: Int = 3) {
        self.maxLine = maxLine; self.maxBadCommands = maxBadCommands; self.maxAuthFailures = maxAuthFailures
    }
}
