// The POP3 engine's and glue's values from the [pop3] section: the one place postern.toml
// becomes POP3Limits, POP3SessionConfig and the glue's timers (as IMAPLimits+Config.swift does).
import NIOCore
import MailCore
import POP3Protocol

extension POP3SessionConfig {
    /// STLS is offered on `pop3` listeners only (on `pop3s` the connection is TLS from the
    /// first byte, RFC 8314 §3.3).
    public init(_ c: POP3Config, hostname: String, role: POP3ListenerRole) {
        let engine = POP3EngineConfig(hostname: hostname, limits: POP3Limits(maxLine: c.maxLine), startTLSAvailable: role == .pop3,
                                      plaintextOnLoopback: c.plaintextAuthOnLoopback)
        self.init(engine: engine, authFailureDelay: c.authFailureDelay)
    }
}

/// The glue's timers (POP3SessionHandler), from [pop3].
public struct POP3Timers: Sendable, Equatable {
    /// No input before a login (login_timeout).
    public var login: TimeAmount
    /// No input after a login (autologout, RFC 1939 §3: at least 10 minutes).
    public var autologout: TimeAmount
    public init(login: TimeAmount, autologout: TimeAmount) { self.login = login; self.autologout = autologout }
    public init(_ c: POP3Config) { self.init(login: .seconds(Int64(c.loginTimeout)), autologout: .seconds(Int64(c.autologout))) }
}
