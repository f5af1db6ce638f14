// [smtp]: smtpd's listeners per role, its limits and AUTH policy (DESIGN §4), and the keys
// [smtp] and [lmtp] share (`SMTPServiceSection`), from which the glue builds SMTPLimits.

/// What to do with a bare LF or CR (bare_linefeed); like Postfix smtpd_forbid_bare_newline.
public enum BareLinefeed: String, Sendable, Equatable, CaseIterable {
    case reject
    case normalize
}

/// The keys an SMTP-engine service section ([smtp], [lmtp]) has; one builder in the glue
/// turns any of them into engine limits.
public protocol SMTPServiceSection: Sendable {
    var service: ServiceConfig { get }
    var maxMessageSize: Int { get }
    var maxRecipients: Int { get }
    var maxCommandLine: Int { get }
    var maxLineLength: Int { get }
    var maxErrors: Int { get }
    var maxAuthFailures: Int { get }
    var commandTimeout: Int { get }
    var dataTimeout: Int { get }
    var bareLinefeed: BareLinefeed { get }
}

/// smtpd (DESIGN §4): listeners per role; roles are config, so a site can add e.g. 2525 as
/// another mta listener. The service keys (processes, max_connections, socket_*) are the
/// shared ones; `listen` is replaced by the role lists.
public struct SMTPConfig: SMTPServiceSection, Equatable {
    public var service = ServiceConfig(maxConnections: 1024)
    public var mta: [ListenAddress] = [ListenAddress(.tcp(host: "0.0.0.0", port: 25)), ListenAddress(.tcp(host: "::", port: 25))]
    public var submission: [ListenAddress] = [ListenAddress(.tcp(host: "0.0.0.0", port: 587)), ListenAddress(.tcp(host: "::", port: 587))]
    public var smtps: [ListenAddress] = [ListenAddress(.tcp(host: "0.0.0.0", port: 465)), ListenAddress(.tcp(host: "::", port: 465))]
    public var maxMessageSize = 50 * 1024 * 1024
    public var maxRecipients = 100                   // RFC 5321 §4.5.3.1.8 minimum
    public var maxCommandLine = 512                  // RFC 5321 §4.5.3.1.4
    /// Text line in DATA. RFC 5321 §4.5.3.1.6 asks 1000, and so does the engine's own default
    /// (`SMTPLimits()`, for whoever drives the engine directly), but real mail exceeds it and
    /// Postfix passes such lines on, so the daemon allows more.
    public var maxLineLength = 65_536
    public var maxErrors = 10
    public var commandTimeout = 300                  // RFC 5321 §4.5.3.2.7
    public var dataTimeout = 600
    public var maxConnectionsPerClient = 50          // per process (Postfix: smtpd_client_connection_count_limit = 50)
    public var maxAuthFailures = 3                   // per session, then 421
    public var bareLinefeed = BareLinefeed.reject    // like Postfix smtpd_forbid_bare_newline
    public var plaintextAuthOnLoopback = true        // AUTH before TLS from 127.0.0.1/::1
    public var receivedShowsAuthUser = false
    public var enabled: Bool { !(mta.isEmpty && submission.isEmpty && smtps.isEmpty) }

    public init() {}
}

extension SMTPConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        service = try s.service(default: service, runDir: context.runDir, listen: false)
        mta = try s.addresses("mta", runDir: context.runDir) ?? mta
        submission = try s.addresses("submission", runDir: context.runDir) ?? submission
        smtps = try s.addresses("smtps", runDir: context.runDir) ?? smtps
        maxMessageSize = try s.int("max_message_size", 1024...(2 << 30)) ?? maxMessageSize
        maxRecipients = try s.int("max_recipients", 1...100_000) ?? maxRecipients
        maxCommandLine = try s.int("max_command_line", 512...65_536) ?? maxCommandLine
        maxLineLength = try s.int("max_line_length", 1000...(64 << 20)) ?? maxLineLength
        maxErrors = try s.int("max_errors", 1...10_000) ?? maxErrors
        commandTimeout = try s.int("command_timeout", 1...86_400) ?? commandTimeout
        dataTimeout = try s.int("data_timeout", 1...86_400) ?? dataTimeout
        maxConnectionsPerClient = try s.int("max_connections_per_client", 1...100_000) ?? maxConnectionsPerClient
        maxAuthFailures = try s.int("max_auth_failures", 1...1000) ?? maxAuthFailures
        bareLinefeed = try s.oneOf("bare_linefeed", BareLinefeed.self) ?? bareLinefeed
        plaintextAuthOnLoopback = try s.bool("plaintext_auth_on_loopback") ?? plaintextAuthOnLoopback
        receivedShowsAuthUser = try s.bool("received_shows_auth_user") ?? receivedShowsAuthUser
    }
}
