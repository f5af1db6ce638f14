// The server's TLS contexts: one SSL_CTX per certificate (default + SNI domains), built and
// checked together and swapped atomically on reload. Thread-safe; one per process. Connections
// keep the context set they started with, so a reload never disturbs an existing session.
import NIOCore
import NIOConcurrencyHelpers
import Logging
import CMailTLS

/// Loads certificates, keys and settings into OpenSSL and hands out `TLSHandler`s.
///
/// Build it before the privilege drop (keys are root-only files); it keeps working after.
/// A later `reload(_:)` reads the files again, which needs the same access: after the drop,
/// read them in a privileged process and pass `TLSCredentials` to `reload(_:credentials:)`.
public final class TLSServerContext: Sendable {
    private let state: NIOLockedValueBox<ServerContextSet>

    /// Reads every certificate and key of `configuration` and builds the contexts.
    public convenience init(configuration: TLSConfiguration) throws {
        try self.init(configuration: configuration, credentials: TLSCredentials.read(configuration))
    }

    /// Builds the contexts from credentials read elsewhere (for example by the master).
    public init(configuration: TLSConfiguration, credentials: TLSCredentials) throws {
        state = NIOLockedValueBox(try ServerContextSet(configuration: configuration, credentials: credentials))
    }

    /// Re-reads the files and replaces the contexts if — and only if — everything loads. On
    /// failure the old contexts stay in use and the reason is thrown. Existing connections keep
    /// the contexts they started with.
    public func reload(_ configuration: TLSConfiguration) throws {
        try reload(configuration, credentials: TLSCredentials.read(configuration))
    }

    public func reload(_ configuration: TLSConfiguration, credentials: TLSCredentials) throws {
        let fresh = try ServerContextSet(configuration: configuration, credentials: credentials)
        state.withLockedValue { $0 = fresh }
    }

    /// What is loaded now: the default certificate first, then SNI domains by name.
    public var certificates: [CertificateInfo] { current.certificates }

    public var configuration: TLSConfiguration { current.configuration }

    var current: ServerContextSet { state.withLockedValue { $0 } }

    /// A server-mode handler for one connection (implicit TLS, or STARTTLS after the reply).
    /// With a logger, handshake results are logged with the peer address.
    public func makeHandler(logger: Logger? = nil) -> TLSHandler {
        let set = current
        return TLSHandler(role: .server, context: set.defaultContext, owner: set, serverName: nil, verifyHost: false,
                          verifying: false, releaseBuffers: set.configuration.releaseBuffers,
                          handshakeTimeout: set.configuration.handshakeTimeout,
                          shutdownTimeout: set.configuration.shutdownTimeout, logger: logger)
    }
}

/// One immutable generation of SSL_CTX objects. Freed when the last connection using it ends.
final class ServerContextSet: @unchecked Sendable {
    let configuration: TLSConfiguration
    let defaultContext: OpaquePointer
    /// Lower-case host name → context.
    let exact: [String: OpaquePointer]
    /// "example.org" for a configured "*.example.org" → context.
    let wildcard: [String: OpaquePointer]
    let certificates: [CertificateInfo]
    private let owned: [OpaquePointer]

    init(configuration: TLSConfiguration, credentials: TLSCredentials) throws {
        var owned: [OpaquePointer] = []
        do {
            var infos: [CertificateInfo] = []
            let d = try ServerContextSet.makeContext(configuration, credentials.defaultPair)
            owned.append(d)
            infos.append(CertificateInfo(x509: mtls_ctx_certificate(d)!, servedFor: "default", path: credentials.defaultPair.certificatePath))
            var exact: [String: OpaquePointer] = [:]
            var wildcard: [String: OpaquePointer] = [:]
            for (name, pair) in credentials.domains.sorted(by: { $0.key < $1.key }) {
                let key = try normalizedDomain(name)
                let ctx = try ServerContextSet.makeContext(configuration, pair)
                owned.append(ctx)
                infos.append(CertificateInfo(x509: mtls_ctx_certificate(ctx)!, servedFor: key, path: pair.certificatePath))
                if key.hasPrefix("*.") { wildcard[String(key.dropFirst(2))] = ctx } else { exact[key] = ctx }
            }
            self.configuration = configuration
            self.defaultContext = d
            self.exact = exact
            self.wildcard = wildcard
            self.certificates = infos
            self.owned = owned
        } catch {
            for c in owned { SSL_CTX_free(c) }
            throw error
        }
        if !exact.isEmpty || !wildcard.isEmpty {
            // The callback runs inside SSL_do_handshake of a connection whose handler holds this
            // set, so the unretained pointer is valid whenever it is called.
            mtls_ctx_set_servername_callback(defaultContext, { ssl, _, arg in
                guard let ssl, let arg else { return SSL_TLSEXT_ERR_OK }
                let set = Unmanaged<ServerContextSet>.fromOpaque(arg).takeUnretainedValue()
                guard let name = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)) else { return SSL_TLSEXT_ERR_OK }
                if let ctx = set.context(forServerName: String(cString: name)), ctx != set.defaultContext {
                    _ = SSL_set_SSL_CTX(ssl, ctx)
                }
                return SSL_TLSEXT_ERR_OK
            }, Unmanaged.passUnretained(self).toOpaque())
        }
    }

    deinit {
        for c in owned { SSL_CTX_free(c) }
    }

    /// RFC 6066 §3 name → context: exact match first, then a wildcard covering exactly the
    /// left-most label (RFC 6125 §6.4.3). nil: use the default certificate.
    func context(forServerName raw: String) -> OpaquePointer? {
        var name = raw.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if let c = exact[name] { return c }
        if let dot = name.firstIndex(of: "."), dot != name.startIndex {
            return wildcard[String(name[name.index(after: dot)...])]
        }
        return nil
    }

    static func makeContext(_ config: TLSConfiguration, _ pair: TLSCredentials.Pair) throws -> OpaquePointer {
        mtls_clear_errors()
        guard let ctx = mtls_ctx_new(1) else { throw TLSConfigurationError.openSSL(reason: drainOpenSSLErrors()) }
        do {
            try applyCommonSettings(ctx, minimum: config.minimumVersion, maximum: config.maximumVersion,
                                    cipherList: config.cipherList, cipherSuites: config.cipherSuites, groups: config.groups)
            mtls_ctx_set_postern_options(ctx, config.preferServerCiphers ? 1 : 0, config.sessionTickets ? 1 : 0)
            mtls_ctx_set_session_cache(ctx, config.sessionCache ? 1 : 0, config.sessionCacheSize, config.sessionTimeout)
            mtls_ctx_set_dh_auto(ctx)
            if let keys = config.sessionTicketKeys {
                // The shared 80 bytes are a secret the rotating keys are derived from.
                guard keys.count == 80,
                      mtls_ctx_set_ticket_secret(ctx, keys, keys.count, config.sessionTicketKeyLifetime, config.ticketClockOffset) == 1 else {
                    throw TLSConfigurationError.invalidSetting(name: "session_ticket_keys", value: "\(keys.count) bytes", reason: "must be 80 bytes")
                }
            }
            let certOK = pair.certificatePEM.withUnsafeBytes {
                mtls_ctx_use_chain_pem(ctx, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count)
            }
            guard certOK == 1 else {
                let r = drainOpenSSLErrors()
                throw TLSConfigurationError.invalidCertificate(path: pair.certificatePath, reason: r.isEmpty ? "no certificate found" : r)
            }
            let keyResult = pair.privateKeyPEM.withUnsafeBytes {
                mtls_ctx_use_key_pem(ctx, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count)
            }
            switch keyResult {
            case 1: break
            case -1:
                mtls_clear_errors()
                throw TLSConfigurationError.keyDoesNotMatchCertificate(certificate: pair.certificatePath, key: pair.privateKeyPath)
            default:
                let r = drainOpenSSLErrors()
                throw TLSConfigurationError.invalidPrivateKey(path: pair.privateKeyPath, reason: r.isEmpty ? "no private key found" : r)
            }
            return ctx
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
    }
}

/// Protocol range, TLS 1.2 cipher list, TLS 1.3 suites and groups; errors name the setting.
func applyCommonSettings(_ ctx: OpaquePointer, minimum: TLSVersion, maximum: TLSVersion?,
                         cipherList: String, cipherSuites: String, groups: String) throws {
    if let maximum, maximum < minimum {
        throw TLSConfigurationError.invalidSetting(name: "max_version", value: maximum.rawValue, reason: "below min_version \(minimum.rawValue)")
    }
    guard mtls_ctx_set_proto_range(ctx, minimum.openSSLValue, maximum?.openSSLValue ?? 0) == 1 else {
        throw TLSConfigurationError.invalidSetting(name: "min_version", value: minimum.rawValue, reason: drainOpenSSLErrors())
    }
    guard SSL_CTX_set_cipher_list(ctx, cipherList) == 1 else {
        throw TLSConfigurationError.invalidSetting(name: "cipher_list", value: cipherList, reason: "no usable cipher: \(drainOpenSSLErrors())")
    }
    guard SSL_CTX_set_ciphersuites(ctx, cipherSuites) == 1 else {
        throw TLSConfigurationError.invalidSetting(name: "cipher_suites", value: cipherSuites, reason: "no usable TLS 1.3 suite: \(drainOpenSSLErrors())")
    }
    guard mtls_ctx_set_groups(ctx, groups) == 1 else {
        throw TLSConfigurationError.invalidSetting(name: "groups", value: groups, reason: "unknown group: \(drainOpenSSLErrors())")
    }
}

/// "Mail.Example.ORG." → "mail.example.org"; "*.example.org" kept; anything else refused.
func normalizedDomain(_ raw: String) throws -> String {
    var d = raw.lowercased()
    if d.hasSuffix(".") { d.removeLast() }
    var labels = d.split(separator: ".", omittingEmptySubsequences: false)
    if labels.first == "*" {
        labels.removeFirst()
        guard labels.count >= 2 else { throw TLSConfigurationError.invalidDomain(raw) }
    }
    guard !labels.isEmpty, d.utf8.count <= 253 else { throw TLSConfigurationError.invalidDomain(raw) }
    for l in labels {
        guard !l.isEmpty, l.utf8.count <= 63, !l.hasPrefix("-"), !l.hasSuffix("-"),
              l.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f })
        else { throw TLSConfigurationError.invalidDomain(raw) }
    }
    return d
}
