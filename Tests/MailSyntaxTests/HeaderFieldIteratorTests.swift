// HeaderFieldIterator: table-driven cases (fields, folds, malformed lines, the empty line, bare
// LF, incomplete input), then hostile input: every prefix, every split point, random bytes.
import MailSyntax
import XCTest

final class HeaderFieldIteratorTests: XCTestCase {
    /// (name or "!" for a malformed line, raw value) per item, and how the section ended.
    struct Case {
        var input: String
        var complete = true
        var items: [(String, String)]
        var end: HeaderSectionEnd
    }

    func run(_ input: [UInt8], complete: Bool = true) -> ([(String, String)], HeaderSectionEnd?, [HeaderField]) {
        input.withUnsafeBytes { buf in
            var it = HeaderFieldIterator(buf, complete: complete)
            var items: [(String, String)] = []
            var fields: [HeaderField] = []
            while let f = it.next() {
                fields.append(f)
                let name = f.isMalformed ? "!" : String(decoding: input[f.name], as: UTF8.self)
                items.append((name, String(decoding: input[f.value], as: UTF8.self)))
            }
            return (items, it.end, fields)
        }
    }

    func testTable() {
        let cases: [Case] = [
            Case(input: "Subject: hi\r\n\r\nbody", items: [("Subject", " hi")], end: .emptyLine(bodyStart: 15)),
            Case(input: "A: 1\nB: 2\n\nbody", items: [("A", " 1"), ("B", " 2")], end: .emptyLine(bodyStart: 11)),
            Case(input: "Subject: a\r\n b\r\n\tc\r\nX: y\r\n\r\n", items: [("Subject", " a\r\n b\r\n\tc"), ("X", " y")],
                 end: .emptyLine(bodyStart: 28)),
            Case(input: "Date  : x\r\n\r\n", items: [("Date", " x")], end: .emptyLine(bodyStart: 13)),   // obs WSP, RFC 5322 §4.5
            Case(input: "From joe Mon\r\nA: b\r\n\r\n", items: [("!", "From joe Mon"), ("A", " b")], end: .emptyLine(bodyStart: 22)),
            Case(input: " lead: x\r\nA: b\r\n", items: [("!", " lead: x"), ("A", " b")], end: .endOfInput),
            Case(input: ": empty name\n\n", items: [("!", ": empty name")], end: .emptyLine(bodyStart: 14)),
            Case(input: "\r\nbody", items: [], end: .emptyLine(bodyStart: 2)),
            Case(input: "\nbody", items: [], end: .emptyLine(bodyStart: 1)),
            Case(input: "", items: [], end: .endOfInput),
            Case(input: "A: b", items: [("A", " b")], end: .endOfInput),
            Case(input: "A: b\r\n\r", items: [("A", " b")], end: .endOfInput),               // a lone CR is no line
            Case(input: "A: b\r\n", complete: false, items: [], end: .needMoreBytes),         // may still be folded
            Case(input: "A: b\r\nB", complete: false, items: [("A", " b")], end: .needMoreBytes),
            Case(input: "A: b\r\n\r", complete: false, items: [("A", " b")], end: .needMoreBytes),
            Case(input: "A: b\r\n\r\n", complete: false, items: [("A", " b")], end: .emptyLine(bodyStart: 8)),
        ]
        for c in cases {
            let (items, end, _) = run(Array(c.input.utf8), complete: c.complete)
            XCTAssertEqual(items.map(\.0), c.items.map(\.0), c.input.debugDescription)
            XCTAssertEqual(items.map(\.1), c.items.map(\.1), c.input.debugDescription)
            XCTAssertEqual(end, c.end, c.input.debugDescription)
        }
    }

    func testOffsetsAndHelpers() {
        let input = Array("Message-ID: <a@b>\r\n x\r\nDATE: y\r\n\r\n".utf8)
        let (_, _, fields) = run(input)
        XCTAssertEqual(fields.count, 2)
        XCTAssertEqual(fields[0].start, 0)
        XCTAssertEqual(fields[0].firstLineEnd, 18)
        XCTAssertEqual(fields[0].end, 23)
        XCTAssertTrue(fields[0].isFolded)
        XCTAssertFalse(fields[1].isFolded)
        input.withUnsafeBytes { buf in
            XCTAssertTrue(HeaderFieldIterator.nameEquals(buf, fields[0], Array("message-id".utf8)))
            XCTAssertTrue(HeaderFieldIterator.nameEquals(buf, fields[1], Array("date".utf8)))
            XCTAssertFalse(HeaderFieldIterator.nameEquals(buf, fields[1], Array("dat".utf8)))
        }
    }

    /// The `to:` bound is never read past.
    func testBound() {
        let input = Array("A: 1\r\nB: 2\r\n\r\n".utf8)
        input.withUnsafeBytes { buf in
            var it = HeaderFieldIterator(buf, to: 7)
            XCTAssertEqual(it.next()?.end, 6)
            XCTAssertEqual(it.next()?.end, 7)      // "B" cut by the bound: a malformed line
            XCTAssertNil(it.next())
            XCTAssertEqual(it.end, .endOfInput)
        }
    }

    /// Hostile input: random bytes biased to header syntax. Items tile the input without gaps,
    /// every offset is in bounds, and an incomplete scan of any prefix never returns an item a
    /// complete scan of the whole would not.
    func testHostileInput() {
        var rng = SplitMix(seed: 0x4EAD)
        let alphabet = Array("A: \t\r\n-x".utf8) + [0, 0x7F, 0xFF]
        for _ in 0..<2000 {
            let n = Int(rng.next() % 64)
            let input = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let (_, end, fields) = run(input)
            var at = 0
            for f in fields {
                XCTAssertEqual(f.start, at)
                XCTAssertTrue(f.start <= f.nameEnd && f.nameEnd <= f.valueEnd && f.valueEnd <= f.end && f.end <= input.count)
                XCTAssertTrue(f.value.lowerBound <= f.value.upperBound)
                XCTAssertGreaterThan(f.end, f.start)
                at = f.end
            }
            XCTAssertNotNil(end)
            let cut = Int(rng.next() % UInt64(n + 1))
            let (_, _, partial) = run(Array(input[..<cut]), complete: false)
            XCTAssertEqual(partial, Array(fields.prefix(partial.count)), String(decoding: input, as: UTF8.self).debugDescription)
        }
    }

    /// Fed in random pieces, resuming each folded field where it stopped, the iterator returns
    /// the same fields as over the whole input at once.
    func testResumingGivesTheSameFields() {
        var rng = SplitMix(seed: 0xF01D)
        let alphabet = Array("A: \t\r\n \n x".utf8)
        for _ in 0..<1000 {
            let n = Int(rng.next() % 80)
            let input = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let (_, _, whole) = run(input)
            var got: [HeaderField] = []
            var position = 0
            var partial: HeaderField?
            var have = 0
            var finished = false
            while !finished {
                have = min(n, have + Int(rng.next() % 7))
                let complete = have == n
                Array(input[..<have]).withUnsafeBytes { buf in
                    var it = HeaderFieldIterator(buf, from: position, complete: complete, resuming: partial)
                    while let f = it.next() { got.append(f) }
                    position = it.position
                    partial = it.partial
                    if it.end != .needMoreBytes { finished = true }
                }
            }
            XCTAssertEqual(got, whole, String(decoding: input, as: UTF8.self).debugDescription)
        }
    }
}
