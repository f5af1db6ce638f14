// The IMAP engine's and glue's values from the [imap] section: the one place postern.toml
// becomes IMAPLimits, IMAPSessionConfig and the glue's timers (as SMTPLimits+Config.swift does
// for smtpd). Limits the section has no key for keep the engine's defaults.
import NIOCore
import MailCore
import IMAPProtocol

extension IMAPLimits {
    public init(_ c: IMAPConfig) {
        self.init()
        maxLine = c.maxLine
        maxLiteral = c.maxLiteral
        maxAppend = c.appendLimit
        maxCommand = c.maxCommand
    }
}

extension IMAPSessionConfig {
    /// The session of one listener role: STARTTLS is offered on `imap` listeners only (on
    /// `imaps` the connection is TLS from the first byte, RFC 8314 §3.3).
    public init(_ c: IMAPConfig, hostname: String, role: IMAPListenerRole) {
        self.init(hostname: hostname, limits: IMAPLimits(c), startTLSAvailable: role == .imap,
                  plaintextOnLoopback: c.plaintextAuthOnLoopback, authFailureDelay: c.authFailureDelay)
    }
}

/// The glue's timers (IMAPSessionHandler), from [imap].
public struct IMAPTimers: Sendable, Equatable {
    /// No input before a login (login_timeout).
    public var login: TimeAmount
    /// No input after a login (autologout, RFC 9051 §5.4).
    public var autologout: TimeAmount
    /// A started command with no byte for this long (command_timeout).
    public var command: TimeAmount

    public init(login: TimeAmount, autologout: TimeAmount, command: TimeAmount) {
        self.login = login; self.autologout = autologout; self.command = command
    }

    public init(_ c: IMAPConfig) {
        self.init(login: .seconds(Int64(c.loginTimeout)), autologout: .seconds(Int64(c.autologout)), command: .seconds(Int64(c.commandTimeout)))
    }
}
