// When to try a deferred message again, and when to give up: a pure function of (attempts so
// far, first attempt time, now), in the manner of the master's RestartPolicy. No clock is read.
import Foundation
import SMTPProtocol

public struct RetrySchedule: Sendable, Equatable {
    /// Delay after the first failed attempt. Postfix's minimal_backoff_time is 300 s.
    public var initialDelay: Duration
    /// Doubling stops here (Postfix maximal_backoff_time 4000 s; 4 h here).
    public var maximumDelay: Duration
    /// `max_queue_lifetime`: a message still deferred this long after its first attempt expires
    /// and is bounced (Postfix default 5 d; RFC 5321 §4.5.4.1: "at least 4-5 days").
    public var maxQueueLifetime: Duration
    /// Send a delay DSN (Action: delayed, RFC 3464 §2.3.3) once a message is this old; nil never.
    public var delayWarning: Duration?

    public static let defaultInitialDelay: Duration = .seconds(5 * 60)
    public static let defaultMaximumDelay: Duration = .seconds(4 * 3600)
    public static let defaultMaxQueueLifetime: Duration = .seconds(5 * 86_400)

    public init(initialDelay: Duration = defaultInitialDelay, maximumDelay: Duration = defaultMaximumDelay,
                maxQueueLifetime: Duration = defaultMaxQueueLifetime, delayWarning: Duration? = nil) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.maxQueueLifetime = maxQueueLifetime
        self.delayWarning = delayWarning
    }

    public enum Decision: Sendable, Equatable {
        /// Try again at this time.
        case retry(at: Date)
        /// Past `maxQueueLifetime`: bounce every recipient still queued.
        case expire
    }

    /// The wait after the `attempts`-th failed attempt (1-based): initial × 2^(attempts−1), capped.
    public func delay(afterAttempt attempts: Int) -> Duration {
        // The same capped doubling as SMTP's failed-AUTH delay.
        AuthFailureDelay(initial: initialDelay, maximum: maximumDelay).delay(afterFailure: attempts)
    }

    /// After a temporary failure: the next attempt, or expiry. The last retry is pulled in to the
    /// expiry time, so a message is tried once more right when its lifetime ends.
    public func decision(attempts: Int, firstAttempt: Date, now: Date) -> Decision {
        let expiry = firstAttempt.addingTimeInterval(Self.seconds(maxQueueLifetime))
        if now >= expiry { return .expire }
        let next = now.addingTimeInterval(Self.seconds(delay(afterAttempt: attempts)))
        return .retry(at: min(next, expiry))
    }

    /// Whether a delay warning is due now (and was not sent yet).
    public func delayWarningDue(firstAttempt: Date, now: Date, alreadyWarned: Bool) -> Bool {
        guard let delayWarning, !alreadyWarned else { return false }
        return now >= firstAttempt.addingTimeInterval(Self.seconds(delayWarning))
    }

    /// Until when a delayed message will be retried (Will-Retry-Until, RFC 3464 §2.3.9).
    public func retryUntil(firstAttempt: Date) -> Date {
        firstAttempt.addingTimeInterval(Self.seconds(maxQueueLifetime))
    }

    static func seconds(_ d: Duration) -> TimeInterval {
        let (s, atto) = d.components
        return TimeInterval(s) + TimeInterval(atto) / 1e18
    }
}
