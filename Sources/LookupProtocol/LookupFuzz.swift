// Fuzz entry point for the tcp_table and socketmap decoders: any byte stream ends in requests,
// "need more" or `.invalid`, never a trap or a decoder that stops consuming; traps (precondition)
// when an invariant below breaks, so libFuzzer (fuzz-lookup) and tests can drive it.
//
// Invariants: every answer except needMoreBytes consumes input; the request sequence does not
// depend on how the stream is split (whole / byte by byte); a decoded request re-encoded by the
// client-side encoding decodes to itself; the encoders' replies decode back to their value.

public enum LookupFuzz {
    /// Byte 0: bit 0 picks socketmap (1) or tcp_table (0); bit 1 picks tiny limits (key 8,
    /// request 24 bytes) so the limit paths are reached. The rest is the client's stream.
    public static func one(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let socketmap = first & 1 != 0
        let limits = first & 2 != 0 ? LookupLimits(maxKeyLength: 8, maxRequestLength: 24) : LookupLimits()
        let stream = Array(data.dropFirst())
        if socketmap {
            let whole = socketmapRequests([stream], limits: limits)
            precondition(whole == socketmapRequests(stream.map { [$0] }, limits: limits), "socketmap: result depends on segmentation")
            for case .request(let r) in whole { roundTrip(r, limits: limits) }
        } else {
            let whole = tcpRequests([stream], limits: limits)
            precondition(whole == tcpRequests(stream.map { [$0] }, limits: limits), "tcp_table: result depends on segmentation")
            for case .request(let r) in whole { roundTrip(r, limits: limits) }
        }
    }

    /// Feeds the pieces in order as lookupd does: append, then decode until "need more".
    static func tcpRequests(_ pieces: [[UInt8]], limits: LookupLimits) -> [DecodeResult<TCPTable.Request>] {
        var buffer: [UInt8] = [], discarding = false, out: [DecodeResult<TCPTable.Request>] = []
        for p in pieces {
            buffer += p
            while true {
                let before = buffer.count
                let r = TCPTable.decode(&buffer, discarding: &discarding, limits: limits)
                if r == .needMoreBytes { break }
                precondition(buffer.count < before, "tcp_table: answered without consuming input")
                out.append(r)
            }
        }
        return out
    }

    /// As lookupd: after `.invalid` the socketmap stream is closed, so decoding stops there.
    static func socketmapRequests(_ pieces: [[UInt8]], limits: LookupLimits) -> [DecodeResult<SocketMap.Request>] {
        var buffer: [UInt8] = [], out: [DecodeResult<SocketMap.Request>] = []
        for p in pieces {
            buffer += p
            while true {
                let before = buffer.count
                let r = SocketMap.decode(&buffer, limits: limits)
                if r == .needMoreBytes { break }
                out.append(r)
                if case .invalid = r { return out }
                precondition(buffer.count < before, "socketmap: answered without consuming input")
            }
        }
        return out
    }

    static func roundTrip(_ r: TCPTable.Request, limits: LookupLimits) {
        var line: [UInt8]
        switch r {
        case .get(let k): line = Array("get ".utf8) + TCPTable.percentEncode(k) + [10]
        case .put(let k, let v): line = Array("put ".utf8) + TCPTable.percentEncode(k) + [32] + TCPTable.percentEncode(v) + [10]
        }
        let big = LookupLimits(maxKeyLength: limits.maxKeyLength, maxRequestLength: line.count)
        precondition(TCPTable.decode(&line, limits: big) == .request(r), "tcp_table: request does not round-trip")
        if case .get(let k) = r {
            let reply = TCPTable.encode(.found(k)).dropFirst(4).dropLast()
            precondition(TCPTable.percentDecode(reply) == k, "tcp_table: reply does not round-trip")
        }
    }

    static func roundTrip(_ r: SocketMap.Request, limits: LookupLimits) {
        var b = SocketMap.netstring(Array("\(r.map) \(r.key)".utf8))
        precondition(SocketMap.decode(&b, limits: limits) == .request(r) && b.isEmpty, "socketmap: request does not round-trip")
        var reply = SocketMap.encode(.found(r.key))
        let big = LookupLimits(maxKeyLength: .max, maxRequestLength: .max)
        precondition(SocketMap.decode(&reply, limits: big) == .request(SocketMap.Request(map: "OK", key: r.key)),
                     "socketmap: reply does not round-trip")
    }
}
