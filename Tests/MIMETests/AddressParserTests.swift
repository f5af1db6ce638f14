// Table-driven tests of RFC 5322 §3.4 address-list parsing as exposed through the ENVELOPE
// (RFC 3501 §7.4.2 group markers, source routes, comments, missing domains, garbage).

import MIME
import XCTest

final class AddressParserTests: XCTestCase {
    private func A(_ name: String?, _ mailbox: String?, _ host: String?, adl: String? = nil) -> Address {
        Address(name: name, adl: adl, mailbox: mailbox, host: host)
    }

    private var groupEnd: Address { Address(name: nil, adl: nil, mailbox: nil, host: nil) }

    func testTable() {
        let table: [(String, [Address])] = [
            ("Alice <alice@example.com>", [A("Alice", "alice", "example.com")]),
            ("alice@example.com", [A(nil, "alice", "example.com")]),
            ("\"Doe, John\" <john@x.org>, jane@y.org",
             [A("Doe, John", "john", "x.org"), A(nil, "jane", "y.org")]),
            ("undisclosed-recipients:;", [A(nil, "undisclosed-recipients", nil), groupEnd]),
            ("friends: a@b, \"C\" <c@d>;, e@f",
             [A(nil, "friends", nil), A(nil, "a", "b"), A("C", "c", "d"), groupEnd, A(nil, "e", "f")]),
            ("john@x.org (John Smith)", [A("John Smith", "john", "x.org")]),
            // The comment after the address names it, not one before (test_imap_dovecot address_oddities).
            ("(comment only) c@example.test (Comment Name)", [A("Comment Name", "c", "example.test")]),
            ("<@r1.example,@r2.example:user@host.example>",
             [A(nil, "user", "host.example", adl: "@r1.example,@r2.example")]),
            ("root", [A(nil, "root", "")]),
            ("Name <root>", [A("Name", "root", "")]),
            ("=?utf-8?q?J=C3=B6rg?= <j@x>", [A("=?utf-8?q?J=C3=B6rg?=", "j", "x")]),
            ("\"john doe\"@x.org", [A(nil, "john doe", "x.org")]),   // RFC 9051 §9 addr-mailbox: quoting removed
            ("John Q. Public <jqp@x>", [A("John Q. Public", "jqp", "x")]),
            ("a@b,,,c@d", [A(nil, "a", "b"), A(nil, "c", "d")]),
            ("<>", []),
            ("", []),
            ("  (only a comment)  ", []),
            ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", [A("Pete", "pete", "silly.test")]),
            ("A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)",
             [A(nil, "A Group", nil), A("Chris Jones", "c", "public.example"), A(nil, "joe", "example.org"),
              A("John", "jdoe", "one.test"), groupEnd]),
            ("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
             [A("Mary Smith", "mary", "x.test"), A(nil, "jdoe", "example.org"), A("Who?", "one", "y.test")]),
            ("user@[192.168.0.1]", [A(nil, "user", "[192.168.0.1]")]),
            ("Jörg <jörg@bücher.example>", [A("Jörg", "jörg", "bücher.example")]),
            ("unterminated <a@b", [A("unterminated", "a", "b")]),
            ("\"unterminated quote <a@b>", [A(nil, "unterminated quote <a@b>", "")]),
            ("group: a@b", [A(nil, "group", nil), A(nil, "a", "b"), groupEnd]),
        ]
        for (value, expected) in table {
            let info = MessageParser.parse(Array("To: \(value)\r\n\r\n".utf8))
            XCTAssertEqual(info.envelope.to, expected, value)
        }
    }

    func testFoldedAddressHeader() {
        let m = message(["Cc: \"A\" <a@x>,", "\tB <b@y>", "Bcc: c@z", "", ""])
        let info = MessageParser.parse(m)
        XCTAssertEqual(info.envelope.cc, [A("A", "a", "x"), A("B", "b", "y")])
        XCTAssertEqual(info.envelope.bcc, [A(nil, "c", "z")])
    }

    func testGarbageNeverCrashes() {
        let junk = ["<<>>@@,,;;::", "@", ":", ";", "<", ">", "\"", "(", "[", "a@", "@b", "<@a,@b>", "<@a:>", "a:b:c;d;",
                    "\\", "a <b@c> d <e@f>", String(repeating: "(", count: 10_000), String(repeating: "<", count: 10_000),
                    String(repeating: "a:", count: 5_000)]
        for j in junk {
            let info = MessageParser.parse(Array("From: \(j)\r\n\r\n".utf8))
            assertValid(info)
        }
    }
}
