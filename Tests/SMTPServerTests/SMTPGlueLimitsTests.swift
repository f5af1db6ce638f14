// The SMTP glue's part in issue 9: stress mode shortens the command timeout of the role's
// sessions (and only while it lasts), replies of one pipelined batch leave as one write, and
// waiting for the store holds reads through the worker's OutboundBackPressure.
import NIOCore
import NIOEmbedded
import SMTPProtocol
import XCTest
import MailWorker
@testable import SMTPServer

final class SMTPGlueLimitsTests: XCTestCase {
    let mta = SMTPSessionConfig.smtpd(role: .mta, hostname: "mx.example.org")
    let timeout = "421 4.4.2 Timeout exceeded, closing connection\r\n"

    var loop: EmbeddedEventLoop { get throws { try XCTUnwrap(h.channel.eventLoop as? EmbeddedEventLoop) } }
    var h: GlueHarness!

    /// Postfix smtpd_timeout = ${stress?{10}:{300}}: an existing session hears that stress began.
    func testStressShortensTheCommandTimeout() throws {
        h = try GlueHarness(mta, stressTimeout: .seconds(10))
        XCTAssertEqual(try h.fire(ListenerStressEvent(on: true)), "")
        try loop.advanceTime(by: .seconds(9))
        XCTAssertEqual(try h.output(), "")
        try loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try h.output(), timeout)
        XCTAssertFalse(h.channel.isActive)
    }

    func testStressEndedRestoresTheCommandTimeout() throws {
        h = try GlueHarness(mta, stressTimeout: .seconds(10))
        _ = try h.fire(ListenerStressEvent(on: true))
        _ = try h.fire(ListenerStressEvent(on: false))
        try loop.advanceTime(by: .seconds(299))
        XCTAssertEqual(try h.output(), "")
        try loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try h.output(), timeout)
    }

    func testWithoutStressTheTimeoutIsTheUsualOne() throws {
        h = try GlueHarness(mta, stressTimeout: .seconds(10))
        try loop.advanceTime(by: .seconds(60))
        XCTAssertEqual(try h.output(), "")
        XCTAssertTrue(h.channel.isActive)
    }

    /// A pipelined batch is answered with one write (max_unsent_bytes counts payload; one write
    /// per 16-byte reply would cost many times the bound in per-write overhead).
    func testPipelinedRepliesLeaveAsOneWrite() throws {
        h = try GlueHarness(mta)
        try h.channel.writeInbound(ByteBuffer(string: "EHLO a\r\nNOOP\r\nNOOP\r\nNOOP\r\n"))
        let first = try XCTUnwrap(try h.channel.readOutbound(as: ByteBuffer.self))
        XCTAssertNil(try h.channel.readOutbound(as: ByteBuffer.self))
        XCTAssertTrue(String(buffer: first).hasSuffix("250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n"), String(buffer: first))
    }

    /// While the store delivers, reads are held at the gate; its answer lets them go.
    func testWaitingForTheStoreHoldsReadsAtTheGate() throws {
        let gate = OutboundBackPressure()
        h = try GlueHarness(mta, front: [gate])
        h.services.holdDeliveries = true
        _ = try h.send("EHLO a\r\nMAIL FROM:<x@client.example>\r\nRCPT TO:<alice@example.org>\r\n")
        XCTAssertFalse(gate.holding)
        _ = try h.send("DATA\r\nSubject: hi\r\n\r\nHello\r\n.\r\n")
        XCTAssertTrue(gate.holding, "the glue paused reading while the store delivers")
        h.services.pendingDelivery!.succeed([.delivered])
        XCTAssertEqual(try h.output(), "250 2.0.0 Message accepted for delivery\r\n")
        XCTAssertFalse(gate.holding)
    }
}
