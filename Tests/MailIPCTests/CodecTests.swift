// Frame and message codec: round trips, strictness, byte-at-a-time and many-in-one framing.
import XCTest
import NIOCore
@testable import MailIPC

final class CodecTests: XCTestCase {
    static let all: [IPCMessage] = IPCFuzz.samples + [
        .ok, .deliverEnd, .domainList, .queueList, .status, .reload,
        .helloOK(major: 1, minor: 0, role: "lmtpd"), .recipient(.notLocal, "x@y"),
        .authenticate(user: "u@d", password: "p w"), .session(42, "u@d"), .sessionEnd(42),
        .mailboxList(session: 1, user: ""), .domainAdd("d"), .domainRemove("d"), .names(["a", "b"]),
        .userAdd("u@d", password: "x"), .userRemove("u@d"), .userPasswd("u@d", password: "y"), .userList(""),
        .aliasAdd("a@d", "b@d"), .aliasRemove("a@d", ""), .aliasList("d"), .export(user: "u@d", mailbox: "INBOX"),
        .exportChunk(ByteBuffer(bytes: [0, 1, 2, 255])), .exportEnd(3), .attach(role: "admin"),
        .lookupRecipient("ünïcödé@exämple.org"), .lookup(map: "aliases", key: "a b@c"), .lookupResult(found: true, value: "x@y,z@w"),
    ]

    func encode(_ m: IPCMessage, id: UInt32 = 9) -> [UInt8] {
        var b = ByteBuffer(); m.frame(requestID: id).write(into: &b); return Array(b.readableBytesView)
    }

    func testEveryMessageRoundTrips() throws {
        for m in Self.all {
            var buf = ByteBuffer(bytes: encode(m))
            let f = try XCTUnwrap(try FrameDecoder(maxFrame: 1 << 20).decode(&buf))
            XCTAssertEqual(f.requestID, 9)
            XCTAssertEqual(try IPCMessage.decode(f), m)
            XCTAssertEqual(buf.readableBytes, 0)
        }
        // Every type number is covered by a sample.
        XCTAssertEqual(Set(Self.all.map(\.type)), Set(MessageType.allCases))
    }

    func testHeaderLayoutIsBigEndian() {
        let bytes = encode(.lookupRecipient("a"), id: 0x01020304)
        XCTAssertEqual(Array(bytes[0..<12]), [0, 0, 0, 5, 0, 10, 0, 0, 1, 2, 3, 4])
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
        var f = IPCMessage.lookupRecipient("a").frame(requestID: 1)
        f.payload.writeInteger(UInt8(0))
        XCTAssertThrowsError(try IPCMessage.decode(f)) { XCTAssertEqual($0 as? WireError, .trailingBytes(1)) }
        // truncated
        var g = IPCMessage.lookupRecipient("abc").frame(requestID: 1)
        g.payload.moveWriterIndex(to: g.payload.writerIndex - 1)
        XCTAssertThrowsError(try IPCMessage.decode(g)) { XCTAssertEqual($0 as? WireError, .truncated) }
        // unknown type
        XCTAssertThrowsError(try IPCMessage.decode(Frame(type: 999, requestID: 1, payload: ByteBuffer()))) {
            XCTAssertEqual($0 as? WireError, .unknownType(999))
        }
        // invalid UTF-8, even when it has the same length as its repaired form
        var w = WireWriter(ByteBuffer()); w.u32(3); w.buffer.writeBytes([0xF0, 0x9F, 0x98])
        XCTAssertThrowsError(try IPCMessage.decode(Frame(type: MessageType.lookupRecipient.rawValue, requestID: 1, payload: w.buffer))) {
            XCTAssertEqual($0 as? WireError, .badUTF8)
        }
        // a bool that is not 0/1
        var s = WireWriter(ByteBuffer()); s.string("INBOX"); s.string(""); s.u32(1); s.u32(1); s.u64(1); s.u32(0); s.u8(2)
        var p = WireWriter(ByteBuffer()); p.u32(1); var sb = s.buffer; p.buffer.writeBuffer(&sb)
        XCTAssertThrowsError(try IPCMessage.decode(Frame(type: MessageType.mailboxes.rawValue, requestID: 1, payload: p.buffer)))
        // a huge element count cannot make the decoder allocate
        var n = WireWriter(ByteBuffer()); n.u32(UInt32.max)
        XCTAssertThrowsError(try IPCMessage.decode(Frame(type: MessageType.names.rawValue, requestID: 1, payload: n.buffer)))
    }

    func testOversizedFrameIsRefusedBeforeItArrives() {
        var b = ByteBuffer(); b.writeInteger(UInt32(2 << 20)); b.writeInteger(UInt16(1)); b.writeInteger(UInt16(0)); b.writeInteger(UInt32(1))
        XCTAssertThrowsError(try FrameDecoder(maxFrame: 1 << 20).decode(&b)) { XCTAssertEqual($0 as? WireError, .frameTooLarge(2 << 20)) }
    }

    func testIncompleteFrameNeedsMoreBytes() throws {
        let bytes = encode(.lookupRecipient("alice@example.org"))
        for cut in 0..<bytes.count {
            var b = ByteBuffer(bytes: bytes[0..<cut])
            XCTAssertNil(try FrameDecoder(maxFrame: 1 << 20).decode(&b))
        }
    }

    func testFuzzLoopNeverCrashes() {
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
        for r in Role.allCases { XCTAssertTrue(r.may(.hello)); XCTAssertFalse(r.may(.attach)); XCTAssertFalse(r.may(.mailboxChanged)) }
    }
}
