// The store's RPC service in-process over real socketpairs: handshake, role allow-lists,
// session scoping, push events, and malformed input closing one connection only.
import XCTest
import NIOCore
import NIOPosix
import Logging
import MailIPC
import CMailShims
@testable import MailStore
@testable import StoreServer

final class StoreServiceTests: XCTestCase {
    var dir = "", store: SQLiteMailStore!, service: StoreService!
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let pool = NIOThreadPool(numberOfThreads: 2)

    override func setUpWithError() throws {
        dir = tempDir()
        store = try SQLiteMailStore(dataDir: dir, fsync: false)
        try store.addDomain("example.org")
        try store.addUser("alice@example.org", password: "secret")
        pool.start()
        service = StoreService(store: store, group: group, pool: pool, maxDelivery: 1 << 20, maxFrame: 1 << 20, maxBuffered: 2 << 20,
                               logger: Logger(label: "test"))
    }
    override func tearDown() {
        try? pool.syncShutdownGracefully(); try? group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A client connection to the service with `role`, as the master would make it.
    func connect(_ role: Role, hello: Bool = true) throws -> BlockingRPCConnection {
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(mail_socketpair(&pair), 0)
        _ = try service.adopt(fd: pair[1], role: role).wait()
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let c = BlockingRPCConnection(fd: pair[0])
        if hello { XCTAssertEqual(try c.hello(client: "test"), role.rawValue) }
        return c
    }

    func assertClosed(_ c: BlockingRPCConnection, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try c.receive(), file: file, line: line) { e in
            XCTAssertEqual((e as? RPCError)?.message, "connection closed by peer", file: file, line: line)
        }
    }

    func testRequestsOutsideTheRoleAreRefused() throws {
        let lmtp = try connect(.lmtpd)
        XCTAssertThrowsError(try lmtp.call(.domainAdd("evil.org"))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        XCTAssertThrowsError(try lmtp.call(.export(user: "alice@example.org", mailbox: ""))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        XCTAssertThrowsError(try lmtp.call(.authenticate(user: "alice@example.org", password: "secret"))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        XCTAssertEqual(try store.domains(), ["example.org"])
        // still usable for what the role may do
        XCTAssertEqual(try lmtp.call(.lookupRecipient("alice@example.org")), .recipient(.ok, "alice@example.org"))
        XCTAssertEqual(try lmtp.call(.lookupRecipient("x@example.org")), .recipient(.unknownUser, "x@example.org"))
        let lookup = try connect(.lookupd)
        XCTAssertThrowsError(try lookup.call(.deliverBegin(sender: "", recipients: ["alice@example.org"]))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
    }

    func testHelloMustComeFirstAndMatchTheMajorVersion() throws {
        let a = try connect(.lmtpd, hello: false)
        try a.send(.lookupRecipient("alice@example.org"), id: 1)
        assertClosed(a)
        let b = try connect(.lmtpd, hello: false)
        try b.send(.hello(major: 99, minor: 0, client: "future"), id: 1)
        guard case (1, .error(.invalid, _)) = try b.receive() else { return XCTFail("expected an error reply") }
        assertClosed(b)
    }

    func testMalformedFramesCloseOnlyThatConnection() throws {
        let healthy = try connect(.lmtpd)
        let inputs: [[UInt8]] = [
            Array("EHLO garbage\r\n".utf8) + [UInt8](repeating: 0x41, count: 100),      // not a frame at all
            [0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 1],                              // oversized length
            { var b = ByteBuffer(); IPCMessage.lookupRecipient("a@b").frame(requestID: 3).write(into: &b); var x = Array(b.readableBytesView); x[6] = 0xee; return x }(),  // bad flags are fine; mangle payload:
            { var b = ByteBuffer(); Frame(type: MessageType.lookupRecipient.rawValue, requestID: 3, payload: ByteBuffer(bytes: [0, 0, 0, 9, 65])).write(into: &b); return Array(b.readableBytesView) }(),
            { var b = ByteBuffer(); Frame(type: 4242, requestID: 3, payload: ByteBuffer()).write(into: &b); return Array(b.readableBytesView) }(),
            { var b = ByteBuffer(); IPCMessage.deliverChunk(ByteBuffer(string: "x")).frame(requestID: 5).write(into: &b); return Array(b.readableBytesView) }(),   // chunk without begin
        ]
        for (i, bytes) in inputs.enumerated() {
            let c = try connect(.lmtpd)
            try c.writeAll(bytes)
            if i == 2 {   // flags are not interpreted: this one is valid and answered
                guard case (3, .recipient) = try c.receive() else { return XCTFail("frame with flags should be answered") }
                continue
            }
            assertClosed(c)
        }
        // A truncated frame followed by the client closing: the store drops it quietly.
        let t = try connect(.lmtpd)
        try t.writeAll([0, 0, 0, 50, 0, 10, 0, 0, 0, 0, 0, 1, 1, 2, 3])
        _ = shutdown(t.fd, Int32(SHUT_WR))
        assertClosed(t)
        XCTAssertEqual(try healthy.call(.lookupRecipient("alice@example.org")), .recipient(.ok, "alice@example.org"))
    }

    func testSessionsScopeMailboxAccessAndReceiveEvents() throws {
        let imap = try connect(.imapd)
        XCTAssertThrowsError(try imap.call(.mailboxList(session: 12345, user: "alice@example.org"))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        XCTAssertThrowsError(try imap.call(.authenticate(user: "alice@example.org", password: "wrong"))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        guard case .session(let sid, let who) = try imap.call(.authenticate(user: "alice@example.org", password: "secret")) else { return XCTFail() }
        XCTAssertEqual(who, "alice@example.org")
        guard case .mailboxes(let boxes) = try imap.call(.mailboxList(session: sid, user: "")) else { return XCTFail() }
        XCTAssertEqual(boxes.first?.name, "INBOX")
        // Another connection cannot use this session id.
        let other = try connect(.imapd)
        XCTAssertThrowsError(try other.call(.mailboxList(session: sid, user: ""))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        // A delivery pushes an event (request id 0) to the session's connection.
        let lmtp = try connect(.lmtpd)
        let id = lmtp.allocateID()
        for m: IPCMessage in [.deliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), .deliverChunk(ByteBuffer(string: "Subject: hi\r\n\r\nyo\r\n")), .deliverEnd] {
            try lmtp.send(m, id: id)
        }
        let (rid, result) = try lmtp.receive()
        XCTAssertEqual(rid, id)
        XCTAssertEqual(result, .deliverResult([.ok]))
        let (eid, event) = try imap.receive()
        XCTAssertEqual(eid, 0)
        XCTAssertEqual(event, .mailboxChanged(session: sid, mailbox: "INBOX", uidNext: 2, exists: 1))
        XCTAssertEqual(try imap.call(.sessionEnd(sid)), .ok)
        XCTAssertThrowsError(try imap.call(.mailboxList(session: sid, user: "")))
    }

    func testSubmissionNeedsASessionOfThisConnection() throws {
        let smtp = try connect(.smtpd)
        // a made-up session id closes the connection
        try smtp.send(.deliverBegin(sender: "alice@example.org", recipients: ["x@remote.net"], session: 777), id: 1)
        assertClosed(smtp)
        let s2 = try connect(.smtpd)
        guard case .session(let sid, _) = try s2.call(.authenticate(user: "alice@example.org", password: "secret")) else { return XCTFail() }
        let id = s2.allocateID()
        for m: IPCMessage in [.deliverBegin(sender: "alice@example.org", recipients: ["x@remote.net"], session: sid), .deliverChunk(ByteBuffer(string: "hi\r\n")), .deliverEnd] {
            try s2.send(m, id: id)
        }
        XCTAssertEqual(try s2.receive().1, .deliverResult([.ok]))
        XCTAssertEqual(try store.queue().count, 1)
        // lmtpd can never queue remote mail
        let lmtp = try connect(.lmtpd)
        let id2 = lmtp.allocateID()
        for m: IPCMessage in [.deliverBegin(sender: "alice@example.org", recipients: ["x@remote.net"]), .deliverChunk(ByteBuffer(string: "hi\r\n")), .deliverEnd] {
            try lmtp.send(m, id: id2)
        }
        XCTAssertEqual(try lmtp.receive().1, .deliverResult([.notLocal]))
        XCTAssertEqual(try store.queue().count, 1)
    }

    func testBodiesInFlightAreCappedPerConnection() throws {
        let lmtp = try connect(.lmtpd)
        let chunk = ByteBuffer(repeating: 65, count: 900 * 1024)
        let ids = (0..<3).map { _ in lmtp.allocateID() }
        for id in ids {   // three big bodies in transfer at once: the third passes the 2 MiB cap
            try lmtp.send(.deliverBegin(sender: "", recipients: ["alice@example.org"]), id: id)
            try lmtp.send(.deliverChunk(chunk), id: id)
        }
        for id in ids { try lmtp.send(.deliverEnd, id: id) }
        var results: [UInt32: IPCMessage] = [:]
        while results.count < 3 { let (id, m) = try lmtp.receive(); results[id] = m }
        XCTAssertEqual(results[ids[0]], .deliverResult([.ok]))
        XCTAssertEqual(results[ids[1]], .deliverResult([.ok]))
        XCTAssertEqual(results[ids[2]], .deliverResult([.tempFail]), "over the cap: try again later, nothing lost")
        // once the first two are committed the connection takes big bodies again
        let id = lmtp.allocateID()
        for m: IPCMessage in [.deliverBegin(sender: "", recipients: ["alice@example.org"]), .deliverChunk(chunk), .deliverEnd] { try lmtp.send(m, id: id) }
        XCTAssertEqual(try lmtp.receive().1, .deliverResult([.ok]))
        XCTAssertEqual(try store.mailboxes(user: 1)[0].messages, 3)
    }

    func testOversizedDeliveryIsRefusedAndNothingStored() throws {
        let lmtp = try connect(.lmtpd)
        let id = lmtp.allocateID()
        try lmtp.send(.deliverBegin(sender: "", recipients: ["alice@example.org"]), id: id)
        for _ in 0..<5 { try lmtp.send(.deliverChunk(ByteBuffer(repeating: 65, count: 256 * 1024)), id: id) }
        try lmtp.send(.deliverEnd, id: id)
        guard case (id, .error(.invalid, _)) = try lmtp.receive() else { return XCTFail("expected a size error") }
        XCTAssertEqual(try store.mailboxes(user: 1)[0].messages, 0)
    }
}
