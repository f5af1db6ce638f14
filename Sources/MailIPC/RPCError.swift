// The error every RPC client call fails with: an ErrorReply from the peer (with its code),
// a reply that does not decode as the request's reply type, or a lost connection (.temporary).
public struct RPCError: Error, CustomStringConvertible, Equatable {
    public var code: ErrorCode?, message: String
    public init(_ message: String, code: ErrorCode? = nil) { self.message = message; self.code = code }
    public var description: String { message }

    public static let connectionLost = RPCError("store connection lost", code: .temporary)

    /// The typed reply of `R` from a reply frame, or the error it carries.
    public static func reply<M: RPCMessage>(_ frame: Frame, as: M.Type) throws -> M {
        if frame.type == ErrorReply.type.rawValue {
            let e = try ErrorReply.decode(frame)
            throw RPCError(e.message, code: e.code)
        }
        do { return try M.decode(frame) } catch {
            throw RPCError("bad reply to a request for \(M.type): type \(frame.type): \(error)", code: .internal)
        }
    }
}
