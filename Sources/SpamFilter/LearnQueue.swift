// The learner's queue as a pure value: bounded by count and bytes (the oldest request is dropped,
// and said so, when a new one does not fit), with the retry schedule and the classification of
// rspamd's answers. No clock, no sockets: SpamLearner carries its decisions out.
import NIOCore

public enum LearnKind: String, Sendable, Equatable {
    case spam, ham
    /// rspamd controller's endpoint.
    public var path: String { self == .spam ? "/learnspam" : "/learnham" }
}

public struct LearnJob: Sendable {
    public var kind: LearnKind
    public var message: ByteBuffer
    /// For the log only: who/what asked ("imap move alice@example.org", "spam@ from bob@...").
    public var origin: String
    /// Attempts made so far.
    public var attempts = 0

    public init(kind: LearnKind, message: ByteBuffer, origin: String) {
        self.kind = kind; self.message = message; self.origin = origin
    }
}

/// What to do after one attempt.
public enum LearnOutcome: Sendable, Equatable {
    /// 200: learned.
    case learned
    /// 208 (rspamd: "already learned"): nothing more to do.
    case alreadyLearned
    /// A refusal that another attempt will not change (wrong password, message rspamd will not
    /// learn): dropped with the reason.
    case refused(String)
    /// Transport failure, timeout or 5xx: retried after a delay.
    case retry(String)

    /// rspamd's controller answer, or the error of the exchange.
    public static func classify(status: Int?, error: RspamdError?) -> LearnOutcome {
        if let error {
            if case .http(let s) = error { return classify(status: s, error: nil) }
            return .retry("\(error)")
        }
        switch status ?? 0 {
        case 200: return .learned
        case 208: return .alreadyLearned
        case 401, 403: return .refused("the controller refused the password (HTTP \(status ?? 0))")
        case 400..<500: return .refused("HTTP \(status ?? 0)")
        default: return .retry("HTTP \(status ?? 0)")
        }
    }
}

public struct LearnQueue: Sendable {
    public let capacity: Int
    public let maxBytes: Int
    private var jobs: [LearnJob] = []
    private var head = 0
    public private(set) var bytes = 0

    /// A learn request holds the whole message; past this many bytes in all, the oldest go too.
    public static let defaultMaxBytes = 256 << 20
    /// Attempts per request before it is dropped (with the delays below: about 17 minutes).
    public static let maxAttempts = 10
    /// Delay before attempt n+1: 1 s doubled per attempt, at most 5 minutes.
    public static let firstRetryDelay = TimeAmount.seconds(1)
    public static let maxRetryDelay = TimeAmount.minutes(5)

    public init(capacity: Int, maxBytes: Int = LearnQueue.defaultMaxBytes) {
        self.capacity = max(1, capacity); self.maxBytes = maxBytes
    }

    public var count: Int { jobs.count - head }
    public var isEmpty: Bool { count == 0 }

    /// Adds `job` at the end; returns what was dropped from the front to make room.
    public mutating func push(_ job: LearnJob) -> [LearnJob] {
        var dropped: [LearnJob] = []
        while count > 0, count >= capacity || bytes + job.message.readableBytes > maxBytes {
            if let j = popFirst() { dropped.append(j) }
        }
        jobs.append(job)
        bytes += job.message.readableBytes
        return dropped
    }

    public mutating func popFirst() -> LearnJob? {
        guard head < jobs.count else { return nil }
        let j = jobs[head]
        head += 1
        bytes -= j.message.readableBytes
        if head > 64, head * 2 > jobs.count { jobs.removeFirst(head); head = 0 }
        return j
    }

    /// Puts a job back at the front (a retry keeps its place in line).
    public mutating func pushFront(_ job: LearnJob) {
        if head > 0 { head -= 1; jobs[head] = job } else { jobs.insert(job, at: 0) }
        bytes += job.message.readableBytes
    }

    public static func retryDelay(afterAttempts n: Int) -> TimeAmount {
        let shift = min(max(n - 1, 0), 20)
        return min(.nanoseconds(firstRetryDelay.nanoseconds << shift), maxRetryDelay)
    }
}
