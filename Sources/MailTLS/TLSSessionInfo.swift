// What a finished handshake negotiated, for session logs and SMTP `Received:` clauses, and the
// user event that announces it. Values only; read from the SSL object once, on the event loop.
import CMailTLS

/// The negotiated parameters of one TLS session.
public struct TLSSessionInfo: Sendable, Equatable, CustomStringConvertible {
    /// "TLSv1.2" or "TLSv1.3".
    public var protocolVersion: String
    /// OpenSSL's cipher name, e.g. "TLS_AES_128_GCM_SHA256" or "ECDHE-ECDSA-AES128-GCM-SHA256".
    public var cipher: String
    /// The IANA registry name, e.g. "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".
    public var cipherStandardName: String
    public var cipherBits: Int
    /// The SNI host name the client asked for (RFC 6066 §3), if any.
    public var serverName: String?
    /// The session was resumed (ticket or session id) rather than fully negotiated.
    public var resumed: Bool
    /// Key-exchange group, e.g. "X25519".
    public var keyExchangeGroup: String?
    /// The peer's certificate subject (server certificate in client mode), if any.
    public var peerCertificateSubject: String?
    /// Client mode with verification on: the chain and host name verified.
    public var peerVerified: Bool

    public init(protocolVersion: String, cipher: String, cipherStandardName: String, cipherBits: Int,
                serverName: String?, resumed: Bool, keyExchangeGroup: String?,
                peerCertificateSubject: String?, peerVerified: Bool) {
        self.protocolVersion = protocolVersion
        self.cipher = cipher
        self.cipherStandardName = cipherStandardName
        self.cipherBits = cipherBits
        self.serverName = serverName
        self.resumed = resumed
        self.keyExchangeGroup = keyExchangeGroup
        self.peerCertificateSubject = peerCertificateSubject
        self.peerVerified = peerVerified
    }

    init(ssl: OpaquePointer, verifying: Bool) {
        protocolVersion = SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown"
        cipher = mtls_ssl_cipher_name(ssl).map { String(cString: $0) } ?? "unknown"
        cipherStandardName = mtls_ssl_cipher_standard_name(ssl).map { String(cString: $0) } ?? cipher
        cipherBits = Int(mtls_ssl_cipher_bits(ssl))
        serverName = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) }
        resumed = SSL_session_reused(ssl) == 1
        keyExchangeGroup = mtls_ssl_group_name(ssl).map { String(cString: $0) }
        peerCertificateSubject = mtls_ssl_peer_certificate(ssl).map { x in cString { mtls_x509_subject(x, $0, $1) } }
        if verifying {
            var buf = [CChar](repeating: 0, count: 8)
            peerVerified = mtls_ssl_verify_result(ssl, &buf, buf.count) == 0 && peerCertificateSubject != nil
        } else {
            peerVerified = false
        }
    }

    /// The "tls" clause RFC 8314 registers for the `Received:` header (IANA "Additional
    /// Registered Clauses"): the IANA cipher suite name, e.g. "tls TLS_AES_128_GCM_SHA256".
    public var receivedClause: String { "tls \(cipherStandardName)" }

    /// The comment Postfix writes in `Received:`, which log readers expect:
    /// "(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits))".
    public var receivedComment: String {
        "(using \(protocolVersion) with cipher \(cipher) (\(cipherBits)/\(cipherBits) bits))"
    }

    public var description: String {
        var s = "\(protocolVersion) \(cipher)"
        if let g = keyExchangeGroup { s += " \(g)" }
        if let n = serverName { s += " sni=\(n)" }
        if resumed { s += " resumed" }
        return s
    }
}

/// User inbound events fired by `TLSHandler`.
public enum TLSEvent: Sendable, Equatable {
    /// The handshake finished; application data may flow. Fired once per connection, after any
    /// plaintext written before the handshake has been encrypted and flushed.
    case handshakeCompleted(TLSSessionInfo)
}
