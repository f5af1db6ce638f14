// SMTPSession: BDAT chunks (RFC 3030 CHUNKING). A chunk's octets are always read, even when
// the command is refused, so the command stream stays in step.

extension SMTPSession {
    // MARK: - BDAT (RFC 3030)

    /// A BDAT command: its octets are always read, whatever the answer (RFC 3030 §2).
    /// `refusal`: the command table's verdict (`tableRefusal`), sent once the octets are read.
    mutating func startChunk(size: Int, last: Bool, refusal tableRefusal: SMTPReply?, _ actions: inout [SMTPAction]) {
        var refusal = tableRefusal
        var countsAsError = true
        if refusal == nil, transaction?.recipients.isEmpty == true {
            refusal = noValidRecipientsReply         // as for DATA: not counted
            countsAsError = false
        }
        if refusal == nil, var current = transaction {
            if bdatReader == nil {
                current.chunked = true
                transaction = current
                bdatReader = BDATReader(limits: config.limits)
            }
            bdatReader!.announce(size, envelope: current, actions: &actions)
        }
        bdatChunk = BDATChunk(size: size, remaining: size, last: last, refusal: refusal, countsAsError: countsAsError)
        if size == 0 {
            finishChunk(&actions)
        } else {
            phase = .bdat
        }
    }

    /// Reads octets of the current chunk from `p[start...]`.
    mutating func consumeChunk(_ p: UnsafeBufferPointer<UInt8>, from start: Int, _ actions: inout [SMTPAction]) -> Int {
        guard var chunk = bdatChunk else {
            phase = .command
            return start
        }
        let take = min(chunk.remaining, p.count - start)
        if chunk.refusal == nil {
            bdatReader?.append(p, start, start + take, &actions)
        }
        chunk.remaining -= take
        bdatChunk = chunk
        if chunk.remaining == 0 { finishChunk(&actions) }
        return start + take
    }

    mutating func finishChunk(_ actions: inout [SMTPAction]) {
        phase = .command
        guard let chunk = bdatChunk else { return }
        bdatChunk = nil
        if let refusal = chunk.refusal {
            if chunk.countsAsError { protocolError(refusal, &actions) } else { actions.append(.reply(refusal)) }
            return
        }
        guard chunk.last else {
            actions.append(.reply(.chunkReceived(chunk.size)))
            return
        }
        guard var body = bdatReader else { return }
        bdatReader = nil
        if let reason = body.finish(actions: &actions) {
            refuseMessage(reason.reply, &actions)
        } else {
            waiting = .delivery
        }
    }
}
