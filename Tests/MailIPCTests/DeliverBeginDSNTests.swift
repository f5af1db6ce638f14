// DeliverBegin's RFC 3461 fields: round trips (whole, byte at a time, several in one buffer),
// the "NOTIFY not given" marker, and strict refusals (a NOTIFY mask over 7, a count mismatch).
import XCTest
import NIOCore
import MailModel
@testable import MailIPC

final class DeliverBeginDSNTests: XCTestCase {
    let withDSN = DeliverBegin(sender: "u@dom.example", recipients: ["x@remote.example", "y@remote.example", "z@remote.example"], session: 3,
                               envelopeDSN: QueueEnvelopeDSN(ret: "HDRS", envid: "abc+def"),
                               recipientDSN: [QueueRecipientDSN(notify: 3, orcpt: "rfc822;x@remote.example"),
                                              QueueRecipientDSN(),
                                              QueueRecipientDSN(notify: 0, orcpt: "")])

    func decode(_ bytes: [UInt8]) throws -> [any RPCMessage] {
        var buf = ByteBuffer(bytes: bytes), out: [any RPCMessage] = []
        let decoder = FrameDecoder(maxFrame: 1 << 20)
        while let f = try decoder.decode(&buf) { out.append(try decodeAnyMessage(f)) }
        return out
    }

    func encoded(_ m: DeliverBegin) -> [UInt8] {
        var b = ByteBuffer(); m.frame(requestID: 5, flags: []).write(into: &b); return Array(b.readableBytesView)
    }

    func testRoundTrips() throws {
        let plain = DeliverBegin(sender: "", recipients: ["a@b"], session: 0)
        for m in [withDSN, plain] {
            let got = try decode(encoded(m))
            XCTAssertEqual(got.count, 1)
            XCTAssertEqual(got.first as? DeliverBegin, m)
        }
        XCTAssertEqual(withDSN.dsn(ofRecipient: 0).notify, 3)
        XCTAssertNil(withDSN.dsn(ofRecipient: 1).notify, "not given survives the wire")
        XCTAssertEqual(withDSN.dsn(ofRecipient: 2).notify, 0, "NEVER survives the wire")
        XCTAssertEqual(plain.dsn(ofRecipient: 0), QueueRecipientDSN())
        // Several in one buffer, and one byte at a time.
        let two = encoded(withDSN) + encoded(plain)
        XCTAssertEqual(try decode(two).compactMap { $0 as? DeliverBegin }, [withDSN, plain])
        var buf = ByteBuffer(), frames: [Frame] = []
        let decoder = FrameDecoder(maxFrame: 1 << 20)
        for byte in two {
            buf.writeInteger(byte)
            while let f = try decoder.decode(&buf) { frames.append(f) }
        }
        XCTAssertEqual(try frames.map { try decodeAnyMessage($0) as? DeliverBegin }, [withDSN, plain])
    }

    func testStrictDecoding() {
        func payload(notify: UInt8, count: Int, recipients: Int = 1) -> ByteBuffer {
            var w = WireWriter(ByteBuffer())
            w.string("a@b"); w.strings(Array(repeating: "c@d", count: recipients)); w.u64(0); w.string(""); w.string("")
            w.list(Array(repeating: notify, count: count)) { $0.u8($1); $0.string("") }
            return w.buffer
        }
        func decodes(_ p: ByteBuffer) -> Bool {
            (try? decodeAnyMessage(Frame(type: MessageType.deliverBegin.rawValue, requestID: 1, payload: p))) != nil
        }
        XCTAssertTrue(decodes(payload(notify: 7, count: 1)))
        XCTAssertTrue(decodes(payload(notify: 0xFF, count: 1)))
        XCTAssertTrue(decodes(payload(notify: 1, count: 0)), "no DSN at all")
        XCTAssertFalse(decodes(payload(notify: 8, count: 1)), "only SUCCESS, FAILURE, DELAY bits")
        XCTAssertFalse(decodes(payload(notify: 1, count: 2)), "one entry per recipient")
        XCTAssertFalse(decodes(payload(notify: 1, count: 1, recipients: 2)))
        // The pre-DSN form (no DSN fields) is truncated now: both ends are built together.
        var old = WireWriter(ByteBuffer()); old.string("a@b"); old.strings(["c@d"]); old.u64(0)
        XCTAssertFalse(decodes(old.buffer))
    }
}
