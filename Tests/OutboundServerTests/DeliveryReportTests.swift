// From attempts to queue results, DSN blocks and log lines (pure): each verdict, the schedule's
// next attempt and expiry, NOTIFY, the null sender, and Postfix's log fields.
import Foundation
import MailModel
import OutboundProtocol
@testable import OutboundServer
import SMTPProtocol
import XCTest

final class DeliveryReportTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_800_000_100)
    let schedule = RetrySchedule(initialDelay: .seconds(300), maximumDelay: .seconds(3600), maxQueueLifetime: .seconds(86_400),
                                 delayWarning: .seconds(3600))
    let target = RouteTarget(host: "mx.remote.example", address: "192.0.2.25", port: 25)

    func attempt(_ r: QueueRecipient, _ status: RecipientResult.Status, _ reply: SMTPReply, dsn: Bool = false) -> RecipientAttempt {
        RecipientAttempt(recipient: r, result: RecipientResult(recipient: MailPath(r.address)!, status: status, reply: reply, remote: true),
                         target: target, serverSpeaksDSN: dsn)
    }

    func testEachVerdict() {
        let j = job(7, recipients: ["a@remote.example", "b@remote.example", "c@remote.example", "d@remote.example"], body: []).job
        var old = j.recipients[3]
        old.attempts = 9
        old.firstAttempt = Int64(now.timeIntervalSince1970) - 90_000      // past the 1-day lifetime
        let plan = DeliveryReport.plan(job: j, attempts: [
            attempt(j.recipients[0], .accepted, SMTPReply(250, "2.0.0", "queued")),
            attempt(j.recipients[1], .temporary, SMTPReply(451, "4.2.0", "later")),
            attempt(j.recipients[2], .permanent, SMTPReply(550, "5.1.1", "unknown")),
            attempt(old, .temporary, SMTPReply(451, "4.2.0", "still later")),
        ], schedule: schedule, now: now)
        XCTAssertEqual(plan.results, [
            QueueResult(recipient: 700, outcome: .delivered(reply: "250 2.0.0 queued")),
            QueueResult(recipient: 701, outcome: .deferred(reply: "451 4.2.0 later", nextAttempt: 1_800_000_400, warned: false)),
            QueueResult(recipient: 702, outcome: .failed(reply: "550 5.1.1 unknown")),
            QueueResult(recipient: 703, outcome: .failed(reply: "451 4.2.0 still later (expired after 90000 s in the queue)")),
        ])
        XCTAssertEqual(plan.dsn.map(\.finalRecipient.address), ["c@remote.example", "d@remote.example"])
        XCTAssertEqual(plan.dsn.map(\.action), [.failed, .failed])
        XCTAssertEqual(plan.dsn.first?.remoteMTA, "mx.remote.example")
        XCTAssertEqual(plan.log[0], "7: to=<a@remote.example>, relay=mx.remote.example[192.0.2.25]:25, delay=100, dsn=2.0.0, status=sent (250 2.0.0 queued)")
        XCTAssertTrue(plan.log[1].hasSuffix("dsn=4.2.0, status=deferred (451 4.2.0 later)"), plan.log[1])
        XCTAssertTrue(plan.log[2].hasSuffix("dsn=5.1.1, status=bounced (550 5.1.1 unknown)"), plan.log[2])
        XCTAssertTrue(plan.log[3].contains("status=expired"), plan.log[3])
    }

    func testNotifySuccessIsTheRemotesJobWhenItSpeaksDSN() {
        let j = job(1, recipients: ["a@remote.example"], body: [], notify: 1).job
        let withDSN = DeliveryReport.plan(job: j, attempts: [attempt(j.recipients[0], .accepted, SMTPReply(250, "2.0.0", "ok"), dsn: true)],
                                          schedule: schedule, now: now)
        XCTAssertEqual(withDSN.dsn, [])
        let without = DeliveryReport.plan(job: j, attempts: [attempt(j.recipients[0], .accepted, SMTPReply(250, "2.0.0", "ok"))],
                                          schedule: schedule, now: now)
        XCTAssertEqual(without.dsn.map(\.action), [.relayed])
    }

    func testNullSenderMakesNoNoticeButLogsTheDoubleBounce() async {
        let j = job(1, sender: "", recipients: ["a@remote.example"], body: [], origin: .bounce).job
        let report = await DeliveryReport.make(job: j, attempts: [attempt(j.recipients[0], .permanent, SMTPReply(550, "5.1.1", "no"))],
                                               schedule: schedule, reportingMTA: "mx.example.org", now: now, original: { _ in [] })
        XCTAssertNil(report.notice)
        XCTAssertEqual(report.doubleBounces, ["a@remote.example"])
        XCTAssertEqual(report.results.count, 1)
    }

    func testDelayWarningOnlyOnceAndOnlyWhenDue() {
        var j = job(1, recipients: ["a@remote.example", "b@remote.example"], body: []).job
        for i in 0..<2 { j.recipients[i].firstAttempt = Int64(now.timeIntervalSince1970) - 4000; j.recipients[i].attempts = 2 }
        j.recipients[1].warned = true
        let plan = DeliveryReport.plan(job: j, attempts: j.recipients.map { attempt($0, .temporary, SMTPReply(451, "4.2.0", "later")) },
                                       schedule: schedule, now: now)
        XCTAssertEqual(plan.dsn.map(\.finalRecipient.address), ["a@remote.example"])
        XCTAssertEqual(plan.dsn.first?.action, .delayed)
        guard case .deferred(_, _, let w0) = plan.results[0].outcome, case .deferred(_, _, let w1) = plan.results[1].outcome else { return XCTFail() }
        XCTAssertTrue(w0)
        XCTAssertTrue(w1, "the mark stays")
    }
}
