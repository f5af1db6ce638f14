// IP address text to bytes, prefix masking, and the key a per-client limit counts a client by
// (one place for the worker's ClientLimiter, the store's AuthBudget and trusted_networks).
#if canImport(Glibc)
import Glibc
#endif

public enum IPAddress {
    /// The 4 (IPv4) or 16 (IPv6) bytes of an address in text form; nil when it is not one.
    public static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// `bytes` with every bit after the first `prefix` cleared.
    public static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { i, b in
            let keep = min(max(prefix - i * 8, 0), 8)
            return keep == 8 ? b : b & ~(UInt8(0xff) >> keep)
        }
    }

    /// ::ffff:a.b.c.d, an IPv4 address on a dual-stack socket (RFC 4291 §2.5.5.2): its 4 bytes.
    public static func mappedIPv4(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        return Array(bytes[12...])
    }

    /// What a per-client limit counts `client` as: an IPv4 address as it is, an IPv4-mapped
    /// IPv6 address as its IPv4 address, an IPv6 address as its `ipv6Prefix` network
    /// ("2001:db8:1:2::/64": one site's hosts, one count), anything else (a unix peer) as it is.
    public static func clientKey(_ client: String, ipv6Prefix: Int) -> String {
        guard let b = bytes(client), b.count == 16 else { return client }
        if let v4 = mappedIPv4(b) { return v4.map(String.init).joined(separator: ".") }
        let m = masked(b, ipv6Prefix)
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let text = m.withUnsafeBytes { p in inet_ntop(AF_INET6, p.baseAddress, &out, socklen_t(out.count)) != nil ? String(cString: out) : client }
        return "\(text)/\(ipv6Prefix)"
    }
}
