// Drives a real IMAPSession without sockets: the client's text goes through the real framer,
// the session runs over RPCIMAPServices against the real store in-process (InProcessStore),
// and what it writes is collected by a connection that records.
import Foundation
import NIOCore
import NIOConcurrencyHelpers
import Logging
import XCTest
import IMAPProtocol
import IMAPServer
import MailIPC
import MailStore
import MailTesting
import MailWorker

final class RecordingConnection: IMAPConnection, @unchecked Sendable {
    private let lock = NIOLock()
    private var data: [UInt8] = []
    private var tls: Bool
    private(set) var closed = false
    private(set) var user: String?
    init(tls: Bool) { self.tls = tls }
    func write(_ bytes: [UInt8]) async { lock.withLock { data += bytes } }
    func startTLS() async throws { lock.withLock { tls = true } }
    func close() async { lock.withLock { closed = true } }
    var isTLS: Bool { lock.withLock { tls } }
    func authenticated(user: String) { lock.withLock { self.user = user } }
    /// Everything written since the last take.
    func take() -> String { lock.withLock { defer { data = [] }; return String(decoding: data, as: UTF8.self) } }
    var isClosed: Bool { lock.withLock { closed } }
}

/// One client session against the store.
final class SessionDriver {
    let connection: RecordingConnection
    let session: IMAPSession
    let continuation: AsyncStream<IMAPSessionInput>.Continuation
    var framer = IMAPFramer()
    let task: Task<Void, Never>
    private var pending = ""

    init(store: InProcessStore, events: EventRouter? = nil, tls: Bool = false, loopback: Bool = true,
         config: IMAPSessionConfig = IMAPSessionConfig(hostname: "mail.example.org", startTLSAvailable: true, authFailureDelay: 0)) throws {
        let router = events ?? EventRouter()
        let rpc = try store.nioClient(.imapd, onEvent: { router.route($0) })
        let services = RPCIMAPServices(rpc: rpc, events: router, service: "imap")
        connection = RecordingConnection(tls: tls)
        session = IMAPSession(config: config, services: services, connection: connection, client: loopback ? "127.0.0.1" : "192.0.2.7",
                              clientIsLoopback: loopback, logger: Logger(label: "imap-test"))
        let (stream, cont) = AsyncStream<IMAPSessionInput>.makeStream()
        continuation = cont
        session.post = { cont.yield($0) }
        let s = session
        task = Task { await s.run(stream) }
    }

    deinit { continuation.finish() }

    /// Waits (up to 10 s) until the output holds a line starting with `prefix`; returns the
    /// output through the end of that line and keeps the rest.
    func waitFor(_ prefix: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            pending += connection.take()
            let b = Array(pending.utf8), p = Array(prefix.utf8)
            var i = 0
            while i + p.count <= b.count {
                if (i == 0 || b[i - 1] == UInt8(ascii: "\n")) && Array(b[i..<(i + p.count)]) == p,
                   let nl = b[(i + p.count)...].firstIndex(of: UInt8(ascii: "\n")) {
                    let out = String(decoding: b[...nl], as: UTF8.self)
                    pending = String(decoding: b[(nl + 1)...], as: UTF8.self)
                    return out
                }
                i += 1
            }
            usleep(2000)
        }
        XCTFail("timed out waiting for \(prefix); have: \(pending)", file: file, line: line)
        let out = pending; pending = ""; return out
    }

    /// Sends raw client bytes through the framer (continuation requests are left in the output).
    func sendRaw(_ text: String) {
        framer.feed(Array(text.utf8))
        while let e = framer.next() {
            // The glue answers a synchronizing literal itself.
            if case .continuationNeeded = e { Task { [connection] in await connection.write(Array("+ Ready for literal data\r\n".utf8)) } }
            continuation.yield(.framed(e))
        }
    }

    /// Sends `tag command` and returns the output through the tagged response.
    @discardableResult
    func send(_ tag: String, _ command: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        sendRaw("\(tag) \(command)\r\n")
        return waitFor("\(tag) ", file: file, line: line)
    }

    func login(_ user: String = "alice@example.org", _ password: String = "secret") {
        let r = send("L", "LOGIN \(user) \(password)")
        XCTAssertTrue(r.contains("L OK"), r)
    }
}

/// Byte-wise containment (String.contains compares characters: "\r\n" is one).
func has(_ s: String, _ sub: String) -> Bool {
    let a = Array(s.utf8), b = Array(sub.utf8)
    guard b.count <= a.count else { return false }
    return (0...(a.count - b.count)).contains { Array(a[$0..<($0 + b.count)]) == b }
}

extension InProcessStore {
    /// Delivers through the store's RPC as lmtpd does, so watchers are notified.
    func deliver(to recipients: [String], _ body: String, from sender: String = "sender@example.net") throws {
        let c = try connect(.lmtpd)
        let id = c.allocateID()
        try c.send(DeliverBegin(sender: sender, recipients: recipients), id: id)
        try c.send(DeliverChunk(ByteBuffer(string: body)), id: id)
        try c.send(DeliverEnd(), id: id)
        let (_, answer) = try c.receive()
        guard let r = answer as? DeliverResult, r.statuses.allSatisfy({ $0 == .ok }) else { throw RPCError("delivery failed: \(answer)") }
    }
}
