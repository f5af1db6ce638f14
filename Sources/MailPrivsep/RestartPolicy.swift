// When to restart a process that died: exponential backoff, and a crash throttle in the
// manner of Postfix's master (a service that keeps dying waits the maximum delay and says so).
// A pure value with the clock passed in, so it is tested without sleeping.
public struct RestartPolicy: Sendable, Equatable {
    public var initialDelay: Double, maxDelay: Double, throttleCount: Int, window: Double
    private(set) var crashes: [Double] = []     // times of recent crashes
    private(set) var consecutive = 0
    public private(set) var throttled = false

    public init(initialDelay: Double, maxDelay: Double, throttleCount: Int, window: Double) {
        self.initialDelay = initialDelay; self.maxDelay = maxDelay; self.throttleCount = throttleCount; self.window = window
    }

    /// Records an abnormal exit at `now` of a process that ran `lifetime` seconds; returns the delay before restart.
    public mutating func crashed(now: Double, lifetime: Double) -> Double {
        if lifetime >= window { consecutive = 0 }
        consecutive += 1
        crashes = crashes.filter { now - $0 < window } + [now]
        throttled = crashes.count >= throttleCount
        if throttled { return maxDelay }
        var d = initialDelay
        for _ in 1..<consecutive { d *= 2 }
        return min(d, maxDelay)
    }

    /// A clean, expected exit (reload, lost store): restart at once, history kept.
    public mutating func reset() { consecutive = 0; throttled = false }
}
