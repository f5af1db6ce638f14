// RFC 9208 §7 grammar of GETQUOTA, GETQUOTAROOT and SETQUOTA, table-driven: what parses, what
// is refused, and the state the command table asks for.
import XCTest
@testable import IMAPProtocol

final class QuotaParserTests: XCTestCase {
    func parse(_ line: String) -> Result<IMAPCommand, IMAPParseError> {
        IMAPParser.parse(Array((line + "\r\n").utf8), options: IMAPParserOptions(utf8Accept: false, limits: IMAPLimits()))
    }

    func testCommandsParse() throws {
        let table: [(String, IMAPCommand.Kind)] = [
            ("a GETQUOTA \"\"", .getQuota(root: "")),
            ("a getquota user", .getQuota(root: "user")),
            ("a GETQUOTAROOT INBOX", .getQuotaRoot(mailbox: "INBOX")),
            ("a GETQUOTAROOT inbox", .getQuotaRoot(mailbox: "INBOX")),
            ("a GETQUOTAROOT \"Sent &AOQ-\"", .getQuotaRoot(mailbox: "Sent ä")),
            ("a SETQUOTA \"\" (STORAGE 512 message 10)", .setQuota(root: "", limits: [QuotaLimit(resource: "STORAGE", limit: 512),
                                                                                     QuotaLimit(resource: "MESSAGE", limit: 10)])),
            ("a SETQUOTA \"\" ()", .setQuota(root: "", limits: [])),
        ]
        for (line, kind) in table { XCTAssertEqual(try parse(line).get().kind, kind, line) }
    }

    func testMalformedAreRefused() {
        for line in ["a GETQUOTA", "a GETQUOTAROOT", "a SETQUOTA \"\"", "a SETQUOTA \"\" (STORAGE)", "a SETQUOTA \"\" (STORAGE x)",
                     "a SETQUOTA \"\" STORAGE 1", "a GETQUOTA \"\" extra", "a SETQUOTA \"\" (STORAGE 99999999999999999999)"] {
            if case .success(let c) = parse(line) { XCTFail("\(line) parsed: \(c)") }
        }
    }

    func testNeedAuthentication() {
        for kind: IMAPCommand.Kind in [.getQuota(root: ""), .getQuotaRoot(mailbox: "INBOX"), .setQuota(root: "", limits: [])] {
            let rule = CommandTable.rule(kind)
            XCTAssertFalse(CommandTable.allows(rule, in: .notAuthenticated))
            XCTAssertTrue(CommandTable.allows(rule, in: .authenticated))
            XCTAssertTrue(CommandTable.allows(rule, in: .selected(readOnly: true)))
        }
    }
}
