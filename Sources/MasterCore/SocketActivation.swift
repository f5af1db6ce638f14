// Socket activation (sd_listen_fds(3) without libsystemd): the listening sockets systemd passed
// (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES; fds from 3) matched to the service table's listeners
// by their bound address; the master binds only what was not passed, and closes what no listener wants.
//
// Names: a socket unit's FileDescriptorName= names every socket of that unit (systemd.socket(5)),
// so systemd/ ships one unit per listener role, and the name is the role of the listener key
// (ServiceTable: "imaps@[::]:993" → "imaps"), except mta ("mta@0.0.0.0:25") whose name is "smtp"
// (the port's name in /etc/services), and ":" (not allowed in a name) written "." ("tcp_table:aliases"
// → "tcp_table.aliases"). The address decides which listener a socket is; a role name that
// disagrees with the listener at that address refuses the socket. Any other name (systemd's
// default, the unit name "postern.socket", or "unknown") matches by address alone.
import Foundation
import MailCore

public enum SocketActivation {
    /// SD_LISTEN_FDS_START: the first passed descriptor.
    public static let firstFD: Int32 = 3
    public static let envPID = "LISTEN_PID"
    public static let envFDs = "LISTEN_FDS"
    public static let envNames = "LISTEN_FDNAMES"
    /// More passed sockets than this is a broken environment, not a configuration.
    public static let maxPassed = 1024
    /// The name sd_listen_fds_with_names(3) gives a socket when LISTEN_FDNAMES is unset.
    public static let unnamed = "unknown"
    /// The role names FileDescriptorName= may carry (besides "tcp_table.MAP").
    public static let roleNames: Set<String> = ["smtp", "submission", "smtps", "lmtp", "imap", "imaps", "pop3", "pop3s", "socketmap"]
    static let tableMapPrefix = "tcp_table."

    /// One descriptor systemd passed, and what it is (`inspect`).
    public struct Passed: Sendable, Equatable {
        public var fd: Int32
        public var name: String
        /// Where it is bound (getsockname), nil if it is no AF_INET/AF_INET6/path AF_UNIX socket.
        public var address: ListenAddress?
        /// SOCK_STREAM and listening (SO_ACCEPTCONN).
        public var listening: Bool
        public init(fd: Int32, name: String, address: ListenAddress? = nil, listening: Bool = true) {
            self.fd = fd; self.name = name; self.address = address; self.listening = listening
        }
    }

    public enum Environment: Sendable, Equatable {
        /// No LISTEN_PID, or one that is not ours (the variables were meant for another process).
        case none
        case passed([Passed])
        /// LISTEN_PID is ours but the rest cannot be read: the start stops with the reason.
        case invalid(String)
    }

    /// sd_listen_fds_with_names(3): LISTEN_PID must be `pid`; LISTEN_FDS sockets from fd 3;
    /// LISTEN_FDNAMES, when set, holds exactly one ":"-separated name per socket.
    public static func parse(environment env: [String: String], pid: pid_t) -> Environment {
        guard let p = env[envPID] else { return .none }
        guard let owner = pid_t(p), owner > 0 else { return .invalid("\(envPID)=\(p) is not a process id") }
        guard owner == pid else { return .none }
        guard let n = Int(env[envFDs] ?? ""), (0...maxPassed).contains(n) else {
            return .invalid("\(envFDs)=\(env[envFDs] ?? "") is not a count of 0 to \(maxPassed) descriptors")
        }
        var names = Array(repeating: unnamed, count: n)
        if let list = env[envNames] {
            let given = list.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard given.count == n else { return .invalid("\(envNames) has \(given.count) names for \(n) descriptors") }
            names = given
        }
        return .passed((0..<n).map { Passed(fd: firstFD + Int32($0), name: names[$0]) })
    }

    /// The FileDescriptorName= of a listener key: its role, "smtp" for mta, ":" as ".".
    public static func fdName(forKey key: String) -> String {
        let role = key.split(separator: "@", maxSplits: 1).first.map(String.init) ?? key
        return role == "mta" ? "smtp" : role.replacingOccurrences(of: ":", with: ".")
    }

    /// A role name (see the file comment), as opposed to a unit's default name.
    public static func isRoleName(_ name: String) -> Bool {
        roleNames.contains(name) || (name.hasPrefix(tableMapPrefix) && name.count > tableMapPrefix.count)
    }

    /// What the master does with the passed sockets: `adopted` listener key → fd; `refused`
    /// sockets are logged with the reason and closed.
    public struct Plan: Sendable, Equatable {
        public var adopted: [String: Int32] = [:]
        public var refused: [Refused] = []
    }
    public struct Refused: Sendable, Equatable {
        public var fd: Int32, name: String, reason: String
    }

    /// Matches passed sockets to `listeners` by address (pure). A listener gets at most one socket.
    public static func match(_ passed: [Passed], listeners: [ListenerSpec]) -> Plan {
        var plan = Plan()
        for s in passed {
            func refuse(_ why: String) { plan.refused.append(Refused(fd: s.fd, name: s.name, reason: why)) }
            guard let address = s.address, s.listening else { refuse("not a listening stream socket on an address"); continue }
            let wanted = normalized(address)
            guard let l = listeners.first(where: { normalized($0.address) == wanted }) else {
                refuse("no listener of the configuration is at \(address)"); continue
            }
            let expected = fdName(forKey: l.key)
            if isRoleName(s.name) && s.name != expected {
                refuse("named \(s.name), but the configuration's listener at \(address) is \(l.key) (name \(expected))"); continue
            }
            guard plan.adopted[l.key] == nil else { refuse("a second socket for \(l.key)"); continue }
            plan.adopted[l.key] = s.fd
        }
        return plan
    }

    /// One spelling per address: numeric hosts through inet_pton/inet_ntop ("0:0::1" is "::1").
    static func normalized(_ a: ListenAddress) -> ListenAddress {
        guard case .tcp(let host, let port) = a.kind else { return a }
        let family = host.contains(":") ? AF_INET6 : AF_INET
        var raw = in6_addr()   // big enough for either family
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_pton(family, host, &raw) == 1, inet_ntop(family, &raw, &text, socklen_t(text.count)) != nil else { return a }
        return ListenAddress(.tcp(host: String(cString: text), port: port))
    }

    // MARK: the syscall side

    /// sd_listen_fds(unset_environment: true): reads the variables, removes them from our
    /// environment (no child or re-exec sees them), marks the passed fds close-on-exec (they
    /// reach workers only through the fd contract) and looks at what each one is.
    public static func adopt() -> Environment {
        let env = parse(environment: ProcessInfo.processInfo.environment, pid: getpid())
        for k in [envPID, envFDs, envNames] { unsetenv(k) }
        guard case .passed(let list) = env else { return env }
        return .passed(list.map { p in
            _ = fcntl(p.fd, F_SETFD, fcntl(p.fd, F_GETFD) | FD_CLOEXEC)
            return inspect(p)
        })
    }

    /// getsockname and SO_TYPE/SO_ACCEPTCONN of one passed descriptor.
    static func inspect(_ p: Passed) -> Passed {
        var out = p
        var type: Int32 = 0, accepting: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        let isStream = getsockopt(p.fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == Int32(SOCK_STREAM.rawValue)
        len = socklen_t(MemoryLayout<Int32>.size)
        out.listening = isStream && getsockopt(p.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0
        var storage = sockaddr_storage()
        var slen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(p.fd, $0, &slen) } }
        out.address = rc == 0 ? address(of: storage, length: slen) : nil
        return out
    }

    static func address(of storage: sockaddr_storage, length: socklen_t) -> ListenAddress? {
        var s = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(s.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var a = sin.pointee.sin_addr
                guard inet_ntop(AF_INET, &a, &text, socklen_t(text.count)) != nil else { return nil }
                return ListenAddress(.tcp(host: String(cString: text), port: Int(UInt16(bigEndian: sin.pointee.sin_port))))
            } }
        case AF_INET6:
            return withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var a = sin6.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)) != nil else { return nil }
                return ListenAddress(.tcp(host: String(cString: text), port: Int(UInt16(bigEndian: sin6.pointee.sin6_port))))
            } }
        case AF_UNIX:
            let pathOffset = MemoryLayout<sa_family_t>.size
            guard Int(length) > pathOffset + 1 else { return nil }   // unnamed
            return withUnsafeBytes(of: &s) { raw -> ListenAddress? in
                let bytes = raw[pathOffset..<Int(length)]
                guard let first = bytes.first, first != 0 else { return nil }   // abstract namespace
                let path = bytes.prefix { $0 != 0 }
                return ListenAddress(.unix(path: String(decoding: path, as: UTF8.self)))
            }
        default: return nil
        }
    }
}
