// Property test: random MIME trees (nested multiparts with prefix-related boundaries, message/rfc822,
// header-less parts, LF or CRLF) are rendered per RFC 2046 §5.1, parsed back, and compared exactly.

import MIME
import MailSyntax
import XCTest

final class GeneratedStructureTests: XCTestCase {
    indirect enum Node {
        case leaf(type: String, headers: Bool, body: String)
        case multipart(subtype: String, boundary: String, preamble: String, epilogue: String, children: [Node])
        case message(subject: String, inner: Node)

        var shape: String {
            switch self {
            case .leaf(let t, _, _): return t
            case .multipart(let st, _, _, _, let cs): return "multipart/\(st)(" + cs.map(\.shape).joined(separator: " ") + ")"
            case .message(_, let inner): return "message/rfc822[\(inner.shape)]"
            }
        }
    }

    struct Generator {
        var rng: SplitMix
        var nl: String
        var boundaries: [String] = []

        mutating func text(maxLines: Int) -> String {
            let words = ["alpha", "beta", "-dash", "- -", "x--y", "=?utf-8?q?x?=", "tab\there", "", " lead"]
            var lines: [String] = []
            for _ in 0..<Int.random(in: 0...maxLines, using: &rng) {
                lines.append((0..<Int.random(in: 0...4, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: " "))
            }
            var s = lines.joined(separator: nl)
            if Bool.random(using: &rng) && !s.isEmpty { s += nl }
            return s
        }

        /// Boundaries are often prefixes/extensions of enclosing ones (allowed to be confusing).
        mutating func boundary() -> String {
            if let outer = boundaries.randomElement(using: &rng), Bool.random(using: &rng) {
                return Bool.random(using: &rng) ? outer + "x" : String(outer.dropLast())
            }
            return "b" + String(Int.random(in: 0..<1000, using: &rng))
        }

        mutating func node(depth: Int) -> Node {
            let r = Int.random(in: 0..<(depth == 0 ? 5 : 10), using: &rng)
            if depth < 5 && r < 3 {
                var b = boundary()
                while b.isEmpty || boundaries.contains(b) { b += "q" }
                boundaries.append(b)
                defer { boundaries.removeLast() }
                let children = (0..<Int.random(in: 1...4, using: &rng)).map { _ in node(depth: depth + 1) }
                return .multipart(subtype: ["mixed", "alternative", "related"].randomElement(using: &rng)!, boundary: b,
                                  preamble: Bool.random(using: &rng) ? "" : "preamble" + nl,
                                  epilogue: Bool.random(using: &rng) ? "" : nl + "epilogue" + nl,
                                  children: children)
            }
            if depth < 5 && r == 3 {
                return .message(subject: "s\(depth)", inner: node(depth: depth + 1))
            }
            let headers = Int.random(in: 0..<4, using: &rng) != 0
            return .leaf(type: headers ? ["text/plain", "text/html", "image/png"].randomElement(using: &rng)! : "text/plain",
                         headers: headers, body: text(maxLines: 4))
        }

        /// header + blank line + body. Returns the rendering; `leaves` collects leaf bodies in order.
        func render(_ n: Node, _ leaves: inout [String]) -> String {
            switch n {
            case .leaf(let t, let headers, let body):
                leaves.append(body)
                return (headers ? "Content-Type: \(t)" + nl : "") + nl + body
            case .multipart(let st, let b, let pre, let epi, let children):
                var s = "Content-Type: multipart/\(st);" + nl + " boundary=\"\(b)\"" + nl + nl + pre
                for c in children { s += "--\(b)" + nl + render(c, &leaves) + nl }
                return s + "--\(b)--" + epi
            case .message(let subject, let inner):
                return "Content-Type: message/rfc822" + nl + nl + "Subject: \(subject)" + nl + render(inner, &leaves)
            }
        }
    }

    func collectLeaves(_ p: BodyPart, _ out: inout [BodyPart]) {
        if let m = p.message { collectLeaves(m.body, &out) } else if p.parts.isEmpty { out.append(p) }
        for c in p.parts { collectLeaves(c, &out) }
    }

    func lineCount(_ m: [UInt8], _ p: BodyPart) -> Int {
        let body = m[p.bodyStart..<p.bodyEnd]
        return body.filter { $0 == 0x0A }.count   // body-fld-lines: LFs, as Dovecot counts
    }

    func checkLines(_ m: [UInt8], _ p: BodyPart) {
        XCTAssertEqual(p.lines, lineCount(m, p))
        for c in p.parts { checkLines(m, c) }
        if let e = p.message { checkLines(m, e.body) }
    }

    func testRandomTreesRoundTrip() {
        for seed in 0..<1_000 {
            var g = Generator(rng: SplitMix(seed: UInt64(seed)), nl: seed % 3 == 0 ? "\n" : "\r\n")
            let tree = g.node(depth: 0)
            var leaves: [String] = []
            let m = Array(("From: a@b" + g.nl + g.render(tree, &leaves)).utf8)
            let info = MessageParser.parse(m)
            XCTAssertNil(info.invariantViolation(), "seed \(seed)")
            XCTAssertEqual(shape(info.body), tree.shape, "seed \(seed)")
            var parsed: [BodyPart] = []
            collectLeaves(info.body, &parsed)
            XCTAssertEqual(parsed.map { bodyText(m, $0) }, leaves, "seed \(seed)")
            checkLines(m, info.body)
            XCTAssertEqual(info.envelope.from, [Address(mailbox: "a", host: "b")])
        }
    }
}
