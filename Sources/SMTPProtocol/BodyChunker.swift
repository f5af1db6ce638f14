// Cuts a message body into fixed-size `messageChunk` actions and remembers a refusal. Shared
// by DataReader (DATA) and BDATReader (CHUNKING), so both hand the glue identical chunking.

struct BodyChunker: Sendable {
    private var chunk: [UInt8] = []
    /// Body bytes accepted so far.
    private(set) var size = 0
    private(set) var abortReason: DataAbortReason?
    let chunkSize: Int

    init(chunkSize: Int) { self.chunkSize = max(chunkSize, 1) }

    /// Appends `p[from..<to]`, cutting chunks at exact `chunkSize` boundaries (dropped after a refusal).
    @inline(__always)
    mutating func append(_ p: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, _ actions: inout [SMTPAction]) {
        guard abortReason == nil, to > from else { return }
        size &+= to &- from
        var k = from
        while k < to {
            let take = min(chunkSize &- chunk.count, to &- k)
            chunk.append(contentsOf: UnsafeBufferPointer(rebasing: p[k..<(k &+ take)]))
            k &+= take
            if chunk.count >= chunkSize {
                actions.append(.messageChunk(chunk))
                chunk = []
                chunk.reserveCapacity(chunkSize)
            }
        }
    }

    /// Refuses the message (the first reason wins); `announce`: the glue has a begun message to drop.
    mutating func refuse(_ reason: DataAbortReason, announce: Bool, _ actions: inout [SMTPAction]) {
        guard abortReason == nil else { return }
        abortReason = reason
        chunk = []
        if announce { actions.append(.abortMessage) }
    }

    /// At the end of the message: emits the remaining chunk and `endMessage`, or returns why
    /// the message was refused.
    mutating func finish(actions: inout [SMTPAction]) -> DataAbortReason? {
        if let reason = abortReason { return reason }
        if !chunk.isEmpty {
            actions.append(.messageChunk(chunk))
            chunk = []
        }
        actions.append(.endMessage)
        return nil
    }
}
