// Where DKIM keys live and how they are written: `<config dir>/dkim/<domain>/<selector>.pem`,
// directories 0700 and files 0600 owned by root like the TLS keys, created with O_EXCL (a key
// is never overwritten), fsynced. Names are checked so no domain or selector leaves the directory.
#if canImport(Glibc)
import Glibc
#endif

public struct DKIMKeyDirectory: Sendable, Equatable {
    /// `<config dir>/dkim`.
    public var path: String

    /// The directory beside the configuration file `configFile` (as [tls] keys are by default).
    public init(configFile: String) {
        let dir = configFile.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        path = (dir.isEmpty ? "." : dir) + "/dkim"
    }

    public init(path: String) { self.path = path }

    /// `<dir>/<domain>/<selector>.pem`; nil when either is no valid DNS name.
    public func keyPath(domain: String, selector: String) -> String? {
        guard let d = DKIMName.normalized(domain), let s = DKIMName.normalized(selector) else { return nil }
        return "\(path)/\(d)/\(s).pem"
    }

    /// The key of `domain` under `selector` (read as root, before privileges are dropped).
    public func load(domain: String, selector: String) throws -> DKIMKey {
        try DKIMKey(contentsOfFile: try existingPath(domain: domain, selector: selector))
    }

    private func existingPath(domain: String, selector: String) throws -> String {
        guard DKIMName.normalized(domain) != nil else { throw DKIMError.invalidName(domain) }
        guard let file = keyPath(domain: domain, selector: selector) else { throw DKIMError.invalidName(selector) }
        return file
    }

    /// The selectors that have a key for `domain`, sorted.
    public func selectors(domain: String) -> [String] {
        guard let d = DKIMName.normalized(domain) else { return [] }
        return Self.entries("\(path)/\(d)").compactMap { $0.hasSuffix(".pem") ? DKIMName.normalized(String($0.dropLast(4))) : nil }.sorted()
    }

    /// The domains with at least one key, sorted.
    public func domains() -> [String] {
        Self.entries(path).compactMap { DKIMName.normalized($0) }.filter { !selectors(domain: $0).isEmpty }.sorted()
    }

    /// The names in directory `dir` but "." and ".."; none when it cannot be read.
    private static func entries(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out = [String]()
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != ".", name != ".." { out.append(name) }
        }
        return out
    }

    /// Writes `key` as `<dir>/<domain>/<selector>.pem`, creating the directories (0700) as
    /// needed; owned by `uid`:`gid` when given. Throws if the file exists. Returns its path.
    @discardableResult
    public func write(_ key: DKIMKey, domain: String, selector: String, uid: uid_t? = nil, gid: gid_t? = nil) throws -> String {
        let file = try existingPath(domain: domain, selector: selector)
        let domainDir = String(file[..<file.lastIndex(of: "/")!])
        for dir in [path, domainDir] {
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw DKIMError.file("cannot create \(dir): \(String(cString: strerror(errno)))") }
        }
        try DKIMKeyFile.createExclusive(file, contents: try key.privateKeyPEM(), mode: 0o600, uid: uid, gid: gid)
        return file
    }
}

/// DNS names as DKIM uses them (d=, s=): LDH labels separated by dots (RFC 6376 §3.1, §3.5).
public enum DKIMName {
    /// Lower-cased without a trailing dot; nil when not 1–253 octets of 1–63-octet LDH labels.
    public static func normalized(_ name: String) -> String? {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        guard !n.isEmpty, n.utf8.count <= 253 else { return nil }
        for label in n.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f }) else { return nil }
        }
        return n
    }
}

enum DKIMKeyFile {
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DKIMError.file("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out = [UInt8](), buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw DKIMError.file("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// O_EXCL create with `mode`, chown, write, fsync; removed again on any failure.
    static func createExclusive(_ path: String, contents: [UInt8], mode: mode_t, uid: uid_t?, gid: gid_t?) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw DKIMError.file("cannot create \(path): \(String(cString: strerror(errno)))") }
        var failure: String?
        if fchmod(fd, mode) != 0 { failure = "chmod" }
        if failure == nil, uid != nil || gid != nil, fchown(fd, uid ?? uid_t.max, gid ?? gid_t.max) != 0 { failure = "chown" }
        var off = 0
        while failure == nil && off < contents.count {
            let n = contents.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = "write" } else { off += n }
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync" }
        if close(fd) != 0 && failure == nil { failure = "close" }
        if let failure {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw DKIMError.file("cannot \(failure) \(path): \(reason)")
        }
    }
}
