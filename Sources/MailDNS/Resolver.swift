// What the outbound agent asks of DNS (RFC 5321 §5.1): MX records of a domain and addresses of
// a host, each answer saying which kind it is (records, none, no such domain, null MX, try
// later) and whether DNSSEC validated it (DANE, RFC 7672, needs that later). Pure values.
import MailSyntax

/// Whether a validating resolver proved the answer (RFC 4033 §5: "secure"); "insecure" is every
/// unsigned or unvalidated answer. A bogus answer is never returned: it is a temporary failure.
public enum DNSSECStatus: String, Sendable, Equatable {
    case secure, insecure

    /// Secure only when both are.
    public func and(_ other: DNSSECStatus) -> DNSSECStatus { self == .secure && other == .secure ? .secure : .insecure }
}

public struct MXRecord: Sendable, Equatable, CustomStringConvertible {
    public var preference: UInt16
    /// Lower-case, no trailing dot; "" for the root (a null MX's ".").
    public var exchange: String

    public init(preference: UInt16, exchange: String) {
        self.preference = preference
        self.exchange = exchange
    }

    public var description: String { "\(preference) \(exchange.isEmpty ? "." : exchange)" }
}

public enum MXAnswer: Sendable, Equatable {
    /// One or more MX records (any null "." record among others dropped), in answer order.
    case records([MXRecord], DNSSECStatus)
    /// NOERROR with no MX (NODATA): the domain itself is the one host (RFC 5321 §5.1's implicit MX).
    case noMX(DNSSECStatus)
    /// NXDOMAIN: the domain does not exist (permanent).
    case nxdomain(DNSSECStatus)
    /// RFC 7505 §3: a single "0 ." record: the domain accepts no mail (permanent, 556 5.1.10).
    case nullMX(DNSSECStatus)
    /// SERVFAIL, REFUSED, a timeout, a bogus DNSSEC answer, a malformed answer: try later.
    case temporaryFailure(String)

    public var dnssec: DNSSECStatus? {
        switch self {
        case .records(_, let d), .noMX(let d), .nxdomain(let d), .nullMX(let d): return d
        case .temporaryFailure: return nil
        }
    }

    public var records: [MXRecord] {
        if case .records(let r, _) = self { return r }
        return []
    }

    /// The exchanges to try in order (RFC 5321 §5.1): by preference, equal preferences shuffled
    /// with `rng`, each host once (at its best preference).
    public func deliveryOrder<G: RandomNumberGenerator>(using rng: inout G) -> [String] {
        var seen = Set<String>(), out = [String]()
        let groups = Dictionary(grouping: records, by: \.preference)
        for pref in groups.keys.sorted() {
            for r in groups[pref]!.shuffled(using: &rng) where seen.insert(r.exchange).inserted { out.append(r.exchange) }
        }
        return out
    }

    /// The answer for MX rdata already known to exist (the resolver's data case): RFC 7505 §3
    /// null MX when the only records are "0 .", else the records but any "." (RFC 7505 §4.3:
    /// a sender must not try to deliver to the root). Malformed rdata is skipped; nothing left
    /// of non-empty data is a temporary failure (a broken answer, not a proven absence).
    public static func from(rdata: [[UInt8]], dnssec: DNSSECStatus) -> MXAnswer {
        let parsed = rdata.compactMap(RData.mx)
        guard !parsed.isEmpty else { return rdata.isEmpty ? .noMX(dnssec) : .temporaryFailure("malformed MX records") }
        let real = parsed.filter { !$0.exchange.isEmpty }
        return real.isEmpty ? .nullMX(dnssec) : .records(real, dnssec)
    }
}

/// An IPv4 or IPv6 address a host name resolved to.
public struct ResolvedAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes, network order.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init?(_ text: String) {
        guard let b = IPAddress.bytes(text) else { return nil }
        bytes = b
    }

    public var isIPv6: Bool { bytes.count == 16 }
    /// "192.0.2.1" or "2001:db8::1".
    public var description: String { RData.addressText(bytes) }
}

public enum AddressAnswer: Sendable, Equatable {
    /// IPv6 addresses first, then IPv4 (RFC 6724's usual preference; the caller may reorder).
    case addresses([ResolvedAddress], DNSSECStatus)
    /// The name exists but has neither AAAA nor A (NODATA for both).
    case noAddresses(DNSSECStatus)
    case nxdomain(DNSSECStatus)
    /// Neither query gave an address and at least one failed temporarily.
    case temporaryFailure(String)

    public var addresses: [ResolvedAddress] {
        if case .addresses(let a, _) = self { return a }
        return []
    }
}

public enum DNSError: Error, Equatable, CustomStringConvertible {
    /// Not a domain name a query can be made for (empty, too long, a non-ASCII U-label).
    case invalidName(String)
    /// The resolver could not be set up (its reason), or was shut down.
    case resolver(String)

    public var description: String {
        switch self {
        case .invalidName(let n): return "invalid domain name: \(n)"
        case .resolver(let r): return "resolver: \(r)"
        }
    }
}

/// DNS for mail delivery. Implementations never block the caller's thread.
public protocol Resolver: Sendable {
    /// The MX records of `domain` (RFC 5321 §5.1).
    func mx(_ domain: String) async throws -> MXAnswer
    /// The AAAA and A records of `host`; an address literal is returned as it is.
    func addresses(_ host: String) async throws -> AddressAnswer
}

/// One query's outcome, before it is read as MX or addresses.
public enum RawAnswer: Sendable, Equatable {
    case data([[UInt8]], DNSSECStatus)
    case noData(DNSSECStatus)
    case nxdomain(DNSSECStatus)
    case failure(String)

    /// The AAAA and A answers of one name, combined (AddressAnswer's cases). Addresses from
    /// either win; both NXDOMAIN is NXDOMAIN; otherwise any failure is temporary.
    public static func addresses(aaaa: RawAnswer, a: RawAnswer) -> AddressAnswer {
        var found = [ResolvedAddress](), dnssec = DNSSECStatus.secure, failures = [String](), nx = 0
        for (answer, size) in [(aaaa, 16), (a, 4)] {
            switch answer {
            case .data(let rdata, let d):
                found += rdata.compactMap { $0.count == size ? ResolvedAddress(bytes: $0) : nil }
                dnssec = dnssec.and(d)
            case .noData(let d): dnssec = dnssec.and(d)
            case .nxdomain(let d): nx += 1; dnssec = dnssec.and(d)
            case .failure(let why): failures.append(why)
            }
        }
        if !found.isEmpty { return .addresses(found, failures.isEmpty ? dnssec : .insecure) }
        if !failures.isEmpty { return .temporaryFailure(failures.joined(separator: "; ")) }
        return nx == 2 ? .nxdomain(dnssec) : .noAddresses(dnssec)
    }

    public var mx: MXAnswer {
        switch self {
        case .data(let rdata, let d): return MXAnswer.from(rdata: rdata, dnssec: d)
        case .noData(let d): return .noMX(d)
        case .nxdomain(let d): return .nxdomain(d)
        case .failure(let why): return .temporaryFailure(why)
        }
    }
}

public enum DNSName {
    /// RFC 1035 §2.3.4: at most 255 octets on the wire, so 253 characters of text.
    public static let maximumLength = 253
    public static let maximumLabelLength = 63

    /// `name` lower-cased without its trailing dot, checked: ASCII labels of 1–63 octets.
    public static func normalized(_ name: String) throws -> String {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        guard !n.isEmpty, n.utf8.count <= maximumLength,
              n.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }),
              n.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ (1...maximumLabelLength).contains($0.utf8.count) })
        else { throw DNSError.invalidName(name) }
        return n
    }
}
