// Delivery family handlers: recipient checks, Postfix map lookups, chunked deliveries.
// Body bytes are capped per delivery and per connection; over a cap the delivery is answered
// at its end (too large / try again later), never by closing the shared connection.
import NIOCore
import MailIPC
import MailStore

extension StoreConnectionHandler {
    func lookupRecipient(_ m: LookupRecipient) throws -> RecipientReply {
        switch try store.resolve(m.address) {
        case .deliver(let users, let remote):
            // An address the SMTP engine may deliver to instead (the bare "postmaster"): the
            // user's own when there is one target, else the address asked, which the store
            // expands again at delivery — never the first of several targets.
            guard users.count + remote.count == 1 else { return RecipientReply(.ok, m.address) }
            return RecipientReply(.ok, users.first?.address ?? remote.first ?? m.address)
        case .unknownUser: return RecipientReply(.unknownUser, m.address)
        case .notLocal: return RecipientReply(.notLocal, m.address)
        }
    }

    func lookup(_ m: Lookup) throws -> LookupResult {
        let v = try maps.lookup(m.map, key: m.key)
        return LookupResult(found: v != nil, value: v ?? "")
    }

    func deliverBegin(_ id: UInt32, _ m: DeliverBegin) {
        guard deliveries[id] == nil else { return reply(id, ErrorReply(.badSequence, "a delivery with this request id is in progress")) }
        guard deliveries.count < Self.maxConcurrentDeliveries else { return reply(id, ErrorReply(.temporary, "too many deliveries in progress")) }
        var d = InProgress(sender: m.sender, recipients: m.recipients)
        if m.recipients.isEmpty { d.refusal = ErrorReply(.invalid, "a delivery needs recipients") }
        // A submission names a session authenticated on this very connection (DESIGN §2).
        if m.session != 0 {
            do { d.submitter = try requireSession(m.session) } catch { d.refusal = errorReply(error) }
        }
        deliveries[id] = d
    }

    func deliverChunk(_ id: UInt32, _ m: DeliverChunk) {
        guard var d = deliveries[id] else { return reply(id, ErrorReply(.badSequence, "body chunk without a delivery")) }
        let n = m.bytes.readableBytes
        if d.refusal != nil || d.overflow || d.busy {
            // already refused: the rest of the body is dropped
        } else if d.body.count + n > maxDelivery {
            buffered -= d.body.count
            d.overflow = true; d.body = []
        } else if buffered + n > maxBuffered {
            buffered -= d.body.count
            d.busy = true; d.body = []
        } else {
            d.body.append(contentsOf: m.bytes.readableBytesView)
            buffered += n
        }
        deliveries[id] = d
    }

    func deliverEnd(_ id: UInt32) {
        guard let d = deliveries.removeValue(forKey: id) else { return reply(id, ErrorReply(.badSequence, "delivery end without a delivery")) }
        if let r = d.refusal { buffered -= d.body.count; return reply(id, r) }
        if d.overflow { return reply(id, ErrorReply(.invalid, "message exceeds the store's size limit")) }
        if d.busy {
            logger.warning("delivery deferred: more than \(maxBuffered) body bytes in flight on this connection")
            return reply(id, DeliverResult(Array(repeating: .tempFail, count: d.recipients.count)))
        }
        deliver(id, d)
    }

    private func deliver(_ id: UInt32, _ d: InProgress) {
        let loop = context.eventLoop, store = self.store, hub = self.hub, logger = self.logger
        let count = d.recipients.count
        pool.submit { _ in
            store.deliver(sender: d.sender, recipients: d.recipients, body: d.body, submitter: d.submitter) { result in
                loop.execute { [self] in
                    buffered -= d.body.count
                    switch result {
                    case .success(let o):
                        reply(id, DeliverResult(o.statuses.map(RecipientStatus.init)))
                        for c in o.changes { hub.changed(mailboxID: c.mailboxID, modSeq: c.highestModSeq) }
                    case .failure(let e as StoreError) where e.code == .denied:
                        logger.warning("delivery refused: \(e)")
                        reply(id, ErrorReply(.denied, e.message))
                    case .failure(let e):
                        logger.error("delivery failed, nothing acknowledged: \(e)")
                        reply(id, DeliverResult(Array(repeating: .tempFail, count: count)))
                    }
                }
            }
        }
    }
}
