// Replays the fuzz-lookup seeds and the inputs of fixed fuzz crashes (fuzz/regressions/fuzz-lookup)
// through LookupFuzz.one, which traps on a broken invariant; plus the fixed cases spelled out.
import Foundation
import XCTest
@testable import LookupProtocol

final class LookupFuzzRegressionTests: XCTestCase {
    func testCorpusAndRegressionsReplay() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../fuzz")
        var count = 0
        for dir in ["corpus/fuzz-lookup", "regressions/fuzz-lookup"] {
            let d = root.appendingPathComponent(dir)
            for name in try FileManager.default.contentsOfDirectory(atPath: d.path).sorted() {
                LookupFuzz.one(Array(try Data(contentsOf: d.appendingPathComponent(name))))
                count += 1
            }
        }
        XCTAssertGreaterThan(count, 4)
    }

    /// Found by fuzz-lookup: a line exactly at the limit, then CRLF, was refused when the CR
    /// arrived before the LF, and accepted when both came together.
    func testLineAtTheLimitWithCRLFDoesNotDependOnSplitting() {
        let limits = LookupLimits(maxKeyLength: 64, maxRequestLength: 8)
        let line = Array("get 1234\r\n".utf8)
        for split in 1..<line.count {
            var buffer = Array(line[..<split]), discarding = false
            var r = TCPTable.decode(&buffer, discarding: &discarding, limits: limits)
            if r == .needMoreBytes { buffer += line[split...]; r = TCPTable.decode(&buffer, discarding: &discarding, limits: limits) }
            XCTAssertEqual(r, .request(.get("1234")), "split at \(split)")
        }
        var long = Array("get 12345\r".utf8), discarding = false
        XCTAssertEqual(TCPTable.decode(&long, discarding: &discarding, limits: limits), .invalid("request too long"))
    }
}
