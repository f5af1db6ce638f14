// RLIMIT_NOFILE for the daemon set: before it spawns anything the master raises its soft limit
// as far as its hard limit allows, so every worker inherits room for its `max_connections` (one
// descriptor per connection, plus its listeners, store channel and libraries' own). Guarantee:
// never lowers a limit; says once at start when a service's connection cap cannot be met.
import Foundation
import Logging
import MailCore

enum FileLimit {
    /// Descriptors a worker needs besides its connections (listeners, store, logs, event loops).
    static let spare = 64
    /// RLIMIT_NOFILE as Glibc's getrlimit takes it.
    static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    /// RLIM_INFINITY on 64-bit Linux (the C macro is a cast Swift does not import).
    static let infinity = UInt64.max

    /// The soft limit the daemon set wants: the largest per-process connection cap plus `spare`.
    static func wanted(_ c: PosternConfig) -> Int {
        max(c.imap.service.maxConnections, c.pop3.service.maxConnections, c.smtp.service.maxConnections) + spare
    }

    /// The new soft limit for (`soft`, `hard`) when `wanted` is asked: raised towards `wanted`,
    /// then to the hard limit (a worker's libraries may want more), never lowered.
    static func raised(soft: UInt64, hard: UInt64, wanted: UInt64) -> UInt64 {
        max(soft, hard == infinity ? max(soft, wanted) : hard)
    }

    /// Raises this process's soft RLIMIT_NOFILE (the workers inherit it through posix_spawn).
    static func raise(_ c: PosternConfig, logger: Logger) {
        var r = rlimit()
        guard getrlimit(Self.resource, &r) == 0 else { return }
        let want = UInt64(wanted(c))
        let soft = raised(soft: UInt64(r.rlim_cur), hard: UInt64(r.rlim_max), wanted: want)
        if soft != UInt64(r.rlim_cur) {
            var n = r
            n.rlim_cur = rlim_t(soft)
            if setrlimit(Self.resource, &n) != 0 {
                logger.warning("cannot raise the open-file limit from \(r.rlim_cur) to \(soft): \(String(cString: strerror(errno)))")
                return
            }
        }
        if soft < want {
            logger.warning("open-file limit \(soft) (hard \(r.rlim_max)) is below max_connections + \(spare) = \(want); raise LimitNOFILE or ulimit -n")
        } else {
            logger.debug("open-file limit \(soft)", metadata: ["hard": "\(r.rlim_max)", "wanted": "\(want)"])
        }
    }
}
