// What an idle TLS connection keeps (issue 11 point 5): OpenSSL's record buffers released
// (SSL_MODE_RELEASE_BUFFERS, on by default for servers), and memory BIOs that grew with a large
// transfer swapped for empty ones once drained — with the bytes on both sides intact.
import Foundation
import NIOCore
import NIOEmbedded
import MailTesting
import XCTest
import CMailTLS
@testable import MailTLS

// RobustnessTests' fixture (config for "robust.test") and its `pump`.
extension RobustnessTests {
    func testReleaseBuffersIsTheServerDefault() throws {
        XCTAssertTrue(TLSConfiguration().releaseBuffers)
        let h = try TLSServerContext(configuration: config).makeHandler()
        let mode = SSL_ctrl(h.connection!.ssl, SSL_CTRL_MODE, 0, nil)
        XCTAssertNotEqual(mode & Int(SSL_MODE_RELEASE_BUFFERS), 0)
        var off = config!
        off.releaseBuffers = false
        let h2 = try TLSServerContext(configuration: off).makeHandler()
        XCTAssertEqual(SSL_ctrl(h2.connection!.ssl, SSL_CTRL_MODE, 0, nil) & Int(SSL_MODE_RELEASE_BUFFERS), 0)
    }

    func testBIOsGrownByALargeTransferAreRenewedOnceDrained() throws {
        let server = try TLSServerContext(configuration: config)
        let client = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
        let sHandler = server.makeHandler()
        let sPipe = try EmbeddedPipe(sHandler), cPipe = try EmbeddedPipe(client.makeHandler(serverName: nil))
        let (s, c) = (sPipe.channel, cPipe.channel)
        try pump(c, s, step: 1 << 20)
        XCTAssertTrue(sHandler.isHandshakeComplete)
        let conn = sHandler.connection!

        // 200 KB out (a large FETCH), in 16 KB reads as a socket would bring the client's upload.
        try s.writeAndFlush(ByteBuffer(bytes: pattern(200_000))).wait()
        try pump(c, s, step: 1 << 20)
        XCTAssertEqual(cPipe.sink.data.readableBytes, 200_000)
        XCTAssertNil(cPipe.sink.data.withUnsafeReadableBytes { patternMismatch($0, offset: 0) })
        c.write(ByteBuffer(bytes: pattern(100_000)), promise: nil)
        c.flush()
        try pump(c, s, step: 16_384)
        XCTAssertEqual(sPipe.sink.data.readableBytes, 100_000)
        XCTAssertNil(sPipe.sink.data.withUnsafeReadableBytes { patternMismatch($0, offset: 0) })

        // Drained both ways: what each BIO held since its renewal is no more than the idle bound.
        XCTAssertGreaterThanOrEqual(conn.renewed, 2, "both BIOs grew past \(SSLConnection.idleBIOBytes) bytes")
        XCTAssertLessThanOrEqual(conn.wbioPeak, SSLConnection.idleBIOBytes)
        XCTAssertLessThanOrEqual(conn.rbioPeak, SSLConnection.idleBIOBytes)
        XCTAssertEqual(BIO_ctrl_pending(conn.rbio), 0)
        XCTAssertEqual(BIO_ctrl_pending(conn.wbio), 0)

        // The renewed BIOs carry on: a command and its answer, then a clean close.
        c.writeAndFlush(ByteBuffer(string: "a1 NOOP\r\n"), promise: nil)
        try s.writeAndFlush(ByteBuffer(string: "a1 OK done\r\n")).wait()
        try pump(c, s, step: 1 << 20)
        XCTAssertTrue(String(buffer: sPipe.sink.data).hasSuffix("a1 NOOP\r\n"))
        XCTAssertTrue(String(buffer: cPipe.sink.data).hasSuffix("a1 OK done\r\n"))
        let closed = c.close()
        try pump(c, s, step: 1 << 20)
        XCTAssertNoThrow(try closed.wait())
        XCTAssertTrue(sPipe.sink.errors.isEmpty, "\(sPipe.sink.errors)")
        XCTAssertTrue(cPipe.sink.errors.isEmpty, "\(cPipe.sink.errors)")
    }

    func testSmallExchangesKeepTheirBIOs() throws {
        let server = try TLSServerContext(configuration: config)
        let client = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
        let sHandler = server.makeHandler()
        let sPipe = try EmbeddedPipe(sHandler), cPipe = try EmbeddedPipe(client.makeHandler(serverName: nil))
        try pump(cPipe.channel, sPipe.channel, step: 1 << 20)
        let after = sHandler.connection!.renewed
        for i in 0..<20 {
            cPipe.channel.writeAndFlush(ByteBuffer(string: "a\(i) NOOP\r\n"), promise: nil)
            try sPipe.channel.writeAndFlush(ByteBuffer(string: "a\(i) OK\r\n")).wait()
            try pump(cPipe.channel, sPipe.channel, step: 1 << 20)
        }
        XCTAssertEqual(sHandler.connection!.renewed, after, "no BIO churn for command-sized records")
    }

    func testABIOHoldingBytesIsNotRenewed() throws {
        let ctx = try XCTUnwrap(mtls_ctx_new(1))
        defer { SSL_CTX_free(ctx) }
        var r: OpaquePointer? = nil, w: OpaquePointer? = nil
        let ssl = try XCTUnwrap(mtls_ssl_new(ctx, 1, 1, &r, &w))
        defer { SSL_free(ssl) }
        XCTAssertEqual(BIO_write(r, "half a record", 13), 13)
        XCTAssertNil(mtls_ssl_renew_bio(ssl, 1), "pending bytes stay where they are")
        var sink = [UInt8](repeating: 0, count: 13)
        XCTAssertEqual(BIO_read(r, &sink, 13), 13)
        let fresh = try XCTUnwrap(mtls_ssl_renew_bio(ssl, 1))
        XCTAssertTrue(SSL_get_rbio(ssl) == fresh)
        XCTAssertEqual(BIO_read(fresh, &sink, 1), -1, "an empty renewed BIO says retry, not EOF")
        XCTAssertNotEqual(BIO_test_flags(fresh, BIO_FLAGS_SHOULD_RETRY), 0)
        XCTAssertNotNil(mtls_ssl_renew_bio(ssl, 0))
    }
}
