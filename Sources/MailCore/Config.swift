// The postern.toml model, core: the top-level keys, [users], [master], the shared service
// table, and loading. Each section has its own file (Config+LMTP.swift, ...); every default
// is written once, as a field initialiser, and documented in postern.toml.example.
import Foundation
import Logging
import TOMLKit

public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case unix(path: String), tcp(host: String, port: Int) }
    public var kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    /// "unix:/path", "/path", "127.0.0.1:24", "[::1]:24", "*:24".
    public init?(parsing s: String, relativeTo base: String) {
        if s.hasPrefix("unix:") || s.hasPrefix("/") || s.hasPrefix("./") {
            var p = s.hasPrefix("unix:") ? String(s.dropFirst(5)) : s
            if p.isEmpty { return nil }
            if !p.hasPrefix("/") { p = base + "/" + p }
            kind = .unix(path: p)
            return
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "*" { host = "0.0.0.0" }
        if host.isEmpty { return nil }
        kind = .tcp(host: host, port: port)
    }
    public var description: String {
        switch kind {
        case .unix(let p): return "unix:\(p)"
        case .tcp(let h, let p): return h.contains(":") ? "[\(h)]:\(p)" : "\(h):\(p)"
        }
    }
}

/// The service table entry every service section shares (read by `TableReader.service`):
/// Postfix master.cf columns, Dovecot `service {}` settings.
public struct ServiceConfig: Sendable, Equatable {
    public var processes = 1
    public var listen: [ListenAddress] = []
    public var socketMode: UInt16 = 0o666           // unix listeners
    public var socketOwner: String? = nil           // nil: root
    public var socketGroup: String? = nil
    public var maxConnections = 256                 // per process
    /// Unsent output a session may queue before it stops reading (issue 9: a client that
    /// pipelines and never reads must not grow the worker); per session, bytes.
    public var maxUnsentBytes = 256 * 1024

    public init(processes: Int = 1, listen: [ListenAddress] = [], socketMode: UInt16 = 0o666, maxConnections: Int = 256) {
        self.processes = processes; self.listen = listen; self.socketMode = socketMode; self.maxConnections = maxConnections
    }
}

/// What a section's keys are resolved against.
public struct ConfigContext: Sendable {
    /// The config file's directory: relative file paths.
    public var base: String
    /// run_dir: relative unix listeners and the control socket.
    public var runDir: String
}

/// One `[section]` of postern.toml: reads its keys over the defaults it already holds.
/// Unknown keys are refused by the caller (`TableReader.finish`).
protocol ConfigSection {
    mutating func read(_ t: TableReader, _ context: ConfigContext) throws
}

public struct MasterConfig: Sendable, Equatable {
    public var controlSocket: String
    public var restartDelay = 1.0                 // first restart backoff, seconds (doubles)
    public var restartDelayMax = 60.0
    public var throttleRestarts = 5               // this many crashes within throttleWindow...
    public var throttleWindow = 60.0              // ...throttle the service for restartDelayMax
    public var shutdownGrace = 10.0

    init(runDir: String) { controlSocket = runDir + "/control" }
}

extension MasterConfig: ConfigSection {
    mutating func read(_ m: TableReader, _ context: ConfigContext) throws {
        controlSocket = try m.path("control_socket", base: context.runDir) ?? controlSocket
        restartDelay = try m.seconds("restart_delay") ?? restartDelay
        restartDelayMax = try m.seconds("restart_delay_max") ?? restartDelayMax
        throttleRestarts = try m.int("throttle_restarts", 1...1000) ?? throttleRestarts
        throttleWindow = try m.seconds("throttle_window") ?? throttleWindow
        shutdownGrace = try m.seconds("shutdown_grace") ?? shutdownGrace
    }
}

public struct PosternConfig: Sendable, Equatable {
    public var path: String
    public var hostname = PosternConfig.systemHostname()
    public var dataDir = "/var/lib/postern"
    public var runDir: String
    public var workerUser = "postern"
    public var storeUser = "postern-store"
    public var logLevel = Logger.Level.info
    public var master: MasterConfig
    public var store = StoreConfig()
    public var auth = AuthConfig()
    public var lmtp: LMTPConfig
    public var lookup = LookupConfig()
    public var smtp = SMTPConfig()
    public var imap = IMAPConfig()
    public var pop3 = POP3Config()
    public var spam = SpamConfig()
    public var quota = QuotaConfig()
    public var outbound = OutboundConfig()
    public var srs = SRSConfig()
    public var tls: TLSSettings

    public static let defaultRunDir = "/run/postern"
    /// The log levels log_level accepts.
    static let logLevels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error]

    /// Built-in defaults, as documented in postern.toml.example. The defaults that are paths
    /// follow `runDir` and the config file's directory.
    public static func defaults(path: String, runDir: String = defaultRunDir) -> PosternConfig {
        PosternConfig(path: path, runDir: runDir)
    }

    init(path: String, runDir: String) {
        self.path = path
        self.runDir = runDir
        master = MasterConfig(runDir: runDir)
        lmtp = LMTPConfig(runDir: runDir)
        tls = TLSSettings(base: (path as NSString).deletingLastPathComponent)
    }

    public static func systemHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return String(cString: buf)
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String, line: Int?, key: String, reason: String
    public init(file: String, line: Int?, key: String, reason: String) { self.file = file; self.line = line; self.key = key; self.reason = reason }
    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key.isEmpty ? "" : "\(key): ")\(reason)"
    }
}

extension PosternConfig {
    public static func load(path: String) throws -> PosternConfig {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, key: "", reason: "cannot read file")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> PosternConfig {
        let root: TOMLTable
        do { root = try TOMLTable(string: text) } catch let e as TOMLParseError {
            throw ConfigError(file: path, line: e.source.begin.line, key: "", reason: e.description)
        }
        let r = TableReader(table: root, section: "", file: path, text: text)
        let base = (path as NSString).deletingLastPathComponent
        // run_dir first: the defaults of the paths in it follow it.
        var c = PosternConfig.defaults(path: path, runDir: try r.path("run_dir", base: base) ?? defaultRunDir)
        let context = ConfigContext(base: base, runDir: c.runDir)
        c.hostname = try r.string("hostname") ?? c.hostname
        c.dataDir = try r.path("data_dir", base: base) ?? c.dataDir
        c.logLevel = try r.oneOf("log_level", logLevels) ?? c.logLevel
        if let u = try r.table("users") {
            c.workerUser = try u.string("worker") ?? c.workerUser
            c.storeUser = try u.string("store") ?? c.storeUser
            try u.finish()
        }
        if c.workerUser == c.storeUser {
            throw ConfigError(file: path, line: r.line(of: "store", in: "users"), key: "users.store",
                              reason: "the store user must differ from the worker user (DESIGN §1)")
        }
        try r.section("master", &c.master, context)
        try r.section("store", &c.store, context)
        try r.section("auth", &c.auth, context)
        try r.section("lmtp", &c.lmtp, context)
        try r.section("tls", &c.tls, context)
        try r.section("smtp", &c.smtp, context)
        try r.section("imap", &c.imap, context)
        try r.section("pop3", &c.pop3, context)
        try r.section("spam", &c.spam, context)
        try r.section("quota", &c.quota, context)
        try r.section("lookup", &c.lookup, context)
        try r.section("outbound", &c.outbound, context)
        try r.section("srs", &c.srs, context)
        try r.finish()
        return c
    }
}
