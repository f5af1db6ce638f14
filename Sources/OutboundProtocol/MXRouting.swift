// From a domain's MX records to the ordered hosts, then addresses, the client tries (RFC 5321
// §5.1, null MX RFC 7505). Pure: the glue resolves, this orders; randomness is injected so the
// order of equal preferences is reproducible in tests.
import SMTPProtocol

/// One MX record as the resolver gives it: (preference, exchange host; a trailing dot is allowed,
/// "." or "" is the root of a null MX). A tuple rather than a type of its own, so MailDNS's
/// `MXRecord` maps onto it with `records.map { ($0.preference, $0.exchange) }` and the glue never
/// sees two types of the same name.
public typealias MXPreference = (preference: UInt16, exchange: String)

/// Why a domain has no host to try. Both are permanent: bounce at once.
public enum MXRoutingError: Error, Sendable, Equatable {
    /// RFC 7505 §3: the domain accepts no mail.
    case nullMX
    /// RFC 5321 §5.1: we are the best MX and no better one exists (a loop).
    case loopsBackToMyself

    /// The reply a DSN reports for this recipient.
    public var reply: SMTPReply {
        switch self {
        case .nullMX: return .nullMXDomain
        case .loopsBackToMyself: return .mailLoopsBack
        }
    }
}

extension SMTPReply {
    /// RFC 7505 §4.3: 556 5.1.10.
    public static let nullMXDomain = SMTPReply(556, "5.1.10", "Recipient domain does not accept mail (null MX)")
    /// RFC 5321 §5.1; RFC 3463 X.4.6 routing loop.
    public static let mailLoopsBack = SMTPReply(554, "5.4.6", "Mail for this domain loops back to myself")
}

/// How the addresses of one host are ordered.
public enum AddressOrder: Sendable, Equatable {
    /// IPv6, IPv4, IPv6, IPv4, … (RFC 8305 §4: interleave the families, IPv6 first), so one
    /// broken family costs one attempt, not all of them. The default.
    case interleaved
    /// Every IPv6 address, then every IPv4 address.
    case ipv6First
    /// IPv4 only (a host without IPv6 connectivity).
    case ipv4Only
    /// IPv6 only.
    case ipv6Only
}

public enum MXRouting {
    /// The hosts to try for `domain`, best first.
    /// - `mx`: the MX records; empty when the domain has none (NODATA): then the domain itself
    ///   is the only host (implicit MX, RFC 5321 §5.1). A domain that does not exist at all is
    ///   the resolver's permanent error, not this function's.
    /// - A single `0 .` record is a null MX (RFC 7505 §3) → `.nullMX`. A "." among other
    ///   records is ignored (§3 forbids the mix; the real exchanges are still tried).
    /// - Lower preference first; equal preferences in random order (§5.1: "SHOULD ... randomize").
    /// - `localNames`: our own host names; if one is listed, it and every host of equal or
    ///   higher preference are dropped (§5.1), and if nothing is left the mail loops.
    /// - A domain that is an address literal (`[192.0.2.1]`) is its own host.
    public static func hosts<R: RandomNumberGenerator>(for domain: String, mx: [MXPreference], localNames: Set<String> = [],
                                                       using rng: inout R) -> Result<[String], MXRoutingError> {
        if domain.hasPrefix("[") { return .success([domain]) }
        let records = mx.map { (preference: $0.preference, host: normalize($0.exchange)) }
        let real = records.filter { !$0.host.isEmpty }
        if real.isEmpty {
            return records.isEmpty ? .success([normalize(domain)]) : .failure(.nullMX)
        }
        var kept = real
        let locals = Set(localNames.map(normalize))
        if let best = real.filter({ locals.contains($0.host) }).map(\.preference).min() {
            kept = real.filter { $0.preference < best }
            if kept.isEmpty { return .failure(.loopsBackToMyself) }
        }
        var ordered: [String] = []
        var seen: Set<String> = []
        for preference in Set(kept.map(\.preference)).sorted() {
            var group = kept.filter { $0.preference == preference }.map(\.host)
            group.shuffle(using: &rng)
            for host in group where seen.insert(host).inserted { ordered.append(host) }
        }
        return .success(ordered)
    }

    /// One host's addresses in the order to connect to them (see `AddressOrder`); each list
    /// keeps the resolver's order.
    public static func addresses(ipv6: [String], ipv4: [String], order: AddressOrder = .interleaved) -> [String] {
        switch order {
        case .ipv6First: return ipv6 + ipv4
        case .ipv4Only: return ipv4
        case .ipv6Only: return ipv6
        case .interleaved:
            var out: [String] = []
            out.reserveCapacity(ipv6.count + ipv4.count)
            for i in 0..<max(ipv6.count, ipv4.count) {
                if i < ipv6.count { out.append(ipv6[i]) }
                if i < ipv4.count { out.append(ipv4[i]) }
            }
            return out
        }
    }

    /// Lowercased, without the trailing dot of a fully qualified name ("." becomes "").
    static func normalize(_ host: String) -> String {
        var h = host.lowercased()
        while h.hasSuffix(".") { h.removeLast() }
        return h
    }
}
