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

    /// RFC 1939 §3 byte by byte: the reference the bulk path must match.
    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], atStart = true
        for b in bytes {
            if atStart && b == UInt8(ascii: ".") { out.append(b) }
            out.append(b)
            atStart = b == UInt8(ascii: "\n")
        }
        return out + (atStart ? [] : [13, 10]) + Array(".\r\n".utf8)
    }

    /// RETR's bulk path (runs found with memchr), through both entry points, equals the
    /// reference for lines starting with "." anywhere: at chunk edges, first and last bytes.
    func testBulkPathMatchesByteByByteAtAnyChunking() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array(".\r\na.".utf8)
        for _ in 0..<300 {
            let msg = (0..<Int.random(in: 0...60, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let want = Self.reference(msg)
            for chunk in [1, 2, 3, 5, 64] {
                var a = DotStuffer(), viaArray: [UInt8] = []
                var b = DotStuffer(), viaRuns: [UInt8] = []
                var i = 0
                while i < msg.count {
                    let piece = Array(msg[i..<min(i + chunk, msg.count)])
                    a.feed(piece, into: &viaArray)
                    piece.withUnsafeBytes { b.feed($0) { viaRuns.append(contentsOf: $0) } }
                    i += chunk
                }
                a.finish(into: &viaArray)
                viaRuns += b.trailer
                XCTAssertEqual(viaArray, want, "\(msg) in chunks of \(chunk)")
                XCTAssertEqual(viaRuns, want, "\(msg) in chunks of \(chunk), runs")
            }
        }
    }
}
