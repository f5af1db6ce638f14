// Connection caps per listener role and per process, stress mode on and off at its thresholds,
// and per-client keying of IPv6 clients by prefix (issue 9 point 4).
import XCTest
@testable import MailWorker

final class ListenerAccountingTests: XCTestCase {
    func testRoleCapLeavesTheOtherRolesTheirSlots() {
        var a = ListenerAccounting(maxTotal: 10, roleCaps: ["mta": 6, "submission": 3])
        for _ in 0..<6 { XCTAssertNoThrow(try a.admit("mta").get()) }
        XCTAssertEqual(a.admit("mta"), .failure(.init(refusal: .role(6))), "the mta flood stops at its cap")
        for _ in 0..<3 { XCTAssertNoThrow(try a.admit("submission").get(), "submission still has its slots") }
        XCTAssertEqual(a.admit("submission"), .failure(.init(refusal: .role(3))))
        XCTAssertNoThrow(try a.admit("smtps").get(), "a role without a cap has the process cap only")
        XCTAssertEqual(a.admit("smtps"), .failure(.init(refusal: .process(10))))
        a.release("mta")
        XCTAssertEqual(a.byRole["mta"], 5)
        XCTAssertEqual(a.total, 9)
        XCTAssertNoThrow(try a.admit("mta").get())
    }

    func testProcessCapCountsEveryRole() {
        var a = ListenerAccounting(maxTotal: 4, roleCaps: ["mta": 4, "submission": 4])
        for _ in 0..<2 { _ = a.admit("mta"); _ = a.admit("submission") }
        XCTAssertEqual(a.admit("mta"), .failure(.init(refusal: .process(4))))
    }

    func testReleasingMoreThanWasTakenDoesNotGoNegative() {
        var a = ListenerAccounting(maxTotal: 4)
        a.release("lmtp")
        XCTAssertEqual(a.total, 0)
        XCTAssertNil(a.byRole["lmtp"])
    }

    /// Stress begins at threshold × cap and ends below threshold × hysteresis × cap.
    func testStressBeginsAtTheThresholdAndEndsBelowIt() {
        var a = ListenerAccounting(maxTotal: 100, roleCaps: ["mta": 10, "submission": 10], stress: StressPolicy(threshold: 0.8))
        var changes: [Bool?] = []
        for _ in 0..<9 { changes.append(try! a.admit("mta").get()) }
        XCTAssertEqual(changes, [nil, nil, nil, nil, nil, nil, nil, true, nil], "on at 8 of 10")
        XCTAssertTrue(a.isStressed("mta"))
        XCTAssertFalse(a.isStressed("submission"), "stress is per role")
        XCTAssertNil(a.release("mta"))      // 8: still at the level
        XCTAssertTrue(a.isStressed("mta"))
        XCTAssertEqual(a.release("mta"), false, "7: below 8 (0.8 × 0.9 × 10 = 7.2, rounded up)")
        XCTAssertFalse(a.isStressed("mta"))
    }

    func testStressLevels() {
        let s = StressPolicy(threshold: 0.8)
        XCTAssertEqual(s.onLevel(cap: 1000), 800)
        XCTAssertEqual(s.offLevel(cap: 1000), 720)
        XCTAssertEqual(s.onLevel(cap: 1), 1)
        XCTAssertEqual(StressPolicy(threshold: 1).onLevel(cap: 50), 50, "1: only at the cap")
    }

    func testStressWithHysteresis() {
        var a = ListenerAccounting(maxTotal: 2000, roleCaps: ["mta": 1000], stress: StressPolicy(threshold: 0.8))
        for _ in 0..<799 { XCTAssertNil(try a.admit("mta").get()) }
        XCTAssertEqual(try a.admit("mta").get(), true)          // 800
        for _ in 0..<80 { XCTAssertNil(a.release("mta")) }       // 720: not yet below
        XCTAssertTrue(a.isStressed("mta"))
        XCTAssertEqual(a.release("mta"), false)                  // 719
        XCTAssertFalse(a.isStressed("mta"))
        XCTAssertNil(try a.admit("mta").get(), "back to 720: no flapping")
    }

    func testNoStressWithoutAPolicyOrACap() {
        var a = ListenerAccounting(maxTotal: 10, roleCaps: ["mta": 2])
        XCTAssertNil(try a.admit("mta").get()); XCTAssertNil(try a.admit("mta").get())
        var b = ListenerAccounting(maxTotal: 2, stress: StressPolicy(threshold: 0.5))
        XCTAssertNil(try b.admit("lmtp").get()); XCTAssertNil(try b.admit("lmtp").get())
    }

    func testListenerRole() {
        XCTAssertEqual(listenerRole("mta@0.0.0.0:25"), "mta")
        XCTAssertEqual(listenerRole("submission@[::]:587"), "submission")
        XCTAssertEqual(listenerRole("lmtp"), "lmtp")
    }
}

final class ClientLimiterIPv6Tests: XCTestCase {
    func testIPv6ClientsCountPerPrefix() {
        let l = ClientLimiter(maxConnectionsPerClient: 2, maxFailures: 3, window: 60)
        XCTAssertTrue(l.connect("2001:db8:1:2::1"))
        XCTAssertTrue(l.connect("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        XCTAssertFalse(l.connect("2001:db8:1:2:abcd::7"), "the same /64")
        XCTAssertTrue(l.connect("2001:db8:1:3::1"), "the next /64 is another client")
        l.disconnect("2001:db8:1:2::1")
        XCTAssertTrue(l.connect("2001:db8:1:2:abcd::7"))
    }

    func testKeys() {
        let l = ClientLimiter(maxConnectionsPerClient: 2, maxFailures: 3, window: 60)
        XCTAssertEqual(l.key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64")
        XCTAssertEqual(l.key("2001:DB8:1:2::9"), "2001:db8:1:2::/64", "one spelling per network")
        XCTAssertEqual(l.key("::1"), "::/64")
        XCTAssertEqual(l.key("192.0.2.7"), "192.0.2.7", "IPv4 stays per address")
        XCTAssertEqual(l.key("::ffff:192.0.2.7"), "192.0.2.7", "IPv4-mapped counts as IPv4")
        XCTAssertEqual(l.key("::ffff:c000:207"), "192.0.2.7")
        XCTAssertEqual(l.key("localhost"), "localhost")
        XCTAssertEqual(l.key("fe80::1%eth0"), "fe80::1%eth0", "not an address inet_pton takes: as it is")
        XCTAssertEqual(ClientLimiter(maxConnectionsPerClient: 1, maxFailures: 1, window: 1, ipv6Prefix: 48).key("2001:db8:1:2::1"), "2001:db8:1::/48")
        XCTAssertEqual(ClientLimiter(maxConnectionsPerClient: 1, maxFailures: 1, window: 1, ipv6Prefix: 128).key("2001:db8::1"), "2001:db8::1/128")
        XCTAssertEqual(ClientLimiter(maxConnectionsPerClient: 1, maxFailures: 1, window: 1, ipv6Prefix: 60).key("2001:db8:0:1ff::1"), "2001:db8:0:1f0::/60", "a prefix inside a byte")
    }

    func testIPv4MappedAndPlainIPv4AreOneClient() {
        let l = ClientLimiter(maxConnectionsPerClient: 2, maxFailures: 3, window: 60)
        XCTAssertTrue(l.connect("198.51.100.1"))
        XCTAssertTrue(l.connect("::ffff:198.51.100.1"))
        XCTAssertFalse(l.connect("198.51.100.1"))
        XCTAssertTrue(l.connect("::ffff:198.51.100.2"), "IPv4 is not grouped by any prefix")
    }

    func testAuthFailuresCountPerPrefix() {
        let l = ClientLimiter(maxConnectionsPerClient: 10, maxFailures: 2, window: 60, now: { 1000 })
        l.recordFailure("2001:db8:5:6::1")
        l.recordFailure("2001:db8:5:6::2")
        XCTAssertTrue(l.isBlocked("2001:db8:5:6::3"))
        XCTAssertFalse(l.isBlocked("2001:db8:5:7::1"))
    }
}
