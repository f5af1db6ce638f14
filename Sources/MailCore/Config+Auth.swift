// [auth]: the per-address login budget the store keeps for every protocol (DESIGN §5): failures
// within the window plus logins in flight; over it, logins are refused without a password check.
// And how long the store remembers a verified password (its credentials cache; 0 = never).

public struct AuthConfig: Sendable, Equatable {
    public var failuresPerClient = 10             // per client address (IPv6: per /64) within the window
    public var failureWindow = 600.0              // seconds
    public var cacheTTL = 300.0                   // seconds a verified login is remembered; 0: off

    public init() {}
}

extension AuthConfig: ConfigSection {
    mutating func read(_ a: TableReader, _ context: ConfigContext) throws {
        failuresPerClient = try a.int("failures_per_client", 1...100_000) ?? failuresPerClient
        failureWindow = try a.seconds("failure_window") ?? failureWindow
        cacheTTL = try a.seconds("cache_ttl") ?? cacheTTL
    }
}
