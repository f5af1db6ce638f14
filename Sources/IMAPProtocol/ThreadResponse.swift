// IMAPWriter, the THREAD response (RFC 5256 §4): a forest as nested parenthesised lists. Any
// forest gives well-formed output: dummies and unknown messages are left out where they would
// leave an empty or one-element nesting, and no recursion is used (a chain may be very long).
import MailModel
import MailSyntax

extension IMAPWriter {
    /// thread-list = "(" (thread-members / thread-nested) ")"
    /// thread-members = nz-number *(SP nz-number) [SP thread-nested]
    /// thread-nested = 2*thread-list
    /// `number` maps a UID to what the client sees (its sequence number, or the UID itself);
    /// nil leaves the message out as if it were a dummy.
    public mutating func threads(_ forest: ThreadForest, number: (UInt32) -> UInt32?) {
        let nodes = forest.nodes
        var kids = [[Int]](repeating: [], count: nodes.count), roots: [Int] = []
        var owed: [(node: Int, children: UInt32)] = []
        for (i, node) in nodes.enumerated() {
            if let top = owed.popLast() {
                kids[top.node].append(i)
                if top.children > 1 { owed.append((top.node, top.children - 1)) }
            } else {
                roots.append(i)
            }
            if node.children > 0 { owed.append((i, node.children)) }
        }
        let num = nodes.map { $0.uid == ThreadForest.dummy ? nil : number($0.uid) }
        // Children come after their parent in preorder: backwards, every subtree is settled first.
        var empty = [Bool](repeating: false, count: nodes.count)
        for i in nodes.indices.reversed() {
            kids[i].removeAll { empty[$0] }
            empty[i] = num[i] == nil && kids[i].isEmpty
        }
        enum Step { case open, close, members(Int) }
        for root in roots where !empty[root] {
            var stack: [Step] = [.close, .members(root), .open]
            while let step = stack.popLast() {
                switch step {
                case .open: bytes.append(ASCII.lparen)
                case .close: bytes.append(ASCII.rparen)
                case .members(let i):
                    let k = kids[i]
                    if let n = num[i] {
                        self.number(n)
                        if !k.isEmpty { bytes.append(ASCII.space) }
                    }
                    if k.count == 1 {
                        stack.append(.members(k[0]))
                    } else {
                        for c in k.reversed() { stack.append(.close); stack.append(.members(c)); stack.append(.open) }
                    }
                }
            }
        }
    }
}
