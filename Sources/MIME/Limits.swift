// Resource limits for MessageParser: bound nesting, part count and interpreted header bytes so
// that hostile messages cost linear time and bounded memory/stack.

public struct MIMELimits: Sendable, Equatable {
    /// Deepest nesting of multipart / message/rfc822 containers that is parsed; deeper
    /// containers become opaque application/octet-stream leaves. Clamped to `hardMaxDepth`.
    public var maxDepth: Int = 32
    /// Most BodyPart nodes produced for one message (top-level body included); once reached,
    /// remaining parts are skipped and further containers become opaque leaves.
    public var maxParts: Int = 10_000
    /// Bytes of each header section that are interpreted (fields starting later are ignored,
    /// values reaching past it are cut). The header's extent is still found exactly.
    public var maxHeaderBytes: Int = 1 << 20

    /// Recursion bound that no configuration can exceed (keeps stack use small on any thread).
    public static let hardMaxDepth = 100

    public init(maxDepth: Int = 32, maxParts: Int = 10_000, maxHeaderBytes: Int = 1 << 20) {
        self.maxDepth = maxDepth
        self.maxParts = maxParts
        self.maxHeaderBytes = maxHeaderBytes
    }
}
