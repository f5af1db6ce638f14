// RetrySchedule: 5 min doubling to a 4 h cap, expiry after max_queue_lifetime, the last retry
// pulled in to the expiry time, and the delay warning; all from times passed in.
import Foundation
import OutboundProtocol
import XCTest

final class RetryScheduleTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func testDelaysDoubleToTheCap() {
        let s = RetrySchedule()
        let minutes = (1...9).map { Int(s.delay(afterAttempt: $0).components.seconds / 60) }
        XCTAssertEqual(minutes, [5, 10, 20, 40, 80, 160, 240, 240, 240])
        XCTAssertEqual(s.delay(afterAttempt: 0), .zero)
        XCTAssertEqual(s.delay(afterAttempt: 10_000), .seconds(4 * 3600), "no overflow")
    }

    func testRetryTimesAndExpiry() {
        let s = RetrySchedule()
        XCTAssertEqual(s.decision(attempts: 1, firstAttempt: t0, now: t0), .retry(at: t0 + 300))
        XCTAssertEqual(s.decision(attempts: 3, firstAttempt: t0, now: t0 + 1000), .retry(at: t0 + 1000 + 1200))
        let lifetime: TimeInterval = 5 * 86_400
        XCTAssertEqual(s.decision(attempts: 40, firstAttempt: t0, now: t0 + lifetime), .expire)
        XCTAssertEqual(s.decision(attempts: 40, firstAttempt: t0, now: t0 + lifetime + 1), .expire)
        // One hour before expiry a 4 h delay is cut to the expiry time: one last try then.
        XCTAssertEqual(s.decision(attempts: 40, firstAttempt: t0, now: t0 + lifetime - 3600), .retry(at: t0 + lifetime))
        XCTAssertEqual(s.retryUntil(firstAttempt: t0), t0 + lifetime)
    }

    func testConfigurableForTests() {
        let s = RetrySchedule(initialDelay: .seconds(2), maximumDelay: .seconds(5), maxQueueLifetime: .seconds(30))
        XCTAssertEqual((1...4).map { s.delay(afterAttempt: $0) }, [.seconds(2), .seconds(4), .seconds(5), .seconds(5)])
        XCTAssertEqual(s.decision(attempts: 2, firstAttempt: t0, now: t0 + 10), .retry(at: t0 + 14))
        XCTAssertEqual(s.decision(attempts: 9, firstAttempt: t0, now: t0 + 30), .expire)
        XCTAssertEqual(RetrySchedule(initialDelay: .milliseconds(1500)).decision(attempts: 1, firstAttempt: t0, now: t0),
                       .retry(at: t0 + 1.5))
    }

    func testDelayWarning() {
        XCTAssertFalse(RetrySchedule().delayWarningDue(firstAttempt: t0, now: t0 + 1e6, alreadyWarned: false))
        let s = RetrySchedule(delayWarning: .seconds(4 * 3600))
        XCTAssertFalse(s.delayWarningDue(firstAttempt: t0, now: t0 + 4 * 3600 - 1, alreadyWarned: false))
        XCTAssertTrue(s.delayWarningDue(firstAttempt: t0, now: t0 + 4 * 3600, alreadyWarned: false))
        XCTAssertFalse(s.delayWarningDue(firstAttempt: t0, now: t0 + 5 * 3600, alreadyWarned: true))
    }
}
