// The server side most TLS tests start from: a temporary directory with self-signed pairs, a
// TLSServerContext over them, and optionally a running TestServer; stopped and removed at the end.
import MailTLS
import NIOCore

public final class TLSFixture {
    public let dir = TempDir()
    public private(set) var server: TestServer?

    public init() {}

    /// A context whose default certificate is a new pair for `host`; `domains` adds SNI pairs
    /// (host → pair name); `configure` adjusts the configuration last.
    public func context(host: String, name: String = "server", domains: [String: String] = [:],
                        configure: (inout TLSConfiguration) -> Void = { _ in }) throws -> TLSServerContext {
        var config = try configuration(host: host, name: name, domains: domains)
        configure(&config)
        return try TLSServerContext(configuration: config)
    }

    /// The configuration `context` would use.
    public func configuration(host: String, name: String = "server", domains: [String: String] = [:]) throws -> TLSConfiguration {
        let d = try dir.pair(name, host: host)
        var sni: [String: (cert: String, key: String)] = [:]
        for (domain, pairName) in domains { sni[domain] = try dir.pair(pairName, host: domain) }
        return TLSConfiguration(certificatePath: d.cert, privateKeyPath: d.key, domainCertificates: sni)
    }

    /// Starts a TestServer with `tls` (the test protocol, or `makeHandlers`).
    @discardableResult
    public func start(_ tls: TLSServerContext, makeHandlers: (@Sendable (Recorder) -> [ChannelHandler])? = nil) throws -> TestServer {
        let s = try TestServer(tls: tls, makeHandlers: makeHandlers)
        server = s
        return s
    }

    /// Stops the server, if one runs; the directory goes with the fixture.
    public func stop() {
        server?.stop()
        server = nil
    }
}
