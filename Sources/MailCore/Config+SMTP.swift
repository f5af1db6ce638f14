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
    var maxJunkCommands: Int { get }
    /// Seconds a session may last in all (the glue's session timer).
    var maxSessionTime: Int { get }
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
    public var maxErrors = 10                        // also 5xx RCPTs (postconf(5) smtpd_hard_error_limit)
    public var maxJunkCommands = 100                 // postconf(5) smtpd_junk_command_limit
    public var maxSessionTime = 3600                 // seconds; no Postfix equivalent
    public var commandTimeout = 300                  // RFC 5321 §4.5.3.2.7
    public var dataTimeout = 600
    /// Per listener role, per process, within `service.maxConnections` (which caps them all
    /// together): a flood on port 25 leaves submission and smtps their slots (issue 9 point 4).
    /// Postfix gives each master.cf service its own process limit the same way.
    public var mtaMaxConnections = 768
    public var submissionMaxConnections = 128
    public var smtpsMaxConnections = 128
    /// Stress mode per role (Postfix `smtpd_timeout = ${stress?{10}:{300}}`): once a role has
    /// this fraction of its cap, its sessions wait `stressCommandTimeout` for a command.
    public var stressThreshold = 0.8
    public var stressCommandTimeout = 10.0           // seconds
    public var maxConnectionsPerClient = 50          // per process (Postfix: smtpd_client_connection_count_limit = 50)
    /// Per-client limits count an IPv6 client by this prefix (one site has a whole /64).
    public var ipv6ClientPrefix = 64
    public var maxAuthFailures = 3                   // per session, then 421
    public var bareLinefeed = BareLinefeed.reject    // like Postfix smtpd_forbid_bare_newline
    public var plaintextAuthOnLoopback = true        // AUTH before TLS from 127.0.0.1/::1
    public var receivedShowsAuthUser = false
    /// Clients that may use one of our domains as envelope sender on the mta port without
    /// AUTH (and may AUTH before TLS if plaintext_auth_on_loopback says so for loopback).
    public var trustedNetworks = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]
    /// mta: MAIL FROM one of our domains, unauthenticated, from outside trusted_networks → 553 5.7.1.
    public var localSenderRequiresAuth = true
    public var enabled: Bool { !(mta.isEmpty && submission.isEmpty && smtps.isEmpty) }
    /// The per-role caps by role name (the listener names' prefix, "mta@...").
    public var roleMaxConnections: [String: Int] {
        ["mta": mtaMaxConnections, "submission": submissionMaxConnections, "smtps": smtpsMaxConnections]
    }

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
        maxJunkCommands = try s.int("max_junk_commands", 1...1_000_000) ?? maxJunkCommands
        maxSessionTime = try s.int("max_session_time", 1...604_800) ?? maxSessionTime
        commandTimeout = try s.int("command_timeout", 1...86_400) ?? commandTimeout
        dataTimeout = try s.int("data_timeout", 1...86_400) ?? dataTimeout
        mtaMaxConnections = try s.int("mta_max_connections", 1...100_000) ?? mtaMaxConnections
        submissionMaxConnections = try s.int("submission_max_connections", 1...100_000) ?? submissionMaxConnections
        smtpsMaxConnections = try s.int("smtps_max_connections", 1...100_000) ?? smtpsMaxConnections
        stressThreshold = try s.fraction("stress_threshold") ?? stressThreshold
        stressCommandTimeout = try s.seconds("stress_command_timeout") ?? stressCommandTimeout
        if stressCommandTimeout < 1 { throw s.error("stress_command_timeout", "must be at least 1 second") }
        maxConnectionsPerClient = try s.int("max_connections_per_client", 1...100_000) ?? maxConnectionsPerClient
        ipv6ClientPrefix = try s.int("ipv6_client_prefix", 16...128) ?? ipv6ClientPrefix
        maxAuthFailures = try s.int("max_auth_failures", 1...1000) ?? maxAuthFailures
        bareLinefeed = try s.oneOf("bare_linefeed", BareLinefeed.self) ?? bareLinefeed
        plaintextAuthOnLoopback = try s.bool("plaintext_auth_on_loopback") ?? plaintextAuthOnLoopback
        receivedShowsAuthUser = try s.bool("received_shows_auth_user") ?? receivedShowsAuthUser
        if let nets = try s.stringArray("trusted_networks") {
            trustedNetworks = try nets.map { n in
                guard let net = IPNetwork(n) else { throw s.error("trusted_networks", "\(n) is not an address/prefix") }
                return net
            }
        }
        localSenderRequiresAuth = try s.bool("local_sender_requires_auth") ?? localSenderRequiresAuth
    }
}
