// [lmtp]: lmtpd's listeners and limits (RFC 2033). Postfix in front has already applied its
// policy, so the limits are wider than smtpd's.

public struct LMTPConfig: SMTPServiceSection, Equatable {
    public var service: ServiceConfig
    public var maxMessageSize = 50 * 1024 * 1024
    public var maxRecipients = 1000
    /// No key: LMTP commands have smtpd's RFC 5321 §4.5.3.1.4 limit.
    public var maxCommandLine: Int { SMTPConfig().maxCommandLine }
    public var maxLineLength = 1_000_000          // Postfix lmtp sends long lines; keep a cap
    public var maxErrors = 20                     // also 5xx RCPTs; reset by a delivery
    public var maxJunkCommands = 100
    public var maxSessionTime = 3600              // seconds
    /// No key: lmtpd offers no AUTH.
    public var maxAuthFailures: Int { SMTPConfig().maxAuthFailures }
    public var commandTimeout = 300               // seconds, RFC 5321 §4.5.3.2.7
    public var dataTimeout = 600                  // seconds, whole DATA phase
    public var bareLinefeed = BareLinefeed.reject

    /// The socket is 0660, not 0666: only its group may deliver. Without socket_group the
    /// master gives it the [users] worker's group (as root); Postfix's lmtp client (user
    /// postfix) gets in with socket_group = "postfix" or by joining that group (README).
    init(runDir: String) {
        service = ServiceConfig(listen: [ListenAddress(.unix(path: runDir + "/lmtp"))], socketMode: 0o660)
    }
}

extension LMTPConfig: ConfigSection {
    mutating func read(_ l: TableReader, _ context: ConfigContext) throws {
        service = try l.service(default: service, runDir: context.runDir)
        maxMessageSize = try l.int("max_message_size", 1024...(2 << 30)) ?? maxMessageSize
        maxRecipients = try l.int("max_recipients", 1...100_000) ?? maxRecipients
        maxLineLength = try l.int("max_line_length", 1000...(64 << 20)) ?? maxLineLength
        maxErrors = try l.int("max_errors", 1...10_000) ?? maxErrors
        maxJunkCommands = try l.int("max_junk_commands", 1...1_000_000) ?? maxJunkCommands
        maxSessionTime = try l.int("max_session_time", 1...604_800) ?? maxSessionTime
        commandTimeout = try l.int("command_timeout", 1...86_400) ?? commandTimeout
        dataTimeout = try l.int("data_timeout", 1...86_400) ?? dataTimeout
        bareLinefeed = try l.oneOf("bare_linefeed", BareLinefeed.self) ?? bareLinefeed
    }
}
