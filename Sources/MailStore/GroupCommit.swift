// Group commit (DESIGN §3): one writer thread takes every delivery that is waiting, writes
// their blobs, makes them durable with one sync, commits all metadata in one transaction
// (one WAL fsync), and only then completes each delivery. A failure fails the whole batch;
// nothing of it is acknowledged, and its blobs are swept at the next start.
import Foundation
import GRDB


struct PendingDelivery: @unchecked Sendable {
    var sender: String
    var resolutions: [Resolution]
    /// The bytes, when in memory (always for bodies of at most `inlineMax`); else `staged`.
    var body: [UInt8]?
    /// A body received into a temporary file, adopted as its blob by the commit.
    var staged: StagedBlob?
    var size: Int
    var hash: [UInt8]
    var info: [UInt8]
    var date: Int64
    var completion: @Sendable (Result<DeliveryOutcome, Error>) -> Void
}

final class GroupCommitter: @unchecked Sendable {
    private let cond = NSCondition()
    private var pending: [PendingDelivery] = []
    private unowned let store: SQLiteMailStore
    private let maxBatch: Int
    private(set) var batches = 0

    init(store: SQLiteMailStore, maxBatch: Int) {
        self.store = store; self.maxBatch = maxBatch
        let t = Thread { [weak self] in self?.run() }
        t.name = "group-commit"
        t.start()
    }

    func submit(_ d: PendingDelivery) {
        cond.lock(); pending.append(d); cond.signal(); cond.unlock()
    }

    private func run() {
        while true {
            cond.lock()
            while pending.isEmpty { cond.wait() }
            let n = min(pending.count, maxBatch)
            let batch = Array(pending.prefix(n))
            pending.removeFirst(n)
            cond.unlock()
            commit(batch)
        }
    }

    private func commit(_ batch: [PendingDelivery]) {
        // Staged bodies not adopted (nothing to deliver, or a failed batch) go with the batch.
        defer { for d in batch { d.staged?.discard() } }
        var outcomes: [DeliveryOutcome] = []
        do {
            var wroteFiles = false
            for d in batch where d.resolutions.contains(where: { if case .deliver = $0 { return true } else { return false } }) {
                // Every accepted message has a body: local copies and queue entries both reference it.
                // Small ones go into the transaction below; larger ones are blob files synced first.
                guard d.size > store.inlineMax else { continue }
                if let s = d.staged { try store.blobs.adopt(s, as: d.hash) }
                else { try d.body!.withUnsafeBytes { try store.blobs.write(d.hash, $0) } }
                wroteFiles = true
            }
            if wroteFiles { try store.blobs.sync() }
            try store.pool.write { db in
                outcomes = try batch.map { try store.commit($0, db: db) }
            }
            batches += 1
        } catch {
            for d in batch { d.completion(.failure(error)) }
            return
        }
        for (d, o) in zip(batch, outcomes) { d.completion(.success(o)) }
    }
}
