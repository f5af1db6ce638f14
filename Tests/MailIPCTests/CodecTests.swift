// Frame and message codec: round trips, strictness, byte-at-a-time and many-in-one framing,
// the numbering authority's ranges, and role allow-lists read off the messages.
import XCTest
import NIOCore
@testable import MailIPC

final class CodecTests: XCTestCase {
    static let all: [any RPCMessage] = IPCFuzz.samples + [
        LookupRecipient("ünïcödé@exämple.org"), Attach(role: .lmtpd), RecipientReply(.ok, "a@b"),
        Lookup(map: .senders, key: ""), DeliverResult([]), Changes(state: MailboxState(uidValidity: 0, uidNext: 0, highestModSeq: 0, messages: 0), messages: [], complete: false),
    ]

    func encode(_ m: any RPCMessage, id: UInt32 = 9) -> [UInt8] {
        var b = ByteBuffer(); m.frame(requestID: id, flags: []).write(into: &b); return Array(b.readableBytesView)
    }

    func testEveryMessageRoundTrips() throws {
        for m in Self.all {
            var buf = ByteBuffer(bytes: encode(m))
            let f = try XCTUnwrap(try FrameDecoder(maxFrame: 1 << 20).decode(&buf))
            XCTAssertEqual(f.requestID, 9)
            XCTAssertTrue(sameMessage(try decodeAnyMessage(f), m), "\(m)")
            XCTAssertEqual(buf.readableBytes, 0)
        }
        // Every type number is covered by a sample.
        XCTAssertEqual(Set(Self.all.map(\.type)), Set(MessageType.allCases))
    }

    func testTypedDecodingRefusesAnotherType() throws {
        let f = LookupRecipient("a@b").frame(requestID: 1)
        XCTAssertThrowsError(try RecipientReply.decode(f)) { XCTAssertEqual($0 as? WireError, .unexpectedType(MessageType.lookupRecipient.rawValue)) }
        // An error reply becomes the RPCError of the call, with its code.
        XCTAssertThrowsError(try RPCError.reply(ErrorReply(.denied, "no").frame(requestID: 1), as: OK.self)) {
            XCTAssertEqual(($0 as? RPCError)?.code, .denied)
        }
        // A reply of the wrong type is refused in one place, not at each call site.
        XCTAssertThrowsError(try RPCError.reply(OK().frame(requestID: 1), as: RecipientReply.self)) {
            XCTAssertEqual(($0 as? RPCError)?.code, .internal)
        }
    }

    func testNumberingAuthority() {
        for t in MessageType.allCases {
            XCTAssertTrue(t.family.range.contains(t.rawValue))
            XCTAssertFalse(MessageType.retired.contains(t.rawValue), "\(t) reuses a retired number")
            XCTAssertEqual(t.message.type, t, "\(t) maps to a struct of another type")
        }
        let ranges = MessageFamily.allCases.map(\.range)
        for (i, a) in ranges.enumerated() { for b in ranges[(i + 1)...] { XCTAssertFalse(a.overlaps(b)) } }
    }

    func testHeaderLayoutIsBigEndian() {
        let bytes = encode(LookupRecipient("a"), id: 0x01020304)
        XCTAssertEqual(Array(bytes[0..<12]), [0, 0, 0, 13, 0, 10, 0, 0, 1, 2, 3, 4])
        var b = ByteBuffer(); ExportChunk(ByteBuffer()).frame(requestID: 1, flags: .more).write(into: &b)
        XCTAssertEqual(Array(b.readableBytesView[6..<8]), [0, 1], "flags bit 0: more frames follow")
    }

    func testByteAtATimeAndManyInOneBufferGiveTheSameFrames() throws {
        let stream = Self.all.enumerated().flatMap { encode($0.element, id: UInt32($0.offset + 1)) }
        let d = FrameDecoder(maxFrame: 1 << 20)
        var whole = ByteBuffer(bytes: stream), a: [Frame] = []
        while let f = try d.decode(&whole) { a.append(f) }
        var drip = ByteBuffer(), b: [Frame] = []
        for byte in stream {
            drip.writeInteger(byte)
            while let f = try d.decode(&drip) { b.append(f) }
        }
        XCTAssertEqual(a.count, Self.all.count)
        XCTAssertEqual(a, b)
    }

    func testStrictDecoding() {
        // trailing bytes
        var f = LookupRecipient("a").frame(requestID: 1)
        f.payload.writeInteger(UInt8(0))
        XCTAssertThrowsError(try decodeAnyMessage(f)) { XCTAssertEqual($0 as? WireError, .trailingBytes(1)) }
        // truncated
        var g = LookupRecipient("abc").frame(requestID: 1)
        g.payload.moveWriterIndex(to: g.payload.writerIndex - 1)
        XCTAssertThrowsError(try decodeAnyMessage(g)) { XCTAssertEqual($0 as? WireError, .truncated) }
        // unknown type
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: 999, requestID: 1, payload: ByteBuffer()))) {
            XCTAssertEqual($0 as? WireError, .unknownType(999))
        }
        // invalid UTF-8, even when it has the same length as its repaired form
        var w = WireWriter(ByteBuffer()); w.u32(3); w.buffer.writeBytes([0xF0, 0x9F, 0x98])
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.lookupRecipient.rawValue, requestID: 1, payload: w.buffer))) {
            XCTAssertEqual($0 as? WireError, .badUTF8)
        }
        // a bool that is not 0/1
        var s = WireWriter(ByteBuffer()); s.string("INBOX"); s.string(""); s.u32(1); s.u32(1); s.u64(1); s.u32(0); s.u8(2)
        var p = WireWriter(ByteBuffer()); p.u32(1); var sb = s.buffer; p.buffer.writeBuffer(&sb)
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.mailboxes.rawValue, requestID: 1, payload: p.buffer)))
        // a huge element count cannot make the decoder allocate
        var n = WireWriter(ByteBuffer()); n.u32(UInt32.max)
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.names.rawValue, requestID: 1, payload: n.buffer)))
        // enum fields must name a case: a map, a role, a status, a process state
        var m = WireWriter(ByteBuffer()); m.string("passwords"); m.string("k")
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.lookup.rawValue, requestID: 1, payload: m.buffer)))
        var r = WireWriter(ByteBuffer()); r.string("root")
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.attach.rawValue, requestID: 1, payload: r.buffer)))
        var st = WireWriter(ByteBuffer()); st.u32(1); st.u8(99)
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.deliverResult.rawValue, requestID: 1, payload: st.buffer)))
    }

    func testListCountsAreBoundedByTheNamedMinimumElementSize() throws {
        // Two elements claimed, room for one MailboxInfo at its minimum size: refused before allocating.
        var w = WireWriter(ByteBuffer()); w.u32(2)
        w.buffer.writeBytes([UInt8](repeating: 0, count: MailboxInfo.minBytes))
        XCTAssertThrowsError(try decodeAnyMessage(Frame(type: MessageType.mailboxes.rawValue, requestID: 1, payload: w.buffer))) {
            XCTAssertEqual($0 as? WireError, .truncated)
        }
        var r = WireReader(ByteBuffer(bytes: [0, 0, 0, 3, 1, 2, 3]))
        XCTAssertEqual(try r.list(minElementBytes: 1) { try $0.u8() }, [1, 2, 3])
        var big = WireReader(ByteBuffer(bytes: [0, 0, 0, 3, 1, 2, 3]))
        XCTAssertThrowsError(try big.list(minElementBytes: 1, max: 2) { try $0.u8() })
    }

    func testOversizedFrameIsRefusedBeforeItArrives() {
        var b = ByteBuffer(); b.writeInteger(UInt32(2 << 20)); b.writeInteger(UInt16(1)); b.writeInteger(UInt16(0)); b.writeInteger(UInt32(1))
        XCTAssertThrowsError(try FrameDecoder(maxFrame: 1 << 20).decode(&b)) { XCTAssertEqual($0 as? WireError, .frameTooLarge(2 << 20)) }
    }

    func testIncompleteFrameNeedsMoreBytes() throws {
        let bytes = encode(LookupRecipient("alice@example.org"))
        for cut in 0..<bytes.count {
            var b = ByteBuffer(bytes: bytes[0..<cut])
            XCTAssertNil(try FrameDecoder(maxFrame: 1 << 20).decode(&b))
        }
    }

    func testFuzzLoopNeverCrashes() {
        // IPCFuzz.one also checks that every decoded message re-encodes to its own payload.
        let r = IPCFuzz.run(iterations: 20_000, seed: 12345)
        XCTAssertGreaterThan(r.errors, 0)
        XCTAssertGreaterThan(r.messages, 0)
    }

    func testRoleAllowLists() {
        XCTAssertTrue(Role.lmtpd.may(.deliverBegin))
        XCTAssertFalse(Role.lmtpd.may(.domainAdd))
        XCTAssertFalse(Role.lmtpd.may(.export))
        XCTAssertFalse(Role.lookupd.may(.deliverBegin))
        XCTAssertFalse(Role.imapd.may(.lookupRecipient))
        XCTAssertTrue(Role.admin.may(.userAdd))
        XCTAssertTrue(Role.imapd.may(.mailboxWatch))
        XCTAssertFalse(Role.smtpd.may(.mailboxWatch))
        XCTAssertEqual(Role.lmtpd.allowedRequests, [.lookupRecipient, .deliverBegin, .deliverChunk, .deliverEnd, .deliverAbort])
        XCTAssertEqual(Role.lookupd.allowedRequests, [.lookupRecipient, .lookup])
        for r in Role.allCases {
            XCTAssertTrue(r.may(.hello)); XCTAssertFalse(r.may(.attach)); XCTAssertFalse(r.may(.status)); XCTAssertFalse(r.may(.mailboxChanged))
            // no reply or event type is ever a request
            for t in MessageType.allCases where !(t.message is any RPCRequest.Type) { XCTAssertFalse(r.may(t) && t != .hello) }
        }
    }
}
