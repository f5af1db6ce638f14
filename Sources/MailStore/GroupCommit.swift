// Group commit (DESIGN §3): one writer thread takes every delivery that is waiting, writes
// their blobs, makes them durable with one sync, commits all metadata in one transaction
// (one WAL fsync), and only then completes each delivery. A failure fails the whole batch;
// nothing of it is acknowledged, and its blobs are swept at the next start. IMAP APPEND rides
// the same batches; blob files of expunged bodies are removed on this thread, between batches.
import Foundation
import GRDB

/// Where an IMAP APPEND goes (RFC 9051 §6.3.12), and what became of it: set by the commit inside
/// the batch transaction, read by the append's completion. An append that fails (a mailbox not
/// the user's, too many keywords) rolls back its own savepoint and fails alone, not the batch.
final class AppendTarget: @unchecked Sendable {
    let user: Int64, mailbox: Int64, flags: SystemFlags, keywords: [String], internalDate: Int64?
    var result: Result<(AppendResult, [MailboxChange]), Error>?
    init(user: Int64, mailbox: Int64, flags: SystemFlags, keywords: [String], internalDate: Int64?) {
        self.user = user; self.mailbox = mailbox; self.flags = flags; self.keywords = keywords; self.internalDate = internalDate
    }
}

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
    /// Set for an IMAP APPEND (no recipients): the mailbox the message goes to.
    var append: AppendTarget? = nil
    /// How remote recipients are queued (SQLiteMailStore+Delivery.swift); nil for an APPEND.
    var queueing: QueueingPlan? = nil
    /// Set for an outbound agent's report (SQLiteMailStore+Queue.swift): its results are applied
    /// in the same transaction as the notice this delivery stores.
    var report: QueueReportTarget? = nil
    /// The texts the search index gets for this body, computed before the writer (SearchIndex.swift);
    /// nil: none (`search_index` off, a text over the index's limits, or no mailbox holds the body).
    var searchText: SearchIndexText? = nil
    /// False for a body only queued for remote recipients: it is neither search-indexed nor are
    /// its header fields kept (it leaves with its last recipient; a later local copy of the same
    /// bytes is scanned, or filled at the next start).
    var reachesMailbox = true

    /// Whether the commit stores this body (a local copy, a queue entry or an append).
    var storesBody: Bool {
        append != nil || resolutions.contains(where: { if case .deliver = $0 { return true } else { return false } })
    }
}

/// Blob files whose rows an expunge or a delete removed; `done` runs once they are handled.
private struct BlobRemoval {
    var hashes: [[UInt8]]
    var done: @Sendable () -> Void
}

final class GroupCommitter: @unchecked Sendable {
    private let cond = NSCondition()
    private var pending: [PendingDelivery] = []
    private var removals: [BlobRemoval] = []
    private var thread: Thread?
    private unowned let store: SQLiteMailStore
    private let maxBatch: Int
    private(set) var batches = 0

    init(store: SQLiteMailStore, maxBatch: Int) {
        self.store = store; self.maxBatch = maxBatch
        let t = Thread { [weak self] in self?.run() }
        t.name = "group-commit"
        thread = t
        t.start()
    }

    /// Removes the blob files of `hashes` that no `messages` row names, and returns when done.
    /// It runs on the commit thread between batches: that thread alone writes blob files and
    /// inserts message rows, so a delivery of the same bytes (whose blob write was skipped as a
    /// duplicate) can never lose its file to a removal. A crash before it leaves orphans that
    /// the start-up sweep removes.
    func removeBlobs(_ hashes: [[UInt8]]) {
        guard !hashes.isEmpty else { return }
        if Thread.current == thread { return removeUnreferenced(hashes) }   // from a completion
        let sem = DispatchSemaphore(value: 0)
        cond.lock(); removals.append(BlobRemoval(hashes: hashes, done: { sem.signal() })); cond.signal(); cond.unlock()
        sem.wait()
    }

    private func removeUnreferenced(_ hashes: [[UInt8]]) {
        for h in hashes {
            do {
                let row = try store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM messages WHERE hash = ?", arguments: [Data(h)]) }
                if row == nil { try store.blobs.remove(h) }
            } catch {
                continue   // left to the start-up sweep
            }
        }
    }

    func submit(_ d: PendingDelivery) {
        cond.lock(); pending.append(d); cond.signal(); cond.unlock()
    }

    private func run() {
        while true {
            cond.lock()
            while pending.isEmpty && removals.isEmpty { cond.wait() }
            let n = min(pending.count, maxBatch)
            let batch = Array(pending.prefix(n))
            pending.removeFirst(n)
            let remove = removals
            removals = []
            cond.unlock()
            if !batch.isEmpty { commit(batch) }
            for r in remove { removeUnreferenced(r.hashes); r.done() }
        }
    }

    private func commit(_ batch: [PendingDelivery]) {
        // Staged bodies not adopted (nothing to deliver, or a failed batch) go with the batch.
        defer { for d in batch { d.staged?.discard() } }
        var outcomes: [DeliveryOutcome] = []
        do {
            var wroteFiles = false
            for d in batch where d.storesBody {
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
        // A failed APPEND's file was written before its transaction and has no row: it goes now;
        // so does that of a delivery every recipient refused (over quota). Shared bodies have a row and stay.
        var orphans: [[UInt8]] = []
        for (d, o) in zip(batch, outcomes) where d.size > store.inlineMax {
            if case .failure = d.append?.result { orphans.append(d.hash) }
            if d.append == nil, d.report == nil, !o.statuses.contains(.delivered) { orphans.append(d.hash) }
        }
        removeUnreferenced(orphans)
        for (d, o) in zip(batch, outcomes) { d.completion(.success(o)) }
    }
}
