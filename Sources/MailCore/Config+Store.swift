// [store]: the store's durability and RPC limits (DESIGN §2, §3), and how long smtpd and lmtpd
// wait for one of its answers before the client gets a temporary error.

public struct StoreConfig: Sendable, Equatable {
    public var fsync = true                       // durability contract; off only for experiments
    public var groupCommitMax = 512               // deliveries per transaction
    public var maxFrame = 1 << 20                 // RPC frame cap, bytes
    public var inlineMax = 64 * 1024              // bodies up to this size live in the database row
    public var answerTimeout = 10.0               // seconds smtpd/lmtpd wait per request; then 451 4.3.0
    public var searchIndex = true                 // SEARCH's full-text index: filled at delivery, used by SEARCH

    public init() {}
}

extension StoreConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        fsync = try s.bool("fsync") ?? fsync
        groupCommitMax = try s.int("group_commit_max", 1...100_000) ?? groupCommitMax
        maxFrame = try s.int("max_frame", 65_536...(64 << 20)) ?? maxFrame
        inlineMax = try s.int("inline_max", 0...(16 << 20)) ?? inlineMax
        answerTimeout = try s.seconds("answer_timeout") ?? answerTimeout
        searchIndex = try s.bool("search_index") ?? searchIndex
    }
}
