// Reading one postern.toml table: typed getters that refuse bad values, and `finish`, which
// refuses the keys nobody read. Every refusal names file, line, key and reason.
import Foundation
import TOMLKit

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
    /// A number in 0.1...1 (a share of a limit).
    func fraction(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        let d = v.double ?? v.int.map(Double.init)
        guard let d, d >= 0.1, d <= 1 else { throw error(key, "expected a fraction between 0.1 and 1") }
        return d
    }
    /// One of `allowed`, by its raw value.
    func oneOf<T: RawRepresentable>(_ key: String, _ allowed: [T]) throws -> T? where T.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let v = allowed.first(where: { $0.rawValue == s }) else {
            throw error(key, "\"\(s)\" is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }
    func oneOf<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
        try oneOf(key, Array(T.allCases))
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

    /// The service table keys of a section, over `d` (one helper for every service, so each
    /// takes the same keys). `listen`: whether the section has a `listen` key (services whose
    /// listeners are named by role or map have their own keys instead).
    func service(default d: ServiceConfig, runDir: String, listen: Bool = true) throws -> ServiceConfig {
        var s = d
        s.processes = try int("processes", 1...64) ?? s.processes
        if listen { s.listen = try addresses("listen", runDir: runDir) ?? s.listen }
        s.socketMode = try octalMode("socket_mode") ?? s.socketMode
        s.socketOwner = try string("socket_owner") ?? s.socketOwner
        s.socketGroup = try string("socket_group") ?? s.socketGroup
        s.maxConnections = try int("max_connections", 1...100_000) ?? s.maxConnections
        s.maxUnsentBytes = try int("max_unsent_bytes", 4096...(64 << 20)) ?? s.maxUnsentBytes
        return s
    }
    /// Reads `[key]` into `section` if present, then refuses its unknown keys.
    func section<S: ConfigSection>(_ key: String, _ section: inout S, _ context: ConfigContext) throws {
        guard let t = try table(key) else { return }
        try section.read(t, context)
        try t.finish()
    }
    func finish() throws {
        for k in table.keys where !used.contains(k) {
            throw error(k, "unknown key")
        }
    }
}
