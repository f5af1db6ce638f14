// COMPRESS (RFC 4978 §3) in the session: DEFLATE only, once per connection, after
// authentication (CommandTable). The tagged OK is the last uncompressed byte; the glue
// (IMAPConnection.startCompression) switches both directions right behind it.
import IMAPProtocol

extension IMAPSession {
    /// RFC 4978 §3 result codes and texts.
    enum CompressReply {
        static let mechanism = "DEFLATE"
        static let active = "COMPRESSIONACTIVE"
    }

    func compress(_ tag: String, mechanism: String) async -> Completion {
        // RFC 4978 §3: "BAD - command unknown or invalid argument"
        guard mechanism == CompressReply.mechanism else { return .bad("Unknown compression mechanism") }
        // RFC 4978 §3: NO with COMPRESSIONACTIVE when the same mechanism is already on.
        guard !connection.isCompressed else { return .no("DEFLATE is already active", code: CompressReply.active) }
        await flush()
        var w = writer()
        w.tagged(tag, .ok, code: nil, "DEFLATE active")
        do {
            try await connection.startCompression(reply: w.bytes)
            logger.info("compression on", metadata: ["mechanism": "deflate"])
        } catch {
            logger.info("COMPRESS failed", metadata: ["error": "\(error)"])
            finished = true
        }
        return .alreadyWritten
    }
}

/// Connections that cannot compress (test doubles): COMPRESS ends the session.
extension IMAPConnection {
    public func startCompression(reply: [UInt8]) async throws { throw CompressionUnavailable() }
    public var isCompressed: Bool { false }
}

struct CompressionUnavailable: Error {}
