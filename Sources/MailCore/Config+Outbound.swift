// [outbound]: the outbound agent (DESIGN §1, §4): routing (relay host or MX), TLS policy,
// concurrency, retry schedule, timers and DKIM. Every default is written once, here; the
// agent (OutboundServer) turns this into its client configuration and schedule.

/// How the agent treats TLS towards a destination (`tls_policy`, `[outbound.tls_policy_domains]`).
public enum OutboundTLSPolicy: String, Sendable, Equatable, CaseIterable {
    /// STARTTLS when offered; an unverifiable certificate still encrypts (RFC 7435).
    case opportunistic
    /// STARTTLS must succeed with a certificate that verifies (chain and host name).
    case verify
    /// Never STARTTLS.
    case none
}

/// How the agent speaks TLS to the relay host (`relay_tls`).
public enum RelayTLS: String, Sendable, Equatable, CaseIterable {
    /// STARTTLS required (RFC 3207), the certificate not checked unless the policy says verify.
    case starttls
    /// TLS from the first byte (RFC 8314, port 465).
    case implicit
    /// Plaintext (a relay on loopback).
    case none
}

/// `relayhost`: "host" (MX lookup, as Postfix), "[host]" (no MX lookup), either with ":port".
public struct RelayHost: Sendable, Equatable, CustomStringConvertible {
    /// A host name or an address, without brackets.
    public var host: String
    public var port: Int
    /// "[host]": connect to the host's own addresses, no MX lookup. An address is always literal.
    public var literal: Bool
    /// RFC 5321 §4.5.4 port 25, RFC 6409 587 for submission (what relays mostly use).
    public static let defaultPort = 25

    public init(host: String, port: Int = RelayHost.defaultPort, literal: Bool = false) {
        self.host = host; self.port = port; self.literal = literal
    }

    /// "host", "host:port", "[host]", "[host]:port", "[2001:db8::1]:587"; nil when malformed.
    public init?(parsing s: String) {
        var rest = Substring(s)
        var literal = false
        var host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            literal = true
        } else if let colon = rest.lastIndex(of: ":"), rest.firstIndex(of: ":") == colon {
            host = rest[..<colon]
            rest = rest[colon...]
        } else {
            guard !rest.contains(":") else { return nil }      // an IPv6 address needs its brackets
            host = rest
            rest = ""
        }
        var port = Self.defaultPort
        if !rest.isEmpty {
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
            port = p
        }
        if host.lowercased().hasPrefix("ipv6:") { host = host.dropFirst(5) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" || $0 == "[" || $0 == "]" }) else { return nil }
        // An address (IPv4 dotted, or anything with ":") is always tried as it is.
        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        self.init(host: String(host), port: port, literal: literal || isAddress)
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : (literal && !host.allSatisfy { $0.isNumber || $0 == "." } ? "[\(host)]" : host)
        return "\(h):\(port)"
    }
}

public struct OutboundConfig: Sendable, Equatable {
    /// The master spawns the agent.
    public var enabled = true
    /// Our name in EHLO; "" is the top-level `hostname` (see `PosternConfig.outboundHeloName`).
    public var heloName = ""
    /// nil: MX routing.
    public var relayhost: RelayHost? = nil
    public var relayTLS = RelayTLS.starttls
    public var relayUser = ""
    /// Read by the agent before it drops privileges; "" none. AUTH is sent only over TLS.
    public var relayPasswordFile = ""
    /// "" reads /etc/resolv.conf; else "ADDRESS" or "ADDRESS@PORT" for unbound to forward to.
    public var resolver = ""
    /// The port of MX hosts (RFC 5321 §4.5.4: 25); tests move it.
    public var smtpPort = 25
    public var tlsPolicy = OutboundTLSPolicy.opportunistic
    /// domain (lower-case) → policy, over `tls_policy`.
    public var tlsPolicyDomains: [String: OutboundTLSPolicy] = [:]
    /// Trust anchors for `verify`; "" the system store.
    public var caFile = ""
    /// Connections in total.
    public var concurrency = 20
    /// Connections per destination (a domain, or the relay host).
    public var perDestination = 4
    /// `connection_cache_time_ms`: milliseconds a connection with nothing left to send stays open for the next message of its
    /// destination (Postfix's connection cache, `smtp_connection_cache_time_limit`); 0 closes at once.
    public var connectionCacheTime = 2_000
    /// Seconds after the first failed attempt, doubling up to `retryMax` (RetrySchedule).
    public var retryInitial = 300
    public var retryMax = 14_400
    /// Seconds after the first attempt a still-deferred recipient is bounced (RFC 5321 §4.5.4.1: 4–5 days).
    public var maxQueueLifetime = 432_000
    /// Seconds after the first attempt a delay DSN is sent once; 0 never.
    public var delayWarning = 14_400
    /// Seconds a claim leases its rows.
    public var lease = 600
    /// Seconds a TCP connect may take.
    public var connectTimeout = 300
    /// Seconds for every SMTP command timer at once, overriding RFC 5321 §4.5.3.2's (tests); 0 keeps them.
    public var commandTimeout = 0
    /// "" lets every key of the sender's domain (DKIMKeyDirectory) sign with its own selector;
    /// else only that selector signs.
    public var dkimSelector = ""
    /// DKIM-sign submitted mail whose sender domain has a key.
    public var dkim = true

    public init() {}

    /// The policy for a recipient domain: its own entry, else the global one.
    public func tlsPolicy(for domain: String) -> OutboundTLSPolicy {
        tlsPolicyDomains[domain.lowercased()] ?? tlsPolicy
    }
}

extension OutboundConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        enabled = try s.bool("enabled") ?? enabled
        heloName = try Self.string(s, "helo_name") ?? heloName
        if let r = try Self.string(s, "relayhost") {
            if r.isEmpty {
                relayhost = nil
            } else {
                guard let parsed = RelayHost(parsing: r) else {
                    throw s.error("relayhost", "\"\(r)\" is not host, host:port, [host] or [address]:port")
                }
                relayhost = parsed
            }
        }
        relayTLS = try s.oneOf("relay_tls", RelayTLS.self) ?? relayTLS
        relayUser = try Self.string(s, "relay_user") ?? relayUser
        if let p = try Self.string(s, "relay_password_file") { relayPasswordFile = p.isEmpty || p.hasPrefix("/") ? p : context.base + "/" + p }
        resolver = try Self.string(s, "resolver") ?? resolver
        smtpPort = try s.int("smtp_port", 1...65535) ?? smtpPort
        tlsPolicy = try s.oneOf("tls_policy", OutboundTLSPolicy.self) ?? tlsPolicy
        if let t = try s.table("tls_policy_domains") {
            for domain in t.table.keys {
                guard let p = try t.oneOf(domain, OutboundTLSPolicy.self) else { continue }
                tlsPolicyDomains[domain.lowercased()] = p
            }
            try t.finish()
        }
        if let ca = try Self.string(s, "ca_file") { caFile = ca.isEmpty || ca.hasPrefix("/") ? ca : context.base + "/" + ca }
        concurrency = try s.int("concurrency", 1...10_000) ?? concurrency
        perDestination = try s.int("per_destination", 1...1000) ?? perDestination
        connectionCacheTime = try s.int("connection_cache_time_ms", 0...300_000) ?? connectionCacheTime
        retryInitial = try s.int("retry_initial", 1...86_400) ?? retryInitial
        retryMax = try s.int("retry_max", 1...604_800) ?? retryMax
        maxQueueLifetime = try s.int("max_queue_lifetime", 1...(60 * 86_400)) ?? maxQueueLifetime
        delayWarning = try s.int("delay_warning", 0...(60 * 86_400)) ?? delayWarning
        lease = try s.int("lease", 10...86_400) ?? lease
        connectTimeout = try s.int("connect_timeout", 1...3600) ?? connectTimeout
        commandTimeout = try s.int("command_timeout", 0...3600) ?? commandTimeout
        dkimSelector = try Self.string(s, "dkim_selector") ?? dkimSelector
        dkim = try s.bool("dkim") ?? dkim
        if retryMax < retryInitial {
            throw s.error("retry_max", "retry_max (\(retryMax)) must be at least retry_initial (\(retryInitial))")
        }
        if perDestination > concurrency {
            throw s.error("per_destination", "per_destination (\(perDestination)) must be at most concurrency (\(concurrency))")
        }
        if !relayUser.isEmpty, relayPasswordFile.isEmpty {
            throw s.error("relay_user", "relay_user needs relay_password_file")
        }
    }

    /// A string key where "" is a meaningful value (TableReader.string refuses empty strings).
    static func string(_ s: TableReader, _ key: String) throws -> String? {
        if let v = s.table[key], v.string == "" {
            _ = try? s.string(key)      // marks the key as read
            return ""
        }
        return try s.string(key)
    }
}

extension PosternConfig {
    /// `[outbound] helo_name`, or the server's `hostname`.
    public var outboundHeloName: String { outbound.heloName.isEmpty ? hostname : outbound.heloName }
}
