// The per-address authentication budget every login passes through (DESIGN §5, like Dovecot's
// auth penalty): failures within a window plus attempts in flight never exceed `maxFailures`, so
// concurrent logins cannot outrun it. IPv6 counts per /64, IPv4 per address; the clock is injected.
import Foundation
import MailSyntax

public final class AuthBudget: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [String: [Double]] = [:]   // per key, times of failures within the window
    private var inFlight: [String: Int] = [:]
    public let maxFailures: Int
    public let window: Double
    let now: @Sendable () -> Double
    /// Above this many keys, expired ones are swept (a distributed attack cannot grow memory).
    static let sweepAt = 100_000

    public init(maxFailures: Int, window: Double, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.maxFailures = max(1, maxFailures); self.window = window; self.now = now
    }

    /// Starts one attempt from `client`: false (and the attempt counts as a failure, so a client
    /// that keeps trying stays refused) when its failures within the window plus its attempts in
    /// flight already reach the budget. Every `true` must be followed by one `end`.
    public func begin(_ client: String) -> Bool {
        let key = Self.key(client)
        lock.lock(); defer { lock.unlock() }
        let t = now()
        let recent = current(key, t)
        guard recent.count + inFlight[key, default: 0] < maxFailures else {
            record(key, recent, t)
            return false
        }
        inFlight[key, default: 0] += 1
        return true
    }

    /// Ends an attempt `begin` let through; returns the client's failures within the window.
    @discardableResult
    public func end(_ client: String, failed: Bool) -> Int {
        let key = Self.key(client)
        lock.lock(); defer { lock.unlock() }
        let t = now()
        let n = inFlight[key, default: 1] - 1
        inFlight[key] = n > 0 ? n : nil
        let recent = current(key, t)
        guard failed else { failures[key] = recent.isEmpty ? nil : recent; return recent.count }
        return record(key, recent, t)
    }

    /// Failures of `client` within the window now (tests, logs).
    public func failureCount(_ client: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return current(Self.key(client), now()).count
    }

    /// The budget's key for an address: IPv6 by its /64 (one site's hosts, one budget), an
    /// IPv4 or IPv4-mapped address by itself, anything else (a unix peer's name) as it is.
    public static func key(_ client: String) -> String { IPAddress.clientKey(client, ipv6Prefix: ipv6Prefix) }
    /// IPv6 logins are budgeted per /64 (RFC 4291 §2.5.4: one LAN).
    static let ipv6Prefix = 64

    private func current(_ key: String, _ t: Double) -> [Double] {
        (failures[key] ?? []).filter { t - $0 < window }
    }

    /// Adds a failure at `t`; keeps at most the budget's worth of times per key.
    @discardableResult
    private func record(_ key: String, _ recent: [Double], _ t: Double) -> Int {
        var f = recent
        f.append(t)
        let count = f.count
        if f.count > maxFailures { f.removeFirst(f.count - maxFailures) }
        failures[key] = f
        if failures.count > Self.sweepAt { failures = failures.filter { $0.value.contains { t - $0 < window } } }
        return count
    }
}
