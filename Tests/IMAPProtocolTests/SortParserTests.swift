// SORT and THREAD (RFC 5256 §5, RFC 5957 §4, RFC 5267 §3): the parser's answers and refusals,
// and the THREAD response writer on forests with dummies, unknown messages and a long chain.
import XCTest
import MailModel
@testable import IMAPProtocol

final class SortParserTests: XCTestCase {
    func parse(_ line: String) -> Result<IMAPCommand, IMAPParseError> {
        IMAPParser.parse(Array((line + "\r\n").utf8), options: IMAPParserOptions())
    }

    func kind(_ line: String, file: StaticString = #filePath, lineNo: UInt = #line) -> IMAPCommand.Kind? {
        switch parse(line) {
        case .success(let c): return c.kind
        case .failure(let e): XCTFail("\(line): \(e)", file: file, line: lineNo); return nil
        }
    }

    func testSort() {
        XCTAssertEqual(kind("a SORT (SUBJECT) UTF-8 ALL"),
                       .sort(SortCommand(criteria: [SortCriterion(.subject)], charset: "UTF-8", key: .all), uid: false))
        XCTAssertEqual(kind("a uid sort (reverse date arrival CC From Size To DISPLAYFROM DISPLAYTO) us-ascii UNSEEN FROM \"x\""),
                       .sort(SortCommand(criteria: [SortCriterion(.date, reverse: true), SortCriterion(.arrival), SortCriterion(.cc),
                                                    SortCriterion(.from), SortCriterion(.size), SortCriterion(.to),
                                                    SortCriterion(.displayFrom), SortCriterion(.displayTo)],
                                         charset: "US-ASCII", key: .and([.flag(.seen, set: false), .from("x")])), uid: true))
        // charset = atom / quoted
        XCTAssertEqual(kind("a SORT (SIZE) \"utf-8\" 1:5"),
                       .sort(SortCommand(criteria: [SortCriterion(.size)], charset: "UTF-8", key: .sequences(.ranges([1...5]))), uid: false))
        // ESORT (RFC 5267 §3): RETURN before the criteria; "RETURN ()" is ALL.
        XCTAssertEqual(kind("a SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL"),
                       .sort(SortCommand(returns: [.min, .max, .count, .all], criteria: [SortCriterion(.date)], charset: "UTF-8", key: .all), uid: false))
        XCTAssertEqual(kind("a UID SORT RETURN () (DATE) UTF-8 ALL"),
                       .sort(SortCommand(returns: [.all], criteria: [SortCriterion(.date)], charset: "UTF-8", key: .all), uid: true))
    }

    func testThread() {
        XCTAssertEqual(kind("t THREAD REFERENCES UTF-8 ALL"),
                       .thread(ThreadCommand(algorithm: .references, charset: "UTF-8", key: .all), uid: false))
        XCTAssertEqual(kind("t UID THREAD orderedsubject US-ASCII SINCE 1-Feb-1994 NOT DELETED"),
                       .thread(ThreadCommand(algorithm: .orderedSubject, charset: "US-ASCII",
                                             key: .and([.since(8797), .not(.flag(.deleted, set: true))])), uid: true))
    }

    func testErrorsKeepTheTag() {
        let many = "(" + Array(repeating: "DATE", count: SortCommand.maxCriteria + 1).joined(separator: " ") + ")"
        for bad in ["a SORT", "a SORT SUBJECT UTF-8 ALL", "a SORT () UTF-8 ALL", "a SORT (SUBJECT) ALL", "a SORT (SUBJECT) UTF-8",
                    "a SORT (BOGUS) UTF-8 ALL", "a SORT (REVERSE) UTF-8 ALL", "a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                    "a SORT (SUBJECT)  UTF-8 ALL", "a SORT (SUBJECT UTF-8 ALL", "a SORT RETURN (BOGUS) (DATE) UTF-8 ALL",
                    "a SORT \(many) UTF-8 ALL", "a THREAD", "a THREAD REFERENCES", "a THREAD BOGUS UTF-8 ALL",
                    "a THREAD REFERENCES UTF-8", "a UID THREAD (REFERENCES) UTF-8 ALL", "a THREAD REFERENCES UTF-8 BOGUS"] {
            guard case .failure(let e) = parse(bad) else { XCTFail("parsed: \(bad)"); continue }
            XCTAssertEqual(e.tag, "a", bad)
        }
    }

    func testCommandTable() {
        XCTAssertEqual(CommandTable.rule(.sort(SortCommand(criteria: [SortCriterion(.date)], charset: "UTF-8", key: .all), uid: false)),
                       CommandRule(needs: .selected, bySequence: true))
        XCTAssertEqual(CommandTable.rule(.thread(ThreadCommand(algorithm: .references, charset: "UTF-8", key: .all), uid: true)),
                       CommandRule(needs: .selected, bySequence: false))
    }

    // MARK: THREAD response

    func written(_ nodes: [(UInt32, UInt32)], known: (UInt32) -> Bool = { _ in true }) -> String {
        var w = IMAPWriter()
        w.threads(ThreadForest(nodes.map { ThreadForest.Node(uid: $0.0, children: $0.1) })) { known($0) ? $0 : nil }
        return String(decoding: w.bytes, as: UTF8.self)
    }

    func testThreadResponse() {
        // RFC 5256 §4: (2)(3 6 (4 23)(44 7 96))
        XCTAssertEqual(written([(2, 0), (3, 1), (6, 2), (4, 1), (23, 0), (44, 1), (7, 1), (96, 0)]), "(2)(3 6 (4 23)(44 7 96))")
        // A dummy root with two children: ((3)(5)); ORDEREDSUBJECT's shape: (1 (2)(3))
        XCTAssertEqual(written([(0, 2), (3, 0), (5, 0)]), "((3)(5))")
        XCTAssertEqual(written([(1, 2), (2, 0), (3, 0)]), "(1 (2)(3))")
        XCTAssertEqual(written([]), "")
    }

    func testUnknownMessagesLeaveNoEmptyList() {
        // 5 unknown: the dummy keeps one child, written without its own parentheses.
        XCTAssertEqual(written([(0, 2), (3, 0), (5, 0)], known: { $0 != 5 }), "(3)")
        // An unknown root with two children acts as a dummy.
        XCTAssertEqual(written([(9, 2), (3, 0), (5, 0)], known: { $0 != 9 }), "((3)(5))")
        // Nothing known: nothing written.
        XCTAssertEqual(written([(9, 1), (8, 0)], known: { _ in false }), "")
        // An unknown leaf among siblings disappears.
        XCTAssertEqual(written([(1, 3), (2, 0), (8, 0), (3, 0)], known: { $0 != 8 }), "(1 (2)(3))")
    }

    func testLongChainIsFlat() {
        let n: UInt32 = 50_000
        let nodes = (1...n).map { ($0, $0 == n ? UInt32(0) : 1) }
        let out = written(nodes)
        XCTAssertTrue(out.hasPrefix("(1 2 3 "))
        XCTAssertTrue(out.hasSuffix(" \(n))"))
    }
}
