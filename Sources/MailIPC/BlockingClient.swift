// A small blocking RPC client over a connected socket, for the admin CLI, the master's
// control socket and tests. (Workers use the NIO client in RPCClient.swift.)
import Foundation
import NIOCore

public final class BlockingRPCConnection {
    public let fd: Int32
    private var inbound = ByteBuffer()
    private let decoder: FrameDecoder
    private var nextID: UInt32 = 1

    public init(fd: Int32, maxFrame: Int = RPCLimits.defaultMaxFrame) { self.fd = fd; decoder = FrameDecoder(maxFrame: maxFrame) }

    /// Connects to a unix stream socket.
    public static func connect(unixPath: String) throws -> BlockingRPCConnection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RPCError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un(); addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(unixPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); throw RPCError("socket path too long: \(unixPath)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { let e = errno; close(fd); throw RPCError("cannot connect to \(unixPath): \(String(cString: strerror(e)))") }
        return BlockingRPCConnection(fd: fd)
    }

    deinit { close(fd) }

    public func allocateID() -> UInt32 { defer { nextID &+= 1; if nextID == 0 { nextID = 1 } }; return nextID }

    public func send(_ m: some RPCMessage, id: UInt32, flags: FrameFlags = []) throws { try sendRaw(m.frame(requestID: id, flags: flags)) }

    public func sendRaw(_ f: Frame) throws {
        var b = ByteBuffer(); f.write(into: &b)
        try writeAll(Array(b.readableBytesView))
    }

    public func writeAll(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw RPCError("write: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// Next frame from the peer; throws at EOF.
    public func receiveFrame() throws -> Frame {
        while true {
            if let f = try decoder.decode(&inbound) { return f }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR { continue }; throw RPCError("read: \(String(cString: strerror(errno)))") }
            if n == 0 { throw RPCError("connection closed by peer") }
            inbound.writeBytes(chunk[0..<n])
        }
    }

    /// Next frame, decoded by its type.
    public func receive() throws -> (UInt32, any RPCMessage) {
        let f = try receiveFrame()
        return (f.requestID, try decodeAnyMessage(f))
    }

    /// Sends a request and waits for its typed reply (events with id 0 are skipped).
    public func call<R: RPCRequest>(_ request: R) throws -> R.Reply {
        let id = allocateID()
        try send(request, id: id)
        return try RPCError.reply(try replyFrame(id), as: R.Reply.self)
    }

    /// A streamed request: `each` gets every item; credit is granted as items are handled.
    public func stream<R: RPCStreamRequest>(_ request: R, window: UInt32 = RPCLimits.defaultWindow, each: (R.Item) throws -> Void) throws -> R.Reply {
        let id = allocateID()
        try send(request, id: id)
        var consumed: UInt32 = 0
        while true {
            let f = try replyFrame(id)
            guard f.more, f.type != ErrorReply.type.rawValue else { return try RPCError.reply(f, as: R.Reply.self) }
            try each(try R.Item.decode(f))
            consumed += 1
            if consumed >= (window + 1) / 2 { try send(StreamCredit(frames: consumed), id: id); consumed = 0 }
        }
    }

    private func replyFrame(_ id: UInt32) throws -> Frame {
        while true {
            let f = try receiveFrame()
            if f.requestID == 0 { continue }
            guard f.requestID == id else { throw RPCError("reply for unknown request \(f.requestID)") }
            return f
        }
    }

    /// The version handshake; returns the role the peer assigned.
    @discardableResult
    public func hello(client: String) throws -> String {
        let r = try call(Hello(client: client))
        guard r.major == ProtocolVersion.major else { throw RPCError("peer speaks protocol \(r.major)") }
        return r.role
    }
}
