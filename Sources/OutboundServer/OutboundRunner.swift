// The queue runner: claims due messages (on start, on each queue event, at the next due time
// and on a safety poll), splits each into one unit per destination, delivers the units over at
// most `per_destination` connections per destination and `concurrency` in total (a connection
// carries unit after unit of its destination and stays open `connection_cache_time_ms` for the
// next, as Postfix's connection cache), and reports each message once all its units are done,
// without holding the connection (the store's group commit batches the reports). A recipient leaves the queue only by that report, so a
// crash before it loses nothing: the lease expires and the message is claimed again. A delivery
// that outlives its lease is claimed again too — that claim renews the lease, and the runner,
// still delivering those recipients, does not start them a second time.
import DKIM
import Foundation
import Logging
import MailModel
import MailWorker
import NIOCore
import OutboundProtocol
import SMTPProtocol

public final class OutboundRunner: @unchecked Sendable {
    let queue: any OutboundQueue
    let settings: OutboundSettings
    let router: Router
    let tls: TLSClientContexts
    let dkim: DKIMKeys
    let group: EventLoopGroup
    let logger: Logger
    let now: @Sendable () -> Date
    let dispatcher: Dispatcher
    let wakeup = Wakeup()

    /// Messages claimed and not yet reported, at most this many.
    public var maxInFlight: Int { max(settings.concurrency * 5, 100) }

    private let lock = NSLock()
    private var inFlight = 0
    /// Queue row ids of the recipients being delivered now. A delivery that outlives its lease
    /// is claimed again (the claim renews the lease); those rows are not started twice.
    private var delivering: Set<Int64> = []
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    public init(queue: any OutboundQueue, settings: OutboundSettings, router: Router, tls: TLSClientContexts, dkim: DKIMKeys,
                group: EventLoopGroup, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.queue = queue; self.settings = settings; self.router = router; self.tls = tls; self.dkim = dkim
        self.group = group; self.logger = logger; self.now = now
        dispatcher = Dispatcher(perDestination: settings.perDestination, concurrency: settings.concurrency)
    }

    /// Runs until the task is cancelled.
    public func run() async {
        await watch()
        while !Task.isCancelled {
            var next = OutboundSettings.safetyPoll
            if let due = await claimAndDispatch() {
                let wait = Double(due) - now().timeIntervalSince1970
                next = min(next, .milliseconds(Int64(max(0, wait) * 1000)))
            }
            await wakeup.wait(timeout: next)
        }
    }

    /// One claim, everything it returned delivered and reported (tests, `postern queue flush`-like runs).
    public func runOnce() async {
        _ = await claimAndDispatch()
        await drained()
    }

    /// Waits until no claimed message is left unreported.
    public func drained() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let idle = lock.withLock {
                if inFlight == 0 { return true }
                idleWaiters.append(c)
                return false
            }
            if idle { c.resume() }
        }
    }

    func watch() async {
        do {
            try await queue.watch { [wakeup] in wakeup.signal() }
        } catch {
            logger.error("cannot watch the queue: \(error); polling every \(OutboundSettings.safetyPoll)")
        }
    }

    /// Claims what fits and starts it; the next due time of what is left.
    func claimAndDispatch() async -> Int64? {
        let room = lock.withLock { maxInFlight - inFlight }
        guard room > 0 else { return nil }
        let claim: QueueClaim
        do {
            claim = try await queue.claim(lease: settings.lease, limit: room)
        } catch {
            logger.error("claim failed: \(error)")
            return Int64(now().timeIntervalSince1970) + 5
        }
        let jobs: [QueueJob] = lock.withLock {
            let fresh = claim.jobs.compactMap { job -> QueueJob? in
                var job = job
                job.recipients.removeAll { delivering.contains($0.id) }
                return job.recipients.isEmpty ? nil : job
            }
            for job in fresh { delivering.formUnion(job.recipients.map(\.id)) }
            inFlight += fresh.count
            return fresh
        }
        for job in jobs { await start(job) }
        return claim.nextDue
    }

    /// Splits a message into destination units, or fails it at once (admin bounce).
    func start(_ job: QueueJob) async {
        let signers: @Sendable () -> [DKIMSigner] = { [dkim, settings] in
            guard settings.dkim, job.origin == .submission, let at = job.sender.lastIndex(of: "@") else { return [] }
            return dkim.signers(for: String(job.sender[job.sender.index(after: at)...]))
        }
        let body = MessageBody(job: job, queue: queue, signers: signers, logger: logger)
        let tracker = JobTracker(job: job, body: body, runner: self)
        if job.bounceRequested {
            let result = job.recipients.map { r in
                RecipientAttempt(recipient: r, result: RecipientResult(recipient: Self.path(r.address), status: .permanent,
                                                                       reply: .bouncedByAdministrator, remote: false))
            }
            await tracker.finish(result)
            return
        }
        var groups: [Destination: [QueueRecipient]] = [:]
        var order: [Destination] = []
        for r in job.recipients {
            let domain = r.address.lastIndex(of: "@").map { String(r.address[r.address.index(after: $0)...]) } ?? ""
            let d = router.destination(of: domain)
            if groups[d] == nil { order.append(d) }
            groups[d, default: []].append(r)
        }
        await tracker.expect(order.count)
        for d in order {
            await dispatcher.enqueue(DeliveryUnit(destination: d, job: job, recipients: groups[d]!, body: body, tracker: tracker), runner: self)
        }
    }

    func reported(_ job: QueueJob) {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            inFlight -= 1
            delivering.subtract(job.recipients.map(\.id))
            guard inFlight == 0 else { return [] }
            defer { idleWaiters = [] }
            return idleWaiters
        }
        for w in waiters { w.resume() }
        wakeup.signal()
    }

    static func path(_ address: String) -> MailPath {
        if let p = MailPath(address) { return p }
        let at = address.lastIndex(of: "@")
        return MailPath(localPart: at.map { String(address[..<$0]) } ?? address,
                        domain: at.map { String(address[address.index(after: $0)...]) } ?? "")
    }
}

/// One message's recipients for one destination: one transaction.
struct DeliveryUnit: Sendable {
    let destination: Destination
    let job: QueueJob
    let recipients: [QueueRecipient]
    let body: MessageBody
    let tracker: JobTracker

    /// Every recipient with the same result (routing, DNS, an unreachable destination).
    func all(_ status: RecipientResult.Status, _ reply: SMTPReply, remote: Bool = false, target: RouteTarget? = nil) -> [RecipientAttempt] {
        recipients.map { RecipientAttempt(recipient: $0, result: RecipientResult(recipient: OutboundRunner.path($0.address), status: status,
                                                                                  reply: reply, remote: remote), target: target) }
    }
}

/// Collects a message's units; reports once when the last is in.
actor JobTracker {
    let job: QueueJob
    let body: MessageBody
    let runner: OutboundRunner
    private var expected = 0
    private var attempts: [RecipientAttempt] = []

    init(job: QueueJob, body: MessageBody, runner: OutboundRunner) { self.job = job; self.body = body; self.runner = runner }

    func expect(_ units: Int) { expected = units }

    func unitDone(_ results: [RecipientAttempt]) async {
        attempts += results
        expected -= 1
        if expected == 0 { await finish(attempts) }
    }

    func finish(_ results: [RecipientAttempt]) async {
        let runner = self.runner, job = self.job, body = self.body
        // Claim order, whatever order the destinations finished in.
        let order = Dictionary(uniqueKeysWithValues: job.recipients.enumerated().map { ($1.id, $0) })
        let sorted = results.sorted { order[$0.recipient.id, default: 0] < order[$1.recipient.id, default: 0] }
        let report = await DeliveryReport.make(job: job, attempts: sorted, schedule: runner.settings.schedule,
                                               reportingMTA: runner.settings.heloName, now: runner.now(),
                                               original: { await body.original(headersOnly: $0) })
        for line in report.logLines { runner.logger.info("\(line)") }
        for r in report.doubleBounces {
            runner.logger.notice("\(job.message): sender is null: no DSN about <\(r)> (double bounce)")
        }
        do {
            try await runner.queue.report(report.results, notice: report.notice)
            if let n = report.notice { runner.logger.info("\(job.message): sender non-delivery notification to <\(n.recipient)> stored with the report") }
        } catch {
            // The rows stay leased; once the lease ends they are claimed and tried again.
            runner.logger.error("\(job.message): report failed, will be retried after the lease: \(error)")
        }
        runner.reported(job)
    }
}

/// Per-destination queues of units and the connection limits.
actor Dispatcher {
    let perDestination: Int
    let concurrency: Int
    private var waiting: [Destination: [DeliveryUnit]] = [:]
    private var active: [Destination: Int] = [:]
    private var total = 0
    /// Destinations with units waiting, oldest first (who gets a freed connection slot).
    private var ready: [Destination] = []
    /// Workers whose connection is open with nothing to send, per destination, oldest first:
    /// the next unit of their destination goes to them (the connection cache).
    private var idle: [Destination: [IdleWorker]] = [:]
    private var idleCount = 0
    private var idleSerial: UInt64 = 0

    struct IdleWorker {
        let id: UInt64
        let continuation: CheckedContinuation<DeliveryUnit?, Never>
    }

    init(perDestination: Int, concurrency: Int) { self.perDestination = perDestination; self.concurrency = concurrency }

    /// Workers keeping an idle connection open (tests).
    var idleWorkers: Int { idleCount }

    func enqueue(_ unit: DeliveryUnit, runner: OutboundRunner) {
        let d = unit.destination
        if let w = takeIdle(d, id: nil) {
            w.continuation.resume(returning: unit)
            return
        }
        waiting[d, default: []].append(unit)
        if !ready.contains(d) { ready.append(d) }
        spawn(runner)
    }

    /// The next unit for a worker of `d` (nil: the worker ends).
    func next(_ d: Destination) -> DeliveryUnit? {
        guard var list = waiting[d], !list.isEmpty else { return nil }
        let u = list.removeFirst()
        waiting[d] = list.isEmpty ? nil : list
        if list.isEmpty { ready.removeAll { $0 == d } }
        return u
    }

    /// The next unit for a worker of `d`; with none waiting, the worker's connection stays open
    /// up to `linger` for one (Postfix's connection cache). nil: the worker ends.
    func next(_ d: Destination, linger: Duration) async -> DeliveryUnit? {
        if let u = next(d) { return u }
        guard linger > .zero else { return nil }
        idleSerial += 1
        let id = idleSerial
        return await withCheckedContinuation { (c: CheckedContinuation<DeliveryUnit?, Never>) in
            idle[d, default: []].append(IdleWorker(id: id, continuation: c))
            idleCount += 1
            Task {
                try? await Task.sleep(for: linger)
                await self.expire(d, id)
            }
        }
    }

    /// Ends an idle wait that nothing came for.
    private func expire(_ d: Destination, _ id: UInt64) {
        takeIdle(d, id: id)?.continuation.resume(returning: nil)
    }

    /// Removes an idle worker of `d`: the one with `id`, or the oldest.
    @discardableResult
    private func takeIdle(_ d: Destination, id: UInt64?) -> IdleWorker? {
        guard var list = idle[d], let i = id.map({ id in list.firstIndex { $0.id == id } }) ?? list.indices.first else { return nil }
        let w = list.remove(at: i)
        idle[d] = list.isEmpty ? nil : list
        idleCount -= 1
        return w
    }

    /// Every unit waiting for `d` (its destination is unreachable now).
    func takeAll(_ d: Destination) -> [DeliveryUnit] {
        let list = waiting[d] ?? []
        waiting[d] = nil
        ready.removeAll { $0 == d }
        return list
    }

    func workerEnded(_ d: Destination, runner: OutboundRunner) {
        active[d, default: 1] -= 1
        if active[d] == 0 { active[d] = nil }
        total -= 1
        spawn(runner)
    }

    /// Starts workers while there are units and room, round robin over the destinations.
    private func spawn(_ runner: OutboundRunner) {
        var progress = true
        while progress && total < concurrency {
            progress = false
            for d in ready where total < concurrency && active[d, default: 0] < perDestination {
                guard let first = next(d) else { continue }
                active[d, default: 0] += 1
                total += 1
                progress = true
                // The worker, its connection and the actors it calls share one event loop's thread.
                let executor = EventLoopTaskExecutor(runner.group.next())
                Task(executorPreference: executor) {
                    await DestinationWorker(destination: d, runner: runner, executor: executor).run(first: first)
                }
                break
            }
        }
        // Every connection busy or idle while another destination waits: an idle one gives way.
        if total >= concurrency, !ready.isEmpty, idleCount > 0, let d = idle.keys.first {
            takeIdle(d, id: nil)?.continuation.resume(returning: nil)
        }
    }
}
