// FrameEncoder writes a large payload as it is, after its header (no copy), a small frame as one
// buffer; Pop3Bodies.Builder writes the wire form once, and the frame carries that very buffer.
import XCTest
import NIOCore
import NIOEmbedded
@testable import MailIPC

final class FrameWriteTests: XCTestCase {
    /// The buffers a channel wrote for `frames`, in order.
    func written(_ frames: [Frame]) throws -> [ByteBuffer] {
        let ch = EmbeddedChannel(handler: FrameEncoder())
        for f in frames { try ch.writeOutbound(f) }
        var out: [ByteBuffer] = []
        while let b = try ch.readOutbound(as: ByteBuffer.self) { out.append(b) }
        _ = try ch.finish()
        return out
    }

    func base(_ b: ByteBuffer) -> UnsafeRawPointer? { b.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) } }

    func testFramesOfEverySizeDecodeBackAndLargePayloadsAreNotCopied() throws {
        let sizes = [0, 1, 100, FrameEncoder.copyBelow - 1, FrameEncoder.copyBelow, 300 * 1024]
        let frames = sizes.enumerated().map { i, n in
            Frame(type: 7, flags: UInt16(i % 2), requestID: UInt32(i + 1), payload: ByteBuffer(bytes: (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }))
        }
        let out = try written(frames)
        var all = ByteBuffer()
        for var b in out { all.writeBuffer(&b) }
        var back: [Frame] = []
        while let f = try FrameDecoder(maxFrame: 1 << 20).decode(&all) { back.append(f) }
        XCTAssertEqual(back, frames)
        XCTAssertEqual(all.readableBytes, 0)
        // One buffer per small frame; a header and the payload itself per large one.
        let small = sizes.filter { $0 < FrameEncoder.copyBelow }.count, large = sizes.count - small
        XCTAssertEqual(out.count, small + 2 * large)
        for f in frames where f.payload.readableBytes >= FrameEncoder.copyBelow {
            XCTAssertTrue(out.contains { base($0) == base(f.payload) && $0.readableBytes == f.payload.readableBytes },
                          "the \(f.payload.readableBytes)-byte payload went out as it was")
        }
    }

    func testPop3BodiesBuilderWritesTheWireFormOnce() throws {
        let bodies: [(UInt32, [UInt8])] = [(3, Array("Subject: a\r\n\r\n.x\r\n".utf8)), (9, []), (12, (0..<20_000).map { UInt8($0 % 251) })]
        var b = Pop3Bodies.Builder(capacity: 64)
        for (uid, bytes) in bodies { bytes.withUnsafeBytes { b.append(uid: uid, bytes: $0) } }
        XCTAssertEqual(b.count, 3)
        let built = b.build()
        let plain = Pop3Bodies(bodies.map { Pop3Body(uid: $0.0, bytes: ByteBuffer(bytes: $0.1)) })
        XCTAssertEqual(built, plain)
        // The same bytes as the message written field by field, and they decode back.
        let encoded = try XCTUnwrap(built.encodedPayload)
        var w = WireWriter(ByteBuffer())
        plain.write(to: &w)
        XCTAssertEqual(encoded, w.buffer)
        XCTAssertEqual(try Pop3Bodies.decode(built.frame(requestID: 5)), plain)
        // The frame carries the built buffer itself, and each body is a slice of it.
        let frame = built.frame(requestID: 5)
        XCTAssertEqual(base(frame.payload), base(encoded))
        let start = try XCTUnwrap(base(encoded))
        XCTAssertEqual(base(built.bodies[2].bytes), start + (4 + 8 + bodies[0].1.count + 8 + 0 + 8))
    }
}
