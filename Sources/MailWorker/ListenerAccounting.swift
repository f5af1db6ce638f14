// Connection caps per listener role and per process, and stress mode per role (issue 9 point
// 4): a flood on one role (port 25) can neither take another role's slots (587, 465) nor hold
// its own slots long, because idle timeouts shorten while the role is under stress. A value,
// no clock and no sockets, so it is tested directly; `WorkerServer` holds one under its lock.

/// Stress mode, as Postfix's (postconf(5) `smtpd_timeout = ${stress?{10}:{300}}`, master(8)
/// "stress"): a role is under stress once its connections reach `threshold` of its cap, and
/// leaves it when they fall below `threshold × hysteresis` of it (so the log does not flap).
public struct StressPolicy: Sendable, Equatable {
    /// Fraction of a role's cap at which stress begins (1: only once the cap is reached).
    public var threshold: Double
    /// Stress ends below this share of the threshold.
    public static let hysteresis = 0.9

    public init(threshold: Double) { self.threshold = threshold }

    /// Connections at which stress begins for a cap (at least 1).
    public func onLevel(cap: Int) -> Int { Self.count(threshold * Double(cap)) }
    /// Connections below which stress ends for a cap.
    public func offLevel(cap: Int) -> Int { Self.count(threshold * Self.hysteresis * Double(cap)) }

    /// A share of a cap as a whole number of connections, rounded up (0.8 × 0.9 × 1000 is
    /// 720.0000000000001 in binary floating point: 720, not 721).
    static func count(_ x: Double) -> Int { max(1, Int((x - 1e-9).rounded(.up))) }
}

/// A listener's role from its name in the fd contract: "mta@0.0.0.0:25" → "mta".
public func listenerRole(_ name: String) -> String { String(name.prefix { $0 != "@" }) }

public struct ListenerAccounting: Sendable, Equatable {
    /// Every connection of the process (`max_connections`).
    public var maxTotal: Int
    /// Per role (`mta_max_connections`, ...); a role not listed has only the process cap.
    public var roleCaps: [String: Int]
    public var stress: StressPolicy?

    public private(set) var total = 0
    public private(set) var byRole: [String: Int] = [:]
    public private(set) var stressed: Set<String> = []

    public init(maxTotal: Int, roleCaps: [String: Int] = [:], stress: StressPolicy? = nil) {
        self.maxTotal = maxTotal; self.roleCaps = roleCaps; self.stress = stress
    }

    public enum Refusal: Equatable, Sendable {
        case process(Int)       // the process cap
        case role(Int)          // the role's cap
    }

    /// What a connection changed: nil, or the role's stress mode began (true) or ended (false).
    public typealias StressChange = Bool?

    /// Takes a slot for a connection on `role`, or says which cap refuses it.
    public mutating func admit(_ role: String) -> Result<StressChange, RefusalError> {
        if total >= maxTotal { return .failure(RefusalError(refusal: .process(maxTotal))) }
        let n = byRole[role, default: 0]
        if let cap = roleCaps[role], n >= cap { return .failure(RefusalError(refusal: .role(cap))) }
        total += 1
        byRole[role] = n + 1
        return .success(updateStress(role))
    }

    /// Gives back the slot of a connection on `role`.
    @discardableResult
    public mutating func release(_ role: String) -> StressChange {
        total = max(0, total - 1)
        let n = byRole[role, default: 1] - 1
        byRole[role] = n > 0 ? n : nil
        return updateStress(role)
    }

    public func isStressed(_ role: String) -> Bool { stressed.contains(role) }

    private mutating func updateStress(_ role: String) -> StressChange {
        guard let s = stress, let cap = roleCaps[role] else { return nil }
        let n = byRole[role, default: 0]
        if !stressed.contains(role), n >= s.onLevel(cap: cap) {
            stressed.insert(role); return true
        }
        if stressed.contains(role), n < s.offLevel(cap: cap) {
            stressed.remove(role); return false
        }
        return nil
    }

    public struct RefusalError: Error, Equatable, Sendable {
        public var refusal: Refusal
    }
}

/// Sent to every live session of a role when its stress mode begins or ends, and to a new
/// session that opens under stress (before `channelActive`): idle timeouts are the stress
/// ones while `on`.
public struct ListenerStressEvent: Sendable, Equatable {
    public var on: Bool
    public init(on: Bool) { self.on = on }
}
