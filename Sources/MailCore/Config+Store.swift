// [store]: the store's durability and RPC limits (DESIGN §2, §3).

public struct StoreConfig: Sendable, Equatable {
    public var fsync = true                       // durability contract; off only for experiments
    public var groupCommitMax = 512               // deliveries per transaction
    public var maxFrame = 1 << 20                 // RPC frame cap, bytes
    public var inlineMax = 64 * 1024              // bodies up to this size live in the database row

    public init() {}
}

extension StoreConfig: ConfigSection {
    mutating func read(_ s: TableReader, _ context: ConfigContext) throws {
        fsync = try s.bool("fsync") ?? fsync
        groupCommitMax = try s.int("group_commit_max", 1...100_000) ?? groupCommitMax
        maxFrame = try s.int("max_frame", 65_536...(64 << 20)) ?? maxFrame
        inlineMax = try s.int("inline_max", 0...(16 << 20)) ?? inlineMax
    }
}
