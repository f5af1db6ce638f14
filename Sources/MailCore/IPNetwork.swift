// An IP network in CIDR notation ("192.0.2.0/24", "2001:db8::/32") and whether an address is
// in it: the [smtp] trusted_networks list. IPv4-mapped IPv6 addresses match IPv4 networks.
import Foundation
import MailSyntax

public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 bytes, the bits after `prefix` cleared.
    public let network: [UInt8]
    public let prefix: Int

    /// "address/prefix", or a bare address (a host: /32, /128). Nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = IPAddress.bytes(String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p), parts[1].allSatisfy(\.isASCII) else { return nil }
            prefix = p
        }
        self.prefix = prefix
        self.network = IPAddress.masked(bytes, prefix)
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
        guard var bytes = IPAddress.bytes(String(text)) else { return false }
        if network.count == 4, let v4 = IPAddress.mappedIPv4(bytes) { bytes = v4 }
        return bytes.count == network.count && IPAddress.masked(bytes, prefix) == network
    }

    /// True when any of `networks` contains `address`.
    public static func contains(_ networks: [IPNetwork], _ address: String) -> Bool {
        networks.contains { $0.contains(address) }
    }
}
