// The fail2ban lines (docs/fail2ban.md), written by every service that checks passwords
// (smtpd now, imapd and pop3d later): one shape, the client address before anything it chose.
import Logging

public enum AuthLog {
    /// User names are cut after this many UTF-8 bytes (at a character boundary) and get "...".
    public static let maxUserBytes = 128

    /// One failed authentication, as the documented filter matches it:
    /// `authentication failed client=192.0.2.7 failures=3 mechanism=plain user=alice@example.org`.
    /// `user` is the name as the client sent it; PosternLogHandler escapes it (and quotes it when
    /// it holds a space, `=` or `"`). `failures` counts this address's recent failures.
    public static func failed(logger: Logger, client: String, user: String, mechanism: String, failures: Int) {
        logger.warning("authentication failed", metadata: [
            "client": "\(client)", "failures": "\(failures)", "mechanism": "\(mechanism.lowercased())", "user": "\(shortened(user))",
        ])
    }

    /// An AUTH refused without checking the password because `client` failed too often.
    public static func refused(logger: Logger, client: String, user: String) {
        logger.warning("authentication refused: too many failures", metadata: ["client": "\(client)", "user": "\(shortened(user))"])
    }

    /// `user` cut to `maxUserBytes` bytes of whole characters, with "..." when cut.
    public static func shortened(_ user: String) -> String {
        guard user.utf8.count > maxUserBytes else { return user }
        var out = "", bytes = 0
        for c in user {
            bytes += c.utf8.count
            if bytes > maxUserBytes { break }
            out.append(c)
        }
        return out + "..."
    }
}
