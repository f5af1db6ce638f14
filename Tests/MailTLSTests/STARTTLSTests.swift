// STARTTLS (RFC 3207) through `startTLS(from:context:reply:)` with a tiny SMTP-like server:
// pipelined commands after STARTTLS are never answered (RFC 3207 §4.2, CVE-2011-0411), a
// second STARTTLS is refused, and `openssl s_client -starttls smtp` completes.
import Foundation
import NIOCore
import NIOPosix
import MailTesting
import XCTest
@testable import MailTLS

/// Greeting, EHLO, STARTTLS, NOOP, QUIT — and the protocol's half of the STARTTLS contract.
final class MiniSMTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State { case plain, upgrading, tls }
    let tls: TLSServerContext
    let recorder: Recorder
    var state = State.plain
    var line = ByteBuffer()
    var discarded = 0

    init(tls: TLSServerContext, recorder: Recorder) {
        self.tls = tls
        self.recorder = recorder
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context, "220 starttls.test ESMTP ready")
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSEvent.handshakeCompleted(let info)? = event as? TLSEvent {
            recorder.session(info)
            state = .tls       // RFC 3207 §4.2: start over, knowing nothing from before TLS
            line.clear()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        recorder.error(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buf = unwrapInboundIn(data)
        guard state != .upgrading else {
            discarded += buf.readableBytes    // plaintext after STARTTLS: dropped, never parsed
            return
        }
        while state != .upgrading, let nl = buf.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            var chunk = buf.readSlice(length: nl - buf.readerIndex + 1)!
            line.writeBuffer(&chunk)
            let cmd = String(buffer: line).trimmingCharacters(in: .whitespacesAndNewlines)
            line.clear()
            command(context, cmd)
        }
        if state == .upgrading {
            discarded += buf.readableBytes    // the rest of the packet that carried STARTTLS
        } else {
            line.writeBuffer(&buf)
        }
    }

    func command(_ context: ChannelHandlerContext, _ cmd: String) {
        let verb = cmd.split(separator: " ").first.map { $0.uppercased() } ?? ""
        switch verb {
        case "EHLO":
            send(context, state == .tls ? "250 starttls.test" : "250-starttls.test\r\n250 STARTTLS")
        case "STARTTLS":
            if isTLSActive(context.channel) {
                // The library refuses too; the protocol answers (RFC 3207 §4.2 / §5).
                let again = startTLS(from: context, context: tls, reply: ByteBuffer(string: "220 again\r\n"))
                again.whenFailure { [recorder] e in recorder.error(e) }
                send(context, "503 5.5.1 TLS already active")
                return
            }
            state = .upgrading
            line.clear()
            startTLS(from: context, context: tls, reply: ByteBuffer(string: "220 2.0.0 Ready to start TLS\r\n"))
                .whenFailure { [recorder] e in recorder.error(e) }
        case "NOOP":
            send(context, "250 2.0.0 OK")
        case "QUIT":
            send(context, "221 2.0.0 Bye")
            context.close(promise: nil)
        default:
            send(context, "500 5.5.2 unknown command")
        }
    }

    func send(_ context: ChannelHandlerContext, _ s: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: s + "\r\n")), promise: nil)
    }
}

final class STARTTLSTests: XCTestCase {
    var fixture: TLSFixture!
    var server: TestServer!

    override func setUpWithError() throws {
        fixture = TLSFixture()
        let tls = try fixture.context(host: "starttls.test", name: "smtp")
        server = try fixture.start(tls) { recorder in [MiniSMTPHandler(tls: tls, recorder: recorder)] }
    }

    override func tearDown() {
        fixture?.stop()
        fixture = nil
    }

    func testPipelinedCommandAfterSTARTTLSIsNeverAnswered() throws {
        let script = """
        import socket, ssl, sys, time
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(3)
        buf = b""
        def line(sock):
            global buf
            while b"\\r\\n" not in buf:
                d = sock.recv(4096)
                if not d: raise SystemExit("closed early; got %r" % buf)
                buf += d
            l, buf = buf.split(b"\\r\\n", 1)
            return l.decode()
        print("greeting", line(s))
        s.sendall(b"STARTTLS\\r\\nNOOP\\r\\n")          # one packet: the injection
        print("plain", line(s))
        time.sleep(0.3)
        s.settimeout(0)
        try:
            extra = s.recv(4096, socket.MSG_PEEK)
        except BlockingIOError:
            extra = b""
        s.settimeout(3)
        print("plaintext after 220:", repr(buf + extra))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(s); t.settimeout(3)
        print("tls", t.version())
        t.sendall(b"NOOP\\r\\n")
        replies = [line(t)]
        t.settimeout(0.5)
        try:
            while True: replies.append(line(t))
        except (socket.timeout, SystemExit):
            pass
        t.settimeout(3)
        print("replies to NOOP:", replies)
        print("count250", sum(r.startswith("250") for r in replies))
        t.sendall(b"STARTTLS\\r\\n"); print("second", line(t))
        t.sendall(b"QUIT\\r\\n"); print("quit", line(t))
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("greeting 220 starttls.test ESMTP ready"), r.output)
        XCTAssertTrue(r.stdout.contains("plain 220 2.0.0 Ready to start TLS"), r.output)
        XCTAssertTrue(r.stdout.contains("plaintext after 220: b''"), r.output)
        XCTAssertTrue(r.stdout.contains("tls TLSv1.3"), r.output)
        XCTAssertTrue(r.stdout.contains("replies to NOOP: ['250 2.0.0 OK']"), r.output)
        XCTAssertTrue(r.stdout.contains("count250 1"), r.output)
        XCTAssertTrue(r.stdout.contains("second 503 5.5.1 TLS already active"), r.output)
        XCTAssertTrue(r.stdout.contains("quit 221 2.0.0 Bye"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.tlsErrors.contains(.alreadyActive) }, "\(server.recorder.errors)")
        XCTAssertEqual(server.recorder.sessions.count, 1)
    }

    /// The plaintext half of the protocol, in an EmbeddedChannel: greeting, EHLO, a line fed
    /// one byte at a time.
    func testPlaintextDialogueInAnEmbeddedPipe() throws {
        let pipe = try EmbeddedPipe(MiniSMTPHandler(tls: server.tls, recorder: server.recorder))
        XCTAssertEqual(try pipe.written(), "220 starttls.test ESMTP ready\r\n")
        try pipe.feed("EHLO client\r\n", step: 1)
        XCTAssertEqual(try pipe.written(), "250-starttls.test\r\n250 STARTTLS\r\n")
        try pipe.feed("NOOP\r\nQUIT\r\n")
        XCTAssertEqual(try pipe.written(), "250 2.0.0 OK\r\n221 2.0.0 Bye\r\n")
        XCTAssertTrue(pipe.sink.errors.isEmpty)
    }

    func testOpenSSLClientStartTLSSMTP() throws {
        let r = try sClient(server.port, ["-starttls", "smtp", "-brief", "-ign_eof", "-crlf"],
                            stdin: ["NOOP\n", "QUIT\n"])
        XCTAssertTrue(r.output.contains("Protocol version: TLSv1.3"), r.output)
        XCTAssertTrue(r.stdout.contains("250 2.0.0 OK"), r.output)
        XCTAssertTrue(r.stdout.contains("221 2.0.0 Bye"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 1 })
    }

    func testSTARTTLSFailsCleanlyWhenClientSendsGarbage() throws {
        let script = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(3)
        s.recv(100); s.sendall(b"STARTTLS\\r\\n"); s.recv(100)
        s.sendall(b"NOOP\\r\\nQUIT\\r\\n")                  # plaintext where a ClientHello belongs
        data = b""
        while True:
            d = s.recv(100)
            if not d: break
            data += d
        print("after", repr(data))
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.stdout.contains("250"), r.output)
        XCTAssertFalse(r.stdout.contains("221"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.tlsErrors.contains { if case .handshakeFailed = $0 { return true }; return false } })
    }
}
