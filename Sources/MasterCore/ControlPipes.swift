// The master's ends of the children's control pipes (FDContract, ControlPipe): how a signal
// reaches a child under another uid without CAP_KILL. Writes never block; only the loop thread
// uses this table (spawn, the supervisor's .kill actions, reap).
import Foundation
import MailPrivsep

public struct ControlPipes {
    /// What became of one signal.
    public enum Delivery: Equatable, Sendable {
        case written          // the byte is in the child's pipe
        case noPipe           // no pipe for this pid (or a signal with no byte): the caller uses kill(2)
        case full             // the child has not read 64 KiB of commands: it is wedged
        case gone             // EPIPE: the child closed its end, i.e. has exited
        case failed(Int32)    // any other write(2) error
    }

    var writeEnds: [pid_t: Int32] = [:]

    public init() {}

    /// A new pipe for a child about to be spawned: `read` goes to the child (FDContract), `write`
    /// is kept; both are O_CLOEXEC, so no other child inherits them, and `write` is non-blocking.
    public static func make() -> (read: Int32, write: Int32)? {
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { return nil }
        // Spawner closes everything unmapped in the child anyway; CLOEXEC is the second fence.
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // Only our end is non-blocking: the child's reader thread blocks in read(2).
        _ = fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK)
        return (p[0], p[1])
    }

    /// Keeps `writeEnd` as the pipe of the spawned `pid`.
    public mutating func adopt(_ writeEnd: Int32, for pid: pid_t) {
        if let old = writeEnds.updateValue(writeEnd, forKey: pid) { close(old) }
    }

    /// Writes the byte naming `signal` to `pid`'s pipe.
    public func send(_ signal: Int32, to pid: pid_t) -> Delivery {
        guard let fd = writeEnds[pid], let command = ControlPipe.Command(signal: signal) else { return .noPipe }
        var byte = command.rawValue
        while true {
            if write(fd, &byte, 1) == 1 { return .written }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .full
            case EPIPE: return .gone
            case let e: return .failed(e)
            }
        }
    }

    /// The child was reaped: our end is closed.
    public mutating func remove(_ pid: pid_t) {
        if let fd = writeEnds.removeValue(forKey: pid) { close(fd) }
    }

    public var count: Int { writeEnds.count }
}
