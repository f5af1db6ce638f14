// Per-client-address limits shared by a worker's sessions: concurrent connections, and AUTH
// failures in a sliding window (smtpd's fail2ban line counts them; the AUTH budget that refuses
// logins is the store's AuthBudget, DESIGN §5). Per process; the clock is injected. An IPv6
// client is counted by its network prefix (one site holds a whole /64), an IPv4 one by its address.
import Foundation
import MailSyntax

public final class ClientLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var connections: [String: Int] = [:]
    private var failures: [String: [Double]] = [:]
    public let maxConnectionsPerClient: Int
    public let maxFailures: Int
    public let window: Double
    /// IPv6 clients are counted per this many leading bits (`ipv6_client_prefix`).
    public let ipv6Prefix: Int
    let now: @Sendable () -> Double

    /// The default IPv6 prefix: a /64 is one LAN (RFC 4291 §2.5.4), what one site holds at least.
    public static let defaultIPv6Prefix = 64

    public init(maxConnectionsPerClient: Int, maxFailures: Int, window: Double, ipv6Prefix: Int = defaultIPv6Prefix,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.maxConnectionsPerClient = maxConnectionsPerClient; self.maxFailures = maxFailures; self.window = window
        self.ipv6Prefix = min(max(ipv6Prefix, 0), 128); self.now = now
    }

    /// What a client is counted as: an IPv4 address as it is (an IPv4-mapped IPv6 address,
    /// ::ffff:a.b.c.d from a dual-stack listener, as its IPv4 address, RFC 4291 §2.5.5.2); an
    /// IPv6 address as its `ipv6Prefix` network ("2001:db8:1:2::/64"); anything else as it is.
    public func key(_ client: String) -> String { IPAddress.clientKey(client, ipv6Prefix: ipv6Prefix) }

    /// Takes a connection slot for `client`; false when it already has the maximum.
    public func connect(_ client: String) -> Bool {
        let client = key(client)
        lock.lock(); defer { lock.unlock() }
        let n = connections[client, default: 0]
        guard n < maxConnectionsPerClient else { return false }
        connections[client] = n + 1
        return true
    }

    public func disconnect(_ client: String) {
        let client = key(client)
        lock.lock(); defer { lock.unlock() }
        let n = connections[client, default: 1] - 1
        connections[client] = n > 0 ? n : nil
    }

    /// Records one failed login; returns the client's failures within the window.
    @discardableResult
    public func recordFailure(_ client: String) -> Int {
        let client = key(client)
        lock.lock(); defer { lock.unlock() }
        let t = now()
        var f = failures[client, default: []].filter { t - $0 < window }
        f.append(t)
        failures[client] = f
        if failures.count > 100_000 { prune(t) }   // bound memory under a distributed attack
        return f.count
    }

    /// Whether `client` has used up its failures for now.
    public func isBlocked(_ client: String) -> Bool {
        let client = key(client)
        lock.lock(); defer { lock.unlock() }
        let t = now()
        return failures[client, default: []].filter { t - $0 < window }.count >= maxFailures
    }

    private func prune(_ t: Double) {
        failures = failures.filter { $0.value.contains { t - $0 < window } }
    }
}
