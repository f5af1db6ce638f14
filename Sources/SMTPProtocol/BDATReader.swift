// Body accumulator for BDAT (RFC 3030): chunks are binary-exact (no dot-stuffing, bare CR and
// LF are content), concatenated across BDAT commands, cut into fixed-size `messageChunk`s and
// bounded by maxMessageSize across all chunks. The session frames the octet counts.

struct BDATReader: Sendable {
    /// `beginMessage` was emitted, so a refusal must emit `abortMessage`.
    private(set) var begun = false
    private var body: BodyChunker
    /// Body octets accepted so far.
    var size: Int { body.size }
    var abortReason: DataAbortReason? { body.abortReason }
    let maxSize: Int

    init(limits: SMTPLimits) {
        self.maxSize = max(limits.maxMessageSize, 0)
        self.body = BodyChunker(chunkSize: limits.messageChunkSize)
    }

    /// Called for every BDAT command of the transaction before its octets are read. The size
    /// limit is checked against the announced size (RFC 3030 §2 / RFC 1870 §6), so nothing
    /// over the limit is ever handed to the glue. The first call emits `beginMessage` unless
    /// that very chunk is already too big (then no message is begun at all).
    mutating func announce(_ octets: Int, envelope: SMTPEnvelope, actions: inout [SMTPAction]) {
        let fits = abortReason == nil && octets <= maxSize - size
        if !begun, abortReason == nil {
            if fits {
                begun = true
                actions.append(.beginMessage(envelope))
            } else {
                body.refuse(.tooBig, announce: false, &actions)
            }
            return
        }
        if !fits { fail(.tooBig, &actions) }
    }

    /// Appends `p[from..<to]` to the body (dropped after a refusal).
    mutating func append(_ p: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, _ actions: inout [SMTPAction]) {
        body.append(p, from, to, &actions)
    }

    /// After the LAST chunk: emits the remaining chunk and `endMessage`, or returns why the
    /// message was refused.
    mutating func finish(actions: inout [SMTPAction]) -> DataAbortReason? {
        body.finish(actions: &actions)
    }

    /// The transaction ends before LAST (RSET, EHLO, QUIT, timeout, close).
    mutating func abandon(actions: inout [SMTPAction]) {
        fail(.abandoned, &actions)
    }

    private mutating func fail(_ reason: DataAbortReason, _ actions: inout [SMTPAction]) {
        body.refuse(reason, announce: begun, &actions)
    }
}
