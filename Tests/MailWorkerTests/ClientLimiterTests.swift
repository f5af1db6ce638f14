// Per-client limits with an injected clock.
import XCTest
@testable import MailWorker

final class ClientLimiterTests: XCTestCase {
    final class Clock: @unchecked Sendable { var t = 1000.0 }

    func testConnectionsPerClient() {
        let l = ClientLimiter(maxConnectionsPerClient: 2, maxFailures: 3, window: 60)
        XCTAssertTrue(l.connect("192.0.2.1"))
        XCTAssertTrue(l.connect("192.0.2.1"))
        XCTAssertFalse(l.connect("192.0.2.1"))
        XCTAssertTrue(l.connect("192.0.2.2"), "other clients are not affected")
        l.disconnect("192.0.2.1")
        XCTAssertTrue(l.connect("192.0.2.1"))
    }

    func testAuthFailuresBlockWithinTheWindowOnly() {
        let clock = Clock()
        let l = ClientLimiter(maxConnectionsPerClient: 10, maxFailures: 3, window: 60, now: { clock.t })
        XCTAssertEqual(l.recordFailure("198.51.100.7"), 1)
        clock.t += 10; l.recordFailure("198.51.100.7")
        XCTAssertFalse(l.isBlocked("198.51.100.7"))
        clock.t += 10; XCTAssertEqual(l.recordFailure("198.51.100.7"), 3)
        XCTAssertTrue(l.isBlocked("198.51.100.7"))
        XCTAssertFalse(l.isBlocked("198.51.100.8"))
        clock.t += 45   // the first failure leaves the window
        XCTAssertFalse(l.isBlocked("198.51.100.7"))
    }
}
