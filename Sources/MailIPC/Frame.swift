// RPC framing (DESIGN §2): a fixed 12-byte big-endian header, then the payload.
//
//   0       4       6       8               12
//   | length | type  | flags | request id   | payload (length bytes) ...
//
// length counts payload bytes only and is capped (maxFrame); request id 0 carries unsolicited
// events from the store; every reply echoes its request's id. A frame over the cap, or one
// that decodes badly, closes the connection (the caller's job) — it never crashes the process.
// flags bit 0 (`more`): more frames follow for this request id (a streamed reply, RPCStream.swift);
// the other bits are reserved, sent as 0 and ignored on receipt.
import NIOCore

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// More frames follow under this request id; the last frame of a reply has it clear.
    public static let more = FrameFlags(rawValue: 1 << 0)
}

/// Sizes shared by both ends of every store connection.
public enum RPCLimits {
    /// Default cap on one frame's payload (`[store] max_frame` overrides it for the store side).
    public static let defaultMaxFrame = 1 << 20
    /// Body bytes per chunk frame (deliveries, exports, later body ranges).
    public static let chunkSize = 256 * 1024
    /// Frames a streamed reply may have in flight before the receiver grants more credit.
    public static let defaultWindow: UInt32 = 8
}

public struct FrameHeader: Equatable, Sendable {
    public static let size = 12
    public var length: UInt32
    public var type: UInt16
    public var flags: UInt16
    public var requestID: UInt32
}

public struct Frame: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var requestID: UInt32
    public var payload: ByteBuffer
    public init(type: UInt16, flags: UInt16 = 0, requestID: UInt32, payload: ByteBuffer) {
        self.type = type; self.flags = flags; self.requestID = requestID; self.payload = payload
    }
    public var more: Bool { FrameFlags(rawValue: flags).contains(.more) }

    public func write(into out: inout ByteBuffer) {
        writeHeader(into: &out)
        var p = payload
        out.writeBuffer(&p)
    }

    /// The 12-byte header alone (the payload follows it on the wire).
    public func writeHeader(into out: inout ByteBuffer) {
        out.writeInteger(UInt32(payload.readableBytes), endianness: .big)
        out.writeInteger(type, endianness: .big)
        out.writeInteger(flags, endianness: .big)
        out.writeInteger(requestID, endianness: .big)
    }
}

/// Pure frame splitter: feed bytes, take whole frames. Used by the NIO decoder and the fuzzer.
public struct FrameDecoder: Sendable {
    public let maxFrame: Int
    public init(maxFrame: Int) { self.maxFrame = maxFrame }

    /// Returns the next frame if the buffer holds a whole one, nil if more bytes are needed.
    public func decode(_ buffer: inout ByteBuffer) throws -> Frame? {
        guard buffer.readableBytes >= FrameHeader.size,
              let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else { return nil }
        guard Int(length) <= maxFrame else { throw WireError.frameTooLarge(Int(length)) }
        guard buffer.readableBytes >= FrameHeader.size + Int(length) else { return nil }
        let type: UInt16 = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .big)!
        let flags: UInt16 = buffer.getInteger(at: buffer.readerIndex + 6, endianness: .big)!
        let id: UInt32 = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .big)!
        buffer.moveReaderIndex(forwardBy: FrameHeader.size)
        let payload = buffer.readSlice(length: Int(length))!
        return Frame(type: type, flags: flags, requestID: id, payload: payload)
    }
}

/// NIO adapter for FrameDecoder.
public final class FrameToMessageDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Frame
    let decoder: FrameDecoder
    public init(maxFrame: Int) { decoder = FrameDecoder(maxFrame: maxFrame) }
    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let f = try decoder.decode(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(f))
        return .continue
    }
    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw WireError.truncated }
        return .needMoreData
    }
}

/// Writes frames: a small one as one buffer (header and payload copied together), a large one
/// as its header and then its payload buffer as it is — NIO gathers both into one writev, so
/// bulk bytes (bodies, chunks) are not copied again on their way to the socket.
public final class FrameEncoder: ChannelOutboundHandler {
    public typealias OutboundIn = Frame
    public typealias OutboundOut = ByteBuffer
    /// Payloads of at least this many bytes are written without a copy.
    public static let copyBelow = 8 * 1024
    public init() {}
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        let size = frame.payload.readableBytes
        if size < Self.copyBelow {
            var out = context.channel.allocator.buffer(capacity: FrameHeader.size + size)
            frame.write(into: &out)
            return context.write(wrapOutboundOut(out), promise: promise)
        }
        var header = context.channel.allocator.buffer(capacity: FrameHeader.size)
        frame.writeHeader(into: &header)
        context.write(wrapOutboundOut(header), promise: nil)
        context.write(wrapOutboundOut(frame.payload), promise: promise)
    }
}
