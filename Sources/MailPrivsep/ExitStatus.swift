// Exit statuses: both sides of the master ↔ child contract name them from here, so what a
// child means by exiting and how the master reads it cannot drift. Values are sysexits(3).
import Foundation

/// Exit statuses of Postern's processes, named after sysexits(3) (`<sysexits.h>`).
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// EX_OK: clean stop (SIGTERM handled, control channel closed).
    case ok = 0
    /// EXIT_FAILURE (C99): a start failure with no better name (e.g. the master could not bind).
    case failure = 1
    /// EX_USAGE: bad command line, or a child started without the master's fd contract.
    case usage = 64
    /// EX_NOUSER: the configured system user does not exist.
    case noUser = 67
    /// EX_SOFTWARE: internal software error.
    case software = 70
    /// EX_OSERR: an operating-system error (fork, pipe, ...).
    case osErr = 71
    /// EX_CANTCREAT: a file or directory the process needs cannot be created (the store's data dir).
    case cantCreate = 73
    /// EX_IOERR: an I/O error (the store cannot open its database).
    case ioErr = 74
    /// EX_TEMPFAIL: try again later. A worker that lost (or never got) its store connection
    /// exits so; the master restarts it at once, without backoff, once the store is back.
    case tempFail = 75
    /// EX_NOPERM: insufficient permission (the privilege drop failed).
    case noPerm = 77
    /// EX_CONFIG: a configuration error.
    case config = 78
}

/// Ends the process with a named status.
public func exit(_ status: ExitStatus) -> Never { Foundation.exit(status.rawValue) }

/// How a child ended, decoded from a waitpid(2) status word (POSIX <sys/wait.h>:
/// WIFEXITED/WEXITSTATUS, WIFSIGNALED/WTERMSIG) instead of bit twiddling at each use.
public enum WaitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)          // WIFEXITED, with WEXITSTATUS
    case signaled(Int32)        // WIFSIGNALED, with WTERMSIG

    // Linux/glibc layout of the status word (bits/waitstatus.h).
    private static let termSigMask: Int32 = 0x7f
    private static let exitCodeShift: Int32 = 8
    private static let exitCodeMask: Int32 = 0xff

    public init(raw: Int32) {
        let sig = raw & Self.termSigMask
        self = sig == 0 ? .exited((raw >> Self.exitCodeShift) & Self.exitCodeMask) : .signaled(sig)
    }

    /// True when the child exited normally with `status`.
    public func exited(with status: ExitStatus) -> Bool { self == .exited(status.rawValue) }

    public var description: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let sig): return "signal \(sig)"
        }
    }
}
