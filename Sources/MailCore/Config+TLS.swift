// [tls] (DESIGN §5): certificates, SNI and protocol settings for every TLS listener. Relative
// paths are relative to the config file's directory; with no certificate present the master
// generates a self-signed one there and warns.

/// min_version.
public enum TLSMinVersion: String, Sendable, Equatable, CaseIterable {
    case tls12 = "TLSv1.2"
    case tls13 = "TLSv1.3"
}

public struct TLSSettings: Sendable, Equatable {
    public var certificate: String
    public var key: String
    public var sni: [String: [String]] = [:]        // host → [certificate, key]
    public var minVersion = TLSMinVersion.tls12
    public var ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    public var ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    public var groups = "X25519:P-256:P-384"
    public var handshakeTimeout = 30.0
    /// Seconds each session-ticket key is used for new tickets; the previous one still
    /// decrypts (RFC 5077 §5.5). Every smtpd derives the keys from the master's secret.
    public var ticketKeyLifetime = 43_200

    /// `base`: the config file's directory (tls/cert.pem and tls/key.pem in it).
    init(base: String) {
        certificate = base + "/tls/cert.pem"
        key = base + "/tls/key.pem"
    }
}

extension TLSSettings: ConfigSection {
    mutating func read(_ t: TableReader, _ context: ConfigContext) throws {
        certificate = try t.path("certificate", base: context.base) ?? certificate
        key = try t.path("key", base: context.base) ?? key
        minVersion = try t.oneOf("min_version", TLSMinVersion.self) ?? minVersion
        ciphers = try t.string("ciphers") ?? ciphers
        ciphersuites = try t.string("ciphersuites") ?? ciphersuites
        groups = try t.string("groups") ?? groups
        handshakeTimeout = try t.seconds("handshake_timeout") ?? handshakeTimeout
        ticketKeyLifetime = try t.int("ticket_key_lifetime", 60...604_800) ?? ticketKeyLifetime
        if let s = try t.table("sni") {
            for host in s.table.keys {
                guard let pair = try s.stringArray(host), pair.count == 2 else {
                    throw s.error(host, "expected [\"certificate.pem\", \"key.pem\"]")
                }
                sni[host.lowercased()] = pair.map { $0.hasPrefix("/") ? $0 : context.base + "/" + $0 }
            }
            try s.finish()
        }
    }
}
