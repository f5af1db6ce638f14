// [imap]: imapd's listeners by role — `imap` (143, STARTTLS) and `imaps` (993, implicit TLS,
// RFC 8314) — its timers and limits (DESIGN §4). Every default is written once, here, and
// documented in postern.toml.example; IMAPServer turns this into IMAPLimits/IMAPSessionConfig.

/// What a listener of imapd speaks: the prefix of a `listen` entry ("imaps@[::]:993").
public enum IMAPListenerRole: String, Sendable, Equatable, CaseIterable {
    /// Plaintext first, STARTTLS offered (RFC 9051 §6.2.1), port 143.
    case imap
    /// TLS from the first byte (RFC 8314 §3.3), port 993.
    case imaps
}

public typealias IMAPListener = RoleListener<IMAPListenerRole>

public struct IMAPConfig: Sendable, Equatable {
    /// processes, max_connections, max_unsent_bytes, socket_*; `listen` is `listeners` (by role).
    public var service = ServiceConfig(maxConnections: 1024)
    public var listeners: [IMAPListener] = [
        IMAPListener(.imap, ListenAddress(.tcp(host: "0.0.0.0", port: 143))), IMAPListener(.imap, ListenAddress(.tcp(host: "::", port: 143))),
        IMAPListener(.imaps, ListenAddress(.tcp(host: "0.0.0.0", port: 993))), IMAPListener(.imaps, ListenAddress(.tcp(host: "::", port: 993))),
    ]
    /// Per client address, per process (a desktop client opens about five per account).
    public var maxConnectionsPerClient = 50
    /// Per-client limits count an IPv6 client by this prefix (as [smtp] ipv6_client_prefix).
    public var ipv6ClientPrefix = 64
    /// Seconds without input before a login (greeting included).
    public var loginTimeout = 60
    /// Seconds without input after a login. RFC 9051 §5.4: an inactivity autologout timer
    /// after authentication MUST be at least 30 minutes.
    public var autologout = 1800
    /// Seconds a started command (a line, or a literal being sent) may stall: counted from the
    /// last byte received, so a large APPEND on a slow link is fine while its bytes keep coming.
    public var commandTimeout = 60
    /// Longest command line, literals not counted (IMAPLimits.maxLine).
    public var maxLine = 64 * 1024
    /// Largest literal outside APPEND (IMAPLimits.maxLiteral).
    public var maxLiteral = 64 * 1024
    /// Largest APPEND message, advertised as APPENDLIMIT (RFC 7889) (IMAPLimits.maxAppend).
    public var appendLimit = 50 * 1024 * 1024
    /// Largest whole command with its literals (IMAPLimits.maxCommand); at least append_limit.
    public var maxCommand = 64 * 1024 * 1024
    /// Seconds a failed LOGIN/AUTHENTICATE waits before its answer (DESIGN §5).
    public var authFailureDelay = 2.0
    /// LOGIN/AUTHENTICATE PLAIN before TLS from 127.0.0.1/::1 (RFC 9051 §11.1 otherwise refuses).
    public var plaintextAuthOnLoopback = true

    /// RFC 9051 §5.4: the least autologout after a login, seconds.
    public static let minimumAutologout = 1800

    public var enabled: Bool { !listeners.isEmpty }
    public func listeners(_ role: IMAPListenerRole) -> [ListenAddress] { listeners.filter { $0.role == role }.map(\.address) }

    public init() {}
}

extension IMAPConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        service = try s.service(default: service, runDir: context.runDir, listen: false)
        if let entries = try s.stringArray("listen") {
            listeners = try entries.map { try Self.listener($0, s, context) }
        }
        maxConnectionsPerClient = try s.int("max_connections_per_client", 1...100_000) ?? maxConnectionsPerClient
        ipv6ClientPrefix = try s.int("ipv6_client_prefix", 16...128) ?? ipv6ClientPrefix
        loginTimeout = try s.int("login_timeout", 1...86_400) ?? loginTimeout
        autologout = try s.int("autologout", Self.minimumAutologout...604_800) ?? autologout
        commandTimeout = try s.int("command_timeout", 1...86_400) ?? commandTimeout
        maxLine = try s.int("max_line", 1024...(16 << 20)) ?? maxLine
        maxLiteral = try s.int("max_literal", 1024...(16 << 20)) ?? maxLiteral
        appendLimit = try s.int("append_limit", 1024...(2 << 30)) ?? appendLimit
        maxCommand = try s.int("max_command", 1024...(4 << 30)) ?? maxCommand
        if maxCommand < appendLimit {
            throw s.error(s.line(of: "max_command", in: s.section) != nil ? "max_command" : "append_limit",
                          "max_command (\(maxCommand)) must be at least append_limit (\(appendLimit)): an APPEND is one command")
        }
        authFailureDelay = try s.seconds("auth_failure_delay") ?? authFailureDelay
        if authFailureDelay > 60 { throw s.error("auth_failure_delay", "expected at most 60 seconds") }
        plaintextAuthOnLoopback = try s.bool("plaintext_auth_on_loopback") ?? plaintextAuthOnLoopback
    }

    /// "ROLE@ADDRESS": imap@127.0.0.1:143, imaps@[::]:993, imap@unix:imap.
    static func listener(_ entry: String, _ s: TableReader, _ context: ConfigContext) throws -> IMAPListener {
        try IMAPListener.parse(entry, s, context, example: "imap@127.0.0.1:143")
    }
}
