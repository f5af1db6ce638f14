// The agent's run-time settings from `[outbound]` (MailCore.OutboundConfig): the SMTP client's
// configuration per destination, the retry schedule, limits. Pure: nothing is read or opened
// here (keys and passwords are loaded by OutboundWorker before the privilege drop).
import MailCore
import OutboundProtocol
import SMTPProtocol

public struct OutboundSettings: Sendable {
    public var heloName: String
    public var relayhost: RelayHost?
    public var relayTLS: RelayTLS
    public var relayCredentials: SMTPClientCredentials?
    public var smtpPort: Int
    public var tlsPolicy: OutboundTLSPolicy
    public var tlsPolicyDomains: [String: OutboundTLSPolicy]
    public var concurrency: Int
    public var perDestination: Int
    /// How long an idle connection waits for its destination's next unit before it quits.
    public var connectionCacheTime: Duration
    public var lease: Int64
    /// Seconds for a TCP connect.
    public var connectTimeout: Int
    public var timeouts: SMTPClientTimeouts
    public var schedule: RetrySchedule
    public var dkim: Bool
    public var dkimSelector: String

    /// How long a claim waits at most before it looks again without being woken (a missed
    /// event, a lease another agent let expire).
    public static let safetyPoll: Duration = .seconds(60)
    /// Messages whose body is at most this big are read once into memory and shared by all their
    /// destinations; bigger ones are read by range each time they are sent (DESIGN §2).
    public static let inMemoryBodyLimit = 1 << 20
    /// The ranged reads of a body streamed from the store.
    public static let readChunk = 256 * 1024
    /// A DSN returns the whole message up to this size, else its header section: the report
    /// carries it to the store in one RPC frame (RPCLimits.defaultMaxFrame, 1 MiB).
    public static let dsnReturnSizeLimit = 512 * 1024

    public init(_ c: PosternConfig, relayPassword: String? = nil) {
        let o = c.outbound
        heloName = c.outboundHeloName
        relayhost = o.relayhost
        relayTLS = o.relayTLS
        relayCredentials = relayPassword.map { SMTPClientCredentials(user: o.relayUser, password: $0) }
        smtpPort = o.smtpPort
        tlsPolicy = o.tlsPolicy
        tlsPolicyDomains = o.tlsPolicyDomains
        concurrency = o.concurrency
        perDestination = o.perDestination
        connectionCacheTime = .milliseconds(o.connectionCacheTime)
        lease = Int64(o.lease)
        connectTimeout = o.connectTimeout
        if o.commandTimeout > 0 {
            let d = Duration.seconds(o.commandTimeout)
            timeouts = SMTPClientTimeouts(greeting: d, command: d, mail: d, rcpt: d, dataInitiation: d, dataBlock: d, dataTermination: d)
        } else {
            timeouts = .rfc5321
        }
        schedule = RetrySchedule(initialDelay: .seconds(o.retryInitial), maximumDelay: .seconds(o.retryMax),
                                 maxQueueLifetime: .seconds(o.maxQueueLifetime),
                                 delayWarning: o.delayWarning > 0 ? .seconds(o.delayWarning) : nil)
        dkim = o.dkim
        dkimSelector = o.dkimSelector
    }

    /// The policy towards `destination`'s hosts: the relay host's `relay_tls`, else the domain's.
    public func clientPolicy(for destination: Destination) -> (policy: TLSPolicy, implicitTLS: Bool) {
        switch destination {
        case .relay:
            switch relayTLS {
            case .implicit: return (tlsPolicy == .verify ? .verify : .required, true)
            case .starttls: return (tlsPolicy == .verify ? .verify : .required, false)
            case .none: return (.disabled, false)
            }
        case .domain(let d):
            switch tlsPolicyDomains[d.lowercased()] ?? tlsPolicy {
            case .opportunistic: return (.opportunistic, false)
            case .verify: return (.verify, false)
            case .none: return (.disabled, false)
            }
        }
    }

    /// The SMTP client's configuration for one connection.
    public func clientConfig(for destination: Destination, policy: TLSPolicy, implicitTLS: Bool) -> SMTPClientConfig {
        let relay = destination == .relay
        return SMTPClientConfig(heloName: heloName, tlsPolicy: policy, implicitTLS: implicitTLS,
                                credentials: relay ? relayCredentials : nil, authRequiresTLS: true,
                                usePipelining: true, reuseConnection: true, timeouts: timeouts)
    }
}

/// Where a group of recipients goes: every recipient to the relay host, or per domain.
public enum Destination: Sendable, Hashable, CustomStringConvertible {
    case relay
    case domain(String)

    public var description: String {
        switch self {
        case .relay: return "relayhost"
        case .domain(let d): return d
        }
    }
}
