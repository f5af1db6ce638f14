// From a destination to the addresses to connect to, in order (RFC 5321 §5.1): the relay host,
// or the domain's MX hosts by preference (equal ones shuffled, MXRouting), no MX → the domain
// itself, null MX (RFC 7505) → a permanent failure; each host's IPv6 and IPv4 addresses
// interleaved. DNS through MailDNS only; a failed lookup is a temporary failure.
import MailCore
import MailDNS
import OutboundProtocol
import SMTPProtocol

/// One address to connect to, with the host name it stands for (SNI, logs, Remote-MTA).
public struct RouteTarget: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var address: String
    public var port: Int
    public init(host: String, address: String, port: Int) { self.host = host; self.address = address; self.port = port }
    /// Postfix's `relay=` form: host[address]:port.
    public var description: String { "\(host)[\(address)]:\(port)" }
}

public enum RouteResult: Sendable, Equatable {
    case targets([RouteTarget])
    /// Every recipient of the destination fails with this reply now.
    case permanent(SMTPReply)
    /// Every recipient of the destination is deferred with this reply.
    case temporary(SMTPReply)
}

extension SMTPReply {
    /// RFC 3463 X.1.2: the destination domain does not exist (NXDOMAIN).
    public static let noSuchDomain = SMTPReply(550, "5.1.2", "Recipient domain not found (NXDOMAIN)")
    /// RFC 3463 X.4.4: unable to route (the domain and its MX hosts have no address).
    public static let noRoute = SMTPReply(550, "5.4.4", "Recipient domain has no address to deliver to")
    /// RFC 3463 X.4.3: directory server failure (DNS did not answer).
    public static let dnsTemporary = SMTPReply(451, "4.4.3", "Temporary DNS failure")
    /// RFC 3463 X.4.1: no host of the destination answered.
    public static let noAnswer = SMTPReply(451, "4.4.1", "No host of the destination could be reached")
}

public struct Router: Sendable {
    public let resolver: any Resolver
    public let relayhost: RelayHost?
    public let smtpPort: Int
    public let localNames: Set<String>

    public init(resolver: any Resolver, relayhost: RelayHost?, smtpPort: Int, localNames: Set<String> = []) {
        self.resolver = resolver; self.relayhost = relayhost; self.smtpPort = smtpPort; self.localNames = localNames
    }

    /// The destination of a recipient domain.
    public func destination(of domain: String) -> Destination {
        relayhost == nil ? .domain(domain.lowercased()) : .relay
    }

    public func route(_ destination: Destination) async -> RouteResult {
        var rng = SystemRandomNumberGenerator()
        switch destination {
        case .relay:
            guard let relay = relayhost else { return .temporary(.noAnswer) }
            if relay.literal { return await addresses(of: [relay.host], port: relay.port) }
            return await mxRoute(relay.host, port: relay.port, using: &rng)
        case .domain(let domain):
            return await mxRoute(domain, port: smtpPort, using: &rng)
        }
    }

    func mxRoute<R: RandomNumberGenerator>(_ domain: String, port: Int, using rng: inout R) async -> RouteResult {
        if domain.hasPrefix("[") { return await addresses(of: [domain], port: port) }   // an address literal is its own host
        let answer: MXAnswer
        do { answer = try await resolver.mx(domain) } catch DNSError.invalidName {
            return .permanent(.noSuchDomain)
        } catch {
            return .temporary(.dnsTemporary)
        }
        let records: [MXPreference]
        switch answer {
        case .records(let r, _): records = r.map { ($0.preference, $0.exchange) }
        case .noMX: records = []
        case .nullMX: return .permanent(.nullMXDomain)                        // RFC 7505 §4.3
        case .nxdomain: return .permanent(.noSuchDomain)
        case .temporaryFailure(let why): return .temporary(SMTPReply(451, "4.4.3", "Temporary DNS failure: \(why)"))
        }
        switch MXRouting.hosts(for: domain, mx: records, localNames: localNames, using: &rng) {
        case .failure(let e): return .permanent(e.reply)
        case .success(let hosts): return await addresses(of: hosts, port: port)
        }
    }

    /// Every host's addresses, in host order. A host that fails to resolve is skipped; when no
    /// host has an address, a DNS failure among them makes it temporary (else permanent).
    func addresses(of hosts: [String], port: Int) async -> RouteResult {
        var targets: [RouteTarget] = []
        var temporary: String?
        for host in hosts {
            let answer: AddressAnswer
            do { answer = try await resolver.addresses(host) } catch DNSError.invalidName {
                continue
            } catch {
                temporary = "\(error)"; continue
            }
            switch answer {
            case .addresses(let list, _):
                let v6 = list.filter(\.isIPv6).map(\.description), v4 = list.filter { !$0.isIPv6 }.map(\.description)
                for a in MXRouting.addresses(ipv6: v6, ipv4: v4) {
                    targets.append(RouteTarget(host: Self.bare(host), address: a, port: port))
                }
            case .temporaryFailure(let why): temporary = why
            case .noAddresses, .nxdomain: continue
            }
        }
        if !targets.isEmpty { return .targets(targets) }
        if let why = temporary { return .temporary(SMTPReply(451, "4.4.3", "Temporary DNS failure: \(why)")) }
        return .permanent(.noRoute)
    }

    /// "[192.0.2.1]" → "192.0.2.1" for logs and SNI decisions.
    static func bare(_ host: String) -> String {
        var h = host
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.lowercased().hasPrefix("ipv6:") { h = String(h.dropFirst(5)) }
        return h
    }
}
