import XCTest
@testable import IMAPProtocol

/// The fuzz seeds are realistic client sessions: framed and parsed, every command in them must
/// parse (continuation lines and the deliberately hostile seeds aside).
final class SeedCorpusTests: XCTestCase {
    private static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/corpus/fuzz-imap")
    /// Seeds that are meant to fail somewhere.
    private static let hostile: Set<String> = ["hostile-deep", "hostile-literals", "garbage", "small-limits-literals", "small-limits-lists"]
    /// AUTHENTICATE and IDLE continuation lines in the seeds.
    private static let continuations: Set<String> = ["AGJvYgBzZWNyZXQ=\r\n", "DONE\r\n", "Ym9i\r\n", "c2VjcmV0\r\n"]

    func testRealisticSeedsParse() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
        XCTAssertGreaterThanOrEqual(files.count, 20)
        var parsed = 0
        for file in files where !Self.hostile.contains(file) {
            let data = try Array(Data(contentsOf: Self.corpus.appendingPathComponent(file)))
            var framer = IMAPFramer()
            framer.feed(Array(data.dropFirst(2)))
            let utf8 = file == "utf8-names"
            while let event = framer.next() {
                guard case .unit(let unit) = event else { continue }
                if Self.continuations.contains(String(decoding: unit, as: UTF8.self)) { continue }
                switch IMAPParser.parse(unit, options: IMAPParserOptions(utf8Accept: utf8)) {
                case .success: parsed += 1
                case .failure(let e): XCTFail("\(file): \(String(decoding: unit.prefix(120), as: UTF8.self)): \(e.message)")
                }
            }
            XCTAssertEqual(framer.buffered, 0, file)
        }
        XCTAssertGreaterThan(parsed, 80)
    }
}
