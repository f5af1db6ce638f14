import XCTest
@testable import IMAPProtocol

final class FramerTests: XCTestCase {
    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// Feeds `pieces` one after the other, draining events after each.
    private func events(_ pieces: [[UInt8]], limits: IMAPLimits = IMAPLimits()) -> [IMAPFramer.Event] {
        var framer = IMAPFramer(limits: limits)
        var out: [IMAPFramer.Event] = []
        for p in pieces {
            framer.feed(p)
            while let e = framer.next() { out.append(e) }
        }
        return out
    }

    private func oneShot(_ s: String, limits: IMAPLimits = IMAPLimits()) -> [IMAPFramer.Event] {
        events([bytes(s)], limits: limits)
    }

    private func dripped(_ s: String, limits: IMAPLimits = IMAPLimits()) -> [IMAPFramer.Event] {
        events(bytes(s).map { [$0] }, limits: limits)
    }

    private var small: IMAPLimits {
        var l = IMAPLimits()
        l.maxLine = 40; l.maxLiteral = 10; l.maxAppend = 100; l.maxCommand = 300
        return l
    }

    func testLinesCRLFAndBareLF() {
        XCTAssertEqual(oneShot("a NOOP\r\nb NOOP\nc LOG"), [.unit(bytes("a NOOP\r\n")), .unit(bytes("b NOOP\n"))])
    }

    func testDripFedEqualsOneShot() {
        let session = "1 LOGIN {3}\r\nbob {6+}\r\nsecret\r\n2 APPEND X ~{4}\r\na\0\r\n\r\n3 NOOP\n" +
            String(repeating: "x", count: 50) + "\r\n4 LOGIN {11}\r\n5 NOOP\r\n"
        for limits in [IMAPLimits(), small] {
            let whole = oneShot(session, limits: limits)
            XCTAssertEqual(dripped(session, limits: limits), whole)
            let pieces = stride(from: 0, to: session.utf8.count, by: 7).map { Array(bytes(session)[$0..<min($0 + 7, session.utf8.count)]) }
            XCTAssertEqual(events(pieces, limits: limits), whole)
        }
    }

    func testSynchronizingLiteralAsksForContinuationOnce() {
        var framer = IMAPFramer()
        framer.feed(bytes("A1 LOGIN {3}\r\n"))
        XCTAssertEqual(framer.next(), .continuationNeeded(size: 3))
        XCTAssertNil(framer.next())
        framer.feed(bytes("bo"))
        XCTAssertNil(framer.next())
        framer.feed(bytes("b {2}\r\n"))
        XCTAssertEqual(framer.next(), .continuationNeeded(size: 2))
        framer.feed(bytes("pw\r\n"))
        XCTAssertEqual(framer.next(), .unit(bytes("A1 LOGIN {3}\r\nbob {2}\r\npw\r\n")))
        XCTAssertNil(framer.next())
        XCTAssertEqual(framer.buffered, 0)
    }

    func testLiteralPlusHasNoContinuation() {
        XCTAssertEqual(oneShot("A1 LOGIN {3+}\r\nbob {2+}\r\npw\r\n"), [.unit(bytes("A1 LOGIN {3+}\r\nbob {2+}\r\npw\r\n"))])
    }

    func testLiteral8() {
        XCTAssertEqual(oneShot("A1 APPEND X ~{3}\r\n\0\n\r\r\n"),
                       [.continuationNeeded(size: 3), .unit(bytes("A1 APPEND X ~{3}\r\n\0\n\r\r\n"))])
        XCTAssertEqual(oneShot("A1 APPEND X ~{3+}\r\nabc\r\n"), [.unit(bytes("A1 APPEND X ~{3+}\r\nabc\r\n"))])
    }

    func testZeroLengthLiteral() {
        XCTAssertEqual(oneShot("A1 LOGIN {0}\r\n {0+}\r\n\r\n"), [.continuationNeeded(size: 0), .unit(bytes("A1 LOGIN {0}\r\n {0+}\r\n\r\n"))])
    }

    func testLiteralDataIsNotScannedForLineEnds() {
        // The literal holds "{5}\r\n": it must not be taken as an announcement.
        XCTAssertEqual(oneShot("a SEARCH TEXT {5+}\r\n{5}\r\n\r\n"), [.unit(bytes("a SEARCH TEXT {5+}\r\n{5}\r\n\r\n"))])
    }

    func testTooLargeSynchronizingLiteralRefusedAndNextCommandParsed() {
        let out = oneShot("A1 LOGIN {11}\r\nA2 NOOP\r\n", limits: small)
        XCTAssertEqual(out, [.literalRefused(tag: "A1", size: 11), .unit(bytes("A2 NOOP\r\n"))])
    }

    func testTooLargeNonSynchronizingLiteralIsFatal() {
        var framer = IMAPFramer(limits: small)
        framer.feed(bytes("A1 LOGIN {11+}\r\nhello world\r\nA2 NOOP\r\n"))
        guard case .fatal(let tag, _)? = framer.next() else { return XCTFail("expected fatal") }
        XCTAssertEqual(tag, "A1")
        XCTAssertNil(framer.next())
        framer.feed(bytes("A3 NOOP\r\n"))
        XCTAssertNil(framer.next())
        XCTAssertEqual(framer.buffered, 0)
    }

    func testLongLineDiscardedThenNextCommandOK() {
        let long = "A7 SELECT " + String(repeating: "x", count: 100) + "\r\nA8 NOOP\r\n"
        XCTAssertEqual(oneShot(long, limits: small), [.lineTooLong(tag: "A7"), .unit(bytes("A8 NOOP\r\n"))])
        XCTAssertEqual(dripped(long, limits: small), [.lineTooLong(tag: "A7"), .unit(bytes("A8 NOOP\r\n"))])
    }

    func testLongLineMemoryStaysBounded() {
        var framer = IMAPFramer(limits: small)
        framer.feed(bytes("A7 SELECT "))
        for _ in 0..<1000 {
            framer.feed([UInt8](repeating: 0x78, count: 64))
            XCTAssertNil(framer.next())
            XCTAssertLessThanOrEqual(framer.buffered, small.maxLine + 64)
        }
        framer.feed(bytes("\r\n"))
        XCTAssertEqual(framer.next(), .lineTooLong(tag: "A7"))
    }

    func testLongLineWithoutTag() {
        XCTAssertEqual(oneShot(String(repeating: "(", count: 60) + "\r\n", limits: small), [.lineTooLong(tag: nil)])
    }

    func testAppendGetsMaxAppend() {
        let data = String(repeating: "m", count: 50)
        XCTAssertEqual(oneShot("A1 append X {50}\r\n\(data)\r\n", limits: small),
                       [.continuationNeeded(size: 50), .unit(bytes("A1 append X {50}\r\n\(data)\r\n"))])
        XCTAssertEqual(oneShot("A1 APPEND X {101}\r\n", limits: small), [.literalRefused(tag: "A1", size: 101)])
        // Only APPEND: UID or other commands get maxLiteral.
        XCTAssertEqual(oneShot("A1 UID APPEND {50}\r\n", limits: small), [.literalRefused(tag: "A1", size: 50)])
    }

    func testMultiappendContinuationLineGetsMaxAppend() {
        let out = oneShot("A1 APPEND X {5+}\r\nhello {50}\r\n", limits: small)
        XCTAssertEqual(out, [.continuationNeeded(size: 50)])
    }

    func testCommandOverMaxCommandIsFatal() {
        var l = small
        l.maxAppend = 250
        let out = oneShot("A1 APPEND X {200+}\r\n" + String(repeating: "a", count: 200) + " {90+}\r\n", limits: l)
        guard case .fatal(let tag, _)? = out.last else { return XCTFail("\(out)") }
        XCTAssertEqual(tag, "A1")
    }

    func testUnparseableLiteralSizeIsAnOrdinaryLine() {
        XCTAssertEqual(oneShot("A1 LOGIN {99999999999999999999999}\r\n"), [.unit(bytes("A1 LOGIN {99999999999999999999999}\r\n"))])
        XCTAssertEqual(oneShot("A1 LOGIN {x1}\r\n"), [.unit(bytes("A1 LOGIN {x1}\r\n"))])
        XCTAssertEqual(oneShot("A1 LOGIN {}\r\n"), [.unit(bytes("A1 LOGIN {}\r\n"))])
    }

    func testContinuationLinesAreUnits() {
        XCTAssertEqual(oneShot("AGJvYgBzZWNyZXQ=\r\nDONE\r\n"), [.unit(bytes("AGJvYgBzZWNyZXQ=\r\n")), .unit(bytes("DONE\r\n"))])
    }

    func testResetDropsPipelinedPlaintext() {
        var framer = IMAPFramer()
        framer.feed(bytes("1 STARTTLS\r\n2 LOGIN a b\r\n3 LOG"))
        XCTAssertEqual(framer.next(), .unit(bytes("1 STARTTLS\r\n")))
        framer.reset()
        XCTAssertEqual(framer.buffered, 0)
        XCTAssertNil(framer.next())
        framer.feed(bytes("4 NOOP\r\n"))
        XCTAssertEqual(framer.next(), .unit(bytes("4 NOOP\r\n")))
    }

    func testManyPipelinedCommandsInOneRead() {
        let many = (0..<2000).map { "t\($0) NOOP\r\n" }.joined()
        let out = oneShot(many)
        XCTAssertEqual(out.count, 2000)
        XCTAssertEqual(out.last, .unit(bytes("t1999 NOOP\r\n")))
    }

    /// A tag filling the whole line window (a long line is cut after maxLine bytes when it
    /// arrives in pieces) is not reported, however the line arrives — found by fuzz-imap in CI.
    func testTagAsLongAsTheLineWindowIsNotReportedEitherWay() {
        for tagLength in 38...42 {
            let line = String(repeating: "t", count: tagLength) + " NOOP " + String(repeating: "x", count: 60) + "\r\n1 NOOP\r\n"
            XCTAssertEqual(dripped(line, limits: small), oneShot(line, limits: small), "tag of \(tagLength)")
        }
        IMAPFuzz.run([0x01, 0] + bytes(String(repeating: "t", count: 41) + " " + String(repeating: "x", count: 60) + "\r\n"))
    }

    func testFuzzEntryOnHostileInputs() {
        for flags: UInt8 in [0, 0x0f, 0x7f] {
            IMAPFuzz.run([flags, 3] + bytes("1 LOGIN {5}\r\nab\0cd {3+}\r\n\u{1}\u{2}\u{3}\r\n2 APPEND X ~{300}\r\n\n\n\r\n"))
            IMAPFuzz.run([flags, 9] + bytes(String(repeating: "(", count: 500) + "\r\n" + String(repeating: "a", count: 5000)))
        }
    }
}
