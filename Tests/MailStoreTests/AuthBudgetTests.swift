// The store's per-address authentication budget with an injected clock: failures within the
// window plus attempts in flight never exceed it; IPv6 counts per /64, IPv4 per address.
import XCTest
@testable import MailStore

final class AuthBudgetTests: XCTestCase {
    final class Clock: @unchecked Sendable { var t = 1000.0 }

    func testAttemptsInFlightCountAgainstTheBudget() {
        let b = AuthBudget(maxFailures: 3, window: 60)
        // 50 concurrent attempts from one address: only 3 may reach the password check.
        let admitted = (0..<50).filter { _ in b.begin("198.51.100.7") }.count
        XCTAssertEqual(admitted, 3)
        XCTAssertTrue(b.begin("198.51.100.8"), "other addresses are not affected")
        b.end("198.51.100.8", failed: false)
        // The 47 refusals count as failures: even a success leaves the address refused.
        b.end("198.51.100.7", failed: false)
        XCTAssertFalse(b.begin("198.51.100.7"))
    }

    func testASuccessFreesItsSlotAndAFailureKeepsIt() {
        let b = AuthBudget(maxFailures: 2, window: 60)
        XCTAssertTrue(b.begin("192.0.2.9")); XCTAssertTrue(b.begin("192.0.2.9"))
        XCTAssertEqual(b.end("192.0.2.9", failed: false), 0)
        XCTAssertTrue(b.begin("192.0.2.9"), "the success's slot is free again")
        b.end("192.0.2.9", failed: true); b.end("192.0.2.9", failed: true)
        XCTAssertEqual(b.failureCount("192.0.2.9"), 2)
        XCTAssertFalse(b.begin("192.0.2.9"))
    }

    func testFailuresExpireWithTheWindowAndRefusalsCount() {
        let clock = Clock()
        let b = AuthBudget(maxFailures: 2, window: 60, now: { clock.t })
        XCTAssertTrue(b.begin("192.0.2.1")); XCTAssertEqual(b.end("192.0.2.1", failed: true), 1)
        clock.t += 10
        XCTAssertTrue(b.begin("192.0.2.1")); XCTAssertEqual(b.end("192.0.2.1", failed: true), 2)
        clock.t += 10
        XCTAssertFalse(b.begin("192.0.2.1"), "budget used up")
        // The first two failures expire at 1060 and 1070; the refusal at 1020 counts until 1080.
        clock.t = 1070.5
        XCTAssertEqual(b.failureCount("192.0.2.1"), 1)
        XCTAssertTrue(b.begin("192.0.2.1"))
        b.end("192.0.2.1", failed: false)
        clock.t = 2000
        XCTAssertEqual(b.failureCount("192.0.2.1"), 0)
    }

    func testKeys() {
        XCTAssertEqual(AuthBudget.key("192.0.2.1"), "192.0.2.1")
        XCTAssertEqual(AuthBudget.key("::ffff:192.0.2.1"), "192.0.2.1")
        XCTAssertEqual(AuthBudget.key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64")
        XCTAssertEqual(AuthBudget.key("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64")
        XCTAssertNotEqual(AuthBudget.key("2001:db8:1:3::1"), AuthBudget.key("2001:db8:1:2::1"))
        XCTAssertEqual(AuthBudget.key("localhost"), "localhost")
    }

    func testOneIPv6SiteSharesOneBudget() {
        let b = AuthBudget(maxFailures: 2, window: 60)
        XCTAssertTrue(b.begin("2001:db8::1")); b.end("2001:db8::1", failed: true)
        XCTAssertTrue(b.begin("2001:db8::2")); b.end("2001:db8::2", failed: true)
        XCTAssertFalse(b.begin("2001:db8::ffff"), "the same /64")
        XCTAssertTrue(b.begin("2001:db8:0:1::1"), "another /64")
    }
}
