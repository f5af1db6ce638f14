// The IMAP engine's driver: one per connection, run as one task that takes the glue's inputs
// in order and answers through IMAPConnection. (Skeleton: the command set lands here.)
import Foundation
import Logging
import IMAPProtocol
import MailModel

/// What a session needs to know of its service (built from postern.toml [imap]).
public struct IMAPSessionConfig: Sendable {
    public var hostname: String
    public var limits: IMAPLimits
    /// STARTTLS is offered (a TLS context exists and the connection is not TLS yet).
    public var startTLSAvailable: Bool
    /// LOGIN/AUTHENTICATE PLAIN without TLS are accepted from loopback clients
    /// (`[auth] allow_plaintext_loopback`).
    public var plaintextOnLoopback: Bool
    /// Seconds a failed login waits before its answer (DESIGN §5).
    public var authFailureDelay: Double
    public init(hostname: String, limits: IMAPLimits = IMAPLimits(), startTLSAvailable: Bool, plaintextOnLoopback: Bool = true,
                authFailureDelay: Double = 2) {
        self.hostname = hostname; self.limits = limits; self.startTLSAvailable = startTLSAvailable
        self.plaintextOnLoopback = plaintextOnLoopback; self.authFailureDelay = authFailureDelay
    }
}

public final class IMAPSession: @unchecked Sendable {
    let config: IMAPSessionConfig
    let services: any IMAPServices
    let connection: any IMAPConnection
    let client: String
    let clientIsLoopback: Bool
    let logger: Logger
    let now: @Sendable () -> Int64

    /// `client` is the peer's address (logs, failure counting); `now` gives seconds since the epoch.
    public init(config: IMAPSessionConfig, services: any IMAPServices, connection: any IMAPConnection, client: String,
                clientIsLoopback: Bool, logger: Logger, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) {
        self.config = config; self.services = services; self.connection = connection; self.client = client
        self.clientIsLoopback = clientIsLoopback; self.logger = logger; self.now = now
    }

    /// Greets, then handles every input until LOGOUT, a fatal input, `.closed` or `.shutdown`;
    /// returns after closing the connection and the store session.
    public func run(_ inputs: AsyncStream<IMAPSessionInput>) async {
        await connection.write(Array("* OK [CAPABILITY IMAP4rev1] \(config.hostname) Postern ready\r\n".utf8))
        for await input in inputs {
            if case .closed = input { break }
        }
        services.close()
        await connection.close()
    }
}
