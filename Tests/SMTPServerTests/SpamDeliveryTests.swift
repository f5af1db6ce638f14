// The spam hooks' deliveries over the fake store services: rspamd unreachable → unscanned
// (accept) or 451 4.7.1 with no store delivery (tempfail); a learning address answers
// `delivered` in its RCPT place while only the other recipients reach the store.
import XCTest
import Logging
import NIOCore
import NIOPosix
import MailCore
import SMTPProtocol
import SpamFilter
@testable import SMTPServer

final class SpamDeliveryTests: XCTestCase {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let logger = Logger(label: "test")

    /// A port nothing listens on (bound, then closed).
    func deadPort() throws -> Int {
        let ch = try ServerBootstrap(group: Self.group).bind(host: "127.0.0.1", port: 0).wait()
        let port = ch.localAddress!.port!
        try ch.close().wait()
        return port
    }

    func scanning(_ services: FakeSMTPServices, _ policy: SpamFailurePolicy) throws -> SpamScanningDelivery {
        var c = SpamConfig()
        c.enabled = true
        c.url = "http://127.0.0.1:\(try deadPort())"
        c.onFailure = policy
        let hook = SpamHook(c, group: Self.group, scans: true)!
        let env = SpamEnvelope(sender: "s@example.net", recipients: ["alice@example.org"])
        return SpamScanningDelivery(hook: hook, envelope: env, loop: services.loop, logger: logger) { _ in
            services.beginDelivery(sender: "s@example.net", recipients: ["alice@example.org"], storeSession: 0)
        }
    }

    func testUnreachableRspamdAcceptsUnscanned() throws {
        let services = FakeSMTPServices(loop: Self.group.next())
        let d = try scanning(services, .accept)
        try d.send(ByteBuffer(string: "Subject: a\r\n\r\n")).wait()
        try d.send(ByteBuffer(string: "body\r\n")).wait()
        XCTAssertTrue(services.deliveries.isEmpty, "held until the scan")
        XCTAssertEqual(try d.end().wait(), [.delivered])
        XCTAssertEqual(try Self.group.next().submit { services.deliveries.map(\.body) }.wait(), ["Subject: a\r\n\r\nbody\r\n"])
    }

    func testUnreachableRspamdTempfails() throws {
        let services = FakeSMTPServices(loop: Self.group.next())
        let d = try scanning(services, .tempfail)
        try d.send(ByteBuffer(string: "Subject: a\r\n\r\nbody\r\n")).wait()
        XCTAssertThrowsError(try d.end().wait()) { e in
            XCTAssertEqual((e as? SpamRefusal)?.reply, SMTPReply(451, "4.7.1", "Try again later"))
        }
        XCTAssertTrue(services.deliveries.isEmpty)
    }

    func testLearningAddressesKeepTheirPlaceInTheStatuses() throws {
        let services = FakeSMTPServices(loop: Self.group.next())
        services.deliveryStatuses["bob@example.org"] = .overQuota
        let learner = SpamLearner(loop: Self.group.next(), controller: RspamdEndpoint(host: "127.0.0.1", port: try deadPort()), password: nil,
                                  timeout: .seconds(1), capacity: 5, logger: logger)
        defer { learner.stop() }
        let inner = services.beginDelivery(sender: "alice@example.org", recipients: ["bob@example.org", "carol@example.org"], storeSession: 42)
        let d = SpamLearningDelivery(kinds: [nil, .spam, nil], learner: learner, maxLearnBytes: 1 << 20, inner: inner, loop: services.loop, logger: logger,
                                     origin: "test")
        try d.send(ByteBuffer(string: "Subject: x\r\n\r\nx\r\n")).wait()
        XCTAssertEqual(try d.end().wait(), [.overQuota, .delivered, .delivered])
        XCTAssertEqual(try learner.counters().wait().pending, 1)

        let alone = SpamLearningDelivery(kinds: [.ham], learner: learner, maxLearnBytes: 1 << 20, inner: nil, loop: services.loop, logger: logger, origin: "test")
        try alone.send(ByteBuffer(string: "Subject: y\r\n\r\ny\r\n")).wait()
        XCTAssertEqual(try alone.end().wait(), [.delivered])
        XCTAssertEqual(try Self.group.next().submit { services.deliveries.count }.wait(), 1)
    }

    func testLearningAddressesNeedAnAuthenticatedUser() throws {
        let services = FakeSMTPServices(loop: Self.group.next())
        let learner = SpamLearner(loop: Self.group.next(), controller: RspamdEndpoint(host: "127.0.0.1", port: 9), password: nil,
                                  timeout: .seconds(1), capacity: 5, logger: logger)
        let hook = SpamLearnHook(addresses: SpamLearnAddresses(spam: "spam@", ham: ""), learner: learner, maxLearnBytes: 1 << 20)!
        XCTAssertNil(hook.lookup("spam@example.org", user: nil, services: services))
        XCTAssertNil(hook.lookup("alice@example.org", user: "alice@example.org", services: services))
        XCTAssertEqual(try hook.lookup("Spam@example.org", user: "alice@example.org", services: services)?.wait(), .ok(canonical: "spam@example.org"))
        // Not one of our domains: the store decides as for any address.
        XCTAssertEqual(try hook.lookup("spam@elsewhere.example", user: "alice@example.org", services: services)?.wait(), .notLocal)
    }
}
