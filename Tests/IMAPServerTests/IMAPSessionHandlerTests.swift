// The IMAP glue on real loopback sockets, driven by Python's socket and ssl, under a scripted
// session (not IMAPSession): what the session is handed, in order — nothing pipelined after
// STARTTLS, literals with their continuation request, timers, half-close, shutdown — and that
// a session that does not take its input stops the reading.
import Foundation
import Logging
import NIOCore
import NIOPosix
import XCTest
import IMAPProtocol
import MailTLS
import MailWorker
import MailTesting
@testable import IMAPServer

/// What the scripted session was handed, as text: "unit:a NOOP|" (CRLF as "|"), "continue:5",
/// "timeout", "closed", "shutdown", and "tls:true" after a STARTTLS it carried out.
final class Transcript: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }

    func wait(_ timeout: Double = 10, _ condition: ([String]) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if condition(all) { return true }
            usleep(20_000)
        }
        return condition(all)
    }

    static func describe(_ input: IMAPSessionInput) -> String {
        switch input {
        case .framed(.unit(let bytes)): return "unit:" + String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "|")
        case .framed(.continuationNeeded(let size)): return "continue:\(size)"
        case .framed(let other): return "\(other)"
        case .closed: return "closed"
        case .shutdown: return "shutdown"
        case .timeout: return "timeout"
        case .mailboxChanged(let m): return "changed:\(m)"
        }
    }
}

/// Opened once; every `wait` before that suspends.
final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if isOpen { lock.unlock(); c.resume() } else { waiters.append(c); lock.unlock() }
        }
    }
    func open() {
        lock.lock(); isOpen = true; let w = waiters; waiters = []; lock.unlock()
        w.forEach { $0.resume() }
    }
}

/// A loopback server whose connections run IMAPSessionHandler (behind OutboundBackPressure, as
/// in WorkerServer) with a scripted session: greets, answers `tag OK VERB` to every command;
/// STARTTLS: `tag OK Begin TLS` then the upgrade (tag "refused": NO, no upgrade); LOGIN:
/// `authenticated`; WATCH: posts `.mailboxChanged(7)`; HOLD: waits for the gate; LOGOUT: BYE
/// and close; `.shutdown`: BYE and close.
final class GlueServer {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let transcript = Transcript()
    let gate = Gate()
    let tls: TLSServerContext
    private let fixture = TLSFixture()
    private var channel: Channel!
    private let lock = NSLock()
    private var children: [Channel] = []
    var port: Int { channel.localAddress!.port! }

    init(timers: IMAPTimers = IMAPTimers(login: .seconds(30), autologout: .seconds(60), command: .seconds(30)),
         maxUnsentBytes: Int = OutboundBackPressure.defaultMaxUnsentBytes) throws {
        tls = try fixture.context(host: "imap.example.org")
        let settings = IMAPConnectionSettings(session: IMAPSessionConfig(hostname: "imap.example.org", startTLSAvailable: true),
                                              timers: timers, tls: tls, listener: "imap@test")
        let logger = Logger(label: "IMAPServerTests", factory: { _ in SwiftLogNoOpLogHandler() })
        let runner = Self.scripted(transcript, gate)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: OutboundBackPressure.waterMark(maxUnsentBytes: maxUnsentBytes))
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: OutboundBackPressure.readsPerRead)
            .childChannelOption(ChannelOptions.recvAllocator, value: OutboundBackPressure.recvAllocator)
            .childChannelInitializer { [self] ch in
                lock.lock(); children.append(ch); lock.unlock()
                return ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandlers([
                        OutboundBackPressure(),
                        IMAPSessionHandler(settings: settings, makeServices: { fatalError("the scripted session has no services") },
                                           logger: logger, runSession: runner),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    /// Fires `event` in every connection's pipeline, as WorkerServer does.
    func fire(_ event: WorkerSessionEvent) {
        lock.lock(); let all = children; lock.unlock()
        for ch in all { ch.pipeline.fireUserInboundEventTriggered(event) }
    }

    deinit {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    static func scripted(_ t: Transcript, _ gate: Gate) -> IMAPSessionHandler.SessionRunner {
        { conn, inputs in
            func say(_ s: String) async { await conn.write(Array(s.utf8)) }
            await say("* OK ready\r\n")
            for await input in inputs {
                t.add(Transcript.describe(input))
                if case .closed = input { return }
                if case .shutdown = input { return await say("* BYE shutting down\r\n") }
                guard case .framed(.unit(let bytes)) = input else { continue }
                let words = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines).split(separator: " ")
                let tag = words.first.map(String.init) ?? "*", verb = words.count > 1 ? words[1].uppercased() : ""
                switch verb {
                case "STARTTLS" where tag == "refused":
                    await say("\(tag) NO not now\r\n")
                case "STARTTLS":
                    await say("\(tag) OK Begin TLS\r\n")
                    do { try await conn.startTLS() } catch { t.add("tls failed: \(error)"); return }
                    t.add("tls:\(conn.isTLS)")
                case "LOGIN":
                    conn.authenticated(user: "alice@example.org")
                    await say("\(tag) OK LOGIN\r\n")
                case "WATCH":
                    conn.post(.mailboxChanged(7))
                    await say("\(tag) OK WATCH\r\n")
                case "HOLD":
                    await gate.wait()
                    await say("\(tag) OK HOLD\r\n")
                case "LOGOUT":
                    return await say("* BYE\r\n\(tag) OK LOGOUT\r\n")
                default:
                    await say("\(tag) OK \(verb)\r\n")
                }
            }
        }
    }
}

final class IMAPSessionHandlerTests: XCTestCase {
    /// Python helpers every client script starts with: `line(s)` reads one CRLF line byte by
    /// byte (nothing past it is consumed, so TLS can start right after), `connect()` greets.
    static let prelude = """
        import socket, ssl, sys, time
        port = int(sys.argv[1])
        def line(s):
            b = b""
            while not b.endswith(b"\\r\\n"):
                c = s.recv(1)
                if not c:
                    break
                b += c
            return b
        def connect():
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            assert line(s) == b"* OK ready\\r\\n"
            return s
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        """

    func run(_ server: GlueServer, _ script: String, timeout: Double = 60) throws -> [String] {
        let r = try python(Self.prelude + script, [String(server.port)], timeout: timeout)
        XCTAssertEqual(r.status, 0, r.output)
        return r.stdout.split(separator: "\n").map(String.init)
    }

    /// RFC 9051 §6.2.1: what the client pipelined after STARTTLS never reaches the session, and
    /// the handshake the client starts the moment it reads the OK is not lost (30 times over, to
    /// give the race a chance: with reads merely held, one was lost now and then).
    func testPipelinedAfterSTARTTLSIsDroppedAndTheHandshakeIsNot() throws {
        let server = try GlueServer()
        let out = try run(server, """
            for i in range(30):
                s = connect()
                s.sendall(b"a STARTTLS\\r\\nb NOOP\\r\\n")
                assert line(s) == b"a OK Begin TLS\\r\\n"
                t = ctx.wrap_socket(s)
                t.sendall(b"c NOOP\\r\\n")
                print(line(t).decode().strip())
                t.sendall(b"d LOGOUT\\r\\n")
                print(line(t).decode().strip(), line(t).decode().strip())
                t.close()
            """)
        XCTAssertEqual(out, Array(repeating: ["c OK NOOP", "* BYE d OK LOGOUT"], count: 30).flatMap { $0 })
        let t = server.transcript.all
        XCTAssertFalse(t.contains("unit:b NOOP|"), "\(t)")
        XCTAssertEqual(t.filter { $0 == "tls:true" }.count, 30, "\(t)")
        XCTAssertEqual(Array(t.prefix(4)), ["unit:a STARTTLS|", "tls:true", "unit:c NOOP|", "unit:d LOGOUT|"])
    }

    /// A refused STARTTLS (the session does not call `startTLS`) leaves the pipelined commands
    /// to the session, in order.
    func testCommandsAfterARefusedSTARTTLSAreKept() throws {
        let server = try GlueServer()
        let out = try run(server, """
            s = connect()
            s.sendall(b"refused STARTTLS\\r\\nb NOOP\\r\\n")
            print(line(s).decode().strip(), "/", line(s).decode().strip())
            s.sendall(b"c NOOP\\r\\n")
            print(line(s).decode().strip())
            """)
        XCTAssertEqual(out, ["refused NO not now / b OK NOOP", "c OK NOOP"])
        XCTAssertTrue(server.transcript.wait { $0.contains("closed") })
        XCTAssertEqual(server.transcript.all, ["unit:refused STARTTLS|", "unit:b NOOP|", "unit:c NOOP|", "closed"])
    }

    /// RFC 9051 §4.3: "+" for a synchronizing literal within the limit, as the session takes the
    /// command; none for LITERAL+; the unit the session gets holds the literals inline.
    func testLiteralsAndTheContinuationRequest() throws {
        let server = try GlueServer()
        let out = try run(server, """
            s = connect()
            s.sendall(b"a LOGIN {5}\\r\\n")
            print(line(s).decode().strip())
            s.sendall(b"alice {3+}\\r\\nbob\\r\\n")
            print(line(s).decode().strip())
            """)
        XCTAssertEqual(out, ["+ Ready for literal data", "a OK LOGIN"])
        XCTAssertTrue(server.transcript.wait { $0.contains("closed") })
        XCTAssertEqual(server.transcript.all, ["continue:5", "unit:a LOGIN {5}|alice {3+}|bob|", "closed"])
    }

    /// A session that does not take its input stops the reading: the client's sends block
    /// (24 MB of commands cannot all fit in the socket buffers) until the session goes on; then
    /// every command arrives, in order, and is answered.
    func testASessionThatDoesNotTakeInputStopsTheReading() throws {
        let server = try GlueServer()
        DispatchQueue.global().asyncAfter(deadline: .now() + 3) { server.gate.open() }
        let out = try run(server, """
            s = connect()
            pad = b"x" * 8000
            s.sendall(b"h HOLD\\r\\n")
            start = time.monotonic()
            for i in range(3000):
                s.sendall(b"n%d NOOP " % i + pad + b"\\r\\n")
            print(round(time.monotonic() - start, 1))
            answers = [line(s) for _ in range(3001)]
            print(answers[0].decode().strip(), answers[-1].decode().strip())
            """)
        XCTAssertEqual(out.count, 2, "\(out)")
        XCTAssertGreaterThanOrEqual(Double(out.first ?? "") ?? 0, 2.0, "the client was never held back: \(out)")
        XCTAssertEqual(out.last, "h OK HOLD n2999 OK NOOP")
        let units = server.transcript.all.filter { $0.hasPrefix("unit:") }
        XCTAssertEqual(units.count, 3001)
        XCTAssertEqual(units.last?.hasPrefix("unit:n2999 NOOP "), true)
    }

    /// The login timer before a login; `authenticated` switches to the autologout timer.
    func testLoginTimerAndAutologoutAfterLogin() throws {
        let server = try GlueServer(timers: IMAPTimers(login: .milliseconds(300), autologout: .seconds(30), command: .seconds(30)))
        _ = try run(server, """
            s = connect()
            time.sleep(0.8)
            s.sendall(b"a LOGIN\\r\\n")
            assert line(s) == b"a OK LOGIN\\r\\n"
            time.sleep(0.8)
            """)
        XCTAssertTrue(server.transcript.wait { $0.contains("closed") })
        XCTAssertEqual(server.transcript.all, ["timeout", "unit:a LOGIN|", "closed"])
    }

    /// A command begun and not finished: `.timeout` command_timeout after its last byte.
    func testStalledCommandTimesOut() throws {
        let server = try GlueServer(timers: IMAPTimers(login: .seconds(30), autologout: .seconds(30), command: .seconds(1)))
        _ = try run(server, """
            s = connect()
            s.sendall(b"a NO")
            time.sleep(0.3)
            s.sendall(b"O")
            time.sleep(0.3)
            s.sendall(b"P")
            time.sleep(1.6)
            s.sendall(b"\\r\\n")
            assert line(s) == b"a OK NOOP\\r\\n"
            """)
        XCTAssertTrue(server.transcript.wait { $0.contains("closed") })
        XCTAssertEqual(server.transcript.all, ["timeout", "unit:a NOOP|", "closed"])
    }

    /// A client that pipelines and half-closes gets every answer, then the session ends.
    func testHalfCloseAnswersEverythingFirst() throws {
        let server = try GlueServer()
        let out = try run(server, """
            s = connect()
            s.sendall(b"a NOOP\\r\\nb NOOP\\r\\nc NOOP\\r\\n")
            s.shutdown(socket.SHUT_WR)
            print(s.makefile("rb").read().decode().replace("\\r\\n", "|"))
            """)
        XCTAssertEqual(out, ["a OK NOOP|b OK NOOP|c OK NOOP|"])
        XCTAssertTrue(server.transcript.wait { $0.contains("closed") })
        XCTAssertEqual(server.transcript.all, ["unit:a NOOP|", "unit:b NOOP|", "unit:c NOOP|", "closed"])
    }

    /// WorkerSessionEvent.shuttingDown reaches the session as `.shutdown`.
    func testShutdownReachesTheSession() throws {
        let server = try GlueServer()
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { server.fire(.shuttingDown) }
        let out = try run(server, """
            s = connect()
            print(line(s).decode().strip())
            print(s.recv(10) == b"")
            """)
        XCTAssertEqual(out, ["* BYE shutting down", "True"])
        XCTAssertEqual(server.transcript.all, ["shutdown"])
    }

    /// An input posted from outside (a watch's notification) reaches the session in order.
    func testPostedInputReachesTheSession() throws {
        let server = try GlueServer()
        _ = try run(server, """
            s = connect()
            s.sendall(b"w WATCH\\r\\n")
            assert line(s) == b"w OK WATCH\\r\\n"
            s.sendall(b"n NOOP\\r\\n")
            assert line(s) == b"n OK NOOP\\r\\n"
            """)
        XCTAssertTrue(server.transcript.wait { $0.contains("closed") })
        XCTAssertEqual(server.transcript.all, ["unit:w WATCH|", "changed:7", "unit:n NOOP|", "closed"])
    }

    func testSTARTTLSRecognition() {
        for (line, yes) in [("a STARTTLS\r\n", true), ("x1 starttls\n", true), ("a STARTTLS x\r\n", false), ("STARTTLS\r\n", false),
                            ("a NOOP\r\n", false), (" STARTTLS\r\n", false)] {
            XCTAssertEqual(IMAPSessionHandler.isStartTLS(Array(line.utf8)), yes, line)
        }
    }
}
