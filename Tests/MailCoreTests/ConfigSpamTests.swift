// [spam]: the defaults, every key, refusals that name key and reason, and the example file
// documenting the section at its defaults.
import XCTest
import Foundation
@testable import MailCore

final class ConfigSpamTests: XCTestCase {
    func testDefaults() throws {
        let c = try PosternConfig.parse("", path: "/etc/postern/postern.toml").spam
        XCTAssertEqual(c, SpamConfig())
        XCTAssertFalse(c.enabled)
        XCTAssertEqual(c.url, "http://127.0.0.1:11333")
        XCTAssertEqual(c.controllerURL, "http://127.0.0.1:11334")
        XCTAssertNil(c.controllerPasswordFile)
        XCTAssertEqual(c.timeout, 5)
        XCTAssertEqual(c.onFailure, .accept)
        XCTAssertFalse(c.scanLMTP)
        XCTAssertFalse(c.scanSubmission)
        XCTAssertEqual(c.junkFolder, "Junk")
        XCTAssertEqual(c.learnSpamAddress, "")
        XCTAssertEqual(c.learnHamAddress, "")
        XCTAssertEqual(c.learnQueue, 1000)
        XCTAssertEqual(c.maxSize, 10 << 20)
    }

    func testMaxSizeBounds() throws {
        for bad in ["max_size = 100", "max_size = 2147483648"] {
            XCTAssertThrowsError(try PosternConfig.parse("[spam]\n\(bad)", path: "/etc/postern/postern.toml"), bad)
        }
    }

    func testEveryKey() throws {
        let c = try PosternConfig.parse("""
            [spam]
            enabled = true
            url = "http://10.0.0.5:11333"
            controller_url = "http://10.0.0.5:11334"
            controller_password_file = "rspamd.pass"
            timeout = 2.5
            on_failure = "tempfail"
            scan_lmtp = true
            scan_submission = true
            junk_folder = "Spam"
            learn_spam_address = "spam@"
            learn_ham_address = "ham@example.org"
            learn_queue = 50
            max_size = 1048576
            """, path: "/etc/postern/postern.toml").spam
        XCTAssertTrue(c.enabled)
        XCTAssertEqual(c.url, "http://10.0.0.5:11333")
        XCTAssertEqual(c.controllerURL, "http://10.0.0.5:11334")
        XCTAssertEqual(c.controllerPasswordFile, "/etc/postern/rspamd.pass")
        XCTAssertEqual(c.maxSize, 1 << 20)
        XCTAssertEqual(c.timeout, 2.5)
        XCTAssertEqual(c.onFailure, .tempfail)
        XCTAssertTrue(c.scanLMTP)
        XCTAssertTrue(c.scanSubmission)
        XCTAssertEqual(c.junkFolder, "Spam")
        XCTAssertEqual(c.learnSpamAddress, "spam@")
        XCTAssertEqual(c.learnHamAddress, "ham@example.org")
        XCTAssertEqual(c.learnQueue, 50)
    }

    func testEmptyLearningAddressTurnsItOff() throws {
        let c = try PosternConfig.parse("[spam]\nlearn_spam_address = \"\"\nlearn_ham_address = \"ham@\"\n", path: "/p.toml").spam
        XCTAssertEqual(c.learnSpamAddress, "")
        XCTAssertEqual(c.learnHamAddress, "ham@")
    }

    func testRefusals() {
        let cases: [(String, String, String)] = [
            ("url = \"https://x\"", "spam.url", "http://"),
            ("controller_url = \"127.0.0.1:11334\"", "spam.controller_url", "http://"),
            ("timeout = 0", "spam.timeout", "more than 0"),
            ("on_failure = \"reject\"", "spam.on_failure", "accept, tempfail"),
            ("learn_spam_address = \"spam\"", "spam.learn_spam_address", "LOCAL@"),
            ("learn_spam_address = \"@x\"", "spam.learn_spam_address", "LOCAL@"),
            ("learn_spam_address = \"s@\"\nlearn_ham_address = \"S@\"", "spam.learn_ham_address", "differ"),
            ("learn_queue = 0", "spam.learn_queue", "out of range"),
            ("junk_folder = \"\"", "spam.junk_folder", "empty"),
            ("bogus = 1", "spam.bogus", "unknown key"),
        ]
        for (body, key, reason) in cases {
            XCTAssertThrowsError(try PosternConfig.parse("[spam]\n\(body)\n", path: "/p.toml"), body) { e in
                guard let e = e as? ConfigError else { return XCTFail("\(e)") }
                XCTAssertEqual(e.key, key, body)
                XCTAssertTrue(e.reason.contains(reason), "\(body): \(e.reason)")
                XCTAssertNotNil(e.line, body)
            }
        }
    }

    /// postern.toml.example documents every [spam] key (and only those), at the defaults.
    func testExampleDocumentsTheSection() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("postern.toml.example").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(try PosternConfig.parse(text, path: path).spam, SpamConfig())
        var inSection = false, keys = Set<String>()
        for raw in text.split(separator: "\n") {
            let l = raw.trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("[") { inSection = l.hasPrefix("[spam]"); continue }
            guard inSection else { continue }
            let code = l.hasPrefix("# ") ? String(l.dropFirst(2)) : l
            if let eq = code.firstIndex(of: "="), !code.hasPrefix("#") {
                let k = code[..<eq].trimmingCharacters(in: .whitespaces)
                if !k.contains(" ") { keys.insert(k) }
            }
        }
        XCTAssertEqual(keys, ["enabled", "url", "controller_url", "controller_password_file", "timeout", "on_failure",
                              "scan_lmtp", "scan_submission", "junk_folder", "learn_spam_address", "learn_ham_address",
                              "learn_queue", "max_size"])
    }
}
