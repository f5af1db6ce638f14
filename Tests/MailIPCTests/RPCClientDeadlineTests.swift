// RPCClient's deadline through a fake store (MailTesting.FakeStorePeer): a request the store
// leaves unanswered fails .temporary when the deadline passes, its id leaves the pending table
// (the late reply is dropped), and the connection goes on serving.
import XCTest
import NIOCore
import NIOEmbedded
import MailIPC
import MailTesting

final class RPCClientDeadlineTests: XCTestCase {
    /// The fake store answers LookupRecipient at once, except for addresses starting "slow".
    func peer(timeout: TimeAmount?) throws -> FakeStorePeer {
        try FakeStorePeer(loop: EmbeddedEventLoop(), timeout: timeout) { m in
            if let l = m as? LookupRecipient, l.address.hasPrefix("slow") { return nil }
            if m is DeliverBegin || m is DeliverChunk || m is DeliverEnd { return nil }
            return RecipientReply(.ok, "alice@example.org")
        }
    }

    func testAnUnansweredCallFailsTemporaryAtTheDeadlineAndTheLateReplyIsDropped() throws {
        let p = try peer(timeout: .seconds(10))
        let loop = p.channel.embeddedEventLoop
        let slow = p.rpc.call(LookupRecipient("slow@example.org"))
        try p.pump()
        var got: Result<RecipientReply, Error>? = nil
        slow.whenComplete { got = $0 }
        loop.advanceTime(by: .seconds(9))
        XCTAssertNil(got, "still waiting before the deadline")
        loop.advanceTime(by: .seconds(1))
        guard case .failure(let e as RPCError)? = got else { return XCTFail("\(String(describing: got))") }
        XCTAssertEqual(e, RPCClient.timedOut)
        XCTAssertEqual(e.code, .temporary)

        // The store answers late: the reply finds no one waiting and is dropped; the connection
        // stays up and the next request is answered normally.
        var late = ByteBuffer()
        RecipientReply(.ok, "late@example.org").frame(requestID: 2).write(into: &late)
        try p.channel.writeInbound(late)
        XCTAssertTrue(p.rpc.isActive)
        let next = p.rpc.call(LookupRecipient("alice@example.org"))
        try p.pump()
        XCTAssertEqual(try next.wait().canonical, "alice@example.org")
    }

    func testAnAnsweredCallIsNotFailedByItsDeadline() throws {
        let p = try peer(timeout: .seconds(1))
        let f = p.rpc.call(LookupRecipient("alice@example.org"))
        try p.pump()
        p.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        XCTAssertEqual(try f.wait().status, .ok)
    }

    func testADeliveryTheStoreDoesNotAnswerFailsAtTheDeadline() throws {
        let p = try peer(timeout: .seconds(2))
        let f = p.rpc.deliver(DeliverBegin(sender: "s@x.org", recipients: ["alice@example.org"]), body: ByteBuffer(string: "Subject: x\r\n\r\n"))
        try p.pump()
        var got: Result<[RecipientStatus], Error>? = nil
        f.whenComplete { got = $0 }
        XCTAssertNil(got)
        p.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        guard case .failure(let e as RPCError)? = got else { return XCTFail("\(String(describing: got))") }
        XCTAssertEqual(e, RPCClient.timedOut)
    }

    func testWithoutATimeoutACallWaits() throws {
        let p = try peer(timeout: nil)
        let f = p.rpc.call(LookupRecipient("slow@example.org"))
        try p.pump()
        var got: Result<RecipientReply, Error>? = nil
        f.whenComplete { got = $0 }
        p.channel.embeddedEventLoop.advanceTime(by: .hours(1))
        XCTAssertNil(got)
        try p.disconnect()
        guard case .failure(let e as RPCError)? = got else { return XCTFail("\(String(describing: got))") }
        XCTAssertEqual(e, RPCError.connectionLost)
    }
}
