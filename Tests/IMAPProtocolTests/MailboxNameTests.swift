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

    func testMatchesWildcards() {
        XCTAssertTrue(MailboxName.matches("Archive/2023/Q1", pattern: "*"))
        XCTAssertTrue(MailboxName.matches("Archive/2023/Q1", pattern: "Archive/*"))
        XCTAssertTrue(MailboxName.matches("Archive", pattern: "%"))
        XCTAssertFalse(MailboxName.matches("Archive/2023", pattern: "%"))
        XCTAssertTrue(MailboxName.matches("Archive/2023", pattern: "Archive/%"))
        XCTAssertFalse(MailboxName.matches("Archive/2023/Q1", pattern: "Archive/%"))
        XCTAssertTrue(MailboxName.matches("Archive/2023/Q1", pattern: "Archive/%/Q%"))
        XCTAssertTrue(MailboxName.matches("a%b", pattern: "a%b"))
        XCTAssertTrue(MailboxName.matches("abc", pattern: "a**%c"))
        XCTAssertFalse(MailboxName.matches("Archive", pattern: "archive"))   // case-sensitive
        XCTAssertFalse(MailboxName.matches("Archive", pattern: ""))
        XCTAssertFalse(MailboxName.matches("ab", pattern: "abc"))
    }

    func testInboxMatchesCaseInsensitively() {
        XCTAssertTrue(MailboxName.matches("INBOX", pattern: "inbox"))
        XCTAssertTrue(MailboxName.matches("INBOX", pattern: "Inb%"))
        XCTAssertTrue(MailboxName.matches("INBOX/Sub", pattern: "inbox/%"))
        XCTAssertFalse(MailboxName.matches("INBOX/Sub", pattern: "inbox/sub"))
        XCTAssertFalse(MailboxName.matches("INBOXES", pattern: "inboxes"))
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
