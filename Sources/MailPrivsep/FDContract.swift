// The written fd contract between the master and every process it spawns.
// Relies on: the master dup2()s exactly these numbers; everything else it holds is O_CLOEXEC.
//
//   fd 3            store:   control channel from the master (new RPC connections arrive
//                            here as SCM_RIGHTS with their role; the store writes "ready")
//                   workers: this worker's RPC connection to the store (role set by the master)
//   fd 4 ... 4+N-1  workers: inherited listening sockets, N = POSTERN_LISTEN_FDS,
//                            names in POSTERN_LISTEN_FDNAMES (":"-separated, like systemd's
//                            LISTEN_FDNAMES), e.g. "lmtp=unix:/run/postern/lmtp"
//   fd 4+N          every child (store: N = 0, so fd 4): read end of its control pipe, number in
//                   POSTERN_CONTROL_FD. The master writes one byte per signal ("T" SIGTERM,
//                   "K" SIGKILL, "H" SIGHUP) and the child signals itself (ControlPipe), so the
//                   master needs no CAP_KILL; end of file means the master is gone.
//
// Environment: POSTERN_CONFIG (config file path), POSTERN_SERVICE (service name),
// POSTERN_INSTANCE (0-based process index within its service), POSTERN_TLS_TICKET_KEYS
// (hex; TLS session ticket keys shared by the processes of a TLS service).
import Foundation
import Logging
import MailCore

public enum FDContract {
    public static let controlFD: Int32 = 3          // store only
    public static let storeFD: Int32 = 3            // workers only
    public static let firstListenFD: Int32 = 4
    public static let envConfig = "POSTERN_CONFIG"
    public static let envService = "POSTERN_SERVICE"
    public static let envInstance = "POSTERN_INSTANCE"
    public static let envListenFDs = "POSTERN_LISTEN_FDS"
    public static let envListenNames = "POSTERN_LISTEN_FDNAMES"
    public static let envTicketKeys = "POSTERN_TLS_TICKET_KEYS"
    public static let envControlPipe = "POSTERN_CONTROL_FD"

    /// Where the control pipe goes: the first number after the `listeners` listening sockets.
    public static func controlPipeFD(listeners: Int) -> Int32 { firstListenFD + Int32(listeners) }

    /// The control pipe's read end named by POSTERN_CONTROL_FD (nil: none passed, or not a
    /// number above the fds the contract already assigns).
    public static func controlPipe(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Int32? {
        guard let v = env[envControlPipe], let fd = Int32(v), fd >= firstListenFD else { return nil }
        return fd
    }

    /// Byte the store writes on its control channel once migrations and the orphan sweep are done.
    public static let storeReadyByte: UInt8 = 0x52   // "R"

    public struct Inherited: Sendable {
        public var configPath: String
        public var service: String
        public var instance: Int
        public var listeners: [(fd: Int32, name: String)]
    }

    /// Reads the contract from the environment of a spawned process.
    public static func inherited(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Inherited? {
        guard let config = env[envConfig], let service = env[envService] else { return nil }
        let n = Int(env[envListenFDs] ?? "0") ?? 0
        let names = (env[envListenNames] ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var listeners: [(Int32, String)] = []
        for i in 0..<n { listeners.append((firstListenFD + Int32(i), i < names.count ? names[i] : "listener\(i)")) }
        return Inherited(configPath: config, service: service, instance: Int(env[envInstance] ?? "0") ?? 0,
                         listeners: listeners)
    }

    /// Encodes listener names for POSTERN_LISTEN_FDNAMES (":" cannot appear inside a name, so it is %-escaped).
    public static func encodeName(_ s: String) -> String { s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ":", with: "%3A") }
    public static func decodeName(_ s: String) -> String { s.replacingOccurrences(of: "%3A", with: ":").replacingOccurrences(of: "%25", with: "%") }
}

/// Phase one shared by every spawned process: the fd contract from the environment, the
/// configuration, logging. A process not started by the master (EX_USAGE) or with a bad
/// configuration (EX_CONFIG) exits with a one-line reason.
public enum SpawnedProcess {
    public static func start(_ name: String) -> (contract: FDContract.Inherited, config: PosternConfig, logger: Logger) {
        func die(_ message: String, _ code: ExitStatus) -> Never {
            FileHandle.standardError.write("\(name): \(message)\n".data(using: .utf8)!)
            exit(code)
        }
        guard let contract = FDContract.inherited() else { die("must be started by the postern master", .usage) }
        let config: PosternConfig
        do { config = try PosternConfig.load(path: contract.configPath) } catch { die("\(error)", .config) }
        PosternLog.bootstrap(process: name, level: config.logLevel)
        return (contract, config, Logger(label: name))
    }
}
