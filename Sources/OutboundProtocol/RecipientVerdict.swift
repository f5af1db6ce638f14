// What the queue does with one recipient after an attempt: remove it, retry it (with or without
// a delay warning), or fail it — and whether the sender hears of it, as its DSN NOTIFY asked
// (RFC 3461 §4.1). Pure: the result of the attempt, the schedule and the times in; a verdict out.
import Foundation
import SMTPProtocol

public enum RecipientVerdict: Sendable, Equatable {
    /// The server took it: leave the queue. `relayedNotice`: NOTIFY=SUCCESS was asked and the
    /// server does not speak DSN, so we report Action: relayed ourselves (RFC 3461 §4.1, RFC 3464 §2.3.3).
    case delivered(relayedNotice: Bool)
    /// Stay queued until `until`. `warn`: send a delay DSN (Action: delayed) now.
    case deferred(until: Date, warn: Bool)
    /// Leave the queue as failed (5xx, or still 4xx when the queue lifetime ran out). `notify`:
    /// send a failure DSN (false for NOTIFY=NEVER or a NOTIFY without FAILURE).
    case failed(expired: Bool, notify: Bool)

    /// - `attempts`: attempts so far including this one; `firstAttempt`: when the message was first tried.
    /// - `serverSpeaksDSN`: the server offered DSN (it then owns later notifications).
    /// - `alreadyWarned`: a delay DSN went out before for this recipient.
    /// Without NOTIFY: FAILURE and DELAY (RFC 3461 §4.1 leaves the default to the MTA).
    public static func decide(_ result: RecipientResult, notify: DSNNotify?, serverSpeaksDSN: Bool, schedule: RetrySchedule,
                              attempts: Int, firstAttempt: Date, now: Date, alreadyWarned: Bool) -> RecipientVerdict {
        let conditions = notify ?? [.failure, .delay]
        switch result.status {
        case .accepted:
            return .delivered(relayedNotice: conditions.contains(.success) && !serverSpeaksDSN)
        case .permanent:
            return .failed(expired: false, notify: conditions.contains(.failure))
        case .temporary:
            switch schedule.decision(attempts: attempts, firstAttempt: firstAttempt, now: now) {
            case .expire:
                return .failed(expired: true, notify: conditions.contains(.failure))
            case .retry(let at):
                let warn = conditions.contains(.delay)
                    && schedule.delayWarningDue(firstAttempt: firstAttempt, now: now, alreadyWarned: alreadyWarned)
                return .deferred(until: at, warn: warn)
            }
        }
    }
}
