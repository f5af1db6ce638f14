// Queue family handlers (DESIGN §4): the outbound agent's claim, read, report and watch, and
// the administrator's listing and actions, over `any QueueStore` with the store's clock. Queue
// watchers hear (coalesced) whenever rows become due now; a claim re-arms the watch.
import NIOCore
import MailIPC
import MailStore

extension StoreConnectionHandler {
    /// The watch is re-armed before the store is read: rows made due meanwhile notify again.
    func queueClaim(_ id: UInt32, _ m: QueueClaimRequest) {
        hub.queuePulled(owner)
        offload(id) { [store] in
            QueueJobs(try store.claimQueue(now: store.queueNow, lease: Int64(m.lease), limit: Int(m.limit)))
        }
    }

    func queueRead(_ m: QueueRead) throws -> MessageBytes {
        guard Int(m.length) <= QueueLimits.maxReadLength else {
            throw ErrorReply(.invalid, "read of \(m.length) bytes: at most \(QueueLimits.maxReadLength) at once")
        }
        guard let offset = Int(exactly: m.offset) else { throw ErrorReply(.invalid, "offset \(m.offset)") }
        return MessageBytes(ByteBuffer(bytes: try store.queueBody(message: m.message, offset: offset, length: Int(m.length))))
    }

    /// Answered once results and notice are durable; mailbox watchers of a local notice and
    /// queue watchers of a queued one are told first (as a delivery does).
    func queueReport(_ id: UInt32, _ m: QueueReport) {
        let loop = context.eventLoop, store = self.store, hub = self.hub, logger = self.logger
        pool.submit { _ in
            store.commitQueueReport(m.results, notice: m.notice, now: store.queueNow) { result in
                loop.execute { [self] in
                    switch result {
                    case .success(let o):
                        if let n = m.notice, o.changes.isEmpty, o.queued == 0 {
                            logger.warning("notice to <\(n.recipient)> not stored: no such local user or no INBOX (double bounce dropped)")
                        }
                        notify(o.changes)
                        if o.queued > 0 { hub.queueChanged() }
                        reply(id, OK())
                    case .failure(let e):
                        logger.error("queue report failed, nothing recorded: \(e)")
                        reply(id, errorReply(e))
                    }
                }
            }
        }
    }

    func queueWatch(_ id: UInt32) {
        hub.addQueueWatch(channel: context.channel, owner: owner)
        reply(id, OK())
    }

    /// One page; cut short (not complete) where long last replies would outgrow a frame.
    func queueEntries(_ m: QueueEntriesGet) throws -> QueueEntryList {
        let limit = Int(min(m.limit, QueueLimits.entriesPerPage))
        var page = try store.queueEntries(after: m.after, limit: limit + 1)
        var complete = page.count <= limit
        page = Array(page.prefix(limit))
        while page.count > 1, QueueEntryList(page, complete: complete).payload().readableBytes > Self.maxReplyBytes {
            page.removeLast(page.count / 2)
            complete = false
        }
        return try fitting(QueueEntryList(page, complete: complete))
    }

    /// Flush, release and bounce make rows due now: the agents are told.
    func queueAdmin(_ m: QueueAdminRequest) throws -> QueueAdminReply {
        let n = try store.queueAdmin(m.action, message: m.message, now: store.queueNow)
        if n > 0, [.flush, .release, .bounce].contains(m.action) { hub.queueChanged() }
        return QueueAdminReply(rows: UInt32(clamping: n))
    }
}
