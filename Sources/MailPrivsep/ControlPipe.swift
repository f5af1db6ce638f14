// The master's per-child control pipe (FDContract: fd POSTERN_CONTROL_FD): one byte names a signal
// the child then sends itself, so the master needs no CAP_KILL to stop children under other uids.
// Guarantees: the child's own signal handling is unchanged — only the delivery path differs.
import Foundation
import CMailShims

public enum ControlPipe {
    /// One command on the pipe: a byte naming the signal the child sends to itself.
    public enum Command: UInt8, CaseIterable, Sendable {
        case terminate = 0x54   // "T": SIGTERM — drain and stop
        case kill = 0x4B        // "K": SIGKILL — the escalation after the grace period
        case hangup = 0x48      // "H": SIGHUP

        public init?(signal: Int32) {
            switch signal {
            case SIGTERM: self = .terminate
            case SIGKILL: self = .kill
            case SIGHUP: self = .hangup
            default: return nil
            }
        }

        public var signal: Int32 {
            switch self {
            case .terminate: return SIGTERM
            case .kill: return SIGKILL
            case .hangup: return SIGHUP
            }
        }
    }

    /// What the child does on end of file: the master is gone, so it stops as it would on
    /// PR_SET_PDEATHSIG (Privileges.dieWithParent).
    public static let masterGoneSignal = SIGTERM

    /// The signals the bytes in `bytes` ask for, in order; unknown bytes are skipped.
    public static func signals(in bytes: some Sequence<UInt8>) -> [Int32] {
        bytes.compactMap { Command(rawValue: $0)?.signal }
    }

    /// The child's side: a thread blocks on read(fd) and hands each named signal to `deliver`,
    /// then `masterGoneSignal` once at end of file (or a read error other than EINTR).
    /// `deliver` defaults to kill(getpid(), sig): process-directed like the master's kill(2)
    /// was, so a signalfd or dispatch source on any thread sees it (raise() would aim at this
    /// thread only). A process may always signal itself.
    public static func follow(fd: Int32, deliver: @escaping @Sendable (Int32) -> Void = { _ = Foundation.kill(getpid(), $0) }) {
        let t = Thread {
            var buf = [UInt8](repeating: 0, count: 64)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                for sig in signals(in: buf[0..<n]) { deliver(sig) }
            }
            close(fd)
            deliver(masterGoneSignal)
        }
        t.name = "control pipe"
        t.start()
    }

    /// Every spawned process calls this once after dropping privileges: die with the master
    /// (PR_SET_PDEATHSIG, which needs no capability) and obey its control pipe, if it passed one.
    public static func followMaster(environment env: [String: String] = ProcessInfo.processInfo.environment) {
        Privileges.dieWithParent()
        if let fd = FDContract.controlPipe(environment: env) { follow(fd: fd) }
    }
}
