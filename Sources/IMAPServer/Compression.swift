// COMPRESS=DEFLATE's codec (RFC 4978) over the system zlib: raw DEFLATE (RFC 1951, no zlib
// header) in both directions, as two owned values. Guarantees: the inflater never yields more
// than one `chunk` at a time, nor more than `maxExpansion` times what it was fed (a bomb ends in
// an error, not in memory); each zlib stream is freed exactly once (`close()` or the value's end).
import CZlib
import IMAPProtocol

/// The codec's parameters and bounds, named.
public struct DeflateParameters: Sendable, Equatable {
    /// RFC 4978 §4: "keep it at 1-5 the rest of the time" — the top of that range: responses and
    /// headers compress well, and higher levels cost CPU for little on attachments.
    public var level: Int32 = 5
    /// The compressor's window, 2^n bytes. RFC 4978 §4: "The windowBits value must be in the
    /// range -8 to -15" (negative: raw DEFLATE); the inflater always takes 15, since the client
    /// chooses its own window.
    public var windowBits: Int32 = 15
    /// zlib's memLevel (its default): with windowBits 15 the compressor holds about 256 KiB.
    public var memLevel: Int32 = 8
    /// Largest piece the inflater yields (and the compressor emits) at once: one socket read's
    /// worth (OutboundBackPressure.maxReadSize), so the framer sees what it saw before COMPRESS.
    public var chunk = 16 * 1024
    /// Inflated bytes may be at most this many times the compressed bytes fed (counted over the
    /// connection, once past `expansionAllowance`). Mail and commands stay far below (text
    /// deflates about 3-10:1); zlib's ceiling is about 1032:1, what a bomb is made of.
    public var maxExpansion = 100
    /// Inflated bytes before `maxExpansion` is looked at. The glue sets the largest command the
    /// framer takes (IMAPLimits.maxCommand), so no single command is refused for how well it
    /// compresses (an APPEND of megabytes of one repeated line deflates past 100:1), and a
    /// bomb costs at most that much inflating before the BYE.
    public var expansionAllowance = IMAPLimits().maxCommand
    public init() {}
}

/// Why a DEFLATE stream cannot go on.
public enum DeflateError: Error, Equatable, CustomStringConvertible {
    /// zlib could not set up a stream (memory) or refused a call: the code it returned.
    case zlib(Int32)
    /// The client's data is not valid DEFLATE (zlib's message).
    case corrupt(String)
    /// The client's data inflates past `maxExpansion` (an inflate bomb).
    case expansion(inflated: Int, compressed: Int)
    /// Bytes after the client's final block (RFC 4978 has the stream last as long as the connection).
    case afterEnd

    public var description: String {
        switch self {
        case .zlib(let code): return "zlib error \(code)"
        case .corrupt(let why): return "invalid compressed data (\(why))"
        case .expansion(let out, let inp): return "compressed data expands too much (\(out) bytes from \(inp))"
        case .afterEnd: return "data after the end of the compressed stream"
        }
    }
}

/// The sending half: raw DEFLATE with a sync flush wherever the caller flushes (RFC 4978 §4
/// names Z_SYNC_FLUSH and Z_PARTIAL_FLUSH; the sync flush is byte-aligned and lets every
/// inflater hand out all data so far, Go's included). Between flushes its state (about
/// 256 KiB) can be released and comes back on the next `compress`.
public struct Compressor: ~Copyable {
    private let stream: UnsafeMutablePointer<z_stream>
    /// zlib's state is allocated.
    private var live = true
    private var closed = false
    public let parameters: DeflateParameters
    /// Data compressed since the last flush (a flush with nothing new emits nothing).
    public private(set) var unflushed = false

    public init(_ parameters: DeflateParameters = DeflateParameters()) throws(DeflateError) {
        let s = try zStream { czlib_deflate_init($0, parameters.level, -parameters.windowBits, parameters.memLevel) }
        stream = s
        self.parameters = parameters
    }

    deinit {
        if live { deflateEnd(stream) }
        stream.deallocate()
    }

    /// Whether zlib's state is allocated now (not released, not closed).
    public var isLive: Bool { live }

    /// Frees zlib's state between flushes (an idle connection); the next `compress` starts a
    /// fresh one. RFC 1951 §3.2.2: a block may refer back only as far as the data its
    /// compressor has seen, so blocks from a fresh compressor after a sync flush (which ends
    /// byte-aligned, with no final block) continue the stream for the peer as any others.
    /// Returns false while data is compressed and not flushed.
    @discardableResult
    public mutating func release() -> Bool {
        guard live else { return true }
        guard !unflushed else { return false }
        deflateEnd(stream)
        live = false
        return true
    }

    /// Compresses `input`; with `flush`, ends with a sync flush so the peer can inflate all of
    /// it now. `output` gets the compressed bytes in pieces of at most `parameters.chunk`.
    public mutating func compress(_ input: UnsafeRawBufferPointer, flush: Bool,
                                  output: (UnsafeRawBufferPointer) -> Void) throws(DeflateError) {
        guard !closed else { throw .zlib(Z_STREAM_ERROR) }
        if input.isEmpty && (!flush || !unflushed) { return }
        if !live {
            let p = parameters
            stream.initialize(to: z_stream())
            let r = czlib_deflate_init(stream, p.level, -p.windowBits, p.memLevel)
            guard r == Z_OK else { throw .zlib(r) }
            live = true
        }
        let mode = flush ? Z_SYNC_FLUSH : Z_NO_FLUSH
        let chunk = parameters.chunk
        let s = stream
        var result = Z_OK
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunk) { out in
            s.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
            s.pointee.avail_in = UInt32(input.count)
            // zlib: call again while the output space was used up (a flush may need more).
            repeat {
                s.pointee.next_out = out.baseAddress
                s.pointee.avail_out = UInt32(chunk)
                result = deflate(s, mode)
                guard result == Z_OK || result == Z_BUF_ERROR else { break }
                let made = chunk - Int(s.pointee.avail_out)
                if made > 0 { output(UnsafeRawBufferPointer(start: out.baseAddress, count: made)) }
            } while s.pointee.avail_out == 0
            s.pointee.next_in = nil; s.pointee.avail_in = 0
            s.pointee.next_out = nil; s.pointee.avail_out = 0
        }
        guard result == Z_OK || result == Z_BUF_ERROR else { throw .zlib(result) }
        unflushed = !flush
    }

    /// `compress` of bytes in an array.
    public mutating func compress(_ input: [UInt8], flush: Bool, output: (UnsafeRawBufferPointer) -> Void) throws(DeflateError) {
        // The pointer is only used during the call (Swift 6 typed throws do not pass through withUnsafeBytes).
        var failure: DeflateError?
        input.withUnsafeBytes { raw in
            do throws(DeflateError) { try compress(raw, flush: flush, output: output) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Frees zlib's state now (the connection closed); later calls fail.
    public mutating func close() {
        if live { deflateEnd(stream); live = false }
        closed = true
    }
}

/// The receiving half: takes what the client sent with `feed` and hands it out inflated, one
/// bounded piece per `next()`, so the caller decides when to take more.
public struct Decompressor: ~Copyable {
    private let stream: UnsafeMutablePointer<z_stream>
    private var open = true
    public let parameters: DeflateParameters
    /// Fed and not yet inflated: `input[consumed...]`.
    private var input: [UInt8] = []
    private var consumed = 0
    /// The last call filled its output: zlib may hold more output without more input.
    private var outputFull = false
    private var ended = false
    public private(set) var totalIn = 0
    public private(set) var totalOut = 0

    public init(_ parameters: DeflateParameters = DeflateParameters()) throws(DeflateError) {
        // RFC 1951 windows go up to 32 KiB and the client picks its own: always 15.
        let s = try zStream { czlib_inflate_init($0, -15) }
        stream = s
        self.parameters = parameters
    }

    deinit {
        if open { inflateEnd(stream) }
        stream.deallocate()
    }

    /// Whether `next()` may have output without more input.
    public var hasPending: Bool { open && (consumed < input.count || outputFull) }

    /// Compressed bytes held, not yet inflated.
    public var pendingInput: Int { input.count - consumed }

    /// Adds compressed bytes from the client.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard open, !bytes.isEmpty else { return }
        if consumed == input.count {
            input.removeAll(keepingCapacity: input.capacity <= parameters.chunk)
            consumed = 0
        } else if consumed >= input.count / 2 {
            input.removeSubrange(..<consumed)
            consumed = 0
        }
        input.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// The next inflated piece (at most `parameters.chunk` bytes); nil when what was fed is used up.
    public mutating func next() throws(DeflateError) -> [UInt8]? {
        guard open else { return nil }
        while hasPending {
            if ended { throw .afterEnd }
            let chunk = parameters.chunk
            var out = [UInt8](repeating: 0, count: chunk)
            let s = stream, from = consumed
            let (result, used, made) = input.withUnsafeBufferPointer { inp in
                out.withUnsafeMutableBufferPointer { o -> (Int32, Int, Int) in
                    s.pointee.next_in = UnsafeMutablePointer(mutating: inp.baseAddress.map { $0 + from })
                    s.pointee.avail_in = UInt32(inp.count - from)
                    s.pointee.next_out = o.baseAddress
                    s.pointee.avail_out = UInt32(chunk)
                    let r = inflate(s, Z_SYNC_FLUSH)
                    let used = inp.count - from - Int(s.pointee.avail_in), made = chunk - Int(s.pointee.avail_out)
                    s.pointee.next_in = nil; s.pointee.avail_in = 0
                    s.pointee.next_out = nil; s.pointee.avail_out = 0
                    return (r, used, made)
                }
            }
            consumed += used
            totalIn += used
            totalOut += made
            outputFull = made == chunk
            switch result {
            case Z_OK: break
            case Z_BUF_ERROR: outputFull = false      // no progress possible without more input
            case Z_STREAM_END: ended = true; outputFull = false
            default:
                let why = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(result)"
                throw .corrupt(why)
            }
            if totalOut > parameters.expansionAllowance && totalOut / max(totalIn, 1) > parameters.maxExpansion {
                throw .expansion(inflated: totalOut, compressed: totalIn)
            }
            if made > 0 {
                out.removeSubrange(made...)
                return out
            }
            if used == 0 && !outputFull { break }
        }
        return nil
    }

    /// Frees zlib's state and what was fed (the connection closed); `next()` gives nil after.
    public mutating func close() {
        if open { inflateEnd(stream); open = false }
        input = []
        consumed = 0
    }
}

/// A zeroed z_stream on the heap (zlib keeps a pointer back to it: it must not move), set up
/// by `initialize`; freed again if that fails.
private func zStream(_ initialize: (UnsafeMutablePointer<z_stream>) -> Int32) throws(DeflateError) -> UnsafeMutablePointer<z_stream> {
    let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    s.initialize(to: z_stream())
    let r = initialize(s)
    guard r == Z_OK else {
        s.deallocate()
        throw .zlib(r)
    }
    return s
}
