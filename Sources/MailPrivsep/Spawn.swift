// posix_spawn with an explicit fd map (never a bare fork() in a Swift process, DESIGN §1).
// The child gets exactly the mapped fds at their contract numbers, a fresh signal state and
// its own process group, so terminal signals reach only the master.
import Foundation
import CMailShims

public enum Spawner {
    public struct SpawnError: Error, CustomStringConvertible {
        public var path: String, errno: Int32
        public var description: String { "posix_spawn \(path): \(String(cString: strerror(errno)))" }
    }

    /// Spawns `path` with `args`, `env`, and `fds[target] = source` (sources stay open in the parent).
    public static func spawn(path: String, args: [String], env: [String: String], fds: [Int32: Int32]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Move sources out of the way first, so a source that equals another target is not clobbered
        // and dup2(a, b) with a != b always clears FD_CLOEXEC on the target.
        var temps: [Int32] = []
        defer { for t in temps { close(t) } }
        for (target, source) in fds.sorted(by: { $0.key < $1.key }) {
            let high = fcntl(source, F_DUPFD_CLOEXEC, 200)
            guard high >= 0 else { throw SpawnError(path: path, errno: errno) }
            temps.append(high)
            posix_spawn_file_actions_adddup2(&actions, high, target)
        }
        // Nothing else crosses: not even descriptors an ancestor leaked to us without O_CLOEXEC.
        mail_spawn_closefrom(&actions, (fds.keys.max() ?? 2) + 1)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(); sigemptyset(&none)
        var all = sigset_t(); sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([path] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
        guard rc == 0 else { throw SpawnError(path: path, errno: rc) }
        return pid
    }
}
