// The client side of TLS for outbound SMTP: one SSL_CTX with verification on or off, a CA file
// or the system store, and SNI per connection. Thread-safe; share one per process.
import NIOCore
import Logging
import CMailTLS

public final class TLSClientContext: Sendable {
    let box: ClientContextBox
    public let configuration: TLSClientConfiguration

    public init(configuration: TLSClientConfiguration = TLSClientConfiguration()) throws {
        mtls_clear_errors()
        guard let ctx = mtls_ctx_new(0) else { throw TLSConfigurationError.openSSL(reason: drainOpenSSLErrors()) }
        do {
            try applyCommonSettings(ctx, minimum: configuration.minimumVersion, maximum: configuration.maximumVersion,
                                    cipherList: configuration.cipherList, cipherSuites: configuration.cipherSuites,
                                    groups: configuration.groups)
            mtls_ctx_set_postern_options(ctx, 0, 1)
            if let ca = configuration.caFile {
                // Open it first for a clear message; OpenSSL's own is "system library".
                _ = try readFile(ca, what: "CA", isKey: false)
            }
            guard mtls_ctx_set_verify(ctx, configuration.verifyPeer ? 1 : 0, configuration.caFile) == 1 else {
                let r = drainOpenSSLErrors()
                if let ca = configuration.caFile { throw TLSConfigurationError.invalidCertificate(path: ca, reason: r) }
                throw TLSConfigurationError.openSSL(reason: "cannot load the system CA store: \(r)")
            }
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        box = ClientContextBox(ctx)
        self.configuration = configuration
    }

    /// A client-mode handler. `serverName` is sent as SNI (RFC 6066 §3; never an IP literal)
    /// and, with verification on, checked against the certificate (RFC 6125).
    public func makeHandler(serverName: String?, logger: Logger? = nil) -> TLSHandler {
        let verify = configuration.verifyPeer
        let sni = serverName.flatMap { isIPLiteral($0) ? nil : $0 }
        return TLSHandler(role: .client, context: box.ctx, owner: box, serverName: sni, verifyHost: verify,
                          verifying: verify, releaseBuffers: false,
                          handshakeTimeout: configuration.handshakeTimeout,
                          shutdownTimeout: configuration.shutdownTimeout, logger: logger)
    }
}

final class ClientContextBox: @unchecked Sendable {
    let ctx: OpaquePointer
    init(_ ctx: OpaquePointer) { self.ctx = ctx }
    deinit { SSL_CTX_free(ctx) }
}

func isIPLiteral(_ s: String) -> Bool {
    if s.contains(":") { return true }
    return !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e }
}
