// Reads certificate and key files into memory, refusing keys accessible by group or others.
// Guarantee: each file is opened once and checked on the open descriptor (no stat/open race),
// so credentials can be read as root before the privilege drop and used after it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of every certificate and key a `TLSConfiguration` names, read and checked.
/// Keep it only as long as needed: it holds private keys.
public struct TLSCredentials: Sendable {
    public struct Pair: Sendable {
        public var certificatePath: String
        public var privateKeyPath: String
        public var certificatePEM: [UInt8]
        public var privateKeyPEM: [UInt8]

        public init(certificatePath: String, privateKeyPath: String, certificatePEM: [UInt8], privateKeyPEM: [UInt8]) {
            self.certificatePath = certificatePath
            self.privateKeyPath = privateKeyPath
            self.certificatePEM = certificatePEM
            self.privateKeyPEM = privateKeyPEM
        }

        /// Reads one certificate/key pair from disk.
        public static func read(certificatePath: String, privateKeyPath: String) throws -> Pair {
            let cert = try readFile(certificatePath, what: "certificate", isKey: false)
            let key = try readFile(privateKeyPath, what: "private key", isKey: true)
            return Pair(certificatePath: certificatePath, privateKeyPath: privateKeyPath, certificatePEM: cert, privateKeyPEM: key)
        }
    }

    public var defaultPair: Pair
    /// Keyed like `TLSConfiguration.domainCertificates`.
    public var domains: [String: Pair]

    public init(defaultPair: Pair, domains: [String: Pair] = [:]) {
        self.defaultPair = defaultPair
        self.domains = domains
    }

    /// Reads every file the configuration names. Throws on the first missing, unreadable or
    /// insecure file, naming it.
    public static func read(_ configuration: TLSConfiguration) throws -> TLSCredentials {
        let d = try Pair.read(certificatePath: configuration.certificatePath, privateKeyPath: configuration.privateKeyPath)
        var domains: [String: Pair] = [:]
        for (name, files) in configuration.domainCertificates.sorted(by: { $0.key < $1.key }) {
            domains[name] = try Pair.read(certificatePath: files.cert, privateKeyPath: files.key)
        }
        return TLSCredentials(defaultPair: d, domains: domains)
    }
}

/// Files above this size are not certificates or keys.
private let maximumPEMSize = 1 << 20

/// Opens `path`, checks it on the descriptor (regular file; for keys, no group/other bits),
/// and reads it whole.
func readFile(_ path: String, what: String, isKey: Bool) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
    if fd < 0 {
        let e = errno
        if e == ENOENT { throw TLSConfigurationError.missingFile(path: path, what: what) }
        var reason = String(cString: strerror(e))
        if e == EACCES && getuid() != 0 { reason += " (keys are read before privileges are dropped; is this process still root?)" }
        throw TLSConfigurationError.unreadableFile(path: path, what: what, reason: reason)
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        throw TLSConfigurationError.unreadableFile(path: path, what: what, reason: String(cString: strerror(errno)))
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw TLSConfigurationError.notARegularFile(path: path, what: what) }
    if isKey && (UInt32(st.st_mode) & 0o077) != 0 {
        throw TLSConfigurationError.insecureKeyFile(path: path, mode: UInt32(st.st_mode) & 0o7777)
    }
    guard st.st_size <= maximumPEMSize else {
        throw TLSConfigurationError.unreadableFile(path: path, what: what, reason: "larger than \(maximumPEMSize) bytes")
    }
    var out = [UInt8]()
    out.reserveCapacity(Int(st.st_size))
    var chunk = [UInt8](repeating: 0, count: 16_384)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw TLSConfigurationError.unreadableFile(path: path, what: what, reason: String(cString: strerror(errno)))
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
        if out.count > maximumPEMSize {
            throw TLSConfigurationError.unreadableFile(path: path, what: what, reason: "larger than \(maximumPEMSize) bytes")
        }
    }
    if isKey { chunk.withUnsafeMutableBytes { p in for i in p.indices { p[i] = 0 } } }
    return out
}
