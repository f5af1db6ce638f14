// Threading: RFC 5256 §3 ORDEREDSUBJECT and REFERENCES, each rule of steps 1–6 on a small
// mailbox (the answer written the way THREAD writes it), and a reply chain as long as a big
// mailbox without recursion.
import XCTest
import MailModel
@testable import MailStore

final class ThreadingTests: XCTestCase {
    /// A message: `date` in days (ties → UID), `id` and `refs` without angle brackets.
    func m(_ uid: UInt32, _ subject: String = "s", date: Int64? = nil, id: String? = nil, refs: [String] = []) -> ThreadableMessage {
        let base = BaseSubject.extract(subject)
        return ThreadableMessage(uid: uid, sentDate: (date ?? Int64(uid)) * 86_400, subject: UnicodeCasemap.key(base.subject),
                                 replyOrForward: base.replyOrForward, messageID: id, references: refs)
    }

    /// The THREAD response's lists (RFC 5256 §4), dummies as bare parentheses.
    func render(_ f: ThreadForest) -> String {
        var i = 0
        func members(_ first: Bool) -> String {
            let n = f.nodes[i]; i += 1
            var out = n.uid == ThreadForest.dummy ? "" : "\(n.uid)"
            if n.children == 1 { return out + (out.isEmpty ? "" : " ") + members(false) }
            if n.children > 1 {
                if !out.isEmpty { out += " " }
                for _ in 0..<n.children { out += "(" + members(false) + ")" }
            }
            return out
        }
        var out = ""
        while i < f.nodes.count { out += "(" + members(true) + ")" }
        return out
    }

    func refs(_ ms: [ThreadableMessage]) -> String { render(Threading.references(ms)) }

    func testChainAndSiblings() {
        // 1.A/1.B: each reference the parent of the next, the last one the message's parent.
        XCTAssertEqual(refs([m(1, id: "a"), m(2, id: "b", refs: ["a"]), m(3, id: "c", refs: ["a", "b"])]), "(1 2 3)")
        XCTAssertEqual(refs([m(1, id: "a"), m(2, id: "b", refs: ["a"]), m(3, id: "c", refs: ["a"])]), "(1 (2)(3))")
        // RFC 5256 §4's example shape: (3 6 (4 23)(44 7 96))
        XCTAssertEqual(refs([m(3, "x", id: "3"), m(6, "x", id: "6", refs: ["3"]), m(4, "x", id: "4", refs: ["3", "6"]),
                             m(23, "x", id: "23", refs: ["4"]), m(44, "x", id: "44", refs: ["6"]),
                             m(7, "x", date: 45, id: "7", refs: ["44"]), m(96, "x", id: "96", refs: ["7"])]),
                       "(3 6 (4 23)(44 7 96))")
    }

    func testTruncatedReferencesAreRepaired() {
        // 4 cites only its parent; 3's full References put 3 under 2 under 1.
        XCTAssertEqual(refs([m(1, id: "a"), m(2, id: "b", refs: ["a"]), m(3, id: "c", refs: ["a", "b"]), m(4, id: "d", refs: ["c"])]), "(1 2 3 4)")
        // 1.B: a message's own last reference replaces the parent an earlier message's line gave it.
        XCTAssertEqual(refs([m(1, "p", id: "a"), m(2, "q", id: "b"), m(3, "r", id: "d", refs: ["a", "c"]), m(4, "s", id: "c", refs: ["b"])]),
                       "(1)(2 4 3)")
    }

    func testDummies() {
        // 3.B: a dummy with several children stays at the root; with one, the child goes up.
        XCTAssertEqual(refs([m(2, "a", id: "b", refs: ["x"]), m(3, "b", id: "c", refs: ["x"])]), "((2)(3))")
        XCTAssertEqual(refs([m(2, id: "b", refs: ["x"])]), "(2)")
        // 3.B below the root: the dummy's children are spliced into its parent's.
        XCTAssertEqual(refs([m(1, id: "a"), m(2, id: "b", refs: ["a", "x"]), m(3, id: "c", refs: ["a", "x"])]), "(1 (2)(3))")
        // 3.A: a dummy without children goes (a reference nobody else shares).
        XCTAssertEqual(refs([m(1, "a", id: "a", refs: ["gone1", "gone2"])]), "(1)")
    }

    func testMissingAndDuplicateIDs() {
        // 1.A: no Message-ID or a duplicate one: a unique id, so nothing can point at it.
        XCTAssertEqual(refs([m(1, "a", id: nil), m(2, "b", id: "x"), m(3, "c", id: "x"), m(4, "d", id: "y", refs: ["x"])]), "(1)(2 4)(3)")
    }

    func testLoopsAreNotCreated() {
        // 2 would make its own child 1 its parent: 1 stays under 2, 2 gets no parent.
        XCTAssertEqual(refs([m(1, "a", id: "a", refs: ["b"]), m(2, "b", id: "b", refs: ["a"])]), "(2 1)")
        XCTAssertEqual(refs([m(1, "a", id: "a", refs: ["a"])]), "(1)")
    }

    func testSubjectGathering() {
        // 5.C: a reply without references goes under the original of its subject.
        XCTAssertEqual(refs([m(1, "hello", id: "a"), m(2, "Re: hello", id: "b")]), "(1 2)")
        // Two non-replies with one subject: a new dummy holds both.
        XCTAssertEqual(refs([m(1, "hello", id: "a"), m(2, "hello", id: "b")]), "((1)(2))")
        // 5.B.v: the table prefers the non-reply, whichever comes first by date.
        XCTAssertEqual(refs([m(1, "Re: hello", id: "a"), m(2, "hello", id: "b")]), "(2 1)")
        // An empty subject is never gathered.
        XCTAssertEqual(refs([m(1, "", id: "a"), m(2, "Re:", id: "b")]), "(1)(2)")
        // 5.C: both dummies: the children of both become siblings.
        XCTAssertEqual(refs([m(1, "t", id: "a", refs: ["x"]), m(2, "t", id: "b", refs: ["x"]),
                             m(3, "t", id: "c", refs: ["y"]), m(4, "t", id: "d", refs: ["y"])]), "((1)(2)(3)(4))")
        // Different subjects in threads of their own stay apart.
        XCTAssertEqual(refs([m(1, "one", id: "a"), m(2, "two", id: "b")]), "(1)(2)")
    }

    func testSortedBySentDate() {
        // Steps 4 and 6: the root and every set of siblings by sent date, a dummy by its first child.
        XCTAssertEqual(refs([m(1, "a", date: 9, id: "a"), m(2, "b", date: 3, id: "b"), m(3, "c", date: 5, id: "c", refs: ["x"]),
                             m(4, "d", date: 1, id: "d", refs: ["x"])]), "((4)(3))(2)(1)")
        XCTAssertEqual(refs([m(1, id: "a"), m(2, date: 8, id: "b", refs: ["a"]), m(3, date: 4, id: "c", refs: ["a"])]), "(1 (3)(2))")
        // Equal dates: the lower UID first.
        XCTAssertEqual(refs([m(1, date: 5, id: "a"), m(2, "z", date: 5, id: "b")]), "(1)(2)")
    }

    func testOrderedSubject() {
        let ms = [m(1, "b", date: 3), m(2, "Re: a", date: 5), m(3, "a", date: 4), m(4, "B", date: 1), m(5, "a", date: 9), m(6, "c", date: 2)]
        // threads: b {4, 1}, a {3, 2, 5}, c {6}; by their first message's date: 4 (1), 6 (2), 3 (4)
        XCTAssertEqual(render(Threading.orderedSubject(ms)), "(4 1)(6)(3 (2)(5))")
        XCTAssertEqual(render(Threading.orderedSubject([])), "")
    }

    func testLongChainWithoutRecursion() {
        let n: UInt32 = 20_000
        var ms = [m(1, id: "1")]
        for u in 2...n { ms.append(m(u, id: "\(u)", refs: ["\(u - 1)"])) }
        let f = Threading.references(ms)
        XCTAssertEqual(f.nodes.count, Int(n))
        XCTAssertEqual(f.nodes.map(\.uid), Array(1...n))
        XCTAssertTrue(f.isWellFormed)
    }

    func testMessageIDs() {
        XCTAssertEqual(MessageIDs.all("<a@b> (comment) <c@d>\t<bad> <e@f"), ["a@b", "c@d"])
        XCTAssertEqual(MessageIDs.all("junk <<x@y>"), ["x@y"])
        XCTAssertEqual(MessageIDs.all(""), [])
    }
}
