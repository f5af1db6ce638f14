// The queue family's wire forms: round trips of the agent's and the administrator's messages
// (every sample also runs through CodecTests), strict bounds, and the outbound role's
// allow-list: the agent's four requests and nothing else.
import XCTest
import NIOCore
import MailModel
@testable import MailIPC

final class QueueMessagesTests: XCTestCase {
    func roundTrip<M: RPCMessage>(_ m: M) throws -> M { try M.decode(m.frame(requestID: 3)) }

    func testQueueMessagesRoundTrip() throws {
        let queue = IPCFuzz.samples.filter { $0.type.family == .queue }
        XCTAssertEqual(Set(queue.map(\.type)), Set(MessageType.allCases.filter { $0.family == .queue }))
        for m in queue { XCTAssertTrue(sameMessage(try decodeAnyMessage(m.frame(requestID: 3)), m), "\(m)") }
        // Optional fields absent and present come back as they were.
        let r = QueueRecipient(id: 1, address: "a@b", attempts: 0, firstAttempt: nil, lastReply: "", warned: false, dsn: QueueRecipientDSN(notify: 0))
        let job = QueueJob(message: 1, sender: "", size: 0, created: 0, origin: .bounce, recipients: [r], leaseUntil: 0)
        XCTAssertEqual(try roundTrip(QueueJobs(QueueClaim(jobs: [job], nextDue: nil))).claim.jobs, [job])
        XCTAssertEqual(try roundTrip(QueueJobs(QueueClaim(jobs: [job], nextDue: 0))).claim.nextDue, 0)
        var withBody = job
        withBody.size = 5
        withBody.body = Array("hello".utf8)
        XCTAssertEqual(try roundTrip(QueueJobs(QueueClaim(jobs: [job, withBody], nextDue: nil))).claim.jobs, [job, withBody])
        // A body whose length is not the job's size is refused.
        withBody.size = 4
        XCTAssertThrowsError(try roundTrip(QueueJobs(QueueClaim(jobs: [withBody], nextDue: nil))))
    }

    func testBoundsAreRefused() {
        var w = WireWriter(ByteBuffer()); w.u32(60); w.u32(UInt32(QueueLimits.maxClaim + 1))
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.queueClaim.rawValue, requestID: 1, payload: w.buffer)))
        // an unknown outcome kind
        var k = WireWriter(ByteBuffer()); k.u32(1); k.i64(1); k.u8(9); k.string(""); k.i64(0); k.bool(false); k.bool(false)
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.queueReport.rawValue, requestID: 1, payload: k.buffer)))
        // a notice larger than a report may carry
        let big = QueueReport(results: [], notice: QueueNotice(recipient: "a@b", body: Array(repeating: 65, count: QueueLimits.maxNoticeBytes + 1)))
        XCTAssertThrowsError(try decodeAnyMessage(big.frame(requestID: 1)))
        // an unknown origin or admin action
        var a = WireWriter(ByteBuffer()); a.u8(99); a.bool(false)
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.queueAdmin.rawValue, requestID: 1, payload: a.buffer)))
    }

    /// DESIGN §4: the agent's role claims, reads, reports and watches — nothing else.
    func testOutboundRoleAllowsExactlyTheAgentsRequests() {
        XCTAssertEqual(Role.outbound.allowedRequests, [.queueClaim, .queueRead, .queueReport, .queueWatch])
        XCTAssertTrue(Role.outbound.may(.hello))
        for t in [MessageType.queueList, .queueEntriesGet, .queueAdmin] { XCTAssertEqual(t.roles, [.admin], "\(t)") }
        for r in Role.allCases where r != .outbound {
            XCTAssertTrue(r.allowedRequests.isDisjoint(with: Role.outbound.allowedRequests), "\(r)")
        }
    }
}
