// THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES (steps 1–6, dummy parents included) as
// pure functions over the messages' dates, base subjects and message ids. Iterative throughout:
// a reply chain as long as the mailbox costs no recursion. Ties in date go to the lower UID.

/// What THREAD looks at of one message; `references` are the ids of References: (or, without
/// a valid one there, the first of In-Reply-To:), oldest first, without angle brackets.
public struct ThreadableMessage: Sendable {
    public var uid: UInt32, sentDate: Int64
    /// Collated base subject (SortKeys.subjectKey) and whether it was a reply or forward.
    public var subject: [UInt8], replyOrForward: Bool
    public var messageID: String?
    public var references: [String]
    public init(uid: UInt32, sentDate: Int64, subject: [UInt8], replyOrForward: Bool, messageID: String?, references: [String]) {
        self.uid = uid; self.sentDate = sentDate; self.subject = subject; self.replyOrForward = replyOrForward
        self.messageID = messageID; self.references = references
    }

    /// From the parsed message and its References: value (raw, nil when absent).
    public init(_ m: SortableMessage, references raw: String?) {
        let base = BaseSubject.extract(m.envelope.subject ?? "")
        var refs = MessageIDs.all(raw ?? "")
        if refs.isEmpty, let first = MessageIDs.all(m.envelope.inReplyTo ?? "").first { refs = [first] }
        self.init(uid: m.uid, sentDate: m.sentDate, subject: UnicodeCasemap.key(base.subject), replyOrForward: base.replyOrForward,
                  messageID: MessageIDs.all(m.envelope.messageID ?? "").first, references: refs)
    }
}

/// msg-id = "<" id-left "@" id-right ">" (RFC 5322 §3.6.4), found anywhere in a field value;
/// compared case-sensitively (RFC 5256 §3 step 1.A note). Text between ids (comments, junk) is skipped.
public enum MessageIDs {
    public static func all(_ value: String) -> [String] {
        var out: [String] = []
        var rest = Substring(value)
        while let open = rest.firstIndex(of: "<") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: ">") else { break }
            let id = after[..<close]
            if let at = id.firstIndex(of: "@"), at != id.startIndex, id.index(after: at) != id.endIndex,
               !id.contains(where: { $0 == " " || $0 == "\t" || $0 == "<" }) {
                out.append(String(id))
                rest = after[after.index(after: close)...]
            } else {
                rest = after   // "<" without a valid id: look again from the next character
            }
        }
        return out
    }
}

public enum Threading {
    public static func thread(_ messages: [ThreadableMessage], _ algorithm: ThreadAlgorithm) -> ThreadForest {
        switch algorithm {
        case .orderedSubject: return orderedSubject(messages)
        case .references: return references(messages)
        }
    }

    /// RFC 5256 §3 ORDEREDSUBJECT: sorted by base subject then sent date, split by base subject;
    /// the first message of each thread at the root, the rest its children; threads by the sent
    /// date of their first message.
    public static func orderedSubject(_ messages: [ThreadableMessage]) -> ThreadForest {
        let sorted = messages.sorted {
            if $0.subject != $1.subject { return $0.subject.lexicographicallyPrecedes($1.subject) }
            return ($0.sentDate, $0.uid) < ($1.sentDate, $1.uid)
        }
        var threads: [ArraySlice<ThreadableMessage>] = []
        var start = 0
        for i in sorted.indices where i == sorted.count - 1 || sorted[i + 1].subject != sorted[i].subject {
            threads.append(sorted[start...i]); start = i + 1
        }
        threads.sort { ($0.first!.sentDate, $0.first!.uid) < ($1.first!.sentDate, $1.first!.uid) }
        var out = ThreadForest()
        for t in threads {
            out.nodes.append(.init(uid: t.first!.uid, children: UInt32(t.count - 1)))
            for m in t.dropFirst() { out.nodes.append(.init(uid: m.uid, children: 0)) }
        }
        return out
    }

    /// RFC 5256 §3 REFERENCES.
    public static func references(_ messages: [ThreadableMessage]) -> ThreadForest {
        var t = ReferenceTree()
        for m in messages.sorted(by: { $0.uid < $1.uid }) { t.add(m) }
        return t.finish()
    }
}

/// The id_table and the links of REFERENCES. Node 0 is the root.
struct ReferenceTree {
    var message: [ThreadableMessage?] = [nil]
    var parent: [Int] = [-1]
    var children: [[Int]] = [[]]
    var byID: [String: Int] = [:]

    mutating func newNode(_ m: ThreadableMessage?) -> Int {
        message.append(m); parent.append(-1); children.append([])
        return message.count - 1
    }

    /// The node of `id`, a new dummy when no message has it yet.
    mutating func node(_ id: String) -> Int {
        if let n = byID[id] { return n }
        let n = newNode(nil)
        byID[id] = n
        return n
    }

    /// Whether `a` is `b` or below it.
    func isDescendant(_ a: Int, of b: Int) -> Bool {
        if children[b].isEmpty { return a == b }   // a message just added: no walk up a long chain
        var x = a
        while x >= 0 { if x == b { return true }; x = parent[x] }
        return false
    }

    mutating func unlink(_ child: Int) {
        let p = parent[child]
        guard p >= 0 else { return }
        children[p].removeAll { $0 == child }
        parent[child] = -1
    }

    mutating func link(_ p: Int, _ child: Int) {
        parent[child] = p; children[p].append(child)
    }

    /// Step 1.
    mutating func add(_ m: ThreadableMessage) {
        // 1.A: a missing or duplicate Message ID gets a unique one (here: no id entry at all).
        let me: Int
        if let id = m.messageID, let n = byID[id], message[n] == nil {
            message[n] = m; me = n
        } else if let id = m.messageID, byID[id] == nil {
            me = newNode(m); byID[id] = me
        } else {
            me = newNode(m)
        }
        // 1.A: each reference the parent of the next, unless the child has a parent already or
        // the link would make a loop.
        var previous: Int?
        for id in m.references {
            let n = node(id)
            if let p = previous, parent[n] < 0, !isDescendant(p, of: n) { link(p, n) }
            previous = n
        }
        // 1.B: the last reference (or none) is the parent of this message, replacing a parent
        // a truncated References line of another message gave it; never a loop.
        unlink(me)
        if let p = previous, !isDescendant(p, of: me) { link(p, me) }
    }

    func isDummy(_ n: Int) -> Bool { message[n] == nil }

    /// The (date, uid) a node sorts by: its own, or for a dummy its first child's (children sorted).
    func sortKey(_ n: Int) -> (Int64, UInt32) {
        var x = n
        while isDummy(x), let first = children[x].first { x = first }
        guard let m = message[x] else { return (Int64.max, UInt32.max) }
        return (m.sentDate, m.uid)
    }

    mutating func sortChildren(_ n: Int) {
        let keyed = children[n].map { (sortKey($0), $0) }
        children[n] = keyed.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Every node below `n` in postorder (children before their parent), iteratively.
    func postorder(_ n: Int) -> [Int] {
        var out: [Int] = [], stack = [(n, false)]
        while let (x, expanded) = stack.popLast() {
            if expanded { out.append(x); continue }
            stack.append((x, true))
            for c in children[x].reversed() { stack.append((c, false)) }
        }
        return out
    }

    mutating func finish() -> ThreadForest {
        // Step 2: everything without a parent under the root.
        for n in 1..<message.count where parent[n] < 0 { link(0, n) }
        // Step 3: prune dummies, bottom-up.
        for n in postorder(0) {
            var kept: [Int] = []
            for c in children[n] {
                guard isDummy(c) else { kept.append(c); continue }
                // 3.A: a dummy without children goes; 3.B: one with children is replaced by
                // them, except at the root unless it has exactly one.
                if children[c].isEmpty { continue }
                if n != 0 || children[c].count == 1 {
                    for g in children[c] { parent[g] = n; kept.append(g) }
                    children[c] = []
                } else {
                    kept.append(c)
                }
            }
            children[n] = kept
        }
        // Step 4: the root's children by sent date (a dummy by its first child's).
        for c in children[0] where isDummy(c) { sortChildren(c) }
        sortChildren(0)
        // Step 5: gather threads with the same base subject.
        mergeSubjects()
        // Step 6: every set of siblings by sent date, the youngest (deepest) first.
        for n in postorder(0) { sortChildren(n) }
        return forest()
    }

    /// The thread subject of a root child: its own, or a dummy's first child's.
    func threadSubject(_ n: Int) -> [UInt8]? {
        var x = n
        while isDummy(x), let first = children[x].first { x = first }
        guard let m = message[x], !m.subject.isEmpty else { return nil }
        return m.subject
    }

    func isReply(_ n: Int) -> Bool { message[n]?.replyOrForward ?? false }

    /// Step 5.B and 5.C.
    mutating func mergeSubjects() {
        var table: [[UInt8]: Int] = [:]
        for c in children[0] {
            guard let s = threadSubject(c) else { continue }
            guard let old = table[s] else { table[s] = c; continue }
            if !isDummy(old) && (isDummy(c) || (isReply(old) && !isReply(c))) { table[s] = c }
        }
        // Merged roots are dropped at the end, so a mailbox of one subject stays linear.
        var roots = children[0]
        var place = Dictionary(uniqueKeysWithValues: roots.enumerated().map { ($1, $0) })
        var gone = [Bool](repeating: false, count: roots.count)
        for i in roots.indices {
            let c = roots[i]
            guard let s = threadSubject(c), let t = table[s], t != c else { continue }
            if isDummy(t) && isDummy(c) {
                for g in children[c] { link(t, g) }
                children[c] = []
                gone[i] = true
            } else if isDummy(t) || (isReply(c) && !isReply(t)) {
                gone[i] = true
                link(t, c)
            } else {
                let d = newNode(nil)
                let at = place[t]!
                roots[at] = d; place[d] = at
                parent[d] = 0
                gone[i] = true
                link(d, t); link(d, c)
                table[s] = d
            }
        }
        roots = roots.indices.filter { !gone[$0] }.map { roots[$0] }
        children[0] = roots
    }

    /// The root's subtrees in preorder with child counts.
    func forest() -> ThreadForest {
        var out = ThreadForest()
        var stack = Array(children[0].reversed())
        while let n = stack.popLast() {
            out.nodes.append(.init(uid: message[n]?.uid ?? ThreadForest.dummy, children: UInt32(children[n].count)))
            stack.append(contentsOf: children[n].reversed())
        }
        return out
    }
}
