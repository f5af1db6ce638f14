// What a TLS server or client context is built from: certificates, protocol floor, ciphers,
// groups, session resumption, timeouts. Plain values; nothing here touches a file or OpenSSL.
import NIOCore
import CMailTLS

/// The TLS versions Postern will speak. SSLv3, TLS 1.0 and TLS 1.1 are deliberately absent
/// (RFC 8996 deprecates them; RFC 8997 updates RFC 8314 to require TLS 1.2 or later).
public enum TLSVersion: String, Sendable, CaseIterable, Comparable {
    case tls12 = "TLSv1.2"   // RFC 5246
    case tls13 = "TLSv1.3"   // RFC 8446

    var openSSLValue: Int32 {
        switch self {
        case .tls12: return TLS1_2_VERSION
        case .tls13: return TLS1_3_VERSION
        }
    }

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.openSSLValue < b.openSSLValue }

    /// Parses "1.2", "TLSv1.2", "tls1.2", "1.3", ...
    public init?(parsing s: String) {
        var l = Substring(s.lowercased())
        if l.hasPrefix("tlsv") { l = l.dropFirst(4) } else if l.hasPrefix("tls") { l = l.dropFirst(3) }
        switch l {
        case "1.2", "1_2": self = .tls12
        case "1.3", "1_3": self = .tls13
        default: return nil
        }
    }
}

/// Cipher and group defaults shared by servers and clients: forward-secret AEAD suites only
/// (the Mozilla "intermediate" profile), X25519 first.
public enum TLSDefaults {
    /// TLS 1.2 cipher list (OpenSSL syntax). RFC 7525 §4.2 recommended suites plus ChaCha20.
    public static let cipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
    ].joined(separator: ":")
    /// TLS 1.3 cipher suites (RFC 8446 §9.1 mandatory-to-implement first).
    public static let cipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// Key-exchange groups (RFC 8446 §4.2.7 names; OpenSSL accepts these spellings).
    public static let groups = "X25519:P-256:P-384"
}

/// Configuration of a `TLSServerContext`.
public struct TLSConfiguration: Sendable {
    /// Where a fresh install keeps its certificate; `ensureSelfSigned` writes here by default.
    public static let defaultCertificatePath = "/etc/postern/tls/cert.pem"
    public static let defaultPrivateKeyPath = "/etc/postern/tls/key.pem"

    /// The certificate chain (PEM, leaf first) and key served when no SNI entry matches.
    public var certificatePath: String
    public var privateKeyPath: String
    /// Certificates chosen by the client's SNI name (RFC 6066 §3). Keys are host names, matched
    /// case-insensitively; "*.example.org" matches exactly one more label (RFC 6125 §6.4.3).
    public var domainCertificates: [String: (cert: String, key: String)]
    public var minimumVersion: TLSVersion
    /// nil: the newest OpenSSL supports (TLS 1.3).
    public var maximumVersion: TLSVersion?
    /// TLS 1.2 cipher list, OpenSSL syntax.
    public var cipherList: String
    /// TLS 1.3 cipher suites.
    public var cipherSuites: String
    /// Key-exchange groups, colon separated.
    public var groups: String
    /// Server cipher order wins (RFC 7525 §4.1 leaves it to the server).
    public var preferServerCiphers: Bool
    /// Server-side session cache (TLS 1.2 session ids) in each process.
    public var sessionCache: Bool
    public var sessionCacheSize: Int
    /// Lifetime of a cached session or ticket, seconds.
    public var sessionTimeout: Int
    /// Session tickets (RFC 5077; RFC 8446 §4.6.1 NewSessionTicket).
    public var sessionTickets: Bool
    /// 80 bytes of secret shared by every worker process, from which each derives the same
    /// rotating ticket keys, so a ticket issued by one is accepted by the others. nil: each
    /// context draws its own fixed keys (resumption then only works against the same
    /// process, and not across a reload).
    public var sessionTicketKeys: [UInt8]?
    /// Seconds a ticket key encrypts new tickets; the previous key still decrypts (and
    /// renews) tickets for as long again (RFC 5077 §5.5, RFC 8446 §4.6.1). Only with
    /// `sessionTicketKeys`.
    public var sessionTicketKeyLifetime: Int
    /// Added to the clock the ticket keys rotate by (tests step through epochs with it).
    var ticketClockOffset = 0
    /// A connection that has not finished its handshake by then is closed with
    /// `TLSError.handshakeTimeout`.
    public var handshakeTimeout: TimeAmount
    /// How long a closing connection waits for its close_notify to be written.
    public var shutdownTimeout: TimeAmount
    /// Free OpenSSL's per-connection read/write buffers while idle (SSL_MODE_RELEASE_BUFFERS:
    /// about 34 KB per idle connection, DESIGN §9 "TLS buffers are released while idle") at a
    /// small cost in throughput. On by default.
    public var releaseBuffers: Bool

    public init(certificatePath: String = TLSConfiguration.defaultCertificatePath,
                privateKeyPath: String = TLSConfiguration.defaultPrivateKeyPath,
                domainCertificates: [String: (cert: String, key: String)] = [:],
                minimumVersion: TLSVersion = .tls12,
                maximumVersion: TLSVersion? = nil,
                cipherList: String = TLSDefaults.cipherList,
                cipherSuites: String = TLSDefaults.cipherSuites,
                groups: String = TLSDefaults.groups,
                preferServerCiphers: Bool = true,
                sessionCache: Bool = true,
                sessionCacheSize: Int = 20_480,
                sessionTimeout: Int = 3_600,
                sessionTickets: Bool = true,
                sessionTicketKeys: [UInt8]? = nil,
                sessionTicketKeyLifetime: Int = 43_200,
                handshakeTimeout: TimeAmount = .seconds(30),
                shutdownTimeout: TimeAmount = .seconds(5),
                releaseBuffers: Bool = true) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.domainCertificates = domainCertificates
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.cipherList = cipherList
        self.cipherSuites = cipherSuites
        self.groups = groups
        self.preferServerCiphers = preferServerCiphers
        self.sessionCache = sessionCache
        self.sessionCacheSize = sessionCacheSize
        self.sessionTimeout = sessionTimeout
        self.sessionTickets = sessionTickets
        self.sessionTicketKeys = sessionTicketKeys
        self.sessionTicketKeyLifetime = sessionTicketKeyLifetime
        self.handshakeTimeout = handshakeTimeout
        self.shutdownTimeout = shutdownTimeout
        self.releaseBuffers = releaseBuffers
    }
}

/// Configuration of a `TLSClientContext` (the outbound SMTP client).
public struct TLSClientConfiguration: Sendable {
    /// Verify the server's chain and host name (RFC 6125). Opportunistic SMTP (RFC 7435) turns
    /// this off; a configured relay host or MTA-STS turns it on.
    public var verifyPeer: Bool
    /// PEM bundle of trusted CAs; nil: the system default store (/etc/ssl/certs).
    public var caFile: String?
    public var minimumVersion: TLSVersion
    public var maximumVersion: TLSVersion?
    public var cipherList: String
    public var cipherSuites: String
    public var groups: String
    public var handshakeTimeout: TimeAmount
    public var shutdownTimeout: TimeAmount

    public init(verifyPeer: Bool = true, caFile: String? = nil,
                minimumVersion: TLSVersion = .tls12, maximumVersion: TLSVersion? = nil,
                cipherList: String = TLSDefaults.cipherList, cipherSuites: String = TLSDefaults.cipherSuites,
                groups: String = TLSDefaults.groups,
                handshakeTimeout: TimeAmount = .seconds(30), shutdownTimeout: TimeAmount = .seconds(5)) {
        self.verifyPeer = verifyPeer
        self.caFile = caFile
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.cipherList = cipherList
        self.cipherSuites = cipherSuites
        self.groups = groups
        self.handshakeTimeout = handshakeTimeout
        self.shutdownTimeout = shutdownTimeout
    }
}
