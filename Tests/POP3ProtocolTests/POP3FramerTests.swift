// POP3LineFramer: lines by CRLF or LF, fed whole, in one buffer, and one byte at a time; an
// over-long line is dropped and reported without being buffered.
import XCTest
@testable import POP3Protocol

final class POP3FramerTests: XCTestCase {
    func drain(_ f: inout POP3LineFramer) -> [POP3LineFramer.Event] {
        var out: [POP3LineFramer.Event] = []
        while let e = f.next() { out.append(e) }
        return out
    }

    func testLinesWholeAndByteByByte() {
        let input = Array("USER a\r\nPASS b c\nQUIT\r\npartial".utf8)
        let expected: [POP3LineFramer.Event] = [.line(Array("USER a".utf8)), .line(Array("PASS b c".utf8)), .line(Array("QUIT".utf8))]
        var whole = POP3LineFramer(maxLine: 64)
        whole.feed(input)
        XCTAssertEqual(drain(&whole), expected)
        XCTAssertEqual(whole.buffered, 7)
        var bytewise = POP3LineFramer(maxLine: 64), got: [POP3LineFramer.Event] = []
        for b in input { bytewise.feed([b]); got += drain(&bytewise) }
        XCTAssertEqual(got, expected)
    }

    func testOverlongLineIsDroppedNotBuffered() {
        var f = POP3LineFramer(maxLine: 16)
        f.feed(Array(repeating: UInt8(ascii: "A"), count: 10_000))
        XCTAssertNil(f.next())
        XCTAssertLessThanOrEqual(f.buffered, 10_000)
        f.feed(Array(repeating: UInt8(ascii: "A"), count: 10_000))
        XCTAssertNil(f.next())
        XCTAssertLessThan(f.buffered, 12_000, "the dropped line is not kept")
        f.feed(Array("\r\nNOOP\r\n".utf8))
        XCTAssertEqual(drain(&f), [.lineTooLong, .line(Array("NOOP".utf8))])
    }

    func testResetDropsPipelinedPlaintext() {
        var f = POP3LineFramer(maxLine: 64)
        f.feed(Array("STLS\r\nUSER evil\r\n".utf8))
        XCTAssertEqual(f.next(), .line(Array("STLS".utf8)))
        f.reset()
        XCTAssertNil(f.next())
    }
}
