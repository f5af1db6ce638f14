// SORT (RFC 5256 §3, DISPLAYFROM/DISPLAYTO of RFC 5957) and THREAD (RFC 5256 §3) in store
// terms: what imapd asks (criteria over a SearchQuery) and the answer's shape. Plain values.

/// One sort criterion: a key, ascending unless `reverse` (RFC 5256: "REVERSE only reverses a
/// single criterion").
public struct SortCriterion: Sendable, Equatable, Hashable {
    public enum Key: UInt8, Sendable, CaseIterable {
        case arrival = 0, cc = 1, date = 2, from = 3, size = 4, subject = 5, to = 6
        /// RFC 5957 §3.
        case displayFrom = 7, displayTo = 8
    }
    public var key: Key
    public var reverse: Bool
    public init(_ key: Key, reverse: Bool = false) { self.key = key; self.reverse = reverse }
}

/// RFC 5256 §3 threading algorithms.
public enum ThreadAlgorithm: UInt8, Sendable, CaseIterable {
    case orderedSubject = 0, references = 1
}

/// A THREAD answer: a forest in preorder, each node its UID (`dummy`, 0, for a dummy parent
/// that RFC 5256 §3 keeps, written as a parenthesised group without a number) and how many
/// children follow it. Flat so that a 10,000-message reply chain needs no deep recursion.
public struct ThreadForest: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        public var uid: UInt32, children: UInt32
        public init(uid: UInt32, children: UInt32) { self.uid = uid; self.children = children }
    }
    public static let dummy: UInt32 = 0
    public var nodes: [Node]
    public init(_ nodes: [Node] = []) { self.nodes = nodes }

    /// Whether the preorder list is exactly a forest (every child count filled, nothing left over).
    public var isWellFormed: Bool {
        var pending: [UInt32] = []    // children still owed by each open ancestor
        for n in nodes {
            if var top = pending.popLast() { top -= 1; if top > 0 { pending.append(top) } }
            if n.children > 0 { pending.append(n.children) }
        }
        return pending.isEmpty
    }
}
