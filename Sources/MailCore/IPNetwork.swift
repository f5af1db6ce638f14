// An IP network in CIDR notation ("192.0.2.0/24", "2001:db8::/32") and whether an address is
// in it: the [smtp] trusted_networks list. IPv4-mapped IPv6 addresses match IPv4 networks.
import Foundation

public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 bytes, the bits after `prefix` cleared.
    public let network: [UInt8]
    public let prefix: Int

    /// "address/prefix", or a bare address (a host: /32, /128). Nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = IPNetwork.bytes(String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p), parts[1].allSatisfy(\.isASCII) else { return nil }
            prefix = p
        }
        self.prefix = prefix
        self.network = IPNetwork.masked(bytes, prefix)
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        network.withUnsafeBytes { _ = inet_ntop(network.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefix)"
    }

    /// `address` (as NIO prints it, brackets allowed) is in this network.
    public func contains(_ address: String) -> Bool {
        var text = Substring(address)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        guard var bytes = IPNetwork.bytes(String(text)) else { return false }
        if bytes.count == 16, network.count == 4, bytes.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] {
            bytes = Array(bytes.suffix(4))     // ::ffff:a.b.c.d
        }
        return bytes.count == network.count && IPNetwork.masked(bytes, prefix) == network
    }

    /// True when any of `networks` contains `address`.
    public static func contains(_ networks: [IPNetwork], _ address: String) -> Bool {
        networks.contains { $0.contains(address) }
    }

    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { i, b in
            let keep = min(max(prefix - i * 8, 0), 8)
            return keep == 8 ? b : b & ~(UInt8(0xff) >> keep)
        }
    }
}
