// A real POP3Session over RPCPOP3Services and the real store in-process, as a transcript:
// the command set, RETR/TOP byte-exact with dot-stuffing, DELE applied only at QUIT, and a
// dropped connection that deletes nothing.
import Foundation
import NIOCore
import NIOConcurrencyHelpers
import Logging
import XCTest
import MailIPC
import MailStore
import MailTesting
import POP3Protocol
@testable import POP3Server

final class RecordingPOP3Connection: POP3Connection, @unchecked Sendable {
    private let lock = NIOLock()
    private var data: [UInt8] = []
    private var tls: Bool
    private var closed = false
    init(tls: Bool) { self.tls = tls }
    func write(_ bytes: ByteBuffer) async { writeNow(bytes) }
    func writeNow(_ bytes: ByteBuffer) { lock.withLock { data += bytes.readableBytesView } }
    func startTLS() async throws { lock.withLock { tls = true } }
    func close() async { lock.withLock { closed = true } }
    var isTLS: Bool { lock.withLock { tls } }
    func authenticated(user: String) {}
    var bytes: [UInt8] { lock.withLock { data } }
    var isClosed: Bool { lock.withLock { closed } }
    func take() -> [UInt8] { lock.withLock { defer { data = [] }; return data } }
}

final class POP3SessionTests: XCTestCase {
    var instance: InProcessStore!

    override func setUpWithError() throws { instance = try .withUsers(["alice@example.org"]) }

    func deliver(_ body: String) throws { try instance.deliver("alice@example.org", body) }

    final class Client {
        let connection = RecordingPOP3Connection(tls: false)
        let continuation: AsyncStream<POP3SessionInput>.Continuation
        let task: Task<Void, Never>
        var pending: [UInt8] = []

        init(_ instance: InProcessStore) throws {
            let services = RPCPOP3Services(rpc: try instance.nioClient(.pop3d))
            let config = POP3SessionConfig(engine: POP3EngineConfig(hostname: "mx.example.org", startTLSAvailable: true), authFailureDelay: 0)
            let session = POP3Session(config: config, services: services, connection: connection, client: "127.0.0.1",
                                      clientIsLoopback: true, logger: Logger(label: "pop3-test"))
            let (stream, cont) = AsyncStream<POP3SessionInput>.makeStream()
            continuation = cont
            task = Task { await session.run(stream) }
        }

        /// Reads until the output ends with `end` (a status line, or "\r\n.\r\n").
        func until(_ end: String, file: StaticString = #filePath, line: UInt = #line) -> String {
            let deadline = Date().addingTimeInterval(10), e = Array(end.utf8)
            while Date() < deadline {
                pending += connection.take()
                if pending.count >= e.count, Array(pending.suffix(e.count)) == e {
                    defer { pending = [] }
                    return String(decoding: pending, as: UTF8.self)
                }
                usleep(2000)
            }
            XCTFail("timed out waiting for \(end.debugDescription); have \(String(decoding: pending, as: UTF8.self))", file: file, line: line)
            return ""
        }

        func say(_ l: String, until end: String = "\r\n") -> String {
            continuation.yield(.line(.line(Array(l.utf8))))
            return until(end)
        }
    }

    func testCommandSetAndUpdate() async throws {
        let first = "Subject: one\r\n\r\n.starts with a dot\r\n..two\r\nend\r\n"
        try deliver(first)
        let second = "Subject: two\r\n\r\nbody\r\n"
        try deliver(second)
        let c = try Client(instance)
        XCTAssertTrue(c.until("\r\n").hasPrefix("+OK"))
        XCTAssertTrue(c.say("CAPA", until: ".\r\n").contains("UIDL\r\n"))
        XCTAssertTrue(c.say("USER alice@example.org").hasPrefix("+OK"))
        XCTAssertTrue(c.say("PASS secret").hasPrefix("+OK Logged in, 2 messages"))
        XCTAssertEqual(c.say("STAT"), "+OK 2 \(first.utf8.count + second.utf8.count)\r\n")
        XCTAssertTrue(c.say("UIDL", until: "\r\n.\r\n").contains("1 "))
        XCTAssertEqual(c.say("RETR 1", until: "\r\n.\r\n"),
                       "+OK \(first.utf8.count) octets\r\nSubject: one\r\n\r\n..starts with a dot\r\n...two\r\nend\r\n.\r\n")
        XCTAssertEqual(c.say("TOP 1 1", until: "\r\n.\r\n"), "+OK \(first.utf8.count) octets\r\nSubject: one\r\n\r\n..starts with a dot\r\n.\r\n")
        XCTAssertTrue(c.say("DELE 1").hasPrefix("+OK"))
        XCTAssertTrue(c.say("QUIT").hasPrefix("+OK"))
        await c.task.value
        XCTAssertTrue(c.connection.isClosed)
        XCTAssertEqual(try instance.inboxCount("alice@example.org"), 1)
    }

    func testDroppedConnectionDeletesNothing() async throws {
        try deliver("Subject: keep\r\n\r\nme\r\n")
        let c = try Client(instance)
        _ = c.until("\r\n")
        _ = c.say("USER alice@example.org")
        _ = c.say("PASS secret")
        XCTAssertTrue(c.say("DELE 1").hasPrefix("+OK"))
        c.continuation.yield(.closed)
        await c.task.value
        XCTAssertEqual(try instance.inboxCount("alice@example.org"), 1)
        // The lock went with the session: a new one logs in.
        let d = try Client(instance)
        _ = d.until("\r\n")
        _ = d.say("USER alice@example.org")
        XCTAssertTrue(d.say("PASS secret").hasPrefix("+OK Logged in, 1 messages"))
    }

    /// The bodies of the read-ahead tests: dot lines first, inside and last, a body without a
    /// final CRLF.
    static func body(_ i: Int) -> String {
        switch i % 4 {
        case 0: return "Subject: \(i)\r\n\r\n.first\r\nplain\r\n"
        case 1: return "Subject: \(i)\r\n\r\nplain\r\n..two\r\n.\r\nend\r\n"
        case 2: return "Subject: \(i)\r\n\r\nno final CRLF ."
        default: return "Subject: \(i)\r\n\r\nplain only\r\n"
        }
    }

    /// RFC 1939 §3 multi-line form of a message, written independently of DotStuffer.
    static func stuffed(_ s: String) -> String {
        var out = "", atStart = true
        for ch in s { if atStart && ch == "." { out.append(".") }; out.append(ch); atStart = ch == "\n" || ch == "\r\n" }
        return out + (atStart ? "" : "\r\n") + ".\r\n"
    }

    /// RETR through the read-ahead (batches of `readAheadCount`, bodies as slices of the
    /// store's reply) is byte-exact: dot lines first, inside and last, a body without a final
    /// CRLF, more messages than one batch, and a skip back and forth.
    func testReadAheadRetrIsByteExactPastOneBatch() async throws {
        let count = POP3Session.readAheadCount + 6
        for i in 0..<count { try deliver(Self.body(i)) }
        let c = try Client(instance)
        _ = c.until("\r\n")
        _ = c.say("USER alice@example.org")
        XCTAssertTrue(c.say("PASS secret").hasPrefix("+OK Logged in, \(count) messages"))
        let order = Array(1...10) + [40, 12] + Array(13...count)
        for n in order {
            let b = Self.body(n - 1)
            XCTAssertEqual(c.say("RETR \(n)", until: "\r\n.\r\n"), "+OK \(b.utf8.count) octets\r\n" + Self.stuffed(b), "RETR \(n)")
        }
        XCTAssertTrue(c.say("QUIT").hasPrefix("+OK"))
        await c.task.value
    }

    /// A session driven input by input, as the glue does (no task of its own).
    func loggedIn(readAhead: Bool) async throws -> (POP3Session, RecordingPOP3Connection) {
        let connection = RecordingPOP3Connection(tls: false)
        let config = POP3SessionConfig(engine: POP3EngineConfig(hostname: "mx.example.org", startTLSAvailable: true),
                                       authFailureDelay: 0, readAhead: readAhead)
        let session = POP3Session(config: config, services: RPCPOP3Services(rpc: try instance.nioClient(.pop3d)),
                                  connection: connection, client: "127.0.0.1", clientIsLoopback: true, logger: Logger(label: "pop3-test"))
        await session.start()
        XCTAssertNil(session.receiveNow(.line(Array("USER alice@example.org".utf8))), "the fast path is for TRANSACTION only")
        for l in ["USER alice@example.org", "PASS secret"] { _ = await session.handle(.line(.line(Array(l.utf8)))) }
        XCTAssertTrue(String(decoding: connection.take(), as: UTF8.self).hasSuffix("octets)\r\n"))
        return (session, connection)
    }

    /// The fast path (`receiveNow`: RETR of a message read ahead, written on the glue's loop
    /// without the session's task) gives byte for byte what the general path gives with no
    /// read-ahead at all (every RETR read by range in the task), message by message, past one
    /// batch; and it is taken (a fast path that silently fell back would pass unnoticed).
    func testFastPathRetrIsByteForByteTheRangedPath() async throws {
        let count = POP3Session.readAheadCount + 6
        for i in 0..<count { try deliver(Self.body(i)) }
        func retr(_ n: Int) -> POP3LineFramer.Event { .line(Array("RETR \(n)".utf8)) }

        let (ranged, rangedOut) = try await loggedIn(readAhead: false)
        var general: [[UInt8]] = []
        for n in 1...count {
            _ = await ranged.handle(.line(retr(n)))
            general.append(rangedOut.take())
            let b = Self.body(n - 1)
            XCTAssertEqual(String(decoding: general[n - 1], as: UTF8.self), "+OK \(b.utf8.count) octets\r\n" + Self.stuffed(b), "RETR \(n)")
        }
        _ = await ranged.handle(.line(.line(Array("QUIT".utf8))))
        await ranged.end()

        let (fast, fastOut) = try await loggedIn(readAhead: true)
        var taken = 0
        for n in 1...count {
            // A client slower than the store: each batch has come before the RETR that needs it.
            while fast.readAheadInFlight { try await Task.sleep(nanoseconds: 1_000_000) }
            guard let rest = fast.receiveNow(retr(n)) else { return XCTFail("no fast path in TRANSACTION") }
            if rest.isEmpty { taken += 1 } else { _ = await fast.handle(.perform(rest)) }
            XCTAssertEqual(fastOut.take(), general[n - 1], "RETR \(n)")
        }
        // All but the first RETR (nothing read ahead yet): a batch that has come is taken in on
        // the fast path, by the first RETR that needs it.
        XCTAssertEqual(taken, count - 1)
        _ = await fast.handle(.line(.line(Array("QUIT".utf8))))
        await fast.end()
    }
}
