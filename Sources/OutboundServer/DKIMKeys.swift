// The DKIM keys the agent signs with, loaded once from DKIMKeyDirectory before the privilege drop
// (the key files are root-only 0600, so no other worker can sign). A sender domain with several
// keys gets one signature per key (e.g. rsa-sha256 and ed25519-sha256, RFC 8463 §1).
import DKIM
import Logging

public final class DKIMKeys: @unchecked Sendable {
    /// domain (normalized) → (selector, key), by selector.
    public let keys: [String: [(selector: String, key: DKIMKey)]]

    public init(_ keys: [String: [(selector: String, key: DKIMKey)]]) { self.keys = keys }

    /// Every key under `directory`, or only `selector`'s when it is not "". A key that does not
    /// load is logged and skipped: mail of its domain then leaves unsigned rather than not at all.
    public static func load(_ directory: DKIMKeyDirectory, selector: String, logger: Logger) -> DKIMKeys {
        var out: [String: [(selector: String, key: DKIMKey)]] = [:]
        for domain in directory.domains() {
            for s in directory.selectors(domain: domain) where selector.isEmpty || s == selector.lowercased() {
                do {
                    out[domain, default: []].append((s, try directory.load(domain: domain, selector: s)))
                } catch {
                    logger.error("DKIM key \(domain)/\(s) not loaded: \(error)")
                }
            }
        }
        return DKIMKeys(out)
    }

    public var isEmpty: Bool { keys.isEmpty }

    /// New signers for mail from `domain` (none when it has no key).
    public func signers(for domain: String) -> [DKIMSigner] {
        guard let d = DKIMName.normalized(domain), let list = keys[d] else { return [] }
        return list.compactMap { try? DKIMSigner(domain: d, selector: $0.selector, key: $0.key) }
    }
}
