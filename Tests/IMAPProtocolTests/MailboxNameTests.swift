import XCTest
@testable import IMAPProtocol

final class MailboxNameTests: XCTestCase {
    private func valid(_ s: String) -> String? { try? MailboxName.validate(s).get() }

    func testNormalises() {
        XCTAssertEqual(valid("Archive/2023"), "Archive/2023")
        XCTAssertEqual(valid("inbox"), "INBOX")
        XCTAssertEqual(valid("Inbox/Sub"), "INBOX/Sub")
        XCTAssertEqual(valid("Sub/inbox"), "Sub/inbox")             // only the first level
        XCTAssertEqual(valid("inboxes"), "inboxes")
        XCTAssertEqual(valid("foo/"), "foo")                         // RFC 9051 §6.3.4
        XCTAssertEqual(valid("Entwu\u{308}rfe"), "Entw\u{FC}rfe")   // NFC
        XCTAssertEqual(valid("台北/日本語"), "台北/日本語")
        XCTAssertEqual(valid("Sent Messages"), "Sent Messages")
    }

    func testRefuses() {
        for bad in ["", "/", "a//b", "/a", "a//", "./x", "a/..", "a/./b", "a\u{0}b", "a\tb", "a\u{7F}", "a\u{85}b",
                    "a*", "%", "Mail/%/x", String(repeating: "x", count: 513),
                    (0..<17).map { "l\($0)" }.joined(separator: "/")] {
            XCTAssertNil(valid(bad), bad.debugDescription)
        }
        XCTAssertNotNil(valid(String(repeating: "x", count: 512)))
        XCTAssertNotNil(valid((0..<16).map { "l\($0)" }.joined(separator: "/")))
        if case .failure(let e) = MailboxName.validate("a//b") { XCTAssertFalse(e.message.isEmpty) } else { XCTFail() }
    }

    /// (name, pattern, matches)
    private func check(_ cases: [(String, String, Bool)], file: StaticString = #filePath, line: UInt = #line) {
        for (name, pattern, expected) in cases {
            XCTAssertEqual(MailboxName.matches(name, pattern: pattern), expected, "\(name) ~ \(pattern)", file: file, line: line)
        }
    }

    func testMatchesWildcards() {
        check([
            ("Archive/2023/Q1", "*", true), ("Archive/2023/Q1", "Archive/*", true), ("Archive", "%", true),
            ("Archive/2023", "%", false), ("Archive/2023", "Archive/%", true), ("Archive/2023/Q1", "Archive/%", false),
            ("Archive/2023/Q1", "Archive/%/Q%", true), ("a%b", "a%b", true), ("abc", "a**%c", true),
            ("Archive", "archive", false),     // case-sensitive
            ("Archive", "", false), ("ab", "abc", false),
        ])
    }

    func testInboxMatchesCaseInsensitively() {
        check([
            ("INBOX", "inbox", true), ("INBOX", "Inb%", true), ("INBOX/Sub", "inbox/%", true),
            ("INBOX/Sub", "inbox/sub", false), ("INBOXES", "inboxes", false),
        ])
    }

    func testMatchingLongPatternIsBounded() {
        let pattern = String(repeating: "*a", count: 20_000)
        XCTAssertFalse(MailboxName.matches(String(repeating: "a", count: 500), pattern: pattern))
        XCTAssertTrue(MailboxName.matches(String(repeating: "a", count: 500), pattern: String(repeating: "%*", count: 10_000) + "a"))
    }

    func testCombine() {
        XCTAssertEqual(MailboxName.combine(reference: "", pattern: "*"), "*")
        XCTAssertEqual(MailboxName.combine(reference: "Archive/", pattern: "%"), "Archive/%")
        XCTAssertEqual(MailboxName.combine(reference: "Archive/", pattern: "/2023"), "Archive/2023")
        XCTAssertEqual(MailboxName.combine(reference: "Archive", pattern: "/%"), "Archive/%")
        XCTAssertEqual(MailboxName.combine(reference: "~smith/Mail/", pattern: "foo.*"), "~smith/Mail/foo.*")
    }
}
