// lookupd's input buffer (issue 9 point 2): requests come off the front without copying, the
// buffer stays bounded by one whole request plus one read, and a full buffer always decodes.
import LookupProtocol
import MailWorker
import NIOCore
import XCTest
@testable import LookupServer

final class LookupInputTests: XCTestCase {
    let limits = LookupLimits(maxKeyLength: 64, maxRequestLength: 128)

    func tcpTable(_ input: inout LookupInput, _ discarding: inout Bool) -> DecodeResult<TCPTable.Request> {
        input.next { TCPTable.decode(prefixOf: $0, discarding: &discarding, limits: limits) }
    }

    func testPipelinedRequestsComeOffTheFrontInOrder() {
        var input = LookupInput(limits: limits)
        var b = ByteBuffer(string: "get a\nget b\r\nget c")
        input.append(&b)
        var d = false
        XCTAssertEqual(tcpTable(&input, &d), .request(.get("a")))
        XCTAssertEqual(tcpTable(&input, &d), .request(.get("b")))
        XCTAssertEqual(tcpTable(&input, &d), .needMoreBytes)
        XCTAssertEqual(input.count, 5, "the partial line stays")
        var rest = ByteBuffer(string: "\n")
        input.append(&rest)
        XCTAssertEqual(tcpTable(&input, &d), .request(.get("c")))
        XCTAssertEqual(input.count, 0)
    }

    func testSocketmapFromTheFront() {
        var input = LookupInput(limits: limits)
        var b = ByteBuffer(string: "12:recipients a,12:recipients b,3:re")
        input.append(&b)
        guard case .request(let ra) = input.next({ SocketMap.decode(prefixOf: $0, limits: limits) }) else { return XCTFail() }
        XCTAssertEqual([ra.map, ra.key], ["recipients", "a"])
        guard case .request(let rb) = input.next({ SocketMap.decode(prefixOf: $0, limits: limits) }) else { return XCTFail() }
        XCTAssertEqual([rb.map, rb.key], ["recipients", "b"])
        XCTAssertEqual(input.next { SocketMap.decode(prefixOf: $0, limits: limits) }, .needMoreBytes)
        XCTAssertEqual(input.count, 4)
    }

    /// Reading pauses once a whole request is buffered and resumes once it is not.
    func testReadingPausesAtOneWholeRequest() {
        var input = LookupInput(limits: limits)
        XCTAssertNil(input.readingChange())
        var b = ByteBuffer(bytes: Array(repeating: UInt8(ascii: "x"), count: limits.maxBufferedRequest - 1))
        input.append(&b)
        XCTAssertNil(input.readingChange(), "one byte short of a whole request: keep reading")
        var one = ByteBuffer(string: "x")
        input.append(&one)
        XCTAssertEqual(input.readingChange(), .pause)
        XCTAssertNil(input.readingChange(), "said once")
        var d = false
        XCTAssertEqual(tcpTable(&input, &d), .invalid("request too long"), "a full buffer always decodes")
        XCTAssertEqual(input.readingChange(), .resume)
    }

    /// The longest valid requests of both protocols fit in `maxBufferedRequest`, so holding
    /// reads there never stalls a session.
    func testTheLongestRequestsFitTheBound() {
        let key = String(repeating: "k", count: limits.maxKeyLength)
        let line = "get " + key + String(repeating: "%41", count: (limits.maxRequestLength - 4 - key.count) / 3)
        XCTAssertLessThanOrEqual(line.utf8.count, limits.maxRequestLength)
        XCTAssertLessThanOrEqual(line.utf8.count + 2, limits.maxBufferedRequest)
        var body = "recipients " + key
        body += String(repeating: " ", count: limits.maxRequestLength - body.utf8.count)
        let ns = "\(body.utf8.count):\(body),"
        XCTAssertLessThanOrEqual(ns.utf8.count, limits.maxBufferedRequest)
        // Whatever the bytes, a buffer of maxBufferedRequest bytes decodes to something.
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789:, \r\nget%x".utf8)
        for _ in 0..<2000 {
            let bytes = (0..<limits.maxBufferedRequest).map { _ in alphabet.randomElement(using: &rng)! }
            var d = false
            XCTAssertNotEqual(TCPTable.decode(prefixOf: bytes, discarding: &d, limits: limits).0, .needMoreBytes, "\(bytes)")
            XCTAssertNotEqual(SocketMap.decode(prefixOf: bytes, limits: limits).0, .needMoreBytes, "\(bytes)")
        }
    }

    /// Consuming from the front keeps the storage small: read bytes are discarded, nothing
    /// grows with the number of requests that went through.
    func testStorageStaysBoundedOverALongStream() {
        var input = LookupInput(limits: limits)
        var d = false
        let read = String(repeating: "get key\n", count: 2048)    // 16 KiB, one socket read
        var answered = 0
        for _ in 0..<64 {                                         // 1 MiB in all
            var b = ByteBuffer(string: read)
            input.append(&b)
            while case .request = tcpTable(&input, &d) { answered += 1 }
            XCTAssertLessThanOrEqual(input.buffer.capacity, 64 * 1024)
        }
        XCTAssertEqual(answered, 64 * 2048)
        XCTAssertEqual(input.count, 0)
    }
}
