// A small in-memory OutboundQueue for the runner's tests (the real one, RPCOutboundQueue over the
// store, is tested with the store): every job is claimed once, bodies are read by range, and
// reports are kept for the assertions.
import Foundation
import MailModel
import OutboundServer

final class MemoryQueue: OutboundQueue, @unchecked Sendable {
    private let lock = NSLock()
    private var jobs: [QueueJob]
    private var bodies: [Int64: [UInt8]]
    private(set) var reads: [(message: Int64, offset: Int, length: Int)] = []
    private var reports: [(results: [QueueResult], notice: QueueNotice?)] = []
    private var onChange: (@Sendable () -> Void)?
    /// Claimed and not yet reported: claimed again by every later claim when `leasesExpire`
    /// (what the store does once a delivery outlives its lease).
    private var unreported: [QueueJob] = []
    var leasesExpire = false

    init(_ messages: [(job: QueueJob, body: [UInt8])]) {
        jobs = messages.map(\.job)
        bodies = Dictionary(uniqueKeysWithValues: messages.map { ($0.job.message, $0.body) })
    }

    /// More messages to claim (a later submission).
    func add(_ messages: [(job: QueueJob, body: [UInt8])]) {
        lock.withLock {
            jobs += messages.map(\.job)
            for m in messages { bodies[m.job.message] = m.body }
        }
    }

    func claim(lease: Int64, limit: Int) async throws -> QueueClaim {
        lock.withLock {
            let again = leasesExpire ? Array(unreported.prefix(limit)) : []
            let now = jobs.prefix(limit - again.count)
            jobs.removeFirst(now.count)
            unreported += now
            return QueueClaim(jobs: again + Array(now), nextDue: nil)
        }
    }

    func read(message: Int64, offset: Int, length: Int) async throws -> [UInt8] {
        try lock.withLock {
            reads.append((message, offset, length))
            guard let b = bodies[message] else { throw OutboundQueueError(.notFound, "no message \(message)") }
            guard offset < b.count else { return [] }
            return Array(b[offset..<min(b.count, offset + length)])
        }
    }

    func report(_ results: [QueueResult], notice: QueueNotice?) async throws {
        lock.withLock {
            reports.append((results, notice))
            let done = Set(results.map(\.recipient))
            unreported.removeAll { $0.recipients.allSatisfy { done.contains($0.id) } }
        }
    }

    func watch(onChange: @escaping @Sendable () -> Void) async throws {
        lock.withLock { self.onChange = onChange }
    }

    /// How many results were reported for each recipient id (1 each, unless delivered twice).
    var reportCounts: [Int64: Int] {
        lock.withLock { reports.reduce(into: [:]) { counts, r in for x in r.results { counts[x.recipient, default: 0] += 1 } } }
    }

    /// Every recipient's outcome, by recipient id.
    var outcomes: [Int64: QueueOutcome] {
        lock.lock(); defer { lock.unlock() }
        var out: [Int64: QueueOutcome] = [:]
        for r in reports { for x in r.results { out[x.recipient] = x.outcome } }
        return out
    }

    var notices: [QueueNotice] {
        lock.lock(); defer { lock.unlock() }
        return reports.compactMap(\.notice)
    }

    var reportCount: Int { lock.lock(); defer { lock.unlock() }; return reports.count }
}

/// A message in CRLF lines.
func message(from: String = "alice@example.org", to: String = "bob@remote.example", subject: String = "Test",
             body: String = "Hello.\r\n") -> [UInt8] {
    Array("From: <\(from)>\r\nTo: <\(to)>\r\nSubject: \(subject)\r\nDate: Sun, 06 Dec 2026 05:00:00 +0000\r\nMessage-ID: <\(UUID().uuidString)@example.org>\r\n\r\n\(body)".utf8)
}

func job(_ id: Int64, sender: String = "alice@example.org", recipients: [String], body: [UInt8], origin: QueueOrigin = .submission,
         notify: UInt8? = nil, bounce: Bool = false, created: Int64 = 1_800_000_000) -> (job: QueueJob, body: [UInt8]) {
    let rs = recipients.enumerated().map { QueueRecipient(id: id * 100 + Int64($0), address: $1, dsn: QueueRecipientDSN(notify: notify)) }
    return (QueueJob(message: id, sender: sender, size: body.count, created: created, origin: origin, recipients: rs,
                     bounceRequested: bounce, leaseUntil: created + 600), body)
}
