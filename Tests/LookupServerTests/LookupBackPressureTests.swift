// lookupd behind the worker's OutboundBackPressure (issue 9 point 2): while a lookup waits for
// the store, pipelined input is buffered only up to one whole request; then reads are held at
// the gate, and let go once the buffer has drained.
import XCTest
import NIOCore
import NIOEmbedded
import Logging
import LookupProtocol
import MailIPC
import MailTesting
import MailWorker
@testable import LookupServer

final class LookupBackPressureTests: XCTestCase {
    let settings = LookupSettings(limits: LookupLimits(maxKeyLength: 64, maxRequestLength: 256), idleTimeout: .seconds(60))

    func testReadsAreHeldWhileAWholeRequestWaitsBehindTheStore() throws {
        let loop = EmbeddedEventLoop()
        let peer = try FakeStorePeer(loop: loop, timeout: .seconds(2)) { m in
            guard let l = m as? Lookup, !l.key.hasPrefix("slow@") else { return nil }   // slow@: no answer
            return LookupResult(found: l.key == "alice@example.org", value: "OK")
        }
        let gate = OutboundBackPressure()
        let handler = LookupHandler(kind: .tcpTable("recipients"), settings: settings, rpc: peer.rpc, logger: Logger(label: "test"))
        let p = try EmbeddedPipe(channel: EmbeddedChannel(loop: loop), [gate, handler])

        try p.feed("get slow@example.org\n")
        try peer.pump()
        XCTAssertFalse(gate.holding, "one request waiting: reading goes on")
        let pipelined = String(repeating: "get alice@example.org\n", count: 20)     // 440 bytes > 256 + 12
        XCTAssertGreaterThan(pipelined.utf8.count, settings.limits.maxBufferedRequest)
        try p.feed(pipelined)
        XCTAssertTrue(gate.holding, "a whole request is buffered behind the slow one: reads held")

        loop.advanceTime(by: .seconds(3))                  // the slow lookup times out
        for _ in 0..<25 { try peer.pump() }
        XCTAssertEqual(try p.written(), "400 store%20did%20not%20answer%20in%20time\n" + String(repeating: "200 OK\n", count: 20))
        XCTAssertFalse(gate.holding, "the buffer drained: reading resumes")
    }
}
