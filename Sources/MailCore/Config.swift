// The postern.toml model: every key with its default (see postern.toml.example).
// Loading refuses unknown keys and bad values with file, line, key and reason.
import Foundation
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

public struct ServiceConfig: Sendable, Equatable {
    public var processes: Int
    public var listen: [ListenAddress]
    public var socketMode: UInt16 = 0o666
    public var socketOwner: String? = nil
    public var socketGroup: String? = nil
    public var maxConnections: Int = 256          // per process
}

public struct LMTPConfig: Sendable, Equatable {
    public var service: ServiceConfig
    public var maxMessageSize = 50 * 1024 * 1024
    public var maxRecipients = 1000
    public var maxLineLength = 1_000_000          // Postfix lmtp sends long lines; keep a cap
    public var maxErrors = 20
    public var commandTimeout = 300               // seconds, RFC 5321 §4.5.3.2.7
    public var dataTimeout = 600                  // seconds, whole DATA phase
    public var bareLinefeed = "reject"            // reject | normalize
}

/// lookupd (DESIGN §4): Postfix tcp_table listeners, one map each, and socketmap listeners
/// serving every map by name. No listener configured: the service does not run.
public struct LookupConfig: Sendable, Equatable {
    public var service = ServiceConfig(processes: 1, listen: [], socketMode: 0o666, maxConnections: 256)
    public var tcpTable: [String: [ListenAddress]] = [:]   // map name → listeners
    public var socketmap: [ListenAddress] = []
    public var idleTimeout = 60                            // seconds without a request
    public var requestTimeout = 5.0                        // seconds to wait for the store; then TEMP/400
    public var maxKeyLength = 1024
    public var maxRequestLength = 4096
    public static let maps = ["recipients", "aliases", "domains", "senders"]
    public var enabled: Bool { !socketmap.isEmpty || tcpTable.values.contains { !$0.isEmpty } }
}

/// smtpd (DESIGN §4): listeners per role; roles are config, so a site can add e.g. 2525 as
/// another mta listener.
public struct SMTPConfig: Sendable, Equatable {
    public var service = ServiceConfig(processes: 1, listen: [], maxConnections: 1024)
    public var mta: [ListenAddress] = [ListenAddress(.tcp(host: "0.0.0.0", port: 25)), ListenAddress(.tcp(host: "::", port: 25))]
    public var submission: [ListenAddress] = [ListenAddress(.tcp(host: "0.0.0.0", port: 587)), ListenAddress(.tcp(host: "::", port: 587))]
    public var smtps: [ListenAddress] = [ListenAddress(.tcp(host: "0.0.0.0", port: 465)), ListenAddress(.tcp(host: "::", port: 465))]
    public var maxMessageSize = 50 * 1024 * 1024
    public var maxRecipients = 100
    public var maxCommandLine = 512                  // RFC 5321 §4.5.3.1.4
    public var maxLineLength = 65_536                // text line in DATA; RFC 5321 asks 1000 but real mail exceeds it
    public var maxErrors = 10
    public var commandTimeout = 300                  // RFC 5321 §4.5.3.2.7
    public var dataTimeout = 600
    public var maxConnectionsPerClient = 50          // per process (Postfix: smtpd_client_connection_count_limit = 50)
    public var maxAuthFailures = 3                   // per session, then 421
    public var authFailuresPerClient = 10            // per client address within authFailureWindow: AUTH refused
    public var authFailureWindow = 600.0
    public var bareLinefeed = "reject"               // like Postfix smtpd_forbid_bare_newline
    public var plaintextAuthOnLoopback = true        // AUTH before TLS from 127.0.0.1/::1
    public var receivedShowsAuthUser = false
    public var enabled: Bool { !(mta.isEmpty && submission.isEmpty && smtps.isEmpty) }
}

/// TLS (DESIGN §5). Relative paths are relative to the config file's directory. With no
/// certificate present the master generates a self-signed one there and warns.
public struct TLSSettings: Sendable, Equatable {
    public var certificate: String
    public var key: String
    public var sni: [String: [String]] = [:]        // host → [certificate, key]
    public var minVersion = "TLSv1.2"
    public var ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    public var ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    public var groups = "X25519:P-256:P-384"
    public var handshakeTimeout = 30.0
}

public struct StoreConfig: Sendable, Equatable {
    public var fsync = true                       // durability contract; off only for experiments
    public var groupCommitMax = 512               // deliveries per transaction
    public var maxFrame = 1 << 20                 // RPC frame cap, bytes
    public var inlineMax = 64 * 1024              // bodies up to this size live in the database row
}

public struct MasterConfig: Sendable, Equatable {
    public var controlSocket: String
    public var restartDelay = 1.0                 // first restart backoff, seconds (doubles)
    public var restartDelayMax = 60.0
    public var throttleRestarts = 5               // this many crashes within throttleWindow...
    public var throttleWindow = 60.0              // ...throttle the service for restartDelayMax
    public var shutdownGrace = 10.0
}

public struct PosternConfig: Sendable, Equatable {
    public var path: String
    public var hostname: String
    public var dataDir: String
    public var runDir: String
    public var workerUser = "postern"
    public var storeUser = "postern-store"
    public var logLevel = "info"
    public var master: MasterConfig
    public var store = StoreConfig()
    public var lmtp: LMTPConfig
    public var lookup = LookupConfig()
    public var smtp = SMTPConfig()
    public var tls: TLSSettings

    /// Built-in defaults, as documented in postern.toml.example.
    public static func defaults(path: String) -> PosternConfig {
        let run = "/run/postern"
        return PosternConfig(
            path: path, hostname: PosternConfig.systemHostname(), dataDir: "/var/lib/postern", runDir: run,
            master: MasterConfig(controlSocket: run + "/control"),
            lmtp: LMTPConfig(service: ServiceConfig(processes: 1, listen: [ListenAddress(.unix(path: run + "/lmtp"))])),
            tls: TLSSettings(certificate: "/etc/postern/tls/cert.pem", key: "/etc/postern/tls/key.pem"))
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
        var c = PosternConfig.defaults(path: path)
        let base = (path as NSString).deletingLastPathComponent
        c.hostname = try r.string("hostname") ?? c.hostname
        c.dataDir = try r.path("data_dir", base: base) ?? c.dataDir
        c.runDir = try r.path("run_dir", base: base) ?? c.runDir
        c.logLevel = try r.oneOf("log_level", ["trace", "debug", "info", "notice", "warning", "error"]) ?? c.logLevel
        c.master.controlSocket = c.runDir + "/control"
        c.lmtp.service.listen = [ListenAddress(.unix(path: c.runDir + "/lmtp"))]
        if let u = try r.table("users") {
            c.workerUser = try u.string("worker") ?? c.workerUser
            c.storeUser = try u.string("store") ?? c.storeUser
            try u.finish()
        }
        if c.workerUser == c.storeUser {
            throw ConfigError(file: path, line: r.line(of: "store", in: "users"), key: "users.store",
                              reason: "the store user must differ from the worker user (DESIGN §1)")
        }
        if let m = try r.table("master") {
            c.master.controlSocket = try m.path("control_socket", base: c.runDir) ?? c.master.controlSocket
            c.master.restartDelay = try m.seconds("restart_delay") ?? c.master.restartDelay
            c.master.restartDelayMax = try m.seconds("restart_delay_max") ?? c.master.restartDelayMax
            c.master.throttleRestarts = try m.int("throttle_restarts", 1...1000) ?? c.master.throttleRestarts
            c.master.throttleWindow = try m.seconds("throttle_window") ?? c.master.throttleWindow
            c.master.shutdownGrace = try m.seconds("shutdown_grace") ?? c.master.shutdownGrace
            try m.finish()
        }
        if let s = try r.table("store") {
            c.store.fsync = try s.bool("fsync") ?? c.store.fsync
            c.store.groupCommitMax = try s.int("group_commit_max", 1...100_000) ?? c.store.groupCommitMax
            c.store.maxFrame = try s.int("max_frame", 65_536...(64 << 20)) ?? c.store.maxFrame
            c.store.inlineMax = try s.int("inline_max", 0...(16 << 20)) ?? c.store.inlineMax
            try s.finish()
        }
        if let l = try r.table("lmtp") {
            c.lmtp.service = try l.service(default: c.lmtp.service, runDir: c.runDir)
            c.lmtp.maxMessageSize = try l.int("max_message_size", 1024...(2 << 30)) ?? c.lmtp.maxMessageSize
            c.lmtp.maxRecipients = try l.int("max_recipients", 1...100_000) ?? c.lmtp.maxRecipients
            c.lmtp.maxLineLength = try l.int("max_line_length", 1000...(64 << 20)) ?? c.lmtp.maxLineLength
            c.lmtp.maxErrors = try l.int("max_errors", 1...10_000) ?? c.lmtp.maxErrors
            c.lmtp.commandTimeout = try l.int("command_timeout", 1...86_400) ?? c.lmtp.commandTimeout
            c.lmtp.dataTimeout = try l.int("data_timeout", 1...86_400) ?? c.lmtp.dataTimeout
            c.lmtp.bareLinefeed = try l.oneOf("bare_linefeed", ["reject", "normalize"]) ?? c.lmtp.bareLinefeed
            try l.finish()
        }
        c.tls.certificate = base + "/tls/cert.pem"; c.tls.key = base + "/tls/key.pem"
        if let t = try r.table("tls") {
            c.tls.certificate = try t.path("certificate", base: base) ?? c.tls.certificate
            c.tls.key = try t.path("key", base: base) ?? c.tls.key
            c.tls.minVersion = try t.oneOf("min_version", ["TLSv1.2", "TLSv1.3"]) ?? c.tls.minVersion
            c.tls.ciphers = try t.string("ciphers") ?? c.tls.ciphers
            c.tls.ciphersuites = try t.string("ciphersuites") ?? c.tls.ciphersuites
            c.tls.groups = try t.string("groups") ?? c.tls.groups
            c.tls.handshakeTimeout = try t.seconds("handshake_timeout") ?? c.tls.handshakeTimeout
            if let s = try t.table("sni") {
                for host in s.table.keys {
                    guard let pair = try s.stringArray(host), pair.count == 2 else {
                        throw s.error(host, "expected [\"certificate.pem\", \"key.pem\"]")
                    }
                    c.tls.sni[host.lowercased()] = pair.map { $0.hasPrefix("/") ? $0 : base + "/" + $0 }
                }
                try s.finish()
            }
            try t.finish()
        }
        if let s = try r.table("smtp") {
            c.smtp.service.processes = try s.int("processes", 1...64) ?? c.smtp.service.processes
            c.smtp.service.maxConnections = try s.int("max_connections", 1...100_000) ?? c.smtp.service.maxConnections
            c.smtp.mta = try s.addresses("mta", runDir: c.runDir) ?? c.smtp.mta
            c.smtp.submission = try s.addresses("submission", runDir: c.runDir) ?? c.smtp.submission
            c.smtp.smtps = try s.addresses("smtps", runDir: c.runDir) ?? c.smtp.smtps
            c.smtp.maxMessageSize = try s.int("max_message_size", 1024...(2 << 30)) ?? c.smtp.maxMessageSize
            c.smtp.maxRecipients = try s.int("max_recipients", 1...100_000) ?? c.smtp.maxRecipients
            c.smtp.maxCommandLine = try s.int("max_command_line", 512...65_536) ?? c.smtp.maxCommandLine
            c.smtp.maxLineLength = try s.int("max_line_length", 1000...(64 << 20)) ?? c.smtp.maxLineLength
            c.smtp.maxErrors = try s.int("max_errors", 1...10_000) ?? c.smtp.maxErrors
            c.smtp.commandTimeout = try s.int("command_timeout", 1...86_400) ?? c.smtp.commandTimeout
            c.smtp.dataTimeout = try s.int("data_timeout", 1...86_400) ?? c.smtp.dataTimeout
            c.smtp.maxConnectionsPerClient = try s.int("max_connections_per_client", 1...100_000) ?? c.smtp.maxConnectionsPerClient
            c.smtp.maxAuthFailures = try s.int("max_auth_failures", 1...1000) ?? c.smtp.maxAuthFailures
            c.smtp.authFailuresPerClient = try s.int("auth_failures_per_client", 1...100_000) ?? c.smtp.authFailuresPerClient
            c.smtp.authFailureWindow = try s.seconds("auth_failure_window") ?? c.smtp.authFailureWindow
            c.smtp.bareLinefeed = try s.oneOf("bare_linefeed", ["reject", "normalize"]) ?? c.smtp.bareLinefeed
            c.smtp.plaintextAuthOnLoopback = try s.bool("plaintext_auth_on_loopback") ?? c.smtp.plaintextAuthOnLoopback
            c.smtp.receivedShowsAuthUser = try s.bool("received_shows_auth_user") ?? c.smtp.receivedShowsAuthUser
            try s.finish()
        }
        if let l = try r.table("lookup") {
            c.lookup.service.processes = try l.int("processes", 1...64) ?? c.lookup.service.processes
            c.lookup.service.maxConnections = try l.int("max_connections", 1...100_000) ?? c.lookup.service.maxConnections
            c.lookup.service.socketMode = try l.octalMode("socket_mode") ?? c.lookup.service.socketMode
            c.lookup.socketmap = try l.addresses("socketmap", runDir: c.runDir) ?? []
            c.lookup.idleTimeout = try l.int("idle_timeout", 1...86_400) ?? c.lookup.idleTimeout
            c.lookup.requestTimeout = try l.seconds("request_timeout") ?? c.lookup.requestTimeout
            c.lookup.maxKeyLength = try l.int("max_key_length", 16...65_536) ?? c.lookup.maxKeyLength
            c.lookup.maxRequestLength = try l.int("max_request_length", 64...1_048_576) ?? c.lookup.maxRequestLength
            if let t = try l.table("tcp_table") {
                for map in LookupConfig.maps {
                    if let a = try t.addresses(map, runDir: c.runDir) { c.lookup.tcpTable[map] = a }
                }
                try t.finish()
            }
            try l.finish()
        }
        try r.finish()
        return c
    }
}

/// Reads one TOML table, remembering which keys were consumed so unknown ones are refused.
final class TableReader {
    let table: TOMLTable, section: String, file: String, text: String
    private var used = Set<String>()
    init(table: TOMLTable, section: String, file: String, text: String) {
        self.table = table; self.section = section; self.file = file; self.text = text
    }
    private func full(_ key: String) -> String { section.isEmpty ? key : "\(section).\(key)" }
    func error(_ key: String, _ reason: String) -> ConfigError {
        ConfigError(file: file, line: line(of: key, in: section), key: full(key), reason: reason)
    }
    /// Finds the line of `key = ...` inside `[section]` (TOMLKit keeps no positions for values).
    func line(of key: String, in section: String) -> Int? {
        var current = ""
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let l = raw.trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("[") {
                current = l.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                if current == (section.isEmpty ? key : "\(section).\(key)") { return i + 1 }   // a table named by the key
                continue
            }
            guard current == section, let eq = l.firstIndex(of: "=") else { continue }
            let k = l[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if k == key { return i + 1 }
        }
        return nil
    }
    private func value(_ key: String) -> TOMLValueConvertible? { used.insert(key); return table[key] }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else { throw error(key, "expected a string") }
        if s.isEmpty { throw error(key, "must not be empty") }
        return s
    }
    func path(_ key: String, base: String) throws -> String? {
        guard let s = try string(key) else { return nil }
        return s.hasPrefix("/") ? s : base + "/" + s
    }
    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.bool else { throw error(key, "expected true or false") }
        return b
    }
    func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = v.int else { throw error(key, "expected an integer") }
        guard range.contains(i) else { throw error(key, "\(i) is out of range \(range.lowerBound)...\(range.upperBound)") }
        return i
    }
    func seconds(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        let d = v.double ?? v.int.map(Double.init)
        guard let d, d >= 0, d <= 86_400 else { throw error(key, "expected a number of seconds between 0 and 86400") }
        return d
    }
    func oneOf(_ key: String, _ allowed: [String]) throws -> String? {
        guard let s = try string(key) else { return nil }
        guard allowed.contains(s) else { throw error(key, "\"\(s)\" is not one of \(allowed.joined(separator: ", "))") }
        return s
    }
    func stringArray(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        if let s = v.string { return [s] }
        guard let a = v.array else { throw error(key, "expected a list of strings") }
        var out: [String] = []
        for e in a { guard let s = e.string else { throw error(key, "expected a list of strings") }; out.append(s) }
        return out
    }
    func table(_ key: String) throws -> TableReader? {
        guard let v = value(key) else { return nil }
        guard let t = v.table else { throw error(key, "expected a table [\(full(key))]") }
        return TableReader(table: t, section: full(key), file: file, text: text)
    }
    func addresses(_ key: String, runDir: String) throws -> [ListenAddress]? {
        guard let l = try stringArray(key) else { return nil }
        return try l.map { a in
            guard let addr = ListenAddress(parsing: a, relativeTo: runDir) else {
                throw error(key, "\"\(a)\" is not unix:/path, HOST:PORT or [V6]:PORT")
            }
            return addr
        }
    }

    func octalMode(_ key: String) throws -> UInt16? {
        guard let m = try string(key) else { return nil }
        guard let mode = UInt16(m, radix: 8), mode <= 0o777 else { throw error(key, "expected an octal mode like \"0660\"") }
        return mode
    }

    func service(default d: ServiceConfig, runDir: String) throws -> ServiceConfig {
        var s = d
        s.processes = try int("processes", 1...64) ?? s.processes
        s.listen = try addresses("listen", runDir: runDir) ?? s.listen
        s.socketMode = try octalMode("socket_mode") ?? s.socketMode
        s.socketOwner = try string("socket_owner") ?? s.socketOwner
        s.socketGroup = try string("socket_group") ?? s.socketGroup
        s.maxConnections = try int("max_connections", 1...100_000) ?? s.maxConnections
        return s
    }
    func finish() throws {
        for k in table.keys where !used.contains(k) {
            throw error(k, "unknown key")
        }
    }
}
