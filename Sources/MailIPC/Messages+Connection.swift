// Connection family (types 1–9): the handshake, the generic replies, stream credit.
//
//   request                     → reply          roles
//   Hello(major, minor, client) → HelloOK         every role, first frame (also the control socket)
//   (any request)               → ErrorReply      instead of its reply
//   StreamCredit(frames)          no reply         the receiver of a streamed reply, under its id
import NIOCore

public enum ProtocolVersion {
    /// Bumped when a message changes meaning; the store refuses another major.
    public static let major: UInt16 = 1
    /// 1: typed messages, streams with credit, watch/pull events (master, store and workers ship together).
    /// 2: Authenticate carries the client address and service; ErrorCode.throttled.
    /// 3: LookupRecipient carries the declared SIZE; ErrorCode.overQuota; UserQuota, QuotaGet/QuotaReply.
    public static let minor: UInt16 = 3
}

public enum ErrorCode: UInt16, Sendable {
    case notFound = 1, exists = 2, invalid = 3, denied = 4, temporary = 5, `internal` = 6
    /// A well-formed request in the wrong sequence (a chunk without its begin, an unknown
    /// stream): answered, the connection stays (DESIGN §2).
    case badSequence = 7
    /// The caller is over a rate budget (an address's authentication failures, DESIGN §5):
    /// refused without doing the work, so refusing costs the store nothing.
    case throttled = 8
    /// A quota limit refuses it (RFC 9208): IMAP answers `NO [OVERQUOTA]`.
    case overQuota = 9
}

public struct Hello: RPCRequest {
    public typealias Reply = HelloOK
    public static let type = MessageType.hello
    public static let roles: Set<Role> = .none     // every connection, first: Role.may lets it through
    public var major: UInt16, minor: UInt16, client: String
    public init(major: UInt16 = ProtocolVersion.major, minor: UInt16 = ProtocolVersion.minor, client: String) {
        self.major = major; self.minor = minor; self.client = client
    }
    public init(reading r: inout WireReader) throws { major = try r.u16(); minor = try r.u16(); client = try r.string() }
    public func write(to w: inout WireWriter) { w.u16(major); w.u16(minor); w.string(client) }
}

public struct HelloOK: RPCMessage {
    public static let type = MessageType.helloOK
    /// The connection's role as the store assigned it ("control" on the master's socket).
    public var major: UInt16, minor: UInt16, role: String
    public init(major: UInt16 = ProtocolVersion.major, minor: UInt16 = ProtocolVersion.minor, role: String) {
        self.major = major; self.minor = minor; self.role = role
    }
    public init(reading r: inout WireReader) throws { major = try r.u16(); minor = try r.u16(); role = try r.string() }
    public func write(to w: inout WireWriter) { w.u16(major); w.u16(minor); w.string(role) }
}

public struct ErrorReply: RPCMessage, Error {
    public static let type = MessageType.error
    public var code: ErrorCode, message: String
    public init(_ code: ErrorCode, _ message: String) { self.code = code; self.message = message }
    public init(reading r: inout WireReader) throws {
        let raw = try r.u16()
        guard let c = ErrorCode(rawValue: raw) else { throw WireError.badValue("error code \(raw)") }
        code = c; message = try r.string()
    }
    public func write(to w: inout WireWriter) { w.u16(code.rawValue); w.string(message) }
}

public struct OK: RPCMessage, EmptyMessage {
    public static let type = MessageType.ok
    public init() {}
}

/// Sent by the receiver of a streamed reply, under the stream's request id: it may send
/// `frames` more item frames (DESIGN §2). Never answered.
public struct StreamCredit: RPCMessage {
    public static let type = MessageType.streamCredit
    public var frames: UInt32
    public init(frames: UInt32) { self.frames = frames }
    public init(reading r: inout WireReader) throws { frames = try r.u32() }
    public func write(to w: inout WireWriter) { w.u32(frames) }
}
