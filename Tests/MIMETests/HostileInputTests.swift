// Hostile and large inputs: deep nesting, huge part counts, random and mutated bytes, a 20 MB
// message. Asserts correctness and limits (never timing): no crash, offsets in bounds.

import MIME
import MailSyntax
import XCTest

final class HostileInputTests: XCTestCase {

    /// 200 nested multiparts, each with its own boundary.
    func testDeepMultipartNestingIsLimited() {
        var lines: [String] = ["Content-Type: multipart/mixed; boundary=b0", ""]
        for d in 1..<200 {
            lines += ["--b\(d - 1)", "Content-Type: multipart/mixed; boundary=b\(d)", ""]
        }
        lines += ["--b199", "", "deepest"]
        for d in stride(from: 199, through: 0, by: -1) { lines.append("--b\(d)--") }
        let m = message(lines)
        let info = MessageParser.parse(m)
        assertValid(info)
        XCTAssertEqual(depthOf(info.body), 33) // 32 parsed containers + the opaque leaf
        var p = info.body
        while let c = p.parts.first { p = c }
        XCTAssertEqual("\(p.type)/\(p.subtype)", "application/octet-stream")
        XCTAssertTrue(bodyText(m, p).contains("deepest"))

        let shallow = MessageParser.parse(m, limits: MIMELimits(maxDepth: 3))
        assertValid(shallow)
        XCTAssertEqual(depthOf(shallow.body), 4)
        let huge = MessageParser.parse(m, limits: MIMELimits(maxDepth: 1_000_000))
        assertValid(huge)
        XCTAssertEqual(depthOf(huge.body), MIMELimits.hardMaxDepth + 1)
    }

    /// 200 nested message/rfc822 and a nest of multiparts sharing one boundary.
    func testDeepMessageNestingAndRepeatedBoundary() {
        var lines: [String] = []
        for _ in 0..<200 { lines += ["Subject: level", "Content-Type: message/rfc822", ""] }
        lines += ["Subject: last", "", "innermost"]
        let info = MessageParser.parse(message(lines))
        assertValid(info)
        XCTAssertEqual(depthOf(info.body), 33)

        var same: [String] = []
        for _ in 0..<500 { same += ["Content-Type: multipart/mixed; boundary=same", "", "--same"] }
        same += ["", "x", "--same--"]
        let s = MessageParser.parse(message(same))
        assertValid(s)
    }

    func testFiftyThousandPartsAreLimited() {
        var m = Array("Content-Type: multipart/mixed; boundary=p\r\n\r\n".utf8)
        for i in 0..<50_000 { m += Array("--p\r\nContent-Type: text/plain\r\n\r\npart \(i)\r\n".utf8) }
        m += Array("--p--\r\n".utf8)
        let info = MessageParser.parse(m)
        assertValid(info)
        XCTAssertEqual(info.partCount, 10_000)
        XCTAssertEqual(info.body.parts.count, 9_999)
        XCTAssertEqual(bodyText(m, info.body.parts[9_998]), "part 9998")
        XCTAssertEqual(info.body.bodyEnd, m.count)

        let small = MessageParser.parse(m, limits: MIMELimits(maxParts: 100))
        assertValid(small)
        XCTAssertEqual(small.partCount, 100)
        let one = MessageParser.parse(m, limits: MIMELimits(maxParts: 1))
        assertValid(one)
        XCTAssertEqual(shape(one.body), "application/octet-stream")
    }

    /// Many nested parts of both kinds under the part limit: containers beyond it become leaves.
    func testPartLimitWithNestedContainers() {
        var m = Array("Content-Type: multipart/mixed; boundary=o\r\n\r\n".utf8)
        for i in 0..<300 {
            m += Array("--o\r\nContent-Type: multipart/alternative; boundary=i\(i)\r\n\r\n--i\(i)\r\n\r\na\r\n--i\(i)\r\n\r\nb\r\n--i\(i)--\r\n".utf8)
            m += Array("--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\nbody\r\n".utf8)
        }
        m += Array("--o--\r\n".utf8)
        for limit in [1, 2, 3, 5, 50, 777, 10_000] {
            let info = MessageParser.parse(m, limits: MIMELimits(maxParts: limit))
            assertValid(info)
            XCTAssertLessThanOrEqual(info.partCount, limit)
        }
    }

    /// Random bytes, and mutations of valid messages (flips, inserted delimiters, truncation,
    /// splices): must not crash, invariants must hold, the codec must round-trip.
    func testFuzzLoop() {
        var rng = SplitMix(seed: 0x5EED_0F_4D_1E)
        let seeds = MessageParserTests.cases.map(\.bytes).filter { !$0.isEmpty }
        let tokens: [[UInt8]] = ["\r\n", "\n", "--", "--b1", "--outer--", "--X\r\n", ":", ";", "\"", "(", "<", "@",
                                 "Content-Type: multipart/mixed; boundary=X\r\n", "Content-Type: message/rfc822\r\n",
                                 "\r\n\r\n", " ", "\u{0}", "\u{FF}"].map { Array($0.utf8) }
        for iteration in 0..<2_000 {
            var input: [UInt8]
            if iteration % 4 == 0 {
                input = (0..<Int.random(in: 0..<600, using: &rng)).map { _ in
                    // Bias towards structural bytes so random input reaches the interesting paths.
                    Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng)
                        : Array("-\r\n:;\"<>@( Xb".utf8).randomElement(using: &rng)!
                }
            } else {
                input = seeds.randomElement(using: &rng)!
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    guard !input.isEmpty else { break }
                    let at = Int.random(in: 0..<input.count, using: &rng)
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: input[at] = UInt8.random(in: 0...255, using: &rng)
                    case 1: input.insert(contentsOf: tokens.randomElement(using: &rng)!, at: at)
                    case 2: input.removeSubrange(at..<min(input.count, at + Int.random(in: 1...40, using: &rng)))
                    case 3: input = Array(input[..<at])
                    default:
                        let other = seeds.randomElement(using: &rng)!
                        let from = Int.random(in: 0..<other.count, using: &rng)
                        input.insert(contentsOf: other[from...], at: at)
                    }
                }
            }
            let info = MessageParser.parse(input)
            XCTAssertNil(info.invariantViolation(), "iteration \(iteration)")
            XCTAssertEqual(info.size, input.count)
            MessageParser.fuzz(input)
        }
    }

    /// A 20 MB message: one text part and a large base64 attachment.
    func testTwentyMegabyteMessage() {
        let b64Line = Array(String(repeating: "QUJDRA", count: 12).utf8) + [0x0D, 0x0A] // 74 bytes
        let lineCount = 20_000_000 / b64Line.count
        var m = Array("""
            From: big@example.com\r
            Subject: large\r
            Content-Type: multipart/mixed; boundary="==big=="\r
            \r
            --==big==\r
            Content-Type: text/plain\r
            \r
            hello\r
            --==big==\r
            Content-Type: application/octet-stream\r
            Content-Transfer-Encoding: base64\r
            Content-Disposition: attachment; filename=big.bin\r
            \r

            """.utf8)
        let attStart = m.count
        m.reserveCapacity(m.count + lineCount * b64Line.count + 32)
        for _ in 0..<lineCount { m += b64Line }
        let attEnd = m.count - 2
        m += Array("--==big==--\r\n".utf8)
        XCTAssertGreaterThanOrEqual(m.count, 20_000_000)

        let info = MessageParser.parse(m)
        assertValid(info)
        XCTAssertEqual(shape(info.body), "multipart/mixed(text/plain application/octet-stream)")
        XCTAssertEqual(info.envelope.subject, "large")
        guard let att = part(info, "2") else { return XCTFail("no attachment") }
        XCTAssertEqual(att.bodyStart, attStart)
        XCTAssertEqual(att.bodyEnd, attEnd)
        XCTAssertEqual(att.lines, lineCount - 1)   // the last CRLF belongs to the delimiter
        XCTAssertEqual(att.dispositionParameter("filename"), "big.bin")
        XCTAssertEqual(bodyText(m, part(info, "1")!), "hello")
        XCTAssertEqual(info.lines, m.split(separator: 0x0A, omittingEmptySubsequences: false).count - 1)

        // Single-part and LF-only variants of the same size.
        let flat = Array("Subject: flat\n\n".utf8) + [UInt8](repeating: 0x41, count: 20_000_000)
        let f = MessageParser.parse(flat)
        XCTAssertEqual(f.body.bodyStart, 15)
        XCTAssertEqual(f.body.lines, 0)   // no LF in the body
    }
}
