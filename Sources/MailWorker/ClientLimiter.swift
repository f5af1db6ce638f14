// Per-client-address limits shared by a worker's sessions: concurrent connections, and AUTH
// failures in a sliding window (smtpd's fail2ban line counts them; the AUTH budget that refuses
// logins is the store's AuthBudget, DESIGN §5). Per process; the clock is injected.
import Foundation

public final class ClientLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var connections: [String: Int] = [:]
    private var failures: [String: [Double]] = [:]
    public let maxConnectionsPerClient: Int
    public let maxFailures: Int
    public let window: Double
    let now: @Sendable () -> Double

    public init(maxConnectionsPerClient: Int, maxFailures: Int, window: Double,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.maxConnectionsPerClient = maxConnectionsPerClient; self.maxFailures = maxFailures; self.window = window; self.now = now
    }

    /// Takes a connection slot for `client`; false when it already has the maximum.
    public func connect(_ client: String) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let n = connections[client, default: 0]
        guard n < maxConnectionsPerClient else { return false }
        connections[client] = n + 1
        return true
    }

    public func disconnect(_ client: String) {
        lock.lock(); defer { lock.unlock() }
        let n = connections[client, default: 1] - 1
        connections[client] = n > 0 ? n : nil
    }

    /// Records one failed login; returns the client's failures within the window.
    @discardableResult
    public func recordFailure(_ client: String) -> Int {
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
        lock.lock(); defer { lock.unlock() }
        let t = now()
        return failures[client, default: []].filter { t - $0 < window }.count >= maxFailures
    }

    private func prune(_ t: Double) {
        failures = failures.filter { $0.value.contains { t - $0 < window } }
    }
}
