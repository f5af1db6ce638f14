// The SMTP glue over the real store client (RPCSMTPServices on MailTesting.FakeStorePeer) with
// a 10 s deadline: a stalled store gives 451 4.3.0 (RCPT, MAIL) and 454 4.7.0 (AUTH, RFC 4954
// §6) when the deadline passes, and the session goes on; a throttled login is a 535 5.7.8.
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import SMTPProtocol
import XCTest
import MailIPC
import MailTesting
@testable import SMTPServer

final class StoreDeadlineGlueTests: XCTestCase {
    /// The fake store's behaviour, changed by the tests as they go.
    final class Store {
        var stalled = false
        var throttled = false
        func answer(_ m: any RPCMessage) -> (any RPCMessage)? {
            if stalled { return nil }
            switch m {
            case let l as LookupRecipient: return RecipientReply(.ok, l.address)
            case let a as Authenticate:
                if throttled { return ErrorReply(.throttled, "too many authentication failures from \(a.client)") }
                return a.password == "secret" ? SessionOpened(id: 7, user: "alice@example.org") : ErrorReply(.denied, "authentication failed")
            case is SenderLogins: return Names(["alice@example.org"])
            default: return OK()
            }
        }
    }

    let store = Store()
    var peer: FakeStorePeer!
    var channel: EmbeddedChannel!
    var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

    func start(_ config: SMTPSessionConfig, client: String) throws -> String {
        let loop = EmbeddedEventLoop()
        peer = try FakeStorePeer(loop: loop, timeout: .seconds(10)) { [store] in store.answer($0) }
        let settings = SessionSettings(config: config, commandTimeout: .seconds(300), dataTimeout: .seconds(600))
        let handler = SMTPSessionHandler(settings: settings, services: RPCSMTPServices(peer.rpc),
                                         logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        channel = EmbeddedChannel(handler: handler, loop: loop)
        channel.remoteAddress = try SocketAddress(ipAddress: client, port: 40000)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        return try output()
    }

    override func tearDown() { _ = try? channel?.finish() }

    func send(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        try peer.pump()
        return try output()
    }

    func output() throws -> String {
        var text = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: b) }
        return text
    }

    /// Lets `seconds` pass on the loop; returns what the client read meanwhile.
    func wait(_ seconds: Int64) throws -> String {
        loop.advanceTime(by: .seconds(seconds))
        try peer.pump()
        return try output()
    }

    func testAStalledStoreGives451ForRCPTWithinTheDeadlineAndTheSessionGoesOn() throws {
        _ = try start(.smtpd(role: .mta, hostname: "mx.example.org"), client: "192.0.2.7")
        XCTAssertTrue(try send("EHLO client.example\r\n").hasPrefix("250-"))
        XCTAssertEqual(try send("MAIL FROM:<x@client.example>\r\n"), "250 2.1.0 Sender OK\r\n")
        store.stalled = true
        XCTAssertEqual(try send("RCPT TO:<alice@example.org>\r\n"), "", "waiting for the store")
        XCTAssertEqual(try wait(9), "")
        XCTAssertEqual(try wait(1), "451 4.3.0 Local error in processing, try again later\r\n")
        store.stalled = false
        XCTAssertEqual(try send("RCPT TO:<alice@example.org>\r\n"), "250 2.1.5 Recipient OK\r\n")
        XCTAssertTrue(channel.isActive)
    }

    func testAStalledStoreGives454ForAUTHAnd451ForMAILAndTheSessionGoesOn() throws {
        _ = try start(.smtpd(role: .submission, hostname: "mx.example.org"), client: "127.0.0.1")
        XCTAssertTrue(try send("EHLO client.example\r\n").hasPrefix("250-"))
        let plain = Data("\0alice@example.org\0secret".utf8).base64EncodedString()
        store.stalled = true
        XCTAssertEqual(try send("AUTH PLAIN \(plain)\r\n"), "")
        XCTAssertEqual(try wait(10), "454 4.7.0 Temporary authentication failure\r\n")
        store.stalled = false
        XCTAssertEqual(try send("AUTH PLAIN \(plain)\r\n"), "235 2.7.0 Authentication successful\r\n")
        store.stalled = true
        XCTAssertEqual(try send("MAIL FROM:<alice@example.org>\r\n"), "")
        XCTAssertEqual(try wait(10), "451 4.3.0 Local error in processing, try again later\r\n",
                       "a store that cannot answer is no reason to call the sender not owned (553)")
        store.stalled = false
        XCTAssertEqual(try send("MAIL FROM:<alice@example.org>\r\n"), "250 2.1.0 Sender OK\r\n")
    }

    func testAThrottledLoginIsRefusedLikeAWrongPasswordAndCarriesTheClientAddress() throws {
        _ = try start(.smtpd(role: .submission, hostname: "mx.example.org"), client: "127.0.0.1")
        XCTAssertTrue(try send("EHLO client.example\r\n").hasPrefix("250-"))
        store.throttled = true
        let plain = Data("\0alice@example.org\0secret".utf8).base64EncodedString()
        var got = try send("AUTH PLAIN \(plain)\r\n")
        for _ in 0..<20 where got.isEmpty { got += try wait(1) }
        XCTAssertEqual(got, "535 5.7.8 Authentication credentials invalid\r\n")
        let auth = peer.requests.compactMap { $0 as? Authenticate }
        XCTAssertEqual(auth.map(\.client), ["127.0.0.1"])
        XCTAssertEqual(auth.map(\.service), ["smtp"])
    }
}
