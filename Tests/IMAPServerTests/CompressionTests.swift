// COMPRESS=DEFLATE (RFC 4978): the codec values (round trips at every flush boundary, a 1 GiB
// bomb held to bounded pieces and refused past maxExpansion, corrupt streams refused), the
// DeflateHandler's back-pressure in an EmbeddedChannel, and the COMPRESS command's parse.
import NIOCore
import NIOEmbedded
import XCTest
import IMAPProtocol
import MailWorker
@testable import IMAPServer

final class CompressionTests: XCTestCase {
    /// Deterministic bytes: header-like text with random bytes between (compressible, not trivially).
    static func sample(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var x = seed, out: [UInt8] = []
        let text = Array("* 17 FETCH (UID 4711 FLAGS (\\Seen) BODY[HEADER.FIELDS (From Subject)] {42}\r\n".utf8)
        while out.count < count {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            if x >> 60 < 10 { out += text.prefix(Int(x >> 40 & 63) + 8) } else { out.append(UInt8(truncatingIfNeeded: x >> 33)) }
        }
        return Array(out.prefix(count))
    }

    static func deflate(_ c: inout Compressor, _ data: [UInt8], flush: Bool = true) throws -> [UInt8] {
        var out: [UInt8] = []
        try c.compress(data, flush: flush) { out += $0 }
        return out
    }

    /// Everything `d` yields now, checking each piece's bound.
    static func inflateAll(_ d: inout Decompressor, chunk: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        while let piece = try d.next() {
            XCTAssertLessThanOrEqual(piece.count, chunk)
            XCTAssertFalse(piece.isEmpty)
            out += piece
        }
        return out
    }

    /// A sync flush makes everything before it inflatable at once, wherever it falls; the
    /// compressed bytes may arrive in any pieces (here whole, and one byte at a time).
    func testRoundTripAtEveryFlushBoundary() throws {
        let data = Self.sample(700)
        for cut in 0...data.count {
            var c = try Compressor()
            let first = try Self.deflate(&c, Array(data[..<cut]))
            let second = try Self.deflate(&c, Array(data[cut...]))
            var d = try Decompressor()
            d.feed(first)
            XCTAssertTrue(try Self.inflateAll(&d, chunk: d.parameters.chunk) == Array(data[..<cut]), "cut at \(cut)")
            if cut % 50 == 0 {
                var rest: [UInt8] = []
                for b in second { d.feed([b]); rest += try Self.inflateAll(&d, chunk: d.parameters.chunk) }
                XCTAssertTrue(rest == Array(data[cut...]), "cut at \(cut), byte by byte")
            } else {
                d.feed(second)
                XCTAssertTrue(try Self.inflateAll(&d, chunk: d.parameters.chunk) == Array(data[cut...]), "cut at \(cut)")
            }
            XCTAssertFalse(d.hasPending)
        }
    }

    /// Large writes without flushes in between, then one: pieces stay within `chunk` both ways.
    func testLargeStreamInBoundedPieces() throws {
        var p = DeflateParameters()
        p.chunk = 4096
        let data = Self.sample(3 << 20, seed: 7)
        var c = try Compressor(p)
        var compressed: [UInt8] = []
        var largest = 0
        for start in stride(from: 0, to: data.count, by: 65536) {
            let end = min(start + 65536, data.count)
            try c.compress(Array(data[start..<end]), flush: end == data.count) { largest = max(largest, $0.count); compressed += $0 }
        }
        XCTAssertLessThanOrEqual(largest, p.chunk)
        XCTAssertLessThan(compressed.count, data.count)
        var d = try Decompressor(p)
        d.feed(compressed)
        XCTAssertTrue(try Self.inflateAll(&d, chunk: p.chunk) == data)
    }

    /// Released between flushes, the compressor starts afresh and the peer reads on.
    func testReleasedCompressorContinuesTheStream() throws {
        var c = try Compressor()
        var d = try Decompressor()
        var text: [UInt8] = []
        for (i, line) in ["* 1 EXISTS\r\n", "* 2 EXISTS\r\n", "a OK done\r\n"].enumerated() {
            try c.compress(Array(line.utf8), flush: i != 1) { d.feed($0) }
            XCTAssertEqual(c.release(), i != 1, "released only after a flush")
            if i == 1 { try c.compress([], flush: true) { d.feed($0) }; XCTAssertTrue(c.release()) }
            XCTAssertFalse(c.isLive)
            text += try Self.inflateAll(&d, chunk: d.parameters.chunk)
        }
        XCTAssertEqual(String(decoding: text, as: UTF8.self), "* 1 EXISTS\r\n* 2 EXISTS\r\na OK done\r\n")
    }

    /// A flush with nothing new costs nothing (zlib would repeat the empty stored block).
    func testFlushWithoutDataEmitsNothing() throws {
        var c = try Compressor()
        XCTAssertFalse(try Self.deflate(&c, Array("a NOOP\r\n".utf8)).isEmpty)
        XCTAssertEqual(try Self.deflate(&c, []), [])
        XCTAssertEqual(try Self.deflate(&c, [], flush: false), [])
    }

    /// 1 GiB of zeros in about 1 MiB: inflated one chunk per call while input is held (nothing
    /// grows with the expansion), and refused once past maxExpansion with the defaults.
    func testInflateBombIsBounded() throws {
        // A sync-flushed piece from a fresh compressor refers to nothing before it, so 1024
        // copies of one make a valid stream (and the test does not deflate 1 GiB).
        var c = try Compressor()
        let piece = try Self.deflate(&c, [UInt8](repeating: 0, count: 1 << 20))
        let bomb = Array([[UInt8]](repeating: piece, count: 1024).joined())
        XCTAssertLessThan(bomb.count, 2 << 20)

        // Defaults: an error after at most the allowance and one chunk.
        var d = try Decompressor()
        d.feed(bomb)
        var out = 0
        do {
            while let piece = try d.next() { out += piece.count }
            XCTFail("the bomb was inflated whole")
        } catch DeflateError.expansion {
        } catch {
            XCTFail("\(error)")
        }
        XCTAssertLessThanOrEqual(out, d.parameters.expansionAllowance + d.parameters.chunk)

        // Without the ratio limit: all of it, never more than a chunk at a time, and the held
        // input never more than one fed piece (16 KiB, what one socket read brings).
        var p = DeflateParameters()
        p.maxExpansion = Int.max
        p.chunk = 256 * 1024       // fewer, larger pieces: the bound is the same property
        var u = try Decompressor(p)
        var total = 0, heldMax = 0, offset = 0
        while offset < bomb.count || u.hasPending {
            if !u.hasPending {
                let end = min(offset + 16384, bomb.count)
                u.feed(Array(bomb[offset..<end]))
                offset = end
            }
            heldMax = max(heldMax, u.pendingInput)
            guard let piece = try u.next() else { continue }
            XCTAssertLessThanOrEqual(piece.count, p.chunk)
            total += piece.count
        }
        XCTAssertEqual(total, 1 << 30)
        XCTAssertLessThanOrEqual(heldMax, 16384)
    }

    /// A command that compresses past maxExpansion is taken whole while within the allowance
    /// (the largest command), refused beyond it.
    func testExpansionAllowanceCoversOneCommand() throws {
        let line = Array("The same line of a log file, again and again and again.\r\n".utf8)
        let data = Array([[UInt8]](repeating: line, count: 70_000).joined())   // ~4 MiB
        var c = try Compressor()
        let compressed = try Self.deflate(&c, data)
        XCTAssertGreaterThan(data.count / compressed.count, DeflateParameters().maxExpansion)
        var d = try Decompressor()
        d.feed(compressed)
        XCTAssertEqual(try Self.inflateAll(&d, chunk: d.parameters.chunk).count, data.count)
        var small = DeflateParameters()
        small.expansionAllowance = 1 << 20
        var e = try Decompressor(small)
        e.feed(compressed)
        XCTAssertThrowsError(try Self.inflateAll(&e, chunk: small.chunk))
    }

    func testCorruptStreamsAreRefused() throws {
        let cases: [(String, [UInt8])] = [
            ("reserved block type", [0x07, 0x00, 0x00]),
            ("stored block lengths that do not match", [0x00, 0x05, 0x00, 0x00, 0x00, 0x41]),
            ("a zlib header where raw DEFLATE belongs", [0x78, 0x9c, 0xff, 0xff, 0xff, 0xff]),
        ]
        for (what, bytes) in cases {
            var d = try Decompressor()
            d.feed(bytes)
            XCTAssertThrowsError(try Self.inflateAll(&d, chunk: d.parameters.chunk), what) { e in
                guard case DeflateError.corrupt = e else { return XCTFail("\(what): \(e)") }
            }
        }
        // Valid data, then garbage: what came before is delivered, then the error.
        var c = try Compressor()
        var d = try Decompressor()
        d.feed(try Self.deflate(&c, Array("a NOOP\r\n".utf8)))
        XCTAssertEqual(try d.next(), Array("a NOOP\r\n".utf8))
        d.feed([0xff, 0xff, 0xff])
        XCTAssertThrowsError(try d.next())
    }

    /// The client ended its stream (a final empty fixed block) and sent more.
    func testDataAfterTheFinalBlockIsRefused() throws {
        var d = try Decompressor()
        d.feed([0x03, 0x00])
        XCTAssertNil(try d.next())
        d.feed([0x00])
        XCTAssertThrowsError(try d.next()) { e in XCTAssertEqual(e as? DeflateError, .afterEnd) }
    }

    func testClosedStreamsYieldNothing() throws {
        var d = try Decompressor()
        d.feed([0x07])
        d.close()
        XCTAssertNil(try d.next())
        XCTAssertFalse(d.hasPending)
        var c = try Compressor()
        c.close()
        XCTAssertThrowsError(try Self.deflate(&c, [1]))
    }

    func testParse() {
        let p = { (s: String) in IMAPParser.parse(Array(s.utf8), options: IMAPParserOptions()) }
        XCTAssertEqual(try p("a COMPRESS deflate\r\n").get(), IMAPCommand(tag: "a", kind: .compress(mechanism: "DEFLATE")))
        XCTAssertEqual(try p("b compress X-LZ4\r\n").get(), IMAPCommand(tag: "b", kind: .compress(mechanism: "X-LZ4")))
        XCTAssertThrowsError(try p("c COMPRESS\r\n").get())
        XCTAssertEqual(CommandTable.rule(.compress(mechanism: "DEFLATE")).needs, .authenticated)
        XCTAssertTrue(IMAPSessionHandler.isCompress(Array("a compress DEFLATE\r\n".utf8)))
        XCTAssertFalse(IMAPSessionHandler.isCompress(Array("a COMPRESSX\r\n".utf8)))
        XCTAssertFalse(IMAPSessionHandler.isCompress(Array(" COMPRESS DEFLATE\r\n".utf8)))
    }

    /// The bytes after the COMPRESS unit are handed over raw.
    func testFramerHandsOverWhatFollowsAUnit() {
        var f = IMAPFramer()
        f.feed(Array("a COMPRESS DEFLATE\r\n".utf8) + [0x4a, 0x00, 0x0d, 0x0a, 0xff])
        XCTAssertEqual(f.next(), .unit(Array("a COMPRESS DEFLATE\r\n".utf8)))
        XCTAssertEqual(f.takeRemaining(), [0x4a, 0x00, 0x0d, 0x0a, 0xff])
        XCTAssertEqual(f.buffered, 0)
        XCTAssertNil(f.next())
    }

    // MARK: the handler

    /// Stands for IMAPSessionHandler: records what it is given, and pauses (SessionReading)
    /// after every read while `pauseAfterRead`.
    final class Session: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received: [[UInt8]] = []
        var pauseAfterRead = true
        var events: [Any] = []
        var context: ChannelHandlerContext!
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received.append(Array(unwrapInboundIn(data).readableBytesView))
            if pauseAfterRead { context.triggerUserOutboundEvent(SessionReading.pause, promise: nil) }
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { events.append(event) }
        func resume() { context.triggerUserOutboundEvent(SessionReading.resume, promise: nil) }
    }

    /// Stands for OutboundBackPressure: records the SessionReading events that reach it.
    final class Below: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reading: [SessionReading] = []
        func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
            if let e = event as? SessionReading { reading.append(e) }
            promise?.succeed(())
        }
    }

    func testHandlerInflatesOnlyWhileTheSessionReads() throws {
        var p = DeflateParameters()
        p.chunk = 1024
        let data = Self.sample(10_000, seed: 3)
        var c = try Compressor(p)
        let compressed = try Self.deflate(&c, data)
        // The first 100 compressed bytes came with the COMPRESS command's read.
        let session = Session(), below = Below()
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 143)).wait()
        try channel.pipeline.syncOperations.addHandler(below)
        try channel.pipeline.syncOperations.addHandler(DeflateHandler(parameters: p, readingPaused: true, pending: Array(compressed.prefix(100))))
        try channel.pipeline.syncOperations.addHandler(session)
        XCTAssertEqual(session.received.count, 0, "nothing before the session reads")

        // The session reads: one chunk, then it pauses; the socket stays held (input pending).
        session.resume()
        channel.embeddedEventLoop.run()
        XCTAssertEqual(session.received.count, 1)
        XCTAssertEqual(below.reading.last, nil, "still held since before")
        try channel.writeInbound(channel.allocator.buffer(bytes: compressed.dropFirst(100)))
        XCTAssertEqual(session.received.count, 1, "held input is not inflated while the session pauses")

        // It reads on without pausing: the rest, then the socket is released.
        session.pauseAfterRead = false
        session.resume()
        channel.embeddedEventLoop.run()
        XCTAssertTrue(Array(session.received.joined()) == data, "\(session.received.joined().count) bytes of \(data.count)")
        XCTAssertTrue(session.received.allSatisfy { $0.count <= p.chunk })
        XCTAssertEqual(below.reading.last, .resume)

        // Outbound: each flush is a sync flush the client can inflate at once.
        channel.pipeline.fireUserInboundEventTriggered("x")   // unrelated events pass
        try channel.writeAndFlush(channel.allocator.buffer(string: "* OK first\r\n")).wait()
        try channel.writeAndFlush(channel.allocator.buffer(string: "a OK second\r\n")).wait()
        var d = try Decompressor()
        var text: [UInt8] = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) {
            d.feed(Array(b.readableBytesView))
            text += try Self.inflateAll(&d, chunk: d.parameters.chunk)
        }
        XCTAssertEqual(String(decoding: text, as: UTF8.self), "* OK first\r\na OK second\r\n")
        // Idle: the compressor's state goes, and the next response still inflates.
        channel.embeddedEventLoop.advanceTime(by: DeflateHandler.releaseAfter + .seconds(1))
        try channel.writeAndFlush(channel.allocator.buffer(string: "* 3 EXISTS\r\n")).wait()
        text = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) {
            d.feed(Array(b.readableBytesView))
            text += try Self.inflateAll(&d, chunk: d.parameters.chunk)
        }
        XCTAssertEqual(String(decoding: text, as: UTF8.self), "* 3 EXISTS\r\n")
        _ = try channel.finish()
    }

    func testHandlerReportsCorruptInputOnce() throws {
        let session = Session(), below = Below()
        session.pauseAfterRead = false
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(below)
        try channel.pipeline.syncOperations.addHandler(DeflateHandler(readingPaused: false, pending: []))
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.writeInbound(channel.allocator.buffer(bytes: [0x07, 0x00]))
        try channel.writeInbound(channel.allocator.buffer(bytes: [0x07, 0x00]))
        XCTAssertEqual(session.events.compactMap { $0 as? DeflateFailure }.count, 1)
        XCTAssertNotEqual(below.reading.last, .pause, "input is read (and dropped) until the session closes")
        try channel.writeInbound(channel.allocator.buffer(string: "a NOOP\r\n"))
        XCTAssertTrue(session.received.isEmpty)
        _ = try channel.finish()
    }
}
