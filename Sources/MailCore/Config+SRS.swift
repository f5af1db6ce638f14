// [srs]: the Sender Rewriting Scheme the store applies to forwarded mail (as postsrsd does):
// the domain SRS addresses are in. The secret is not configured: the store keeps it in its data dir.

public struct SRSConfig: Sendable, Equatable {
    /// The domain of SRS0/SRS1 addresses: its MX must be us, so bounces come back. nil: the
    /// server's `hostname` (see `PosternConfig.srsDomain`).
    public var domain: String?

    /// RFC 1035 §2.3.4: a domain name is at most 255 octets (253 in text form), a label 63.
    static let maxDomainLength = 253
    static let maxLabelLength = 63

    public init() {}
}

extension SRSConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        if let d = try s.string("domain") {
            // A host name: LDH labels separated by dots (RFC 1123 §2.1), no trailing dot.
            let labels = d.split(separator: ".", omittingEmptySubsequences: false)
            let ok = d.utf8.count <= Self.maxDomainLength && labels.allSatisfy { label in
                !label.isEmpty && label.count <= Self.maxLabelLength && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }
            }
            guard ok else { throw s.error("domain", "expected a host name such as mail.example.org") }
            domain = d.lowercased()
        }
    }
}

extension PosternConfig {
    /// The domain the store's SRS addresses are in: `[srs] domain`, else `hostname`.
    public var srsDomain: String { srs.domain ?? hostname }
}
