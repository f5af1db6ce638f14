// Immutable message bodies addressed by SHA-256 (DESIGN §3). Files under <data>/blobs/xx/<hex>,
// written to <data>/tmp then renamed, so a blob file is always whole. Durability is the caller's
// batch: `sync()` (one syncfs per group commit) makes every written blob and rename durable.
import Foundation
import COpenSSL
import CMailShims

public protocol BlobStore: Sendable {
    func exists(_ hash: [UInt8]) -> Bool
    func write(_ hash: [UInt8], _ bytes: UnsafeRawBufferPointer) throws
    func read(_ hash: [UInt8]) throws -> [UInt8]
    func remove(_ hash: [UInt8]) throws
    func sync() throws
    func allHashes() throws -> [[UInt8]]
    func clearTemporaries() throws -> Int
}

public enum SHA256Digest {
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        _ = EVP_Digest(bytes.baseAddress, bytes.count, &out, &len, EVP_sha256(), nil)
        return out
    }
    public static func hex(_ h: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8](); s.reserveCapacity(h.count * 2)
        for b in h { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }
    public static func unhex(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count == 64 else { return nil }
        var out = [UInt8](); out.reserveCapacity(32)
        func v(_ c: UInt8) -> UInt8? {
            switch c { case 48...57: return c - 48; case 97...102: return c - 87; default: return nil }
        }
        var i = 0
        while i < 64 { guard let a = v(u[i]), let b = v(u[i + 1]) else { return nil }; out.append(a << 4 | b); i += 2 }
        return out
    }
}

public struct BlobStoreError: Error, CustomStringConvertible {
    public var description: String
    init(_ op: String, _ path: String, _ e: Int32 = errno) { description = "\(op) \(path): \(String(cString: strerror(e)))" }
}

public final class FileBlobStore: BlobStore, @unchecked Sendable {
    let root: String, tmp: String
    let fsync: Bool
    let rootFD: Int32

    public init(dataDir: String, fsync: Bool) throws {
        root = dataDir + "/blobs"; tmp = dataDir + "/tmp"; self.fsync = fsync
        let fm = FileManager.default
        for d in [root, tmp] { try fm.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        for i in 0..<256 {
            let d = root + "/" + String(format: "%02x", i)
            if !fm.fileExists(atPath: d) { try fm.createDirectory(atPath: d, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700]) }
        }
        rootFD = open(dataDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw BlobStoreError("open", dataDir) }
    }
    deinit { close(rootFD) }

    func path(_ hash: [UInt8]) -> String {
        let hex = SHA256Digest.hex(hash)
        return "\(root)/\(hex.prefix(2))/\(hex)"
    }

    public func exists(_ hash: [UInt8]) -> Bool { access(path(hash), F_OK) == 0 }

    public func write(_ hash: [UInt8], _ bytes: UnsafeRawBufferPointer) throws {
        let dest = path(hash)
        if access(dest, F_OK) == 0 { return }            // dedup: same content already stored
        let t = "\(tmp)/\(SHA256Digest.hex(hash)).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw BlobStoreError("create", t) }
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 { if errno == EINTR { continue }; let e = errno; close(fd); unlink(t); throw BlobStoreError("write", t, e) }
            off += n
        }
        if close(fd) != 0 { let e = errno; unlink(t); throw BlobStoreError("close", t, e) }
        if rename(t, dest) != 0 { let e = errno; unlink(t); throw BlobStoreError("rename", dest, e) }
    }

    public func read(_ hash: [UInt8]) throws -> [UInt8] {
        let p = path(hash)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw BlobStoreError("open", p) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw BlobStoreError("stat", p) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var off = 0
        try out.withUnsafeMutableBytes { buf in
            while off < buf.count {
                let n = Glibc.read(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; throw BlobStoreError("read", p) }
                if n == 0 { throw BlobStoreError("read (short)", p, EIO) }
                off += n
            }
        }
        return out
    }

    public func remove(_ hash: [UInt8]) throws {
        if unlink(path(hash)) != 0 && errno != ENOENT { throw BlobStoreError("unlink", path(hash)) }
    }

    /// One syncfs for the whole batch: every blob written and renamed so far is on disk after this.
    public func sync() throws {
        guard fsync else { return }
        if mail_syncfs(rootFD) != 0 { throw BlobStoreError("syncfs", root) }
    }

    public func allHashes() throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        let fm = FileManager.default
        for i in 0..<256 {
            let d = root + "/" + String(format: "%02x", i)
            for name in (try? fm.contentsOfDirectory(atPath: d)) ?? [] {
                if let h = SHA256Digest.unhex(name) { out.append(h) } else { unlink(d + "/" + name) }
            }
        }
        return out
    }

    public func clearTemporaries() throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
        for n in names { unlink(tmp + "/" + n) }
        return names.count
    }
}
