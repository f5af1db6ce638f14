// Queue family (types 450–499): the outbound queue (DESIGN §4). The outbound agent claims due
// recipients with a lease, reads bodies by range, reports results with the DSN to store in the
// same transaction, and watches for new work (notify, then pull: the pull is the next claim).
// The administrator lists and acts on the queue. The outbound role may send nothing else.
//
//   request                                  → reply                                 roles
//   QueueList                                → QueueEntries([QueueEntry])            admin
//   QueueClaimRequest(lease, limit ≤ 1024)   → QueueJobs(jobs, nextDue?)             outbound
//                                              (a job may carry its body: ≤ QueueClaim.bodyBudget in all)
//   QueueRead(message, offset, length)       → MessageBytes(bytes ≤ maxReadLength)   outbound
//   QueueReport(results, notice?)            → OK, once durable                      outbound
//                                              (notice: recipient and body, ≤ maxNoticeBytes)
//   QueueWatch                               → OK; then QueueChanged events          outbound
//   QueueEntriesGet(after, limit ≤ 512)      → QueueEntryList(entries, complete)     admin
//   QueueAdminRequest(action, message?)      → QueueAdminReply(rows touched)         admin
// Unsolicited (request id 0, store → worker):
//   QueueChanged   rows became due now (a delivery queued some, a flush, a release, a queued
//                  bounce); at most one outstanding per watching connection until its next claim
import NIOCore
import MailModel

/// The bounds of the queue family: decoders refuse more.
public enum QueueLimits {
    /// Messages one claim returns at most (the agent asks for fewer).
    public static let maxClaim = 1024
    /// Recipients one job or one report carries at most (DeliverBegin's bound).
    public static let maxRecipients = DeliverBegin.maxRecipients
    /// Bytes one QueueRead returns at most (its reply is the mailbox family's MessageBytes).
    public static let maxReadLength = MailboxLimits.maxReadLength
    /// Entries one QueueEntryList carries at most (a page is also cut where it would outgrow a
    /// frame: long last replies).
    public static let entriesPerPage: UInt32 = 512
    /// The largest notice a report carries: it travels in the report's frame (a DSN returns the
    /// original's headers, or the whole of a message that fits).
    public static let maxNoticeBytes = RPCLimits.defaultMaxFrame - 64 * 1024
}

public struct QueueEntry: Sendable, Equatable {
    /// `created`: seconds since the epoch; `lastError` empty before the first attempt.
    public var id: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: UInt32, lastError: String
    public init(id: Int64, sender: String, recipient: String, created: Int64, nextAttempt: Int64, attempts: UInt32, lastError: String) {
        self.id = id; self.sender = sender; self.recipient = recipient; self.created = created
        self.nextAttempt = nextAttempt; self.attempts = attempts; self.lastError = lastError
    }
    static let minBytes = WireSize.u64 * 3 + WireSize.string * 3 + WireSize.u32
}

public struct QueueList: RPCRequest, EmptyMessage {
    public typealias Reply = QueueEntries
    public static let type = MessageType.queueList
    public static let roles: Set<Role> = .adminOnly
    public init() {}
}

public struct QueueEntries: RPCMessage {
    public static let type = MessageType.queueEntries
    public var entries: [QueueEntry]
    public init(_ entries: [QueueEntry]) { self.entries = entries }
    public init(reading r: inout WireReader) throws {
        entries = try r.list(minElementBytes: QueueEntry.minBytes) { r in
            QueueEntry(id: try r.i64(), sender: try r.string(), recipient: try r.string(), created: try r.i64(),
                       nextAttempt: try r.i64(), attempts: try r.u32(), lastError: try r.string())
        }
    }
    public func write(to w: inout WireWriter) {
        w.list(entries) { w, e in
            w.i64(e.id); w.string(e.sender); w.string(e.recipient); w.i64(e.created); w.i64(e.nextAttempt); w.u32(e.attempts); w.string(e.lastError)
        }
    }
}

// MARK: the outbound agent

extension Set where Element == Role {
    public static let outboundOnly: Set<Role> = [.outbound]
}

/// Claims due work for `lease` seconds: at most `limit` messages (QueueStore.claimQueue).
public struct QueueClaimRequest: RPCRequest {
    public typealias Reply = QueueJobs
    public static let type = MessageType.queueClaim
    public static let roles: Set<Role> = .outboundOnly
    public var lease: UInt32, limit: UInt32
    public init(lease: UInt32, limit: UInt32) { self.lease = lease; self.limit = limit }
    public init(reading r: inout WireReader) throws {
        lease = try r.u32(); limit = try r.u32()
        guard limit <= QueueLimits.maxClaim else { throw WireError.badValue("claim of \(limit) messages") }
    }
    public func write(to w: inout WireWriter) { w.u32(lease); w.u32(limit) }
}

public struct QueueJobs: RPCMessage {
    public static let type = MessageType.queueJobs
    public var claim: QueueClaim
    public init(_ claim: QueueClaim) { self.claim = claim }
    public init(reading r: inout WireReader) throws {
        let jobs = try r.list(minElementBytes: Self.minJobBytes, max: QueueLimits.maxClaim) { try Self.job(&$0) }
        claim = QueueClaim(jobs: jobs, nextDue: try r.bool() ? try r.i64() : nil)
    }
    public func write(to w: inout WireWriter) {
        w.list(claim.jobs) { Self.write($1, to: &$0) }
        w.bool(claim.nextDue != nil); if let n = claim.nextDue { w.i64(n) }
    }

    static let minRecipientBytes = WireSize.u64 + WireSize.string * 3 + WireSize.u32 + WireSize.bool * 3
    static let minJobBytes = WireSize.u64 * 4 + WireSize.string * 3 + WireSize.u8 + WireSize.bool * 2 + WireSize.u32

    static func write(_ j: QueueJob, to w: inout WireWriter) {
        w.i64(j.message); w.string(j.sender); w.u64(UInt64(max(0, j.size))); w.i64(j.created); w.u8(j.origin.rawValue)
        w.string(j.envelope.ret); w.string(j.envelope.envid); w.bool(j.bounceRequested); w.i64(j.leaseUntil)
        w.list(j.recipients) { w, r in
            w.i64(r.id); w.string(r.address); w.u32(UInt32(clamping: r.attempts))
            w.bool(r.firstAttempt != nil); if let f = r.firstAttempt { w.i64(f) }
            w.string(r.lastReply); w.bool(r.warned)
            w.bool(r.dsn.notify != nil); if let n = r.dsn.notify { w.u8(n) }
            w.string(r.dsn.orcpt)
        }
        w.bool(j.body != nil); if let b = j.body { w.bytes(b) }
    }

    static func job(_ r: inout WireReader) throws -> QueueJob {
        let message = try r.i64(), sender = try r.string(), size = try QueueEntryList.size(&r)
        let created = try r.i64(), origin = try r.enumU8(QueueOrigin.self)
        let envelope = QueueEnvelopeDSN(ret: try r.string(), envid: try r.string())
        let bounce = try r.bool(), lease = try r.i64()
        let recipients = try r.list(minElementBytes: minRecipientBytes, max: QueueLimits.maxRecipients) { r in
            let id = try r.i64(), address = try r.string(), attempts = Int(try r.u32())
            let first: Int64? = try r.bool() ? try r.i64() : nil
            let reply = try r.string(), warned = try r.bool()
            let notify: UInt8? = try r.bool() ? try r.u8() : nil
            return QueueRecipient(id: id, address: address, attempts: attempts, firstAttempt: first, lastReply: reply, warned: warned,
                                  dsn: QueueRecipientDSN(notify: notify, orcpt: try r.string()))
        }
        var body: [UInt8]? = nil
        if try r.bool() {
            let b = try r.bytes()
            guard b.readableBytes == size else { throw WireError.badValue("a job's body of \(b.readableBytes) octets, size \(size)") }
            body = Array(b.readableBytesView)
        }
        return QueueJob(message: message, sender: sender, size: size, created: created, origin: origin, envelope: envelope,
                        recipients: recipients, bounceRequested: bounce, leaseUntil: lease, body: body)
    }
}

/// Bytes `[offset, offset + length)` of a queued message as it is sent (no leading Return-Path).
public struct QueueRead: RPCRequest {
    public typealias Reply = MessageBytes
    public static let type = MessageType.queueRead
    public static let roles: Set<Role> = .outboundOnly
    public var message: Int64, offset: UInt64, length: UInt32
    public init(message: Int64, offset: UInt64, length: UInt32) { self.message = message; self.offset = offset; self.length = length }
    public init(reading r: inout WireReader) throws { message = try r.i64(); offset = try r.u64(); length = try r.u32() }
    public func write(to w: inout WireWriter) { w.i64(message); w.u64(offset); w.u32(length) }
}

/// Results of one attempt and the notice (DSN) to store with them; answered once durable.
public struct QueueReport: RPCRequest {
    public typealias Reply = OK
    public static let type = MessageType.queueReport
    public static let roles: Set<Role> = .outboundOnly
    public var results: [QueueResult], notice: QueueNotice?
    public init(results: [QueueResult], notice: QueueNotice?) { self.results = results; self.notice = notice }

    enum Kind: UInt8 { case delivered = 0, deferred = 1, failed = 2 }
    static let minResultBytes = WireSize.u64 + WireSize.u8 + WireSize.string + WireSize.u64 + WireSize.bool

    public init(reading r: inout WireReader) throws {
        results = try r.list(minElementBytes: Self.minResultBytes, max: QueueLimits.maxRecipients) { r in
            let id = try r.i64(), kind = try r.enumU8(Kind.self), reply = try r.string(), next = try r.i64(), warned = try r.bool()
            // Canonical: only a deferral carries a next attempt and a warning mark.
            guard kind == .deferred || (next == 0 && !warned) else { throw WireError.badValue("\(kind) result with a next attempt") }
            switch kind {
            case .delivered: return QueueResult(recipient: id, outcome: .delivered(reply: reply))
            case .deferred: return QueueResult(recipient: id, outcome: .deferred(reply: reply, nextAttempt: next, warned: warned))
            case .failed: return QueueResult(recipient: id, outcome: .failed(reply: reply))
            }
        }
        if try r.bool() {
            let rcpt = try r.string(), body = try r.bytes()
            guard body.readableBytes <= QueueLimits.maxNoticeBytes else { throw WireError.badValue("notice of \(body.readableBytes) bytes") }
            notice = QueueNotice(recipient: rcpt, body: Array(body.readableBytesView))
        } else {
            notice = nil
        }
    }

    public func write(to w: inout WireWriter) {
        w.list(results) { w, x in
            w.i64(x.recipient)
            switch x.outcome {
            case .delivered(let reply): w.u8(Kind.delivered.rawValue); w.string(reply); w.i64(0); w.bool(false)
            case .deferred(let reply, let next, let warned): w.u8(Kind.deferred.rawValue); w.string(reply); w.i64(next); w.bool(warned)
            case .failed(let reply): w.u8(Kind.failed.rawValue); w.string(reply); w.i64(0); w.bool(false)
            }
        }
        w.bool(notice != nil)
        if let n = notice { w.string(n.recipient); w.bytes(n.body) }
    }
}

/// Watches the queue: the store pushes QueueChanged (coalesced) when rows become due now.
public struct QueueWatch: RPCRequest, EmptyMessage {
    public typealias Reply = OK
    public static let type = MessageType.queueWatch
    public static let roles: Set<Role> = .outboundOnly
    public init() {}
}

/// The event: rows became due now. The next claim re-arms it.
public struct QueueChanged: RPCMessage, EmptyMessage {
    public static let type = MessageType.queueChanged
    public init() {}
}

// MARK: administration

/// The queue as the administrator sees it, oldest first (one entry per recipient), a page at a
/// time: entries with a row id above `after`; ask again after the last one while !complete.
public struct QueueEntriesGet: RPCRequest {
    public typealias Reply = QueueEntryList
    public static let type = MessageType.queueEntriesGet
    public static let roles: Set<Role> = .adminOnly
    public var after: Int64, limit: UInt32
    public init(after: Int64 = 0, limit: UInt32 = QueueLimits.entriesPerPage) { self.after = after; self.limit = limit }
    public init(reading r: inout WireReader) throws {
        after = try r.i64(); limit = try r.u32()
        guard limit <= QueueLimits.entriesPerPage else { throw WireError.badValue("page of \(limit) entries") }
    }
    public func write(to w: inout WireWriter) { w.i64(after); w.u32(limit) }
}

public struct QueueEntryList: RPCMessage {
    public static let type = MessageType.queueEntryList
    public var entries: [QueueEntryInfo], complete: Bool
    public init(_ entries: [QueueEntryInfo], complete: Bool) { self.entries = entries; self.complete = complete }
    static let minBytes = WireSize.u64 * 6 + WireSize.string * 3 + WireSize.u32 + WireSize.bool * 2 + WireSize.u8
    public init(reading r: inout WireReader) throws {
        entries = try r.list(minElementBytes: Self.minBytes, max: Int(QueueLimits.entriesPerPage)) { r in
            QueueEntryInfo(id: try r.i64(), message: try r.i64(), sender: try r.string(), recipient: try r.string(), created: try r.i64(),
                           nextAttempt: try r.i64(), attempts: Int(try r.u32()), lastReply: try r.string(), held: try r.bool(),
                           bounceRequested: try r.bool(), leaseUntil: try r.i64(), size: try Self.size(&r),
                           origin: try r.enumU8(QueueOrigin.self))
        }
        complete = try r.bool()
    }
    static func size(_ r: inout WireReader) throws -> Int {
        guard let n = Int(exactly: try r.u64()) else { throw WireError.badValue("size") }
        return n
    }
    public func write(to w: inout WireWriter) {
        w.list(entries) { w, e in
            w.i64(e.id); w.i64(e.message); w.string(e.sender); w.string(e.recipient); w.i64(e.created); w.i64(e.nextAttempt)
            w.u32(UInt32(clamping: e.attempts)); w.string(e.lastReply); w.bool(e.held); w.bool(e.bounceRequested); w.i64(e.leaseUntil)
            w.u64(UInt64(max(0, e.size))); w.u8(e.origin.rawValue)
        }
        w.bool(complete)
    }
}

/// `postern queue flush|hold|release|delete|bounce`: on one message's rows (all for flush
/// without one).
public struct QueueAdminRequest: RPCRequest {
    public typealias Reply = QueueAdminReply
    public static let type = MessageType.queueAdmin
    public static let roles: Set<Role> = .adminOnly
    public var action: QueueAdminAction, message: Int64?
    public init(_ action: QueueAdminAction, message: Int64?) { self.action = action; self.message = message }
    public init(reading r: inout WireReader) throws {
        action = try r.enumU8(QueueAdminAction.self)
        message = try r.bool() ? try r.i64() : nil
    }
    public func write(to w: inout WireWriter) { w.u8(action.rawValue); w.bool(message != nil); if let m = message { w.i64(m) } }
}

public struct QueueAdminReply: RPCMessage {
    public static let type = MessageType.queueAdminReply
    /// Queue rows the action touched (0: no such message).
    public var rows: UInt32
    public init(rows: UInt32) { self.rows = rows }
    public init(reading r: inout WireReader) throws { rows = try r.u32() }
    public func write(to w: inout WireWriter) { w.u32(rows) }
}
