// The two error types of MailTLS: `TLSError` for a connection (carried through errorCaught,
// always with OpenSSL's reason) and `TLSConfigurationError` for loading certificates and keys.
import CMailTLS

/// What went wrong on one TLS connection. The handler closes the connection after firing it;
/// other connections are never affected.
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The handshake failed; `reason` is OpenSSL's (e.g. "SSL routines: unsupported protocol").
    case handshakeFailed(reason: String)
    /// The peer did not finish the handshake within the configured time.
    case handshakeTimeout(milliseconds: Int64)
    /// The TCP connection ended before the handshake finished.
    case closedDuringHandshake
    /// A record after the handshake could not be processed (bad MAC, unexpected message...).
    case protocolError(reason: String)
    /// The TCP connection ended without the peer's close_notify (RFC 8446 §6.1): data may have
    /// been truncated. Line protocols notice truncation themselves, so this is informational.
    case uncleanShutdown
    /// STARTTLS on a connection that already has TLS (RFC 3207 §4.2: refuse a second one).
    case alreadyActive
    /// Client mode: the server's certificate did not verify (X509_verify_cert_error_string).
    case certificateVerificationFailed(reason: String)
    /// OpenSSL could not create the connection object (out of memory).
    case setupFailed(reason: String)

    public var description: String {
        switch self {
        case .handshakeFailed(let r): return "TLS handshake failed: \(r)"
        case .handshakeTimeout(let ms): return "TLS handshake not completed within \(ms) ms"
        case .closedDuringHandshake: return "connection closed during the TLS handshake"
        case .protocolError(let r): return "TLS protocol error: \(r)"
        case .uncleanShutdown: return "connection closed without TLS close_notify"
        case .alreadyActive: return "TLS is already active on this connection"
        case .certificateVerificationFailed(let r): return "TLS certificate verification failed: \(r)"
        case .setupFailed(let r): return "cannot set up TLS: \(r)"
        }
    }
}

/// Why a certificate, key or setting could not be loaded. Each message names the file.
public enum TLSConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingFile(path: String, what: String)
    case unreadableFile(path: String, what: String, reason: String)
    case notARegularFile(path: String, what: String)
    /// A private key readable or writable by group or others.
    case insecureKeyFile(path: String, mode: UInt32)
    case invalidCertificate(path: String, reason: String)
    case invalidPrivateKey(path: String, reason: String)
    case keyDoesNotMatchCertificate(certificate: String, key: String)
    case invalidSetting(name: String, value: String, reason: String)
    case invalidDomain(String)
    /// Exactly one of the certificate and key exists, so a self-signed pair is not generated.
    case incompleteCertificatePair(existing: String, missing: String)
    case selfSignedGenerationFailed(reason: String)
    case openSSL(reason: String)

    public var description: String {
        switch self {
        case .missingFile(let p, let w): return "\(w) file \(p) does not exist"
        case .unreadableFile(let p, let w, let r): return "\(w) file \(p) cannot be read: \(r)"
        case .notARegularFile(let p, let w): return "\(w) file \(p) is not a regular file"
        case .insecureKeyFile(let p, let m):
            return "private key file \(p) has mode \(octal(m)): it is accessible by group or others; run chmod 600 \(p)"
        case .invalidCertificate(let p, let r): return "certificate file \(p) is not a usable PEM certificate: \(r)"
        case .invalidPrivateKey(let p, let r): return "private key file \(p) is not a usable unencrypted PEM key: \(r)"
        case .keyDoesNotMatchCertificate(let c, let k): return "private key \(k) does not belong to certificate \(c)"
        case .invalidSetting(let n, let v, let r): return "TLS setting \(n) = \"\(v)\" refused: \(r)"
        case .invalidDomain(let d): return "SNI certificate domain \"\(d)\" is not a host name or *.wildcard"
        case .incompleteCertificatePair(let e, let m):
            return "\(e) exists but \(m) does not; not generating a self-signed certificate over half a pair"
        case .selfSignedGenerationFailed(let r): return "cannot generate a self-signed certificate: \(r)"
        case .openSSL(let r): return "OpenSSL: \(r)"
        }
    }
}

func octal(_ m: UInt32) -> String {
    let s = String(m & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}

/// This thread's OpenSSL error queue as text, emptied. "" when nothing was queued.
func drainOpenSSLErrors() -> String {
    var buf = [CChar](repeating: 0, count: 1024)
    let n = mtls_drain_errors(&buf, buf.count)
    if n == 0 { return "" }
    return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Calls a snprintf-style C function, growing the buffer when the first try was too small.
func cString(_ fill: (UnsafeMutablePointer<CChar>, Int) -> Int) -> String {
    var cap = 512
    while true {
        var buf = [CChar](repeating: 0, count: cap)
        let n = buf.withUnsafeMutableBufferPointer { fill($0.baseAddress!, $0.count) }
        if n < cap { return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        cap = n + 1
    }
}
