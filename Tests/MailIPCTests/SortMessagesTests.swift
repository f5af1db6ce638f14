// SortRun / ThreadRun / ThreadReply and the ordered UIDList (Messages+Mailbox.swift): SORT's
// order survives the wire, an ascending list is the canonical set's bytes, and malformed
// forests, repeated UIDs and empty criteria are refused by the decoder.
import XCTest
import NIOCore
import MailModel
@testable import MailIPC

final class SortMessagesTests: XCTestCase {
    func frame(_ type: MessageType, _ write: (inout WireWriter) -> Void) -> Frame {
        var w = WireWriter(ByteBuffer()); write(&w)
        return Frame(type: type.rawValue, requestID: 1, payload: w.buffer)
    }

    func testUIDListKeepsSortOrder() throws {
        let order: [UInt32] = [9, 3, 4, 5, 1, 100, 2]
        XCTAssertEqual((try decodeAnyMessage(UIDList(order).frame(requestID: 1)) as? UIDList)?.uids, order)
        XCTAssertEqual(UIDList(order).payload().readableBytes, 4 + 5 * 8, "runs: 9, 3:5, 1, 100, 2")
        // ascending: the same bytes as a canonical UID set
        var w = WireWriter(ByteBuffer()); w.uidSet([1, 2, 3, 7])
        XCTAssertEqual(UIDList([1, 2, 3, 7]).payload(), w.buffer)
        // a repeated UID is written once
        XCTAssertEqual(UIDList([4, 2, 4]).frame(requestID: 1).payload.readableBytes, 4 + 2 * 8)
        // a UID twice, or a run cut in two, is refused
        for ranges in [[(7, 9), (1, 7)], [(3, 3), (1, 5)], [(1, 2), (3, 4)]] as [[(UInt32, UInt32)]] {
            let f = frame(.uidList) { w in w.u32(UInt32(ranges.count)); for (a, b) in ranges { w.u32(a); w.u32(b) } }
            XCTAssertThrowsError(try decodeAnyMessage(f), "\(ranges)")
        }
    }

    /// A whole mailbox's SORT answer: thousands of UIDs in another order, dense (one bit a UID
    /// finds the repeats) and sparse (a hash set does); a repeat is written once, and a list
    /// that names a UID twice is refused wherever the two are.
    func testLargeUIDListsDenseAndSparse() throws {
        var rng = SystemRandomNumberGenerator()
        for spread in [UInt32(1), 3, 1000] {
            let uids = (1...UInt32(5000)).map { $0 * spread }.shuffled(using: &rng)
            XCTAssertEqual((try decodeAnyMessage(UIDList(uids).frame(requestID: 1)) as? UIDList)?.uids, uids, "spread \(spread)")
            XCTAssertEqual((try decodeAnyMessage(UIDList(uids + uids.prefix(50)).frame(requestID: 1)) as? UIDList)?.uids, uids)
            // The list as written, then one of its UIDs again as a range of its own.
            var w = WireWriter(ByteBuffer()); w.orderedUIDs(uids)
            let ranges = w.buffer.getInteger(at: 0, as: UInt32.self)!
            let lastEnd = w.buffer.getInteger(at: w.buffer.writerIndex - 4, as: UInt32.self)!
            for again in [uids[10], uids[4000], uids.min()!, uids.max()!] where again != lastEnd &+ 1 {
                var body = w.buffer
                body.setInteger(ranges + 1, at: 0)
                body.writeInteger(again); body.writeInteger(again)
                XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.uidList.rawValue, requestID: 1, payload: body)),
                                     "spread \(spread): \(again) twice")
                let fine = w.buffer          // the same list without the repeat decodes
                XCTAssertEqual((try decodeAnyMessage(Frame(type: MessageType.uidList.rawValue, requestID: 1, payload: fine)) as? UIDList)?.uids, uids)
            }
        }
        var seen = UIDSeen(lo: 10, hi: 20, count: 11)
        XCTAssertTrue(seen.insert(10)); XCTAssertTrue(seen.insert(20)); XCTAssertFalse(seen.insert(10)); XCTAssertFalse(seen.insert(20))
    }

    func testSortAndThreadRequestsRoundTrip() throws {
        let s = SortRun(session: 3, mailbox: 4, criteria: SortCriterion.Key.allCases.map { SortCriterion($0, reverse: $0.rawValue % 2 == 0) },
                        query: .or(.header("Subject", "x"), .uids([1...9])))
        XCTAssertEqual(try decodeAnyMessage(s.frame(requestID: 2)) as? SortRun, s)
        let t = ThreadRun(session: 3, mailbox: 4, algorithm: .orderedSubject, query: .all)
        XCTAssertEqual(try decodeAnyMessage(t.frame(requestID: 2)) as? ThreadRun, t)
        XCTAssertEqual(SortRun.roles, [.imapd]); XCTAssertEqual(ThreadRun.roles, [.imapd])
        // no criteria, an unknown key, an unknown algorithm
        XCTAssertThrowsError(try decodeAnyMessage(frame(.sortRun) { w in w.u64(1); w.i64(2); w.u32(0); w.u8(0) }))
        XCTAssertThrowsError(try decodeAnyMessage(frame(.sortRun) { w in w.u64(1); w.i64(2); w.u32(1); w.u8(99); w.bool(false); w.u8(0) }))
        XCTAssertThrowsError(try decodeAnyMessage(frame(.threadRun) { w in w.u64(1); w.i64(2); w.u8(7); w.u8(0) }))
    }

    func testThreadReplyShapeIsChecked() throws {
        let good = ThreadReply(ThreadForest([.init(uid: 0, children: 2), .init(uid: 3, children: 1), .init(uid: 4, children: 0),
                                             .init(uid: 5, children: 0), .init(uid: 1, children: 0)]))
        XCTAssertEqual((try decodeAnyMessage(good.frame(requestID: 1)) as? ThreadReply)?.forest, good.forest)
        for nodes in [[(1, 1)], [(1, 0), (1, 0)], [(1, 2), (2, 0)], [(0, 3), (2, 0), (3, 0)]] as [[(UInt32, UInt32)]] {
            let f = frame(.threadReply) { w in w.u32(UInt32(nodes.count)); for (u, c) in nodes { w.u32(u); w.u32(c) } }
            XCTAssertThrowsError(try decodeAnyMessage(f), "\(nodes)")
        }
    }
}
