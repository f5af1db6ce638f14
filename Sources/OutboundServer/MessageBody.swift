// One claimed message's body as it is sent: the DKIM-Signature fields first (computed over the
// bytes exactly as they go out), then the stored message. Small bodies are read once and shared
// by every destination; large ones are read by range each time (never 20 MB in memory unless a
// 7-bit downgrade needs the whole message). The 8-bit scan and the DKIM pass are one read.
import DKIM
import Logging
import MailModel
import MailSyntax
import OutboundProtocol
import SMTPProtocol

public actor MessageBody {
    let job: QueueJob
    let queue: any OutboundQueue
    let signers: () -> [DKIMSigner]
    let logger: Logger

    /// Filled by `prepare`.
    private var prepared = false
    private var memory: [UInt8]?
    private var signature: [UInt8] = []
    public private(set) var eightBit = false
    /// The header section holds UTF-8 (an RFC 6532 message): it needs SMTPUTF8 all the way
    /// (RFC 6531 §3.2). 8-bit header bytes that are not UTF-8 (legacy charsets) do not: they
    /// are sent as they are, as Postfix does.
    public private(set) var utf8Headers = false
    /// The 7-bit form (RFC 6152 §3) with its own signature, once asked for; .some(nil): impossible.
    private var sevenBit: [UInt8]??

    /// `signers` makes fresh DKIM signers for this message (none: unsigned).
    public init(job: QueueJob, queue: any OutboundQueue, signers: @escaping @Sendable () -> [DKIMSigner], logger: Logger) {
        self.job = job; self.queue = queue; self.signers = signers; self.logger = logger
    }

    /// Reads the message once: the 8-bit scan and the DKIM signature. Throws when the store
    /// cannot give the body (the attempt is then a temporary failure).
    public func prepare() async throws {
        if prepared { return }
        let signers = self.signers()
        let keep = job.size <= OutboundSettings.inMemoryBodyLimit
        // A body that came with the claim is kept as it came; one read by range is gathered.
        let gather = keep && job.body == nil
        var all: [UInt8] = []
        if gather { all.reserveCapacity(job.size) }
        var offset = 0
        var head: [UInt8] = [], headComplete = false
        while offset < job.size {
            let chunk = try await read(offset)
            if !eightBit, chunk.contains(where: { $0 >= 0x80 }) { eightBit = true }
            if !headComplete {
                head += chunk.prefix(DKIMLimits.maximumHeaderBytes - head.count)
                if let end = Self.headerEnd(head) { head.removeSubrange(end...); headComplete = true }
                else if head.count >= DKIMLimits.maximumHeaderBytes { headComplete = true }
            }
            for s in signers { try? s.update(chunk) }
            if gather { all += chunk }
            offset += chunk.count
        }
        signature = Self.finish(signers, logger: logger, message: job.message)
        utf8Headers = head.contains { $0 >= 0x80 } && ASCII.isValidUTF8(head[...])
        memory = keep ? (job.body ?? all) : nil
        prepared = true
    }

    /// Octets sent after DATA (before dot-stuffing): signature fields and the message.
    public func size(sevenBit use7: Bool) -> Int {
        if use7, case .some(.some(let b)) = sevenBit { return b.count }
        return signature.count + job.size
    }

    /// The `index`-th piece of the body to send (0 first); nil after the last.
    public func piece(_ index: Int, sevenBit use7: Bool) async throws -> [UInt8]? {
        let chunk = OutboundSettings.readChunk
        if use7, case .some(.some(let b)) = sevenBit {
            let start = index * chunk
            return start < b.count ? Array(b[start..<min(b.count, start + chunk)]) : nil
        }
        if index == 0 { return signature }
        let start = (index - 1) * chunk
        guard start < job.size else { return nil }
        if let m = memory { return Array(m[start..<min(m.count, start + chunk)]) }
        return try await read(start)
    }

    /// The message converted to 7-bit MIME and signed again as converted; the new size, or nil
    /// when it cannot be converted (then it bounces: RFC 6152 §3).
    public func downgrade() async -> Int? {
        if sevenBit == nil {
            do {
                let whole: [UInt8]
                if let m = memory { whole = m } else { whole = try await readAll() }
                if let converted = MIMEDowngrade.sevenBit(whole) {
                    let signers = self.signers()
                    for s in signers { try? s.update(converted) }
                    sevenBit = .some(Self.finish(signers, logger: logger, message: job.message) + converted)
                } else {
                    sevenBit = .some(nil)
                }
            } catch {
                logger.warning("\(job.message): cannot read the body to convert it: \(error)")
                return nil       // not cached: a store hiccup is no reason to bounce next time
            }
        }
        if case .some(.some(let b)) = sevenBit { return b.count }
        return nil
    }

    /// What a DSN returns (RFC 3461 §4.3): the whole message, or its header section for
    /// RET=HDRS or a message over DSNBuilder's return limit.
    public func original(headersOnly: Bool) async -> [UInt8] {
        if let m = memory { return m }
        do {
            if !headersOnly && job.size <= OutboundSettings.dsnReturnSizeLimit { return try await readAll() }
            var head: [UInt8] = []
            var offset = 0
            while offset < job.size, head.count < DKIMLimits.maximumHeaderBytes {
                let chunk = try await read(offset)
                head += chunk
                offset += chunk.count
                if Self.headerEnd(head) != nil { break }
            }
            return Array(head[..<(Self.headerEnd(head) ?? head.count)])
        } catch {
            return []
        }
    }

    // MARK: -

    private func read(_ offset: Int) async throws -> [UInt8] {
        let length = min(OutboundSettings.readChunk, job.size - offset)
        if let body = job.body, offset + length <= body.count { return Array(body[offset..<(offset + length)]) }   // came with the claim
        let chunk = try await queue.read(message: job.message, offset: offset, length: length)
        guard !chunk.isEmpty else { throw OutboundQueueError(.invalid, "message \(job.message): body ends at \(offset) of \(job.size)") }
        return chunk
    }

    private func readAll() async throws -> [UInt8] {
        var all: [UInt8] = []
        all.reserveCapacity(job.size)
        while all.count < job.size { all += try await read(all.count) }
        return all
    }

    /// The signature fields, first key's first; a signer that fails is logged and left out.
    static func finish(_ signers: [DKIMSigner], logger: Logger, message: Int64) -> [UInt8] {
        var out: [UInt8] = []
        for s in signers {
            do { out += Array(try s.finish().utf8) } catch {
                logger.warning("\(message): DKIM signing with \(s.domain)/\(s.selector) failed: \(error)")
            }
        }
        return out
    }

    /// The offset just past the header section's last CRLF (before the empty line), if complete.
    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        if bytes.starts(with: [13, 10]) { return 0 }
        var i = 0
        while i + 3 < bytes.count {
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { return i + 2 }
            i += 1
        }
        return nil
    }
}
