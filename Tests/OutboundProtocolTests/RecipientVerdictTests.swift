// RecipientVerdict: one table of (result, NOTIFY, DSN at the server, times) → verdict, covering
// delivery, relayed notices, bounces honouring NOTIFY, retries, delay warnings and expiry.
import Foundation
import OutboundProtocol
import SMTPProtocol
import XCTest

final class RecipientVerdictTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func testVerdictTable() {
        let schedule = RetrySchedule(delayWarning: .seconds(4 * 3600))
        let ok = RecipientResult(recipient: path("a@example.org"), status: .accepted, reply: .ok, remote: true)
        let hard = RecipientResult(recipient: path("a@example.org"), status: .permanent, reply: .mailboxUnknown, remote: true)
        let soft = RecipientResult(recipient: path("a@example.org"), status: .temporary, reply: .localError, remote: true)
        let lifetime: TimeInterval = 5 * 86_400
        let table: [(RecipientResult, DSNNotify?, Bool, Int, TimeInterval, Bool, RecipientVerdict)] = [
            (ok, nil, false, 1, 0, false, .delivered(relayedNotice: false)),
            (ok, [.success], false, 1, 0, false, .delivered(relayedNotice: true)),
            (ok, [.success], true, 1, 0, false, .delivered(relayedNotice: false)),
            (hard, nil, false, 1, 0, false, .failed(expired: false, notify: true)),
            (hard, .never, false, 1, 0, false, .failed(expired: false, notify: false)),
            (hard, [.delay], false, 1, 0, false, .failed(expired: false, notify: false)),
            (soft, nil, false, 1, 0, false, .deferred(until: t0 + 300, warn: false)),
            (soft, nil, false, 6, 5 * 3600, false, .deferred(until: t0 + 5 * 3600 + 9600, warn: true)),
            (soft, nil, false, 7, 6 * 3600, true, .deferred(until: t0 + 6 * 3600 + 14400, warn: false)),
            (soft, [.failure], false, 6, 5 * 3600, false, .deferred(until: t0 + 5 * 3600 + 9600, warn: false)),
            (soft, nil, false, 40, lifetime, true, .failed(expired: true, notify: true)),
            (soft, .never, false, 40, lifetime, true, .failed(expired: true, notify: false)),
        ]
        for (i, row) in table.enumerated() {
            let verdict = RecipientVerdict.decide(row.0, notify: row.1, serverSpeaksDSN: row.2, schedule: schedule, attempts: row.3,
                                                  firstAttempt: t0, now: t0 + row.4, alreadyWarned: row.5)
            XCTAssertEqual(verdict, row.6, "row \(i)")
        }
    }
}
