// Sends /learnspam and /learnham to rspamd's controller one at a time from a bounded queue, with
// backoff, on its own event loop: `learn` returns at once, off every client's latency. The
// controller password travels only in the `Password:` field; no log line carries it.
import Logging
import MailCore
import NIOCore

public final class SpamLearner: @unchecked Sendable {
    public let controller: RspamdEndpoint
    private let password: String?
    private let timeout: TimeAmount
    private let loop: EventLoop
    private let logger: Logger
    // Everything below is touched on `loop` only.
    private var queue: LearnQueue
    private var busy = false
    private var stopped = false
    private var waiting: Scheduled<Void>?
    /// Counters since start (for tests and status lines).
    private var counts = LearnCounts()

    public struct LearnCounts: Sendable, Equatable {
        public var learned = 0, alreadyLearned = 0, refused = 0, dropped = 0, retries = 0
        public var pending = 0
    }

    public init(loop: EventLoop, controller: RspamdEndpoint, password: String?, timeout: TimeAmount,
                capacity: Int, maxBytes: Int = LearnQueue.defaultMaxBytes, logger: Logger) {
        self.loop = loop; self.controller = controller; self.password = password; self.timeout = timeout
        self.queue = LearnQueue(capacity: capacity, maxBytes: maxBytes); self.logger = logger
    }

    /// Queues one message to learn; returns immediately.
    public func learn(_ kind: LearnKind, message: ByteBuffer, origin: String) {
        let job = LearnJob(kind: kind, message: message, origin: origin)
        loop.execute { self.enqueue(job) }
    }

    /// The counters, read on the learner's loop.
    public func counters() -> EventLoopFuture<LearnCounts> {
        loop.submit { var c = self.counts; c.pending = self.queue.count + (self.busy ? 1 : 0); return c }
    }

    /// Completes once the queue is empty and nothing is in flight (tests; a graceful stop).
    public func drained(poll: TimeAmount = .milliseconds(20)) -> EventLoopFuture<Void> {
        let p = loop.makePromise(of: Void.self)
        func check() {
            if queue.isEmpty && !busy { p.succeed(()) } else { loop.scheduleTask(in: poll) { check() } }
        }
        loop.execute { check() }
        return p.futureResult
    }

    /// Stops sending; what is queued is dropped (logged with its count).
    public func stop() {
        loop.execute {
            self.stopped = true
            self.waiting?.cancel()
            if !self.queue.isEmpty { self.logger.warning("spam learn: stopping with \(self.queue.count) requests unsent") }
        }
    }

    private func enqueue(_ job: LearnJob) {
        guard !stopped else { return }
        for d in queue.push(job) {
            counts.dropped += 1
            logger.warning("spam learn: queue full (\(queue.capacity)), dropped the oldest request: learn \(d.kind.rawValue) \(d.origin)")
        }
        pump()
    }

    private func pump() {
        guard !busy, !stopped, waiting == nil, var job = queue.popFirst() else { return }
        busy = true
        job.attempts += 1
        var headers: [(String, String)] = []
        if let password { headers.append(("Password", password)) }
        RspamdHTTP.exchange(group: loop, endpoint: controller, path: job.kind.path, headers: headers,
                            body: job.message, timeout: timeout)
            .whenComplete { result in
                let outcome: LearnOutcome
                switch result {
                case .success(let r): outcome = .classify(status: r.status, error: nil)
                case .failure(let e): outcome = .classify(status: nil, error: e as? RspamdError ?? .connect("\(e)"))
                }
                self.finished(job, outcome)
            }
    }

    private func finished(_ job: LearnJob, _ outcome: LearnOutcome) {
        busy = false
        switch outcome {
        case .learned:
            counts.learned += 1
            logger.info("spam learn: learned \(job.kind.rawValue) \(job.origin)")
        case .alreadyLearned:
            counts.alreadyLearned += 1
            logger.info("spam learn: already learned \(job.kind.rawValue) \(job.origin)")
        case .refused(let why):
            counts.refused += 1
            logger.warning("spam learn: rspamd refused learn \(job.kind.rawValue) \(job.origin): \(why)")
        case .retry(let why):
            if job.attempts >= LearnQueue.maxAttempts {
                counts.dropped += 1
                logger.warning("spam learn: giving up learn \(job.kind.rawValue) \(job.origin) after \(job.attempts) attempts: \(why)")
            } else {
                counts.retries += 1
                queue.pushFront(job)
                let delay = LearnQueue.retryDelay(afterAttempts: job.attempts)
                logger.notice("spam learn: \(controller) \(why); retrying in \(delay.nanoseconds / 1_000_000) ms (\(queue.count) queued)")
                waiting = loop.scheduleTask(in: delay) { self.waiting = nil; self.pump() }
                return
            }
        }
        pump()
    }
}

/// How a worker sets its learner up from [spam], in the two phases of its start.
public enum SpamLearnerSetup {
    /// Phase one (before the privilege drop: the file may be root's alone). nil without a file,
    /// with spam filtering off, or when it cannot be read (logged, without its contents).
    public static func password(_ c: SpamConfig, logger: Logger) -> String? {
        guard c.enabled, let path = c.controllerPasswordFile else { return nil }
        do { return try readControllerPassword(path: path) } catch {
            logger.error("spam: cannot read controller_password_file \(path): learning will be refused by rspamd")
            return nil
        }
    }

    /// Phase two: the learner, nil with spam filtering off.
    public static func learner(_ c: SpamConfig, password: String?, loop: EventLoop, logger: Logger) -> SpamLearner? {
        guard c.enabled, let controller = RspamdEndpoint(url: c.controllerURL) else { return nil }
        return SpamLearner(loop: loop, controller: controller, password: password, timeout: .nanoseconds(Int64(c.timeout * 1e9)),
                           capacity: c.learnQueue, logger: logger)
    }
}
