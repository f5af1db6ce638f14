// [pop3]: pop3d's listeners by role — `pop3` (110, STLS) and `pop3s` (995, implicit TLS,
// RFC 8314) — its timers and limits (DESIGN §4). Every default is written once, here, and
// documented in postern.toml.example; POP3Server turns this into the engine's values.

/// What a listener of pop3d speaks: the prefix of a `listen` entry ("pop3s@[::]:995").
public enum POP3ListenerRole: String, Sendable, Equatable, CaseIterable {
    /// Plaintext first, STLS offered (RFC 2595 §4), port 110.
    case pop3
    /// TLS from the first byte (RFC 8314 §3.3), port 995.
    case pop3s
}

public typealias POP3Listener = RoleListener<POP3ListenerRole>

public struct POP3Config: Sendable, Equatable {
    /// processes, max_connections, max_unsent_bytes, socket_*; `listen` is `listeners` (by role).
    public var service = ServiceConfig(maxConnections: 1024)
    public var listeners: [POP3Listener] = [
        POP3Listener(.pop3, ListenAddress(.tcp(host: "0.0.0.0", port: 110))), POP3Listener(.pop3, ListenAddress(.tcp(host: "::", port: 110))),
        POP3Listener(.pop3s, ListenAddress(.tcp(host: "0.0.0.0", port: 995))), POP3Listener(.pop3s, ListenAddress(.tcp(host: "::", port: 995))),
    ]
    /// Per client address, per process.
    public var maxConnectionsPerClient = 20
    /// Per-client limits count an IPv6 client by this prefix (as [smtp] ipv6_client_prefix).
    public var ipv6ClientPrefix = 64
    /// Seconds without input before a login (greeting included).
    public var loginTimeout = 60
    /// Seconds without input after a login. RFC 1939 §3: "an autologout timer ... of at least
    /// 10 minutes".
    public var autologout = 600
    /// Longest command line, CRLF included (a base64 SASL response is a line too).
    public var maxLine = 8 * 1024
    /// Seconds a failed USER/PASS or AUTH waits before its answer (DESIGN §5).
    public var authFailureDelay = 2.0
    /// USER/PASS and AUTH before TLS from 127.0.0.1/::1.
    public var plaintextAuthOnLoopback = true

    /// RFC 1939 §3: the least autologout after a login, seconds.
    public static let minimumAutologout = 600
    /// RFC 2449 §4: a command line may be 255 octets; a shorter limit would refuse valid ones.
    public static let minimumLine = 255

    public var enabled: Bool { !listeners.isEmpty }
    public func listeners(_ role: POP3ListenerRole) -> [ListenAddress] { listeners.filter { $0.role == role }.map(\.address) }

    public init() {}
}

extension POP3Config: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        service = try s.service(default: service, runDir: context.runDir, listen: false)
        if let entries = try s.stringArray("listen") {
            listeners = try entries.map { try Self.listener($0, s, context) }
        }
        maxConnectionsPerClient = try s.int("max_connections_per_client", 1...100_000) ?? maxConnectionsPerClient
        ipv6ClientPrefix = try s.int("ipv6_client_prefix", 16...128) ?? ipv6ClientPrefix
        loginTimeout = try s.int("login_timeout", 1...86_400) ?? loginTimeout
        autologout = try s.int("autologout", Self.minimumAutologout...604_800) ?? autologout
        maxLine = try s.int("max_line", Self.minimumLine...(1 << 20)) ?? maxLine
        authFailureDelay = try s.seconds("auth_failure_delay") ?? authFailureDelay
        if authFailureDelay > 60 { throw s.error("auth_failure_delay", "expected at most 60 seconds") }
        plaintextAuthOnLoopback = try s.bool("plaintext_auth_on_loopback") ?? plaintextAuthOnLoopback
    }

    /// "ROLE@ADDRESS": pop3@127.0.0.1:110, pop3s@[::]:995, pop3@unix:pop3.
    static func listener(_ entry: String, _ s: TableReader, _ context: ConfigContext) throws -> POP3Listener {
        try POP3Listener.parse(entry, s, context, example: "pop3@127.0.0.1:110")
    }
}
