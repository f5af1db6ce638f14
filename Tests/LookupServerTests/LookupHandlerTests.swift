// The lookupd glue through a fake store (MailTesting.FakeStorePeer): tcp_table and socketmap
// requests become typed Lookup requests, answers are encoded in order, a store error or a
// store that does not answer in time gives Postfix a temporary failure (so it defers).
import XCTest
import NIOCore
import NIOEmbedded
import Logging
import LookupProtocol
import MailIPC
import MailTesting
@testable import LookupServer

final class LookupHandlerTests: XCTestCase {
    let settings = LookupSettings(limits: LookupLimits(maxKeyLength: 64, maxRequestLength: 256), idleTimeout: .seconds(60))

    /// The fake store: alice exists, every domain but "down.test" answers, "slow@…" never answers.
    func answer(_ m: any RPCMessage) -> (any RPCMessage)? {
        guard let l = m as? Lookup else { return ErrorReply(.invalid, "unexpected") }
        if l.key.hasPrefix("slow@") { return nil }
        if l.key.hasSuffix("@down.test") { return ErrorReply(.temporary, "store trouble") }
        if l.map == .recipients && l.key == "alice@example.org" { return LookupResult(found: true, value: "OK") }
        if l.map == .aliases && l.key == "team@example.org" { return LookupResult(found: true, value: "a@example.org,b@example.org") }
        return LookupResult(found: false, value: "")
    }

    func pipe(_ kind: LookupListenerKind) throws -> (EmbeddedPipe, FakeStorePeer) {
        let loop = EmbeddedEventLoop()
        let peer = try FakeStorePeer(loop: loop, timeout: .seconds(2), answer: answer)
        let handler = LookupHandler(kind: kind, settings: settings, rpc: peer.rpc, logger: Logger(label: "test"))
        let p = try EmbeddedPipe(channel: EmbeddedChannel(loop: loop), [handler])
        return (p, peer)
    }

    func testTCPTableAnswersInOrderThroughTypedLookups() throws {
        let (p, peer) = try pipe(.tcpTable("recipients"))
        // Pipelined: answered one at a time, in order.
        try p.feed("get alice@example.org\nget nobody@example.org\nput x y\nget alice%40example.org\n")
        try peer.pump()
        XCTAssertEqual(try p.written(), "200 OK\n500 not found\n500 read-only%20table\n200 OK\n")
        XCTAssertEqual(peer.requests.compactMap { $0 as? Lookup }, [Lookup(map: .recipients, key: "alice@example.org"),
                                                                    Lookup(map: .recipients, key: "nobody@example.org"),
                                                                    Lookup(map: .recipients, key: "alice@example.org")])
    }

    func testSocketmapNamesTheMapAndRefusesUnknownOnes() throws {
        let (p, peer) = try pipe(.socketmap)
        try p.feed("24:aliases team@example.org,14:passwords root,")
        try peer.pump()
        let out = try p.written()
        XCTAssertTrue(out.hasPrefix("30:OK a@example.org,b@example.org,"), out)
        XCTAssertTrue(out.contains("PERM no such map: passwords"), out)
        XCTAssertEqual(peer.requests.count, 1, "an unknown map never reaches the store")
    }

    func testStoreFailureAndStoreSilenceAreTemporary() throws {
        let (p, peer) = try pipe(.tcpTable("recipients"))
        try p.feed("get x@down.test\n")
        try peer.pump()
        XCTAssertTrue(try p.written().hasPrefix("400 "), "a store error defers, never bounces")
        try p.feed("get slow@example.org\nget alice@example.org\n")
        try peer.pump()
        XCTAssertEqual(try p.written(), "", "waiting for the store")
        p.channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        try peer.pump()
        XCTAssertEqual(try p.written(), "400 store%20did%20not%20answer%20in%20time\n200 OK\n")
    }

    func testALostStoreIsTemporary() throws {
        let (p, peer) = try pipe(.tcpTable("recipients"))
        try peer.disconnect()
        try p.feed("get alice@example.org\n")
        try peer.pump()
        XCTAssertTrue(try p.written().hasPrefix("400 "))
    }
}
