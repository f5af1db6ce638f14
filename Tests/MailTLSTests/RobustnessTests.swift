// Hostile and broken peers: garbage instead of a ClientHello, a handshake that stalls, a TCP
// reset mid-stream — each ends its own connection only. Plus EmbeddedChannel tests: random
// input never crashes, a handshake fed one byte at a time, the timeout on an injected clock.
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import MailTesting
import XCTest
@testable import MailTLS

final class RobustnessTests: XCTestCase {
    var fixture: TLSFixture!
    var config: TLSConfiguration!

    override func setUpWithError() throws {
        fixture = TLSFixture()
        config = try fixture.configuration(host: "robust.test")
        config.handshakeTimeout = .milliseconds(500)
    }

    override func tearDown() { fixture = nil }

    func testBadPeersEndOnlyTheirOwnConnection() throws {
        let server = try TestServer(tls: TLSServerContext(configuration: config))
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }

        // A healthy session, established before the bad peers and used after them.
        let healthy = try connectClient(group: group, port: server.port, expected: 6)
        _ = try healthy.handshake.wait()
        try healthy.channel.writeAndFlush(ByteBuffer(string: "RAWECHO\r\none")).wait()

        let script = """
        import socket, ssl, sys, time, struct
        port = int(sys.argv[1])
        def closed_within(s, limit):
            s.settimeout(limit); t = time.time()
            try:
                while s.recv(4096): pass
            except ConnectionResetError: pass
            except socket.timeout: return None
            return time.time() - t
        # 1. garbage instead of a ClientHello
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"EHLO not-tls.example\\r\\n" + bytes(range(256)) * 4)
        print("garbage closed", closed_within(s, 3) is not None)
        # 2. a client that stops half-way through its ClientHello
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out)
        try: obj.do_handshake()
        except ssl.SSLWantReadError: pass
        hello = out.read()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(hello[: len(hello) // 2])
        t = closed_within(s, 5)
        print("stalled closed after", "%.2f" % t if t is not None else "never")
        # 3. a TCP reset in the middle of a TLS stream
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        s.sendall(b"RAWECHO\\r\\n" + b"x" * 100000)
        s.recv(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        print("reset sent")
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("garbage closed True"), r.output)
        // Closed by the 500 ms handshake timeout, not by the client's own 5 s limit.
        XCTAssertTrue(["0.", "1.", "2."].contains { r.stdout.contains("stalled closed after \($0)") }, r.output)
        XCTAssertTrue(r.stdout.contains("reset sent"), r.output)

        // The healthy session is still served, and so are new ones.
        try healthy.channel.writeAndFlush(ByteBuffer(string: "two")).wait()
        XCTAssertEqual(String(buffer: try healthy.received.wait()), "onetwo")
        let fresh = try sClient(server.port, ["-brief", "-ign_eof"], stdin: ["still here\r\n", "QUIT\r\n"])
        XCTAssertTrue(fresh.stdout.contains("still here"), fresh.output)

        XCTAssertTrue(server.recorder.wait { $0.errors.count >= 3 }, "\(server.recorder.errors)")
        let errors = server.recorder.errors
        XCTAssertTrue(errors.contains { if case TLSError.handshakeFailed? = $0 as? TLSError { return true }; return false }, "\(errors)")
        XCTAssertTrue(errors.contains { ($0 as? TLSError) == .handshakeTimeout(milliseconds: 500) }, "\(errors)")
        XCTAssertTrue(errors.contains { e in
            if (e as? TLSError) == .uncleanShutdown { return true }
            if let io = e as? IOError, io.errnoCode == ECONNRESET { return true }
            return false
        }, "\(errors)")
        try healthy.channel.close().wait()
    }

    // MARK: EmbeddedChannel

    /// `handler` in an EmbeddedChannel (MailTesting's EmbeddedPipe), and what reaches its end.
    func embedded(_ handler: TLSHandler) throws -> (EmbeddedChannel, InboundSink) {
        let pipe = try EmbeddedPipe(handler)
        return (pipe.channel, pipe.sink)
    }

    func testHandshakeTimeoutOnInjectedClock() throws {
        var c = config!
        c.handshakeTimeout = .seconds(10)
        let ctx = try TLSServerContext(configuration: c)
        let (ch, sink) = try embedded(ctx.makeHandler())
        try ch.writeInbound(ByteBuffer(bytes: [0x16, 0x03, 0x01]))   // a record header, then silence
        ch.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertTrue(ch.isActive)
        XCTAssertTrue(sink.errors.isEmpty)
        ch.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertFalse(ch.isActive)
        XCTAssertEqual(sink.errors.compactMap { $0 as? TLSError }, [.handshakeTimeout(milliseconds: 10_000)])
    }

    func testRandomInputNeverCrashes() throws {
        let ctx = try TLSServerContext(configuration: config)
        var rng = SystemRandomNumberGenerator()
        var failed = 0
        for i in 0..<300 {
            let (ch, sink) = try embedded(ctx.makeHandler())
            var bytes = (0..<Int.random(in: 1...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 3 == 0 { bytes.insert(contentsOf: [0x16, 0x03, 0x01], at: 0) }   // look like a handshake record
            if i % 2 == 0 {
                for b in bytes where ch.isActive { _ = try? ch.writeInbound(ByteBuffer(bytes: [b])) }
            } else {
                _ = try? ch.writeInbound(ByteBuffer(bytes: bytes))
            }
            for e in sink.errors { XCTAssertTrue(e is TLSError, "\(e)") }
            if !ch.isActive { failed += 1 }
            XCTAssertTrue(sink.events.isEmpty)
            XCTAssertEqual(sink.data.readableBytes, 0)
            _ = try? ch.finish()
        }
        XCTAssertGreaterThan(failed, 200, "most random inputs must be refused outright")
    }

    /// Shuttles ciphertext between two embedded channels, `step` bytes per writeInbound.
    func pump(_ a: EmbeddedChannel, _ b: EmbeddedChannel, step: Int) throws {
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(a, b), (b, a)] {
                while let out = try from.readOutbound(as: ByteBuffer.self) {
                    var o = out
                    while o.readableBytes > 0 {
                        moved = true
                        try to.writeInbound(o.readSlice(length: min(step, o.readableBytes))!)
                    }
                }
            }
        }
    }

    func testHandshakeAndDataOneByteAtATime() throws {
        let server = try TLSServerContext(configuration: config)
        let client = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
        for step in [1, 7, 100_000] {
            let sHandler = server.makeHandler()
            let (s, sSink) = try embedded(sHandler)
            let (c, cSink) = try embedded(client.makeHandler(serverName: "robust.test"))
            try pump(c, s, step: step)
            XCTAssertEqual(sHandler.sessionInfo?.serverName, "robust.test")
            XCTAssertEqual(cSink.events.count, 1)
            XCTAssertEqual(sSink.events.count, 1)

            // Many writes, one flush; then the reverse direction.
            for i in 0..<50 { c.write(ByteBuffer(string: "line \(i)\r\n"), promise: nil) }
            c.flush()
            try pump(c, s, step: step)
            XCTAssertEqual(String(buffer: sSink.data), (0..<50).map { "line \($0)\r\n" }.joined())
            try s.writeAndFlush(ByteBuffer(bytes: pattern(70_000))).wait()
            try pump(c, s, step: step)
            XCTAssertEqual(cSink.data.readableBytes, 70_000)
            XCTAssertNil(cSink.data.withUnsafeReadableBytes { patternMismatch($0, offset: 0) })

            // Client closes: its close_notify reaches the server, which answers and closes.
            let closed = c.close()
            try pump(c, s, step: step)
            XCTAssertNoThrow(try closed.wait())
            XCTAssertFalse(s.isActive, "server must treat close_notify as EOF")
            XCTAssertTrue(sSink.errors.isEmpty, "\(sSink.errors)")
            XCTAssertTrue(cSink.errors.isEmpty, "\(cSink.errors)")
            _ = try? s.finish()
            _ = try? c.finish()
        }
    }

    func testWritesBeforeHandshakeAreHeldThenSent() throws {
        // An implicit-TLS greeting ("* OK IMAP4rev2") is written in channelActive, before the
        // handshake: it must not leave in plaintext, and must arrive once TLS is up.
        let server = try TLSServerContext(configuration: config)
        let client = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
        let (s, _) = try embedded(server.makeHandler())
        let (c, cSink) = try embedded(client.makeHandler(serverName: nil))
        let written = s.writeAndFlush(ByteBuffer(string: "* OK ready\r\n"))
        XCTAssertNil(try s.readOutbound(as: ByteBuffer.self), "nothing may leave before the handshake")
        try pump(c, s, step: 1_000)
        XCTAssertNoThrow(try written.wait())
        XCTAssertEqual(String(buffer: cSink.data), "* OK ready\r\n")
    }

    func testWriteAfterCloseFails() throws {
        let server = try TLSServerContext(configuration: config)
        let client = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
        let (s, _) = try embedded(server.makeHandler())
        let (c, _) = try embedded(client.makeHandler(serverName: nil))
        try pump(c, s, step: 100_000)
        c.close(promise: nil)
        XCTAssertThrowsError(try c.writeAndFlush(ByteBuffer(string: "late")).wait())
    }
}
