// Relaxed canonicalisation against RFC 6376 §3.4.5's example and edge cases, the body also fed
// one byte at a time and split at every position (a CRLF split across two chunks).
import XCTest
import Foundation
import MailSyntax
@testable import DKIM

final class CanonicalizationTests: XCTestCase {
    func headers(_ text: String) -> String {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { buf in
            var it = HeaderFieldIterator(buf)
            var out = [UInt8]()
            while let f = it.next() { out += RelaxedHeader.canonicalize(buf, f) }
            return String(decoding: out, as: UTF8.self)
        }
    }

    func body(_ text: String) -> String { String(decoding: RelaxedBodyCanonicalizer.canonicalize(Array(text.utf8)), as: UTF8.self) }

    /// RFC 6376 §3.4.5: "A: X", "B : Y<HTAB><CRLF><HTAB>Z  " and the body
    /// "<SP>C<SP><CRLF>D<SP><HTAB><SP>E<CRLF><CRLF><CRLF>".
    func testRFC6376Example() {
        XCTAssertEqual(headers("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n"), "a:X\r\nb:Y Z\r\n")
        XCTAssertEqual(body(" C \r\nD \t E\r\n\r\n\r\n"), " C\r\nD E\r\n")
    }

    func testHeaderCases() {
        let table: [(String, String)] = [
            ("Subject:   Hello   World   \r\n", "subject:Hello World\r\n"),
            ("SUBJECT :x\r\n", "subject:x\r\n"),
            ("To: a@b,\r\n  c@d\r\n", "to:a@b, c@d\r\n"),
            ("X-Empty:\r\n", "x-empty:\r\n"),
            ("X-Empty:   \r\n\t \r\n", "x-empty:\r\n"),
            ("X-Bare-LF: a\n b\n", "x-bare-lf:a b\r\n"),
            ("Subject: caf\u{e9}\r\n", "subject:caf\u{e9}\r\n"),       // 8-bit bytes pass unchanged
            ("X-CR: a\rb \r\n", "x-cr:a\rb\r\n"),                     // a lone CR is content
        ]
        for (input, want) in table { XCTAssertEqual(headers(input), want, input) }
        XCTAssertEqual(RelaxedHeader.canonicalize(name: Array("DKIM-Signature".utf8), value: Array(" v=1;\r\n\tb=".utf8), terminated: false),
                       Array("dkim-signature:v=1; b=".utf8))
    }

    func testBodyCases() {
        let table: [(String, String)] = [
            ("", ""),
            ("\r\n", ""),
            ("\r\n\r\n", ""),
            ("  \r\n\t\r\n", ""),
            ("abc", "abc\r\n"),
            ("abc  ", "abc\r\n"),
            ("abc\r\n", "abc\r\n"),
            ("\r\nabc\r\n", "\r\nabc\r\n"),              // leading empty lines stay
            ("a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n"),
            ("  lead\r\n", " lead\r\n"),                  // leading WSP becomes one SP
            ("a\tb  c\r\n", "a b c\r\n"),
            ("a\nb\n", "a\r\nb\r\n"),                     // bare LF ends a line
            ("a\rb\r\n", "a\rb\r\n"),                     // a lone CR is content
            ("a\r", "a\r\r\n"),
        ]
        for (input, want) in table {
            XCTAssertEqual(body(input), want, input.debugDescription)
            // Every split into two chunks, and one byte at a time, give the same output.
            let bytes = Array(input.utf8)
            for cut in 0...bytes.count {
                var c = RelaxedBodyCanonicalizer(), out = [UInt8]()
                bytes[..<cut].withUnsafeBytes { c.update($0) { out += $0 } }
                bytes[cut...].withUnsafeBytes { c.update($0) { out += $0 } }
                c.finish { out += $0 }
                XCTAssertEqual(String(decoding: out, as: UTF8.self), want, "\(input.debugDescription) cut at \(cut)")
            }
            var c = RelaxedBodyCanonicalizer(), out = [UInt8]()
            for b in bytes { [b].withUnsafeBytes { c.update($0) { out += $0 } } }
            c.finish { out += $0 }
            XCTAssertEqual(String(decoding: out, as: UTF8.self), want)
        }
    }
}

/// Differential: our relaxed canonicalisation against dkimpy's (Debian python3-dkim) on random
/// bodies and header values built from the pieces that matter (WSP, CRLF, folds).
final class CanonicalizationDifferentialTests: XCTestCase {
    static let script = """
    import sys, base64
    from dkim.canonicalization import Relaxed
    for line in sys.stdin:
        kind, _, data = line.strip().partition(" ")
        data = base64.b64decode(data)
        if kind == "b":
            out = Relaxed.canonicalize_body(data)
        else:
            name, _, value = data.partition(b":")
            (n, v), = Relaxed.canonicalize_headers([(name, value)])
            out = n + b":" + v
        print(base64.b64encode(out).decode())
    """

    func testAgreesWithDkimpy() throws {
        guard DKIMSignerTests.verifierAvailable else { throw XCTSkip("python3-dkim not installed (make test installs it)") }
        var rng = SplitMix(seed: 6376)
        let bodyPieces = ["a", "b", " ", "\t", "\r\n", "\r\n", "  \t"]
        let valuePieces = ["x", "y", " ", "\t", "\r\n ", "\r\n\t", "  "]
        var cases = [(kind: String, input: [UInt8], ours: [UInt8])]()
        for i in 0..<400 {
            let pieces = i % 2 == 0 ? bodyPieces : valuePieces
            var text = (0..<Int.random(in: 0...24, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            if i % 2 == 0 {
                // A body on the wire ends in CRLF (RFC 5321 §4.1.1.4): the client adds it.
                // (Without it dkimpy keeps the last line's trailing WSP; we drop it.)
                if !text.isEmpty && !text.hasSuffix("\r\n") { text += "\r\n" }
                let input = Array(text.utf8)
                cases.append(("b", input, RelaxedBodyCanonicalizer.canonicalize(input)))
            } else {
                let input = Array("Subject:\(text)".utf8)
                cases.append(("h", input, RelaxedHeader.canonicalize(name: Array("Subject".utf8), value: Array(text.utf8))))
            }
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", Self.script]
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        try p.run()
        let lines = cases.map { "\($0.kind) \(Data($0.input).base64EncodedString())\n" }.joined()
        stdin.fileHandleForWriting.write(Data(lines.utf8))
        stdin.fileHandleForWriting.closeFile()
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        p.waitUntilExit()
        XCTAssertEqual(out.count, cases.count)
        for (c, theirs) in zip(cases, out) {
            let want = Array(Data(base64Encoded: String(theirs))!)
            XCTAssertEqual(String(decoding: c.ours, as: UTF8.self), String(decoding: want, as: UTF8.self),
                           "\(c.kind) \(String(decoding: c.input, as: UTF8.self).debugDescription)")
        }
    }
}
