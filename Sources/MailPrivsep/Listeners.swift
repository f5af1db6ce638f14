// Binding listening sockets in the master (the only process that may need privileged ports):
// TCP on IPv4/IPv6 and unix sockets with owner/group/mode. Every fd is O_CLOEXEC; children get
// them only through the fd contract.
import Foundation
import MailCore

public struct ListenerError: Error, CustomStringConvertible {
    public var address: String, reason: String
    public var description: String { "cannot listen on \(address): \(reason)" }
}

public enum Listeners {
    public static func bind(_ a: ListenAddress, mode: UInt16 = 0o666, owner: String? = nil, group: String? = nil, backlog: Int32 = 511) throws -> Int32 {
        switch a.kind {
        case .unix(let path): return try bindUnix(path, mode: mode, owner: owner, group: group, backlog: backlog)
        case .tcp(let host, let port): return try bindTCP(host, port, backlog: backlog)
        }
    }

    static func err(_ a: String, _ what: String) -> ListenerError { ListenerError(address: a, reason: "\(what): \(String(cString: strerror(errno)))") }

    public static func bindUnix(_ path: String, mode: UInt16, owner: String?, group: String?, backlog: Int32) throws -> Int32 {
        let name = "unix:\(path)"
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw ListenerError(address: name, reason: "exists and is not a socket") }
            unlink(path)
        }
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw err(name, "socket") }
        var addr = sockaddr_un(); addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); throw ListenerError(address: name, reason: "path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        // Create with no access, then set the final mode: no window where the socket is wider open.
        let old = umask(0o777)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard rc == 0 else { let e = err(name, "bind"); close(fd); throw e }
        var uid: uid_t = UInt32.max, gid: gid_t = UInt32.max
        if let owner {
            guard let u = SystemUser.lookup(owner) else { close(fd); throw ListenerError(address: name, reason: "no such user \(owner)") }
            uid = u.uid
        }
        if let group {
            guard let g = SystemUser.lookupGroup(group) else { close(fd); throw ListenerError(address: name, reason: "no such group \(group)") }
            gid = g
        }
        if owner != nil || group != nil, chown(path, uid, gid) != 0 { let e = err(name, "chown"); close(fd); throw e }
        if chmod(path, mode_t(mode)) != 0 { let e = err(name, "chmod"); close(fd); throw e }
        guard listen(fd, backlog) == 0 else { let e = err(name, "listen"); close(fd); throw e }
        return fd
    }

    public static func bindTCP(_ host: String, _ port: Int, backlog: Int32) throws -> Int32 {
        let name = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else {
            throw ListenerError(address: name, reason: "not a numeric IPv4/IPv6 address")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw err(name, "socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if ai.pointee.ai_family == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        guard Glibc.bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else { let e = err(name, "bind"); close(fd); throw e }
        guard listen(fd, backlog) == 0 else { let e = err(name, "listen"); close(fd); throw e }
        return fd
    }
}
