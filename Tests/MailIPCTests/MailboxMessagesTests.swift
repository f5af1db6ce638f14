// The mailbox family's codec (Messages+Mailbox.swift): round trips, truncation and trailing
// bytes refused for every message, canonical UID sets, bounded lists, SEARCH programs bounded in
// depth and size, and the roles that may send each request.
import XCTest
import NIOCore
import MailModel
@testable import MailIPC

final class MailboxMessagesTests: XCTestCase {
    /// The samples of the mailbox family, and the by-id watch.
    static let family: [any RPCMessage] = IPCFuzz.samples.filter { $0.type.family == .mailbox || $0.type == .mailboxWatchByID }

    func frame(_ type: MessageType, _ write: (inout WireWriter) -> Void) -> Frame {
        var w = WireWriter(ByteBuffer()); write(&w)
        return Frame(type: type.rawValue, requestID: 1, payload: w.buffer)
    }

    func testEveryMailboxMessageHasASampleAndRoundTrips() throws {
        let types = Set(MessageType.allCases.filter { $0.family == .mailbox })
        XCTAssertEqual(Set(Self.family.map(\.type)).subtracting([.mailboxWatchByID]), types)
        for m in Self.family {
            let f = m.frame(requestID: 5)
            XCTAssertTrue(sameMessage(try decodeAnyMessage(f), m), "\(m)")
            XCTAssertEqual(try decodeAnyMessage(f).payload(), f.payload, "canonical: \(m.type)")
        }
    }

    func testTruncatedAndPaddedPayloadsAreRefused() {
        for m in Self.family {
            let f = m.frame(requestID: 5)
            for cut in 0..<f.payload.readableBytes {
                var g = f
                g.payload.moveWriterIndex(to: g.payload.readerIndex + cut)
                XCTAssertThrowsError(try decodeAnyMessage(g), "\(m.type) cut at \(cut)")
            }
            var h = f
            h.payload.writeInteger(UInt8(0))
            XCTAssertThrowsError(try decodeAnyMessage(h), "\(m.type) with a trailing byte")
        }
    }

    func testUIDSetsTravelAsCanonicalRanges() throws {
        XCTAssertEqual(uidRanges([9, 1, 2, 3, 3, 7, 8, UInt32.max]), [1...3, 7...9, UInt32.max...UInt32.max])
        XCTAssertEqual(uidRanges([]), [])
        let m = UIDList([1, 2, 3, 4, 5, 100])
        XCTAssertEqual(m.payload().readableBytes, 4 + 2 * 8, "two ranges")
        XCTAssertEqual((try decodeAnyMessage(m.frame(requestID: 1)) as? UIDList)?.uids, [1, 2, 3, 4, 5, 100])
        // reversed, overlapping and adjacent ranges are not canonical: refused (a UIDList keeps
        // SORT's order, SortMessagesTests, but names no UID twice)
        for ranges in [[(5, 1)], [(1, 5), (3, 9)], [(1, 5), (6, 9)], [(7, 9), (1, 7)]] as [[(UInt32, UInt32)]] {
            let f = frame(.uidList) { w in w.u32(UInt32(ranges.count)); for (a, b) in ranges { w.u32(a); w.u32(b) } }
            XCTAssertThrowsError(try decodeAnyMessage(f), "\(ranges)")
        }
        // more ranges than a set may have
        let scattered = UIDList((0..<UInt32(MailboxLimits.maxUIDRanges + 1)).map { $0 * 2 })
        XCTAssertThrowsError(try decodeAnyMessage(scattered.frame(requestID: 1)))
        // one range claiming every UID cannot make the decoder allocate it
        let huge = frame(.uidList) { w in w.u32(1); w.u32(1); w.u32(UInt32.max) }
        XCTAssertThrowsError(try decodeAnyMessage(huge)) { XCTAssertEqual($0 as? WireError, .badValue("UID set over \(MailboxLimits.maxUIDs) UIDs")) }
    }

    func testPerRequestBoundsAreEnforcedByTheDecoder() {
        // more UIDs than one DetailsGet may name
        let details = DetailsGet(session: 1, mailbox: 2, uids: Array(1...UInt32(MailboxLimits.detailsPerRequest + 1)))
        XCTAssertThrowsError(try decodeAnyMessage(details.frame(requestID: 1)))
        XCTAssertNoThrow(try decodeAnyMessage(DetailsGet(session: 1, mailbox: 2, uids: Array(1...UInt32(MailboxLimits.detailsPerRequest))).frame(requestID: 1)))
        // a read reply longer than a read may be
        XCTAssertThrowsError(try decodeAnyMessage(MessageBytes(ByteBuffer(repeating: 1, count: MailboxLimits.maxReadLength + 1)).frame(requestID: 1)))
        // flags outside the five system flags, a flag operation that does not exist
        let badFlags = frame(.flagsStore) { w in w.u64(1); w.i64(2); w.u32(0); w.u8(1); w.u32(1 << 9); w.u32(0); w.bool(false) }
        XCTAssertThrowsError(try decodeAnyMessage(badFlags))
        let badOp = frame(.flagsStore) { w in w.u64(1); w.i64(2); w.u32(0); w.u8(3); w.u32(1); w.u32(0); w.bool(false) }
        XCTAssertThrowsError(try decodeAnyMessage(badOp))
        // more keyword names than a mailbox can have
        let keywords = (0...maxKeywordsPerMailbox).map { "k\($0)" }
        XCTAssertThrowsError(try decodeAnyMessage(ViewHeader(summary: IPCFuzz.sampleSummary, keywords: keywords).frame(requestID: 1)))
        // a view chunk over its entry count
        let entries = (1...UInt32(MailboxLimits.entriesPerChunk + 1)).map { ViewEntry(uid: $0, modSeq: 1, flags: []) }
        XCTAssertThrowsError(try decodeAnyMessage(ViewChunk(entries).frame(requestID: 1)))
    }

    func testSearchProgramsRoundTripAndAreBounded() throws {
        func deep(_ n: Int) -> SearchQuery { (1..<n).reduce(SearchQuery.all) { q, _ in .not(q) } }
        let ok = SearchRun(session: 1, mailbox: 2, query: deep(MailboxLimits.searchMaxDepth))
        XCTAssertNil(SearchRun.problem(ok.query))
        XCTAssertTrue(sameMessage(try decodeAnyMessage(ok.frame(requestID: 1)), ok))
        // one level deeper: refused by the sender's check and by the decoder, never a crash
        let tooDeep = SearchRun(session: 1, mailbox: 2, query: deep(MailboxLimits.searchMaxDepth + 1))
        XCTAssertNotNil(SearchRun.problem(tooDeep.query))
        XCTAssertThrowsError(try decodeAnyMessage(tooDeep.frame(requestID: 1)))
        // a hostile depth far beyond the limit is refused at the limit (no deep recursion)
        let hostile = frame(.searchRun) { w in w.u64(1); w.i64(2); for _ in 0..<100_000 { w.u8(SearchCodec.Tag.not.rawValue) }; w.u8(0) }
        XCTAssertThrowsError(try decodeAnyMessage(hostile))
        // too many keys, even flat
        let wide = SearchRun(session: 1, mailbox: 2, query: .and(Array(repeating: .all, count: MailboxLimits.searchMaxNodes)))
        XCTAssertNotNil(SearchRun.problem(wide.query))
        XCTAssertThrowsError(try decodeAnyMessage(wide.frame(requestID: 1)))
        // an unknown key, a date relation that does not exist, a reversed UID range
        XCTAssertThrowsError(try decodeAnyMessage(frame(.searchRun) { w in w.u64(1); w.i64(2); w.u8(99) }))
        XCTAssertThrowsError(try decodeAnyMessage(frame(.searchRun) { w in w.u64(1); w.i64(2); w.u8(SearchCodec.Tag.sentDate.rawValue); w.u8(7); w.i64(1) }))
        XCTAssertThrowsError(try decodeAnyMessage(frame(.searchRun) { w in w.u64(1); w.i64(2); w.u8(SearchCodec.Tag.uids.rawValue); w.u32(1); w.u32(9); w.u32(2) }))
    }

    func testMailboxRolesAreReadOffTheMessages() {
        let imapOnly: [MessageType] = [.mailboxCreate, .mailboxDelete, .mailboxRename, .subscriptionList, .subscriptionSet, .mailboxStatusGet,
                                       .mailboxDeltaGet, .flagsStore, .messagesCopy, .searchRun, .appendBegin, .mailboxWatchByID, .quotaGet]
        let shared: [MessageType] = [.mailboxSummaries, .mailboxSelect, .detailsGet, .messageRead, .messagesExpunge]
        for t in imapOnly + shared {
            XCTAssertTrue(Role.imapd.may(t), "\(t)")
            XCTAssertEqual(Role.pop3d.may(t), shared.contains(t), "\(t)")
            for r in [Role.smtpd, .lmtpd, .lookupd, .admin] { XCTAssertFalse(r.may(t), "\(r) \(t)") }
        }
        // imapd sends APPEND bodies in delivery chunks, but can never begin a delivery
        XCTAssertTrue(Role.imapd.may(.deliverChunk)); XCTAssertTrue(Role.imapd.may(.deliverEnd)); XCTAssertTrue(Role.imapd.may(.deliverAbort))
        XCTAssertFalse(Role.imapd.may(.deliverBegin))
        XCTAssertFalse(Role.pop3d.may(.deliverChunk))
    }

    func testFuzzingTheMailboxFamilyStaysClean() {
        // IPCFuzz.one checks that whatever decodes re-encodes to its own payload.
        for m in Self.family {
            var b = ByteBuffer(); m.frame(requestID: 3).write(into: &b)
            let bytes = Array(b.readableBytesView)
            for i in stride(from: 12, to: bytes.count, by: 1) {
                var flipped = bytes; flipped[i] ^= 0x80
                _ = IPCFuzz.one(flipped)
                _ = IPCFuzz.one(Array(bytes.prefix(i)))
            }
        }
        let r = IPCFuzz.run(iterations: 5_000, seed: 200)
        XCTAssertGreaterThan(r.messages, 0)
    }
    func testViewEntriesAreFixedSizeAndStreamItemsAreTyped() throws {
        var entries = (1...10).map { ViewEntry(uid: UInt32($0), modSeq: UInt64($0), flags: .seen, keywords: 1 << 63, size: UInt32($0) * 5000) }
        entries[3].size = ViewEntry.unknownSize
        XCTAssertEqual(ViewChunk(entries).payload().readableBytes, 4 + 10 * 28, "uid 4 + modseq 8 + flags 4 + keywords 8 + size 4")
        XCTAssertEqual(try MailboxViewItem.decode(ViewChunk(entries).frame(requestID: 1, flags: .more)), .chunk(entries))
        XCTAssertThrowsError(try MailboxViewItem.decode(ViewEnd(count: 1).frame(requestID: 1))) {
            XCTAssertEqual($0 as? WireError, .unexpectedType(MessageType.viewEnd.rawValue))
        }
        // the largest chunk the store sends stays far below a frame
        let full = (1...UInt32(MailboxLimits.entriesPerChunk)).map { ViewEntry(uid: $0, modSeq: 1, flags: []) }
        XCTAssertLessThan(ViewChunk(full).payload().readableBytes, RPCLimits.defaultMaxFrame / 8)
    }
}
