// Where rspamd listens: "http://HOST[:PORT][/PREFIX]" parsed once into host, port and a path
// prefix. Plain HTTP only: rspamd runs on loopback or a trusted network (its own documentation's
// setup); a URL this cannot use is refused when the config is read, not at the first message.

public struct RspamdEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// "" or "/prefix" (a reverse proxy in front of rspamd); request paths are appended.
    public var pathPrefix: String

    /// rspamd's default port when the URL names none (its normal worker's; the controller's is
    /// 11334 and its URL names it).
    public static let defaultPort = 11333

    public init(host: String, port: Int, pathPrefix: String = "") {
        self.host = host; self.port = port; self.pathPrefix = pathPrefix
    }

    /// "http://127.0.0.1:11333", "http://[::1]:11334/rspamd", "http://rspamd.internal".
    public init?(url: String) {
        let scheme = "http://"
        guard url.lowercased().hasPrefix(scheme) else { return nil }
        var rest = Substring(url.dropFirst(scheme.count))
        var prefix = ""
        if let slash = rest.firstIndex(of: "/") {
            prefix = String(rest[slash...])
            rest = rest[..<slash]
            while prefix.hasSuffix("/") { prefix.removeLast() }
        }
        var hostPart = rest, portPart: Substring? = nil
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portPart = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        }
        guard !hostPart.isEmpty, !hostPart.contains(where: { $0 == "@" || $0 == " " }) else { return nil }
        var port = Self.defaultPort
        if let p = portPart {
            guard let n = Int(p), (1...65535).contains(n) else { return nil }
            port = n
        }
        host = String(hostPart); self.port = port; pathPrefix = prefix
    }

    public var description: String {
        "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(pathPrefix)"
    }

    /// The request target of one of rspamd's endpoints ("/checkv2", "/stat").
    public func path(_ endpoint: String) -> String { pathPrefix + endpoint }
}
