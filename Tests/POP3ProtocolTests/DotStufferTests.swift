// RETR/TOP output: dot-stuffing across chunk boundaries, the terminator, TOP's line budget.
import XCTest
@testable import POP3Protocol

final class DotStufferTests: XCTestCase {
    func stuff(_ s: String, chunk: Int, headerSize: Int = 0, lines: Int? = nil) -> String {
        var d = DotStuffer(headerSize: headerSize, bodyLines: lines), out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count { d.feed(bytes[i..<min(i + chunk, bytes.count)], into: &out); i += chunk }
        d.finish(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testDotsAtLineStartDoubledAtAnyChunking() {
        let msg = ".first\r\nmid.dle\r\n..two\r\n.\r\nend"
        let want = "..first\r\nmid.dle\r\n...two\r\n..\r\nend\r\n.\r\n"
        for chunk in [1, 2, 3, 7, 100] { XCTAssertEqual(stuff(msg, chunk: chunk), want, "chunk \(chunk)") }
        XCTAssertEqual(stuff("a\r\n", chunk: 4), "a\r\n.\r\n")
        XCTAssertEqual(stuff("", chunk: 4), ".\r\n")
    }

    func testTopPassesHeaderAndNLines() {
        let header = "Subject: x\r\n.Dot: y\r\n\r\n"
        let msg = header + "one\r\n.two\r\nthree\r\n"
        let h = header.utf8.count
        for chunk in [1, 5, 1000] {
            XCTAssertEqual(stuff(msg, chunk: chunk, headerSize: h, lines: 0), "Subject: x\r\n..Dot: y\r\n\r\n.\r\n")
            XCTAssertEqual(stuff(msg, chunk: chunk, headerSize: h, lines: 2), "Subject: x\r\n..Dot: y\r\n\r\none\r\n..two\r\n.\r\n")
            XCTAssertEqual(stuff(msg, chunk: chunk, headerSize: h, lines: 99), "Subject: x\r\n..Dot: y\r\n\r\none\r\n..two\r\nthree\r\n.\r\n")
        }
        var d = DotStuffer(headerSize: h, bodyLines: 1), out: [UInt8] = []
        d.feed(Array(msg.utf8), into: &out)
        XCTAssertTrue(d.done, "the reader can stop reading")
    }
}
