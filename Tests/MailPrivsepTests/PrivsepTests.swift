// Restart policy (backoff, throttle) with an injected clock; the fd contract; posix_spawn fd map.
import XCTest
@testable import MailPrivsep

final class PrivsepTests: XCTestCase {
    func testBackoffDoublesAndIsCapped() {
        var p = RestartPolicy(initialDelay: 1, maxDelay: 8, throttleCount: 100, window: 60)
        XCTAssertEqual((0..<6).map { i in p.crashed(now: Double(i), lifetime: 0.5) }, [1, 2, 4, 8, 8, 8])
        // a process that ran longer than the window starts over
        XCTAssertEqual(p.crashed(now: 500, lifetime: 120), 1)
    }

    func testThrottleAfterTooManyCrashesInTheWindow() {
        var p = RestartPolicy(initialDelay: 0.1, maxDelay: 30, throttleCount: 3, window: 10)
        XCTAssertEqual(p.crashed(now: 0, lifetime: 0), 0.1, accuracy: 1e-9)
        XCTAssertFalse(p.throttled)
        _ = p.crashed(now: 1, lifetime: 0)
        XCTAssertEqual(p.crashed(now: 2, lifetime: 0), 30)
        XCTAssertTrue(p.throttled)
        // crashes spread beyond the window do not throttle
        var q = RestartPolicy(initialDelay: 0.1, maxDelay: 30, throttleCount: 3, window: 10)
        for t in stride(from: 0.0, to: 100, by: 20) { _ = q.crashed(now: t, lifetime: 0) }
        XCTAssertFalse(q.throttled)
    }

    func testFDContractFromEnvironment() throws {
        let i = try XCTUnwrap(FDContract.inherited(environment: [
            "POSTERN_CONFIG": "/etc/p.toml", "POSTERN_SERVICE": "lmtp", "POSTERN_INSTANCE": "2",
            "POSTERN_LISTEN_FDS": "2", "POSTERN_LISTEN_FDNAMES": FDContract.encodeName("lmtp=unix:/run/x") + ":" + FDContract.encodeName("lmtp=127.0.0.1:24"),
        ]))
        XCTAssertEqual(i.instance, 2)
        XCTAssertEqual(i.listeners.map(\.fd), [4, 5])
        XCTAssertEqual(i.listeners.map { FDContract.decodeName($0.name) }, ["lmtp=unix:/run/x", "lmtp=127.0.0.1:24"])
        XCTAssertNil(FDContract.inherited(environment: [:]))
    }

    func testSpawnPassesExactlyTheMappedDescriptors() throws {
        var p: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&p), 0)
        let leaked = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(leaked) }
        // The child lists its open fds (>2) into the pipe mapped at fd 3... then exits.
        let pid = try Spawner.spawn(path: "/bin/sh", args: ["-c", "ls /proc/self/fd >&3"], env: [:], fds: [3: p[1]])
        close(p[1])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        var out = [UInt8](repeating: 0, count: 4096)
        let n = read(p[0], &out, out.count)
        close(p[0])
        let fds = String(decoding: out[0..<max(0, n)], as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        XCTAssertTrue(fds.contains(3))
        XCTAssertFalse(fds.contains(Int(leaked)), "a CLOEXEC descriptor leaked into the child")
        XCTAssertLessThanOrEqual(fds.filter { $0 > 3 }.count, 1, "only the mapped fds (+ the ls directory fd) are open: \(fds)")
    }
}
