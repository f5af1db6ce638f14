// postern.toml [tls] → MailTLS configuration; shared by smtpd and the master (which checks
// certificates before a reload replaces the workers, and makes a self-signed one if none).
import Foundation
import NIOCore
import MailCore
import MailTLS

public enum TLSSetup {
    public static func configuration(_ t: TLSSettings) -> TLSConfiguration {
        var sni: [String: (cert: String, key: String)] = [:]
        for (host, pair) in t.sni where pair.count == 2 { sni[host] = (pair[0], pair[1]) }
        return TLSConfiguration(certificatePath: t.certificate, privateKeyPath: t.key, domainCertificates: sni,
                                minimumVersion: TLSVersion(parsing: t.minVersion.rawValue) ?? .tls12,
                                cipherList: t.ciphers, cipherSuites: t.ciphersuites, groups: t.groups,
                                sessionTicketKeyLifetime: t.ticketKeyLifetime,
                                handshakeTimeout: .milliseconds(Int64(t.handshakeTimeout * 1000)))
    }

    /// Loads (and so validates) the configured certificates; throws the reason.
    public static func check(_ t: TLSSettings) throws -> [CertificateInfo] {
        try TLSServerContext(configuration: configuration(t)).certificates
    }

    /// POSTERN_TLS_TICKET_KEYS (FDContract.envTicketKeys): the master's secret as 160 hex
    /// digits (80 bytes); nil if malformed.
    public static func ticketKeys(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 160 else { return nil }
        let bytes = (0..<80).compactMap { i in UInt8(String(decoding: digits[2 * i...2 * i + 1], as: UTF8.self), radix: 16) }
        return bytes.count == 80 ? bytes : nil
    }
}
