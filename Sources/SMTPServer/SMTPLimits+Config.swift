// The SMTP engine's values from an [smtp] or [lmtp] section: the one place config becomes
// SMTPLimits and BareLinefeedPolicy (smtpd, lmtpd, and later imapd/pop3d's siblings).
import MailCore
import SMTPProtocol

extension SMTPLimits {
    /// The limits a service section configures; the rest keep the engine defaults.
    public init(_ c: some SMTPServiceSection) {
        self.init(maxCommandLine: c.maxCommandLine, maxTextLine: c.maxLineLength, maxMessageSize: c.maxMessageSize,
                  maxRecipients: c.maxRecipients, maxErrors: c.maxErrors, maxAuthFailures: c.maxAuthFailures,
                  maxJunkCommands: c.maxJunkCommands)
    }
}

extension BareLinefeedPolicy {
    public init(_ b: BareLinefeed) {
        switch b {
        case .reject: self = .reject
        case .normalize: self = .normalize
        }
    }
}
