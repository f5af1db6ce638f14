// Immutable message bodies addressed by SHA-256 (DESIGN §3). Files under <data>/blobs/xx/<hex>,
// written to <data>/tmp then renamed, so a blob file is always whole. Durability is the caller's
// batch: `sync()` (one syncfs per group commit) makes every written blob and rename durable.
// A body being received is staged in <data>/tmp chunk by chunk (StagedBlob), then adopted.
import Foundation
import COpenSSL
import CMailShims

public protocol BlobStore: Sendable {
    func exists(_ hash: [UInt8]) -> Bool
    func write(_ hash: [UInt8], _ bytes: UnsafeRawBufferPointer) throws
    func read(_ hash: [UInt8]) throws -> [UInt8]
    /// Bytes `[offset, offset + length)` of a blob, cut at its end (only that range is read).
    func read(_ hash: [UInt8], offset: Int, length: Int) throws -> [UInt8]
    func remove(_ hash: [UInt8]) throws
    func sync() throws
    func allHashes() throws -> [[UInt8]]
    func clearTemporaries() throws -> Int
    /// A new empty temporary file for a body being received.
    /// A body to receive; up to `memoryLimit` bytes it stays in memory (no file at all).
    func stage(memoryLimit: Int) throws -> StagedBlob
    /// Moves a finished staged body into place as blob `hash`; when that blob exists already
    /// (dedup) the staged file is dropped instead. Durable after the next `sync()`.
    func adopt(_ staged: StagedBlob, as hash: [UInt8]) throws
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

    public func read(_ hash: [UInt8]) throws -> [UInt8] { try read(hash, offset: 0, length: Int.max) }

    public func read(_ hash: [UInt8], offset: Int, length: Int) throws -> [UInt8] {
        let p = path(hash)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw BlobStoreError("open", p) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw BlobStoreError("stat", p) }
        let start = max(0, min(offset, Int(st.st_size)))
        let count = max(0, min(length, Int(st.st_size) - start))
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < count {
                let n = pread(fd, buf.baseAddress! + done, count - done, off_t(start + done))
                if n < 0 { if errno == EINTR { continue }; throw BlobStoreError("read", p) }
                if n == 0 { throw BlobStoreError("read (short)", p, EIO) }
                done += n
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

    public func stage(memoryLimit: Int) throws -> StagedBlob {
        try StagedBlob(path: "\(tmp)/staged.\(UInt64.random(in: 0...UInt64.max))", memoryLimit: memoryLimit)
    }

    public func adopt(_ staged: StagedBlob, as hash: [UInt8]) throws {
        let dest = path(hash)
        if access(dest, F_OK) == 0 { staged.discard(); return }   // dedup: same content already stored
        try staged.moveTo(dest)
    }

    public func clearTemporaries() throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
        for n in names { unlink(tmp + "/" + n) }
        return names.count
    }
}

/// A body being received (DESIGN §3). Up to `memoryLimit` bytes (the store's `inline_max`: such
/// a body ends up in its row anyway) it stays in memory; past that it spills to a temporary file
/// of the blob store, and each `append` opens the file, writes, closes (no descriptor is held
/// between chunks, so many slow senders cannot exhaust the store's descriptors). An incremental
/// SHA-256 follows every byte. Discarded explicitly, when adopted as a blob, or when released.
public final class StagedBlob: StagedBody, @unchecked Sendable {
    public let path: String
    let memoryLimit: Int
    private let lock = NSLock()
    private var bytes = 0
    private var memory: [UInt8] = []            // the body while it is small
    private var onDisk = false                  // spilled to `path`
    private var digest: OpaquePointer?          // EVP_MD_CTX, until `finish`
    private var hash: [UInt8]? = nil
    private var gone = false                    // discarded or moved into place

    init(path: String, memoryLimit: Int = 0) throws {
        self.path = path
        self.memoryLimit = memoryLimit
        digest = EVP_MD_CTX_new()
        guard digest != nil, EVP_DigestInit_ex(digest, EVP_sha256(), nil) == 1 else {
            gone = true
            throw BlobStoreError("sha256 init", path, ENOMEM)
        }
    }

    deinit {
        EVP_MD_CTX_free(digest)
        if !gone && onDisk { unlink(path) }
    }

    /// Whether the body is in a file (past `memoryLimit`).
    public var isOnDisk: Bool { lock.lock(); defer { lock.unlock() }; return onDisk }

    public func needsIO(appending count: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return onDisk || bytes + count > memoryLimit
    }

    public var size: Int { lock.lock(); defer { lock.unlock() }; return bytes }

    /// Moves the body to its file (created anew: O_EXCL). Called with the lock held, or from init.
    private func spill() throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw BlobStoreError("create", path) }
        onDisk = true
        defer { close(fd) }
        try memory.withUnsafeBytes { try write(fd, $0) }
        memory = []
    }

    private func write(_ fd: Int32, _ buf: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < buf.count {
            let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 { if errno == EINTR { continue }; throw BlobStoreError("write", path) }
            off += n
        }
    }

    public func append(_ buf: UnsafeRawBufferPointer) throws {
        lock.lock(); defer { lock.unlock() }
        guard !gone, hash == nil else { throw BlobStoreError("append to finished body", path, EINVAL) }
        guard buf.count > 0 else { return }
        if !onDisk && bytes + buf.count <= memoryLimit {
            memory.append(contentsOf: buf)
        } else {
            if !onDisk { try spill() }
            let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            if fd < 0 { throw BlobStoreError("open", path) }
            do { try write(fd, buf) } catch { close(fd); throw error }
            if close(fd) != 0 { throw BlobStoreError("close", path) }
        }
        EVP_DigestUpdate(digest, buf.baseAddress, buf.count)
        bytes += buf.count
    }

    /// Ends the body: its SHA-256 (the same answer on every call; no append after it).
    public func finish() throws -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        if let h = hash { return h }
        guard !gone else { throw BlobStoreError("finish a discarded body", path, EINVAL) }
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        guard EVP_DigestFinal_ex(digest, &out, &len) == 1 else { throw BlobStoreError("sha256", path, EIO) }
        hash = out
        return out
    }

    /// Runs `body` over the staged bytes: in memory, or the file mapped read-only (nothing copied).
    public func withMappedBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        lock.lock()
        if !onDisk { defer { lock.unlock() }; return try memory.withUnsafeBytes { try body($0) } }
        lock.unlock()
        let n = size
        guard n > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw BlobStoreError("open", path) }
        defer { close(fd) }
        guard let p = mmap(nil, n, PROT_READ, MAP_PRIVATE, fd, 0), p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw BlobStoreError("mmap", path)
        }
        defer { munmap(p, n) }
        return try body(UnsafeRawBufferPointer(start: p, count: n))
    }

    public func discard() {
        lock.lock(); defer { lock.unlock() }
        guard !gone else { return }
        gone = true
        memory = []
        if onDisk { unlink(path) }
    }

    /// Renames the file to `dest` (the blob store's adopt); a body still in memory is written first.
    func moveTo(_ dest: String) throws {
        lock.lock(); defer { lock.unlock() }
        guard !gone else { throw BlobStoreError("adopt a discarded body", path, EINVAL) }
        if !onDisk { try spill() }
        if rename(path, dest) != 0 { throw BlobStoreError("rename", dest) }
        gone = true
    }
}
