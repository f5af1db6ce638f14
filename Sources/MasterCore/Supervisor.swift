// The master's supervisor as a value (DESIGN §1): the store and every worker slot, driven by
// events (a child exited, a signal, the store is ready, a timer) and answering with actions
// (spawn, kill, notify, log, exit). It makes no syscalls and reads no clock: `now` comes with
// every event, so tests drive it without sleeping. Guarantees: no worker is spawned before
// the store is ready; at shutdown the store is stopped last; nothing blocks.
import Foundation
import Logging
import MailIPC
import MailPrivsep
import MailWorker

public struct Supervisor {
    public enum SlotID: Hashable, Sendable, CustomStringConvertible {
        case store
        case worker(service: String, instance: Int)
        public var description: String {
            switch self {
            case .store: return "store"
            case .worker(let s, let i): return "\(s)[\(i)]"
            }
        }
        /// The service and instance `postern status` shows ("store", 0 for the store).
        public var service: String { if case .worker(let s, _) = self { return s }; return ServiceTable.storeExecutable }
        public var instance: Int { if case .worker(_, let i) = self { return i }; return 0 }
    }

    /// One supervised process: the store, or one instance of a service.
    public struct Slot: Sendable, Equatable {
        public let id: SlotID
        public internal(set) var pid: pid_t = 0          // 0: not running
        public internal(set) var startedAt = 0.0         // monotonic seconds; 0: never started
        public internal(set) var restarts = 0
        public internal(set) var restartAt: Double? = 0  // when to (re)start; nil while running or spawning
        public internal(set) var spawning = false        // a spawn action is out, its result not yet in
        public internal(set) var policy: RestartPolicy
        init(id: SlotID, policy: RestartPolicy) { self.id = id; self.policy = policy }

        /// The state `postern status` shows.
        public var state: ProcessState { pid > 0 ? .running : (policy.throttled ? .throttled : .restarting) }
    }

    /// Timings from the configuration, and the master's named constants.
    public struct Settings: Sendable, Equatable {
        public var policy: RestartPolicy
        /// Sessions get this long after SIGTERM before SIGKILL (master.shutdown_grace).
        public var shutdownGrace: Double
        /// The store must write its ready byte within this (migrations + orphan sweep), or it
        /// is killed and restarted with backoff.
        public var storeReadyTimeout: Double = 60
        /// After the workers are gone, the store gets this much past the grace deadline to stop.
        public var storeKillSlack: Double = 5
        /// After the grace period a worker's sessions get this long to say goodbye (SMTP 421)
        /// before it exits; SIGKILL waits for it (WorkerServer.goodbyeTime, plus scheduling slack).
        public var goodbyeSlack: Double = WorkerServer.goodbyeTime + 1
        /// Retry delay when a spawn could not even be tried (no store connection, no socketpair).
        public var transientRetry: Double = 1

        public init(policy: RestartPolicy, shutdownGrace: Double) { self.policy = policy; self.shutdownGrace = shutdownGrace }
    }

    public enum Event: Sendable {
        case tick
        case childExited(pid_t, WaitStatus)
        case terminate                               // SIGTERM/SIGINT
        case reload([ServiceSpec], Settings)         // SIGHUP, with the reconciled table
        case storeReady                              // the ready byte arrived
        case storeFailed(String)                     // the control channel closed or lied before ready
        case spawned(SlotID, pid_t)
        case spawnFailed(SlotID, String)             // posix_spawn failed: counts as a crash
        case spawnDeferred(SlotID, String)           // could not try (no store connection): retry soon
    }

    public enum Action: Sendable, Hashable {
        case spawnStore
        case spawnWorker(service: String, instance: Int)
        case kill(pid_t, Int32)
        case closeStoreChannel                       // drop the master's end of the store's control channel
        case notify(String)                          // sd_notify(3) text
        case log(Logger.Level, String)
        case exit(ExitStatus)
    }

    public private(set) var specs: [ServiceSpec]
    public private(set) var settings: Settings
    public private(set) var store: Slot
    public private(set) var slots: [Slot]
    public private(set) var retiring = Set<pid_t>()  // old workers finishing their sessions after a reload
    public private(set) var storeReady = false
    public private(set) var stopping = false
    private var readyDeadline: Double?               // the store must be ready by then
    private var stopDeadline = 0.0
    private var workersKilled = false, storeTermSent = false, storeKilled = false, exited = false
    private var notifiedReady = false

    public init(specs: [ServiceSpec], settings: Settings) {
        self.specs = specs; self.settings = settings
        store = Slot(id: .store, policy: settings.policy)
        slots = Self.slots(for: specs, policy: settings.policy)
    }

    static func slots(for specs: [ServiceSpec], policy: RestartPolicy) -> [Slot] {
        specs.flatMap { s in (0..<s.processes).map { Slot(id: .worker(service: s.name, instance: $0), policy: policy) } }
    }

    public func spec(named name: String) -> ServiceSpec? { specs.first { $0.name == name } }

    /// Applies `event` at monotonic time `now`; returns what the master must do, in order.
    public mutating func handle(_ event: Event, now: Double) -> [Action] {
        var out: [Action] = []
        var afterAdvance: [Action] = []
        switch event {
        case .tick: break
        case .childExited(let pid, let status): out += childExited(pid, status, now: now)
        case .terminate: out += terminate(now: now)
        case .reload(let specs, let settings): (out, afterAdvance) = reload(specs, settings, now: now)
        case .storeReady:
            if store.pid > 0 && !storeReady {
                storeReady = true; readyDeadline = nil
                out += [.log(.info, "store running (pid \(store.pid))"), .notify("STATUS=store running")]
            }
        case .storeFailed(let why):
            if store.pid > 0 && !storeReady {
                readyDeadline = nil
                out += [.log(.error, "store failed before it was ready (\(why)); killing it"), .closeStoreChannel, .kill(store.pid, SIGKILL)]
            }
        case .spawned(let id, let pid): out += spawned(id, pid, now: now)
        case .spawnFailed(let id, let why):
            update(id) { s in s.spawning = false; s.restartAt = now + s.policy.crashed(now: now, lifetime: 0) }
            out.append(.log(.error, why))
        case .spawnDeferred(let id, let why):
            let retry = settings.transientRetry
            update(id) { s in s.spawning = false; s.restartAt = now + retry }
            out.append(.log(.error, why))
        }
        return out + advance(now: now) + afterAdvance
    }

    /// When the master must call back with `.tick` at the latest (nil: only on an event).
    public var nextWake: Double? {
        var times: [Double] = []
        if stopping {
            if !allWorkersGone { if !workersKilled { times.append(stopDeadline) } }
            else if store.pid > 0 && !storeKilled { times.append(stopDeadline + settings.storeKillSlack) }
        } else {
            if !store.spawning, store.pid == 0, let at = store.restartAt { times.append(at) }
            if let d = readyDeadline { times.append(d) }
            if storeReady { for s in slots where s.pid == 0 && !s.spawning { if let at = s.restartAt { times.append(at) } } }
        }
        return times.filter(\.isFinite).min()
    }

    var allWorkersGone: Bool { slots.allSatisfy { $0.pid == 0 } && retiring.isEmpty }

    // MARK: events

    private mutating func childExited(_ pid: pid_t, _ how: WaitStatus, now: Double) -> [Action] {
        guard pid > 0 else { return [] }
        if pid == store.pid {
            store.pid = 0; storeReady = false; readyDeadline = nil
            if stopping { return [.closeStoreChannel, .log(.info, "store stopped (\(how))")] }
            let d = store.policy.crashed(now: now, lifetime: now - store.startedAt)
            store.restartAt = now + d
            return [.closeStoreChannel, .log(.error, "store died (\(how)); restarting in \(Self.seconds(d))\(throttleNote(store))")]
        }
        if retiring.remove(pid) != nil { return [.log(.info, "retired worker \(pid) exited (\(how))")] }
        guard let i = slots.firstIndex(where: { $0.pid == pid }) else { return [] }
        slots[i].pid = 0
        let name = slots[i].id
        if stopping { return [.log(.info, "\(name) stopped (\(how))")] }
        // EX_TEMPFAIL: the worker lost the store (it comes back once the store does); 0: it was told to stop.
        if how.exited(with: .ok) || how.exited(with: .tempFail) {
            slots[i].policy.reset(); slots[i].restartAt = now
            return [.log(.info, "\(name) exited (\(how)); restarting")]
        }
        let d = slots[i].policy.crashed(now: now, lifetime: now - slots[i].startedAt)
        slots[i].restartAt = now + d
        return [.log(.error, "\(name) died (\(how)); restarting in \(Self.seconds(d))\(throttleNote(slots[i]))")]
    }

    private mutating func spawned(_ id: SlotID, _ pid: pid_t, now: Double) -> [Action] {
        if id == .store {
            start(&store, pid, now: now)
            readyDeadline = now + settings.storeReadyTimeout
            return [.log(.debug, "store spawned (pid \(pid)), waiting for it to be ready")]
        }
        guard let i = slots.firstIndex(where: { $0.id == id }) else {
            // Its slot went away while it was being spawned: let it finish like a retired one.
            retiring.insert(pid)
            return [.kill(pid, SIGTERM)]
        }
        start(&slots[i], pid, now: now)
        var out: [Action] = [.log(.info, "started \(id) (pid \(pid))")]
        if stopping { out.append(.kill(pid, SIGTERM)) }
        return out
    }

    private func start(_ s: inout Slot, _ pid: pid_t, now: Double) {
        if s.startedAt > 0 { s.restarts += 1 }
        s.pid = pid; s.startedAt = now; s.restartAt = nil; s.spawning = false
    }

    private mutating func terminate(now: Double) -> [Action] {
        guard !stopping else { return [] }
        stopping = true
        let grace = max(settings.shutdownGrace, specs.map(\.grace).max() ?? 0)
        stopDeadline = now + grace + settings.goodbyeSlack
        var out: [Action] = [.notify("STOPPING=1\nSTATUS=stopping"), .log(.info, "stopping: waiting up to \(grace)s for sessions to finish")]
        for i in slots.indices { slots[i].restartAt = nil }
        out += slots.filter { $0.pid > 0 }.map { .kill($0.pid, SIGTERM) }
        out += retiring.sorted().map { .kill($0, SIGTERM) }
        return out
    }

    /// Workers re-read the configuration when they start, so each running one is replaced:
    /// its successor is spawned first (actions after `advance`), then the old one gets SIGTERM
    /// and finishes its open sessions as a retiring process. Slots beyond a lowered process
    /// count retire without a successor. The store stays.
    private mutating func reload(_ new: [ServiceSpec], _ newSettings: Settings, now: Double) -> ([Action], [Action]) {
        guard !stopping else { return ([.log(.warning, "reload ignored: stopping")], []) }
        settings = newSettings
        specs = new
        func adopt(_ p: inout RestartPolicy) {
            p.initialDelay = newSettings.policy.initialDelay; p.maxDelay = newSettings.policy.maxDelay
            p.throttleCount = newSettings.policy.throttleCount; p.window = newSettings.policy.window
        }
        adopt(&store.policy)
        var kept: [Slot] = []
        for var s in Self.slots(for: new, policy: newSettings.policy) {
            if let old = slots.first(where: { $0.id == s.id }) { s = old; adopt(&s.policy) } else { s.restartAt = now }
            kept.append(s)
        }
        var before: [Action] = [], after: [Action] = []
        for s in slots where s.pid > 0 && !kept.contains(where: { $0.id == s.id }) {
            retiring.insert(s.pid)
            before.append(.kill(s.pid, SIGTERM))
        }
        slots = kept
        for i in slots.indices where slots[i].pid > 0 {
            retiring.insert(slots[i].pid)
            after.append(.kill(slots[i].pid, SIGTERM))
            slots[i].pid = 0; slots[i].restartAt = now
        }
        return (before, after)
    }

    // MARK: timers and spawning

    private mutating func advance(now: Double) -> [Action] {
        var out: [Action] = []
        if stopping {
            if allWorkersGone {
                if store.pid > 0 {
                    if now >= stopDeadline + settings.storeKillSlack {
                        if !storeKilled { storeKilled = true; out.append(.kill(store.pid, SIGKILL)) }
                    } else if !storeTermSent {
                        storeTermSent = true; out.append(.kill(store.pid, SIGTERM))
                    }
                } else if !store.spawning && !exited {
                    exited = true
                    out.append(.exit(.ok))
                }
            } else if now >= stopDeadline && !workersKilled {
                workersKilled = true
                out += slots.filter { $0.pid > 0 }.map { .kill($0.pid, SIGKILL) }
                out += retiring.sorted().map { .kill($0, SIGKILL) }
            }
            return out
        }
        if store.pid == 0 && !store.spawning, let at = store.restartAt, now >= at {
            store.spawning = true; store.restartAt = nil
            out.append(.spawnStore)
        }
        if store.pid > 0, let d = readyDeadline, now >= d {
            readyDeadline = nil
            out += [.log(.error, "store did not become ready within \(Self.seconds(settings.storeReadyTimeout)); killing it"),
                    .closeStoreChannel, .kill(store.pid, SIGKILL)]
        }
        guard storeReady else { return out }
        for i in slots.indices where slots[i].pid == 0 && !slots[i].spawning {
            guard let at = slots[i].restartAt, now >= at else { continue }
            slots[i].spawning = true; slots[i].restartAt = nil
            if case .worker(let service, let instance) = slots[i].id { out.append(.spawnWorker(service: service, instance: instance)) }
        }
        if !notifiedReady && slots.allSatisfy({ $0.pid > 0 }) {
            notifiedReady = true
            out += [.notify("READY=1\nSTATUS=running: store + \(slots.count) worker(s)"), .log(.info, "ready (\(slots.count) workers)")]
        }
        return out
    }

    private mutating func update(_ id: SlotID, _ f: (inout Slot) -> Void) {
        if id == .store { f(&store) } else if let i = slots.firstIndex(where: { $0.id == id }) { f(&slots[i]) }
    }

    private func throttleNote(_ s: Slot) -> String { s.policy.throttled ? " (throttled: too many crashes)" : "" }
    static func seconds(_ d: Double) -> String { String(format: "%.1fs", d) }
}
