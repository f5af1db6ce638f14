// The supervisor's decisions, driven like the Master drives it but with a fake clock and fake
// pids: gating on the store, backoff and throttle, reload, shutdown order, the ready timeout.
import XCTest
import MailIPC
import MailPrivsep
import MailWorker
@testable import MasterCore

final class SupervisorTests: XCTestCase {
    typealias Action = Supervisor.Action

    static let policy = RestartPolicy(initialDelay: 1, maxDelay: 30, throttleCount: 3, window: 60)
    static let grace = 10.0

    static func spec(_ name: String, _ processes: Int, listeners: [String] = []) -> ServiceSpec {
        ServiceSpec(name: name, executable: name + "d", role: name == "smtp" ? .smtpd : .lmtpd, user: "postern", processes: processes,
                    listeners: listeners.map { ListenerSpec(key: $0, address: .init(.unix(path: "/run/" + $0))) },
                    tls: name == "smtp", grace: grace)
    }

    /// Drives a supervisor the way Master.apply does: a spawn action gets a fresh pid at once.
    struct Harness {
        var sup: Supervisor
        var now = 1000.0
        var nextPID: pid_t = 100
        var pids: [Supervisor.SlotID: pid_t] = [:]
        var failSpawns = false

        init(_ specs: [ServiceSpec], settings: Supervisor.Settings? = nil) {
            sup = Supervisor(specs: specs, settings: settings ?? Supervisor.Settings(policy: SupervisorTests.policy, shutdownGrace: SupervisorTests.grace))
        }

        @discardableResult
        mutating func send(_ e: Supervisor.Event) -> [Action] {
            var queue = sup.handle(e, now: now), i = 0
            while i < queue.count {
                let id: Supervisor.SlotID
                switch queue[i] {
                case .spawnStore: id = .store
                case .spawnWorker(let s, let n): id = .worker(service: s, instance: n)
                default: i += 1; continue
                }
                i += 1
                let result: Supervisor.Event
                if failSpawns { result = .spawnFailed(id, "posix_spawn: no such file") } else {
                    nextPID += 1; pids[id] = nextPID; result = .spawned(id, nextPID)
                }
                queue.insert(contentsOf: sup.handle(result, now: now), at: i)
            }
            return queue
        }

        mutating func at(_ t: Double) -> [Action] { now = t; return send(.tick) }

        /// Starts the store, makes it ready, and starts every worker.
        mutating func boot() -> [Action] { send(.tick) + send(.storeReady) }

        func pid(_ s: String, _ i: Int) -> pid_t { sup.slots.first { $0.id == .worker(service: s, instance: i) }!.pid }
    }

    static func spawns(_ a: [Action]) -> [String] {
        a.compactMap {
            switch $0 {
            case .spawnStore: return "store"
            case .spawnWorker(let s, let i): return "\(s)[\(i)]"
            default: return nil
            }
        }
    }
    static func kills(_ a: [Action]) -> [Action] { a.filter { if case .kill = $0 { return true }; return false } }
    static func logs(_ a: [Action]) -> String { a.compactMap { if case .log(_, let m) = $0 { return m }; return nil }.joined(separator: "\n") }
    static let crash = WaitStatus.signaled(SIGSEGV)

    // MARK: start and the store

    func testNothingIsSpawnedBeforeTheStoreIsReady() {
        var h = Harness([Self.spec("lmtp", 2)])
        XCTAssertEqual(Self.spawns(h.send(.tick)), ["store"])
        XCTAssertEqual(h.sup.store.pid, 101)
        XCTAssertEqual(Self.spawns(h.at(1001)), [])
        XCTAssertEqual(Self.spawns(h.at(1030)), [])
        XCTAssertEqual(h.sup.nextWake, 1000 + h.sup.settings.storeReadyTimeout, "the only timer: the ready deadline")
        let ready = h.send(.storeReady)
        XCTAssertEqual(Self.spawns(ready), ["lmtp[0]", "lmtp[1]"])
        XCTAssertTrue(ready.contains(.notify("STATUS=store running")))
        XCTAssertTrue(ready.contains(.notify("READY=1\nSTATUS=running: store + 2 worker(s)")))
        XCTAssertEqual(h.sup.slots.map(\.state), [.running, .running])
        XCTAssertNil(h.sup.nextWake)
        // READY=1 is sent once
        XCTAssertFalse(h.send(.childExited(h.pid("lmtp", 0), .exited(0))).contains { if case .notify = $0 { return true }; return false })
    }

    func testAListenerlessServiceIsSupervisedLikeAnyOther() {
        var h = Harness([Self.spec("lmtp", 1, listeners: ["lmtp@unix:/run/lmtp"]), Self.spec("outbound", 1)])
        XCTAssertEqual(Self.spawns(h.boot()), ["store", "lmtp[0]", "outbound[0]"])
    }

    func testStoreReadyTimeoutKillsAndRestartsWithBackoff() {
        var h = Harness([Self.spec("lmtp", 1)])
        h.send(.tick)
        let store = h.sup.store.pid
        let timeout = h.sup.settings.storeReadyTimeout
        XCTAssertEqual(Self.kills(h.at(1000 + timeout - 1)), [])
        let late = h.at(1000 + timeout)
        XCTAssertEqual(Self.kills(late), [.kill(store, SIGKILL)])
        XCTAssertTrue(late.contains(.closeStoreChannel))
        XCTAssertEqual(Self.kills(h.at(1000 + timeout + 1)), [], "killed once")
        let died = h.send(.childExited(store, .signaled(SIGKILL)))
        XCTAssertEqual(Self.spawns(died), [], "restart with backoff, not at once")
        XCTAssertEqual(h.sup.nextWake, h.now + Self.policy.initialDelay)
        XCTAssertEqual(Self.spawns(h.at(h.now + Self.policy.initialDelay)), ["store"])
    }

    func testStoreFailingBeforeReadyIsKilled() {
        var h = Harness([Self.spec("lmtp", 1)])
        h.send(.tick)
        let a = h.send(.storeFailed("control channel closed"))
        XCTAssertEqual(Self.kills(a), [.kill(h.sup.store.pid, SIGKILL)])
        XCTAssertEqual(Self.spawns(a), [])
    }

    func testStoreDeathHoldsWorkersUntilTheStoreIsReadyAgain() {
        var h = Harness([Self.spec("lmtp", 2)])
        _ = h.boot()
        let store = h.sup.store.pid
        h.now = 2000
        let died = h.send(.childExited(store, Self.crash))
        XCTAssertTrue(died.contains(.closeStoreChannel))
        XCTAssertTrue(Self.logs(died).contains("store died (signal \(SIGSEGV)); restarting in 1.0s"))
        // the workers lose the store and exit EX_TEMPFAIL: not restarted while it is down
        for i in 0..<2 { XCTAssertEqual(Self.spawns(h.send(.childExited(h.pid("lmtp", i), .exited(ExitStatus.tempFail.rawValue)))), []) }
        XCTAssertEqual(h.sup.slots.map(\.state), [.restarting, .restarting])
        XCTAssertEqual(h.sup.nextWake, 2001)
        XCTAssertEqual(Self.spawns(h.at(2001)), ["store"])
        XCTAssertEqual(Self.spawns(h.at(2005)), [])
        XCTAssertEqual(Self.spawns(h.send(.storeReady)), ["lmtp[0]", "lmtp[1]"])
        XCTAssertEqual(h.sup.store.restarts, 1)
    }

    // MARK: workers

    func testCrashRestartsWithBackoff() {
        var h = Harness([Self.spec("lmtp", 1)])
        _ = h.boot()
        for (t, delay) in [(1001.0, 1.0), (1002.5, 2.0)] {   // 1, then 2 s
            h.now = t
            let old = h.pid("lmtp", 0)
            let a = h.send(.childExited(old, Self.crash))
            XCTAssertEqual(Self.spawns(a), [])
            XCTAssertTrue(Self.logs(a).contains("lmtp[0] died (signal \(SIGSEGV)); restarting in \(String(format: "%.1f", delay))s"), Self.logs(a))
            XCTAssertEqual(h.sup.nextWake, t + delay)
            XCTAssertEqual(Self.spawns(h.at(t + delay - 0.1)), [])
            XCTAssertEqual(Self.spawns(h.at(t + delay)), ["lmtp[0]"])
            XCTAssertNotEqual(h.pid("lmtp", 0), old)
        }
        XCTAssertEqual(h.sup.slots[0].restarts, 2)
    }

    func testCleanAndTempFailExitsRestartAtOnceAndResetTheBackoff() {
        var h = Harness([Self.spec("lmtp", 1)])
        _ = h.boot()
        h.now = 1001
        h.send(.childExited(h.pid("lmtp", 0), Self.crash))
        _ = h.at(1002)
        for code in [ExitStatus.ok, .tempFail] {
            XCTAssertEqual(Self.spawns(h.send(.childExited(h.pid("lmtp", 0), .exited(code.rawValue)))), ["lmtp[0]"])
        }
        // after the reset, a crash waits the initial delay again
        h.send(.childExited(h.pid("lmtp", 0), Self.crash))
        XCTAssertEqual(h.sup.nextWake, h.now + Self.policy.initialDelay)
        // any other exit status is a crash
        _ = h.at(h.now + 1)
        XCTAssertEqual(Self.spawns(h.send(.childExited(h.pid("lmtp", 0), .exited(ExitStatus.software.rawValue)))), [])
    }

    func testThrottleAfterRepeatedCrashesWithinTheWindow() {
        var h = Harness([Self.spec("lmtp", 1)])
        _ = h.boot()
        var last: [Action] = []
        for _ in 0..<Self.policy.throttleCount {
            last = h.send(.childExited(h.pid("lmtp", 0), Self.crash))
            _ = h.at(h.sup.nextWake!)
            if h.sup.slots[0].pid == 0 { break }
        }
        XCTAssertTrue(Self.logs(last).contains("(throttled: too many crashes)"), Self.logs(last))
        XCTAssertTrue(Self.logs(last).contains("restarting in 30.0s"))
        XCTAssertEqual(h.sup.slots[0].state, .running, "restarted after the maximum delay")
        // the status shows it while it waits
        var g = Harness([Self.spec("lmtp", 1)])
        _ = g.boot()
        for _ in 0..<Self.policy.throttleCount - 1 { g.send(.childExited(g.pid("lmtp", 0), Self.crash)); _ = g.at(g.sup.nextWake!) }
        g.send(.childExited(g.pid("lmtp", 0), Self.crash))
        XCTAssertEqual(g.sup.slots[0].state, .throttled)
        XCTAssertEqual(g.sup.nextWake, g.now + Self.policy.maxDelay)
    }

    func testSpawnFailureBacksOff() {
        var h = Harness([Self.spec("lmtp", 1)])
        h.send(.tick)
        h.failSpawns = true
        let a = h.send(.storeReady)
        XCTAssertEqual(Self.spawns(a), ["lmtp[0]"])
        XCTAssertTrue(Self.logs(a).contains("posix_spawn"))
        XCTAssertEqual(h.sup.nextWake, h.now + Self.policy.initialDelay)
        h.failSpawns = false
        XCTAssertEqual(Self.spawns(h.at(h.sup.nextWake!)), ["lmtp[0]"])
        // no store connection: a short fixed retry, not a crash
        let id = Supervisor.SlotID.worker(service: "lmtp", instance: 0)
        h.send(.childExited(h.pid("lmtp", 0), .exited(0)))
        var s = h.sup
        _ = s.handle(.spawnDeferred(id, "no store connection"), now: h.now)
        XCTAssertFalse(s.slots[0].policy.throttled)
    }

    // MARK: reload

    func testReloadSpawnsSuccessorsFirstThenRetiresTheOldOnes() {
        var h = Harness([Self.spec("lmtp", 2)])
        _ = h.boot()
        let old0 = h.pid("lmtp", 0), old1 = h.pid("lmtp", 1)
        let settings = Supervisor.Settings(policy: RestartPolicy(initialDelay: 2, maxDelay: 20, throttleCount: 4, window: 30), shutdownGrace: 5)
        // lmtp down to one process, smtp added
        let a = h.send(.reload([Self.spec("lmtp", 1), Self.spec("smtp", 1)], settings))
        XCTAssertEqual(Self.spawns(a), ["lmtp[0]", "smtp[0]"])
        XCTAssertEqual(Set(Self.kills(a)), [.kill(old0, SIGTERM), .kill(old1, SIGTERM)])
        let successor = a.firstIndex(of: .spawnWorker(service: "lmtp", instance: 0))!
        XCTAssertLessThan(successor, a.firstIndex(of: .kill(old0, SIGTERM))!, "successor first, then SIGTERM to the old one")
        XCTAssertEqual(h.sup.retiring, [old0, old1])
        XCTAssertEqual(h.sup.slots.map(\.id.description), ["lmtp[0]", "smtp[0]"])
        XCTAssertEqual(h.sup.slots.map(\.state), [.running, .running])
        XCTAssertEqual(h.sup.settings, settings)
        XCTAssertEqual(h.sup.slots[0].policy.initialDelay, 2, "new restart timings apply to kept slots")
        // the retired ones finish and are not restarted
        for p in [old0, old1] {
            let e = h.send(.childExited(p, .exited(0)))
            XCTAssertEqual(Self.spawns(e), [])
            XCTAssertTrue(Self.logs(e).contains("retired worker \(p) exited (exit status 0)"))
        }
        XCTAssertTrue(h.sup.retiring.isEmpty)
    }

    func testReloadWhileTheStoreIsDownRetiresNowAndSpawnsWhenReady() {
        var h = Harness([Self.spec("lmtp", 1)])
        _ = h.boot()
        let old = h.pid("lmtp", 0)
        h.send(.childExited(h.sup.store.pid, Self.crash))
        let a = h.send(.reload([Self.spec("lmtp", 1)], h.sup.settings))
        XCTAssertEqual(Self.kills(a), [.kill(old, SIGTERM)])
        XCTAssertEqual(Self.spawns(a), [])
        _ = h.at(h.sup.nextWake!)
        XCTAssertEqual(Self.spawns(h.send(.storeReady)), ["lmtp[0]"])
    }

    // MARK: shutdown

    func testShutdownStopsWorkersThenTheStoreThenExits() {
        var h = Harness([Self.spec("lmtp", 2)])
        _ = h.boot()
        let w = [h.pid("lmtp", 0), h.pid("lmtp", 1)], store = h.sup.store.pid
        let a = h.send(.terminate)
        XCTAssertEqual(Self.kills(a), w.map { .kill($0, SIGTERM) })
        XCTAssertTrue(a.contains(.notify("STOPPING=1\nSTATUS=stopping")))
        XCTAssertTrue(h.sup.stopping)
        XCTAssertEqual(Self.kills(h.send(.childExited(w[0], .exited(0)))), [], "the store waits for the last worker")
        XCTAssertEqual(Self.kills(h.send(.childExited(w[1], .exited(0)))), [.kill(store, SIGTERM)])
        XCTAssertEqual(h.send(.childExited(store, .exited(0))).last, .exit(.ok))
        XCTAssertEqual(h.send(.terminate), [], "a second SIGTERM changes nothing")
    }

    func testShutdownKillsAfterTheGraceAndTheStoreLast() {
        var h = Harness([Self.spec("lmtp", 1)])
        _ = h.boot()
        let w = h.pid("lmtp", 0), store = h.sup.store.pid
        // a worker mid-reload is retiring: it is stopped too
        h.send(.reload([Self.spec("lmtp", 1)], h.sup.settings))
        let successor = h.pid("lmtp", 0)
        let a = h.send(.terminate)
        XCTAssertEqual(Set(Self.kills(a)), [.kill(successor, SIGTERM), .kill(w, SIGTERM)])
        // SIGKILL only after the grace period and the workers' goodbye time (421 before the close)
        let deadline = 1000 + Self.grace + h.sup.settings.goodbyeSlack
        XCTAssertGreaterThan(h.sup.settings.goodbyeSlack, WorkerServer.goodbyeTime)
        XCTAssertEqual(h.sup.nextWake, deadline)
        XCTAssertEqual(Self.kills(h.at(1000 + Self.grace + WorkerServer.goodbyeTime)), [])
        XCTAssertEqual(Set(Self.kills(h.at(deadline))), [.kill(successor, SIGKILL), .kill(w, SIGKILL)])
        XCTAssertEqual(Self.kills(h.at(deadline + 0.5)), [], "SIGKILL once")
        // nothing restarts while stopping
        XCTAssertEqual(Self.spawns(h.send(.childExited(successor, .signaled(SIGKILL)))), [])
        XCTAssertEqual(Self.kills(h.send(.childExited(w, .signaled(SIGKILL)))), [.kill(store, SIGTERM)])
        let slack = h.sup.settings.storeKillSlack
        XCTAssertEqual(h.sup.nextWake, deadline + slack)
        XCTAssertEqual(Self.kills(h.at(deadline + slack)), [.kill(store, SIGKILL)])
        XCTAssertEqual(h.send(.childExited(store, .signaled(SIGKILL))).last, .exit(.ok))
    }

    func testShutdownBeforeTheStoreIsReadyExitsOnceItIsGone() {
        var h = Harness([Self.spec("lmtp", 1)])
        h.send(.tick)
        let a = h.send(.terminate)
        XCTAssertEqual(Self.kills(a), [.kill(h.sup.store.pid, SIGTERM)])
        XCTAssertEqual(Self.spawns(h.send(.storeReady)), [], "no worker starts while stopping")
        XCTAssertEqual(h.send(.childExited(h.sup.store.pid, .exited(0))).last, .exit(.ok))
    }

    // MARK: exit statuses

    func testWaitStatusAndExitStatusNames() {
        XCTAssertEqual(WaitStatus(raw: 75 << 8), .exited(75))
        XCTAssertTrue(WaitStatus(raw: 75 << 8).exited(with: .tempFail))
        XCTAssertEqual(WaitStatus(raw: 0), .exited(0))
        XCTAssertEqual(WaitStatus(raw: SIGKILL), .signaled(SIGKILL))
        XCTAssertEqual(WaitStatus(raw: SIGSEGV | 0x80), .signaled(SIGSEGV), "the core-dump bit is not the signal")
        XCTAssertEqual(WaitStatus.exited(67).description, "exit status 67")
        // sysexits.h
        XCTAssertEqual([ExitStatus.usage, .noUser, .software, .osErr, .cantCreate, .ioErr, .tempFail, .noPerm, .config].map(\.rawValue),
                       [64, 67, 70, 71, 73, 74, 75, 77, 78])
    }
}
