// Control family (types 110–129): the master's root-only control socket (CLI → master).
//
//   request        → reply                          who
//   Hello          → HelloOK(role "control")         the CLI
//   Status         → StatusResult([ProcessStatus])   the CLI
//   Reload         → OK                              the CLI (same as SIGHUP)
//   Attach(role)   → OK, after which the same socket is an RPC connection to the store with `role`
// The store never accepts these (no role lists them).
import NIOCore

public enum ProcessState: String, Sendable, CaseIterable {
    case running, restarting, throttled, stopping
}

public struct ProcessStatus: Sendable, Equatable {
    public var service: String, instance: UInt32, pid: Int64, startedAt: Int64, restarts: UInt32, state: ProcessState
    public init(service: String, instance: UInt32, pid: Int64, startedAt: Int64, restarts: UInt32, state: ProcessState) {
        self.service = service; self.instance = instance; self.pid = pid; self.startedAt = startedAt; self.restarts = restarts; self.state = state
    }
    static let minBytes = WireSize.string * 2 + WireSize.u32 * 2 + WireSize.u64 * 2
}

public struct Status: RPCRequest, EmptyMessage {
    public typealias Reply = StatusResult
    public static let type = MessageType.status
    public static let roles: Set<Role> = .none
    public init() {}
}

public struct StatusResult: RPCMessage {
    public static let type = MessageType.statusResult
    public var processes: [ProcessStatus]
    public init(_ processes: [ProcessStatus]) { self.processes = processes }
    public init(reading r: inout WireReader) throws {
        processes = try r.list(minElementBytes: ProcessStatus.minBytes) { r in
            ProcessStatus(service: try r.string(), instance: try r.u32(), pid: try r.i64(), startedAt: try r.i64(),
                          restarts: try r.u32(), state: try r.enumString(ProcessState.self))
        }
    }
    public func write(to w: inout WireWriter) {
        w.list(processes) { w, p in
            w.string(p.service); w.u32(p.instance); w.i64(p.pid); w.i64(p.startedAt); w.u32(p.restarts); w.string(p.state.rawValue)
        }
    }
}

public struct Reload: RPCRequest, EmptyMessage {
    public typealias Reply = OK
    public static let type = MessageType.reload
    public static let roles: Set<Role> = .none
    public init() {}
}

public struct Attach: RPCRequest {
    public typealias Reply = OK
    public static let type = MessageType.attach
    public static let roles: Set<Role> = .none
    public var role: Role
    public init(role: Role) { self.role = role }
    public init(reading r: inout WireReader) throws { role = try r.enumString(Role.self) }
    public func write(to w: inout WireWriter) { w.string(role.rawValue) }
}
