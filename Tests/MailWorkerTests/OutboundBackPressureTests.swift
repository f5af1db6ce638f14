// OutboundBackPressure on an embedded channel: reads are held while the unsent output is over
// the mark or the session asks, and let go only when neither holds them.
import XCTest
import NIOCore
import NIOEmbedded
import MailTesting
@testable import MailWorker

/// Counts the reads that get past the handler under test (it sits head-side of it).
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0
    func read(context: ChannelHandlerContext) { reads += 1; context.read() }
}

final class OutboundBackPressureTests: XCTestCase {
    var pipe: EmbeddedPipe!
    var counter: ReadCounter!
    var gate: OutboundBackPressure!

    override func setUpWithError() throws {
        counter = ReadCounter(); gate = OutboundBackPressure()
        pipe = try EmbeddedPipe([counter, gate])
    }

    func read() { pipe.channel.read() }

    func setWritable(_ w: Bool) {
        pipe.channel.isWritable = w
        pipe.channel.pipeline.fireChannelWritabilityChanged()
    }

    func session(_ r: SessionReading) {
        pipe.channel.pipeline.triggerUserOutboundEvent(r, promise: nil)
    }

    func testReadsPassWhileNothingHoldsThem() {
        let before = counter.reads
        read(); read()
        XCTAssertEqual(counter.reads, before + 2)
        XCTAssertFalse(gate.holding)
    }

    func testUnsentOutputOverTheMarkHoldsReadsUntilItDrains() {
        let before = counter.reads
        setWritable(false)
        read(); read()
        XCTAssertEqual(counter.reads, before, "no read while unwritable")
        setWritable(true)
        XCTAssertEqual(counter.reads, before + 1, "one held read goes out once writable")
        read()
        XCTAssertEqual(counter.reads, before + 2)
    }

    func testTheSessionsPauseHoldsReads() {
        let before = counter.reads
        session(.pause)
        read()
        XCTAssertEqual(counter.reads, before)
        session(.resume)
        XCTAssertEqual(counter.reads, before + 1)
    }

    /// Neither re-enables reading behind the other's back.
    func testResumeWhileUnwritableKeepsHolding() {
        let before = counter.reads
        session(.pause)
        setWritable(false)
        read()
        session(.resume)
        XCTAssertEqual(counter.reads, before, "the output is still over the mark")
        session(.pause)
        setWritable(true)
        XCTAssertEqual(counter.reads, before, "the session still waits")
        session(.resume)
        XCTAssertEqual(counter.reads, before + 1)
    }

    func testNoReadIsInventedOnRelease() {
        let before = counter.reads
        setWritable(false)
        setWritable(true)
        session(.pause); session(.resume)
        XCTAssertEqual(counter.reads, before, "nothing asked for a read meanwhile")
    }

    func testOtherOutboundEventsPassThrough() throws {
        let p = pipe.channel.eventLoop.makePromise(of: Void.self)
        pipe.channel.pipeline.triggerUserOutboundEvent("something else", promise: p)
        XCTAssertThrowsError(try p.futureResult.wait(), "reaches the embedded channel, which refuses it")
    }

    func testWaterMarkForABound() {
        let m = OutboundBackPressure.waterMark(maxUnsentBytes: 256 * 1024)
        XCTAssertEqual(m.high, 256 * 1024)
        XCTAssertEqual(m.low, 128 * 1024)
    }

    /// An idle connection keeps NIO's last read buffer: the first one is small, and a busy
    /// connection's grow only up to `maxReadSize`.
    func testReadBuffersStartSmallAndStayBounded() {
        var a = OutboundBackPressure.recvAllocator
        let first = a.buffer(allocator: ByteBufferAllocator())
        XCTAssertGreaterThanOrEqual(first.capacity, OutboundBackPressure.initialReadSize)
        XCTAssertLessThan(first.capacity, 2 * OutboundBackPressure.initialReadSize)
        for _ in 0..<40 { _ = a.record(actualReadBytes: a.buffer(allocator: ByteBufferAllocator()).capacity) }
        XCTAssertLessThanOrEqual(a.buffer(allocator: ByteBufferAllocator()).capacity, OutboundBackPressure.maxReadSize)
        XCTAssertGreaterThan(a.buffer(allocator: ByteBufferAllocator()).capacity, OutboundBackPressure.initialReadSize)
    }
}
