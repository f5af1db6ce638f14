// What a loaded certificate says (for `postern cert show` and start-up logs), and first-start
// generation of a self-signed certificate. Generation never overwrites an existing file.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CMailTLS

/// A certificate's identity and validity, as loaded.
public struct CertificateInfo: Sendable, Equatable, CustomStringConvertible {
    /// "default" for the fallback certificate, else the SNI name it is configured for.
    public var servedFor: String
    public var certificatePath: String
    /// RFC 2253 form, e.g. "CN=mail.example.org,O=Example".
    public var subject: String
    public var issuer: String
    /// DNS names and IP addresses of the subjectAltName extension.
    public var subjectAlternativeNames: [String]
    /// Validity bounds, seconds since the epoch (UTC).
    public var notBefore: Int64
    public var notAfter: Int64
    public var serialNumber: String
    public var sha256Fingerprint: String
    /// "EC P-256", "RSA 2048", ...
    public var keyType: String

    public var isSelfSigned: Bool { subject == issuer }
    public var notBeforeString: String { formatUTC(notBefore) }
    public var notAfterString: String { formatUTC(notAfter) }

    /// Seconds left until expiry (negative once expired).
    public func secondsUntilExpiry(now: Int64 = Int64(time(nil))) -> Int64 { notAfter - now }

    public var description: String {
        """
        \(servedFor): \(certificatePath)
          subject:  \(subject)
          SAN:      \(subjectAlternativeNames.joined(separator: ", "))
          issuer:   \(issuer)\(isSelfSigned ? " (self-signed)" : "")
          valid:    \(notBeforeString) to \(notAfterString)
          key:      \(keyType)
          sha256:   \(sha256Fingerprint)
        """
    }

    /// Reads an X509 object (not consumed).
    init(x509 x: OpaquePointer, servedFor: String, path: String) {
        self.servedFor = servedFor
        self.certificatePath = path
        subject = cString { mtls_x509_subject(x, $0, $1) }
        issuer = cString { mtls_x509_issuer(x, $0, $1) }
        let sans = cString { mtls_x509_sans(x, $0, $1) }
        subjectAlternativeNames = sans.isEmpty ? [] : sans.split(separator: "\n").map(String.init)
        var nb: Int64 = 0, na: Int64 = 0
        _ = mtls_x509_validity(x, &nb, &na)
        notBefore = nb
        notAfter = na
        serialNumber = cString { mtls_x509_serial_hex(x, $0, $1) }
        sha256Fingerprint = cString { mtls_x509_sha256_hex(x, $0, $1) }
        keyType = cString { mtls_x509_key_description(x, $0, $1) }
    }

    /// Inspects the first certificate of a PEM file without loading any key.
    public static func read(path: String) throws -> CertificateInfo {
        let pem = try readFile(path, what: "certificate", isKey: false)
        return try parse(pem: pem, path: path, servedFor: "file")
    }

    static func parse(pem: [UInt8], path: String, servedFor: String) throws -> CertificateInfo {
        mtls_clear_errors()
        let x = pem.withUnsafeBytes { mtls_x509_from_pem($0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        guard let x else {
            let r = drainOpenSSLErrors()
            throw TLSConfigurationError.invalidCertificate(path: path, reason: r.isEmpty ? "no certificate found" : r)
        }
        defer { X509_free(x) }
        return CertificateInfo(x509: x, servedFor: servedFor, path: path)
    }
}

func formatUTC(_ t: Int64) -> String {
    var tt = time_t(t)
    var tm = tm()
    gmtime_r(&tt, &tm)
    var buf = [CChar](repeating: 0, count: 64)
    let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S UTC", &tm)
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Who owns generated certificate files.
public struct FileOwner: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public init(uid: UInt32, gid: UInt32) { self.uid = uid; self.gid = gid }

    /// Looks a user up in the password database (its primary group).
    public init(userName: String) throws {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buf = [CChar](repeating: 0, count: 16_384)
        let r = getpwnam_r(userName, &pw, &buf, buf.count, &result)
        guard r == 0, result != nil else {
            throw TLSConfigurationError.selfSignedGenerationFailed(reason: "no such user \(userName)")
        }
        uid = pw.pw_uid
        gid = pw.pw_gid
    }
}

extension TLSServerContext {
    /// Validity of a generated certificate: 825 days, the longest browsers ever accepted for a
    /// leaf certificate (CA/Browser Forum ballot 193).
    public static let selfSignedValidityDays = 825

    /// First start without a certificate: writes a self-signed ECDSA P-256 certificate with
    /// SAN = `hostname` to `certPath` (mode 0644) and its key to `keyPath` (mode 0600), both
    /// owned by `owner` (nil: the calling user). Generates only when neither file exists and
    /// returns true then, so the caller logs its warning once. Missing parent directories are
    /// created with mode 0755. Throws if exactly one of the two files exists.
    @discardableResult
    public static func ensureSelfSigned(certPath: String, keyPath: String, hostname: String, owner: FileOwner? = nil) throws -> Bool {
        let certExists = access(certPath, F_OK) == 0
        let keyExists = access(keyPath, F_OK) == 0
        if certExists && keyExists { return false }
        if certExists { throw TLSConfigurationError.incompleteCertificatePair(existing: certPath, missing: keyPath) }
        if keyExists { throw TLSConfigurationError.incompleteCertificatePair(existing: keyPath, missing: certPath) }
        guard !hostname.isEmpty, !hostname.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7f }) else {
            throw TLSConfigurationError.selfSignedGenerationFailed(reason: "\"\(hostname)\" is not a host name")
        }
        try makeParentDirectory(of: certPath)
        try makeParentDirectory(of: keyPath)
        var err = [CChar](repeating: 0, count: 1024)
        let uid = owner.map { Int($0.uid) } ?? -1
        let gid = owner.map { Int($0.gid) } ?? -1
        let ok = mtls_generate_self_signed(certPath, keyPath, hostname, Int32(selfSignedValidityDays), uid, gid, &err, err.count)
        guard ok == 1 else {
            throw TLSConfigurationError.selfSignedGenerationFailed(
                reason: String(decoding: err.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return true
    }
}

private func makeParentDirectory(of path: String) throws {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
    let dir = String(path[..<slash])
    var components: [String] = []
    var current = dir
    while access(current, F_OK) != 0 {
        components.append(current)
        guard let s = current.lastIndex(of: "/"), s != current.startIndex else { break }
        current = String(current[..<s])
    }
    for d in components.reversed() {
        if mkdir(d, 0o755) != 0 && errno != EEXIST {
            throw TLSConfigurationError.selfSignedGenerationFailed(reason: "cannot create directory \(d): \(String(cString: strerror(errno)))")
        }
    }
}
