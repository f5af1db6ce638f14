// One struct per RPC message (DESIGN §2): each knows its type number, writes its payload and
// reads it back strictly (missing and trailing bytes are errors). A request names its reply
// type and the roles that may send it, so `rpc.call(x)` returns `X.Reply` and the store's
// allow-list is read off the messages themselves.
import NIOCore

public protocol RPCMessage: Sendable, Equatable {
    static var type: MessageType { get }
    /// Reads the payload; the caller checks that nothing is left (`WireReader.finish`).
    init(reading r: inout WireReader) throws
    func write(to w: inout WireWriter)
    /// The payload buffer's first capacity: a message that knows it is large says so, and its
    /// payload is written once instead of through a chain of doublings (each a copy).
    var payloadCapacity: Int { get }
    /// The payload already in wire form (a message built straight into it), sent as it is
    /// instead of written again; nil (the default) writes it with `write(to:)`.
    var encodedPayload: ByteBuffer? { get }
}

public protocol RPCRequest: RPCMessage {
    associatedtype Reply: RPCMessage
    /// Connection roles that may send this request (checked once, before dispatch).
    static var roles: Set<Role> { get }
}

/// A request whose answer is a stream: any number of `Item` frames flagged `.more`, then one
/// `Reply` frame. The receiver grants credit (`StreamCredit`) as it consumes items, so the
/// sender never has more than the window in flight (DESIGN §2 "large replies stream").
public protocol RPCStreamRequest: RPCRequest {
    associatedtype Item: RPCStreamItem
}

/// What a stream carries: usually one message type (RPCMessage's `decode`/`frame` serve),
/// or an enum of a few, decoded by frame type.
public protocol RPCStreamItem: Sendable {
    static func decode(_ frame: Frame) throws -> Self
    func frame(requestID: UInt32, flags: FrameFlags) -> Frame
}

extension RPCMessage {
    public var type: MessageType { Self.type }

    public var payloadCapacity: Int { 64 }
    public var encodedPayload: ByteBuffer? { nil }

    public func payload(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        if let encodedPayload { return encodedPayload }
        var w = WireWriter(allocator.buffer(capacity: payloadCapacity))
        write(to: &w)
        return w.buffer
    }

    public func frame(requestID: UInt32, flags: FrameFlags = []) -> Frame {
        Frame(type: Self.type.rawValue, flags: flags.rawValue, requestID: requestID, payload: payload())
    }

    /// Strict decode of a frame that must carry this message.
    public static func decode(_ frame: Frame) throws -> Self {
        guard frame.type == Self.type.rawValue else { throw WireError.unexpectedType(frame.type) }
        var r = WireReader(frame.payload)
        let m = try Self(reading: &r)
        try r.finish()
        return m
    }
}

/// A message with no payload (OK, DeliverEnd, DomainList, Status…): its reader and writer.
public protocol EmptyMessage: RPCMessage { init() }
extension EmptyMessage {
    public init(reading r: inout WireReader) throws { self.init() }
    public func write(to w: inout WireWriter) {}
}

/// Decodes any frame by its type number (the store's dispatch, the fuzzer, tests).
public func decodeAnyMessage(_ frame: Frame) throws -> any RPCMessage {
    guard let t = MessageType(rawValue: frame.type) else { throw WireError.unknownType(frame.type) }
    var r = WireReader(frame.payload)
    let m = try t.message.init(reading: &r)
    try r.finish()
    return m
}

/// Compares two type-erased messages (tests).
public func sameMessage(_ a: any RPCMessage, _ b: any RPCMessage) -> Bool {
    func eq<T: RPCMessage>(_ x: T) -> Bool { (b as? T) == x }
    return eq(a)
}
