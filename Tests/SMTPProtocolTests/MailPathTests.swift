// Path grammar tests (RFC 5321 §4.1.2, RFC 6531): a table of RCPT/MAIL arguments with the
// mailbox they yield or the reply they get.
import SMTPProtocol
import XCTest

final class MailPathTests: XCTestCase {
    enum Expect: Equatable {
        case ok(String, String)     // localPart, domain
        case reply(SMTPReply)
    }

    /// RCPT TO: argument → outcome.
    static let rcptTable: [(String, Expect)] = [
        ("<user@example.org>", .ok("user", "example.org")),
        ("<User.Name+tag@Sub.Example.ORG>", .ok("User.Name+tag", "Sub.Example.ORG")),   // nothing lowercased
        ("<!#$%&'*+-/=?^_`{|}~@example.org>", .ok("!#$%&'*+-/=?^_`{|}~", "example.org")),
        ("<@relay.example:user@example.org>", .ok("user", "example.org")),              // source route ignored
        ("<@a.example,@b.example:user@example.org>", .ok("user", "example.org")),
        ("<\"john doe\"@example.org>", .ok("\"john doe\"", "example.org")),
        ("<\"a@b\"@example.org>", .ok("\"a@b\"", "example.org")),
        ("<\"joe\"@example.org>", .ok("joe", "example.org")),                          // canonical: unquoted
        ("<\"a\\\"b\"@example.org>", .ok("\"a\\\"b\"", "example.org")),
        ("<\"\\j\\o\\e\"@example.org>", .ok("joe", "example.org")),
        ("<\"\"@example.org>", .ok("\"\"", "example.org")),
        ("<user@[192.0.2.1]>", .ok("user", "[192.0.2.1]")),
        ("<user@[IPv6:2001:db8::1]>", .ok("user", "[IPv6:2001:db8::1]")),
        ("<user@[IPv6:2001:db8:0:0:0:0:0:1]>", .ok("user", "[IPv6:2001:db8:0:0:0:0:0:1]")),
        ("<user@[IPv6:::ffff:192.0.2.1]>", .ok("user", "[IPv6:::ffff:192.0.2.1]")),
        ("<user@[x-tag:anything]>", .ok("user", "[x-tag:anything]")),
        ("<user@localhost>", .ok("user", "localhost")),
        ("<user@1-2.example>", .ok("user", "1-2.example")),
        ("<Postmaster>", .ok("Postmaster", "mx.example.org")),
        ("<Postmaster@example.org>", .ok("Postmaster", "example.org")),
        (" <user@example.org>", .ok("user", "example.org")),                            // tolerated space

        ("user@example.org", .reply(.badAddress)),                                      // missing brackets
        ("<user@example.org", .reply(.badAddress)),
        ("user@example.org>", .reply(.badAddress)),
        ("<user@example.org>garbage", .reply(.badAddress)),                             // trailing garbage
        ("<user@example.org> garbage", .reply(.parameterNotRecognized)),
        ("<user@example.org> ?", .reply(.parameterError)),
        ("<>", .reply(.badAddress)),
        ("<user>", .reply(.badAddress)),
        ("<@example.org>", .reply(.badAddress)),
        ("<user@>", .reply(.badAddress)),
        ("<@relay.example user@example.org>", .reply(.badAddress)),
        ("<@relay.example,user@example.org>", .reply(.badAddress)),
        ("<.user@example.org>", .reply(.badAddress)),
        ("<user.@example.org>", .reply(.badAddress)),
        ("<us..er@example.org>", .reply(.badAddress)),
        ("<user name@example.org>", .reply(.badAddress)),
        ("<user@@example.org>", .reply(.badAddress)),
        ("<a@b@example.org>", .reply(.badAddress)),
        ("<user@-example.org>", .reply(.badAddress)),
        ("<user@example-.org>", .reply(.badAddress)),
        ("<user@example..org>", .reply(.badAddress)),
        ("<user@example.org.>", .reply(.badAddress)),
        ("<user@exa_mple.org>", .reply(.badAddress)),
        ("<user@" + String(repeating: "a", count: 64) + ".org>", .reply(.badAddress)),   // label > 63
        ("<\"unterminated@example.org>", .reply(.badAddress)),
        ("<\"bad\u{7}ctl\"@example.org>", .reply(.badAddress)),
        ("<user@[300.1.1.1]>", .reply(.badAddress)),
        ("<user@[1.2.3]>", .reply(.badAddress)),
        ("<user@[1.2.3.4.5]>", .reply(.badAddress)),
        ("<user@[1.2.3.4>", .reply(.badAddress)),
        ("<user@1.2.3.4]>", .reply(.badAddress)),
        ("<user@[IPv6:1:2:3:4:5:6:7:8:9]>", .reply(.badAddress)),
        ("<user@[IPv6:1::2::3]>", .reply(.badAddress)),
        ("<user@[IPv6:12345::1]>", .reply(.badAddress)),
        ("<user@[IPv6:1:2:3:4:5:6:7::]>", .reply(.badAddress)),
        ("<user@[2001:db8::1]>", .reply(.badAddress)),                                   // tag missing
        ("<user@[tag-:x]>", .reply(.badAddress)),
        ("<jöran@example.org>", .reply(.nonASCIIAddress)),                               // no SMTPUTF8
        ("<user@exämple.org>", .reply(.nonASCIIAddress)),
        ("<j\u{FFFD}@example.org>", .reply(.nonASCIIAddress)),
    ]

    func testRecipientTable() {
        for (argument, expected) in Self.rcptTable {
            var glue = ScriptedGlue(lmtpConfig())
            glue.feed("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:\(argument)\r\n")
            let outcome: Expect
            if case .checkRecipient(let path)? = glue.actions.dropLast().last {
                outcome = .ok(path.localPart, path.domain)
            } else {
                outcome = .reply(glue.replies.last!)
            }
            XCTAssertEqual(outcome, expected, argument)
        }
    }

    func testUTF8Validation() {
        // (bytes of the local part, accepted?) — RFC 3629 §4 with SMTPUTF8 in effect.
        let table: [([UInt8], Bool)] = [
            ([0x6A, 0xC3, 0xB6], true),               // jö
            ([0xE2, 0x82, 0xAC], true),               // €
            ([0xF0, 0x9F, 0x98, 0x80], true),         // U+1F600
            ([0xFF, 0xFE], false),
            ([0xC0, 0x80], false),                    // overlong NUL
            ([0xE0, 0x80, 0xAF], false),              // overlong
            ([0xED, 0xA0, 0x80], false),              // surrogate
            ([0xF4, 0x90, 0x80, 0x80], false),        // above U+10FFFF
            ([0xC3], false),                          // truncated
            ([0xE2, 0x82], false),
            ([0x80], false),                          // lone continuation
        ]
        for (local, ok) in table {
            var glue = ScriptedGlue(lmtpConfig())
            glue.feed([Array(ascii: "LHLO c\r\nMAIL FROM:<> SMTPUTF8\r\nRCPT TO:<") + local + Array(ascii: "@example.org>\r\n")])
            XCTAssertEqual(glue.replies.last, ok ? .okRecipient : .badAddress, "\(local)")
        }
    }

    func testSenderTable() {
        let table: [(String, SMTPReply, MailPath??)] = [
            ("<>", .okSender, .some(nil)),
            ("<sender@example.org>", .okSender, .some(MailPath(localPart: "sender", domain: "example.org"))),
            (" <sender@example.org>", .okSender, .some(MailPath(localPart: "sender", domain: "example.org"))),
            ("<@hop.example:sender@example.org>", .okSender, .some(MailPath(localPart: "sender", domain: "example.org"))),
            ("<\"a b\"@example.org> SIZE=10 BODY=7BIT", .okSender, .some(MailPath(localPart: "\"a b\"", domain: "example.org"))),
            ("sender@example.org", .badSenderAddress, nil),
            ("<sender@example.org>x", .badSenderAddress, nil),
            ("<Postmaster>", .badSenderAddress, nil),
            ("< >", .badSenderAddress, nil),
        ]
        for (argument, reply, sender) in table {
            var glue = ScriptedGlue(lmtpConfig())
            glue.feed("LHLO c\r\nMAIL FROM:\(argument)\r\n")
            XCTAssertEqual(glue.replies.last, reply, argument)
            if let sender {
                XCTAssertEqual(glue.session.envelope?.sender, sender, argument)
            } else {
                XCTAssertNil(glue.session.envelope, argument)
            }
        }
        XCTAssertEqual(SMTPReply.badSenderAddress.code, 501)
    }

    func testMailPathInitializers() {
        XCTAssertEqual(MailPath("a.b@example.org"), MailPath(localPart: "a.b", domain: "example.org"))
        XCTAssertEqual(MailPath("\"x y\"@[192.0.2.1]")?.address, "\"x y\"@[192.0.2.1]")
        XCTAssertNil(MailPath("<a@b.example>"))
        XCTAssertNil(MailPath("a@b.example junk"))
        XCTAssertNil(MailPath("jö@example.org", allowUTF8: false))
        XCTAssertEqual(MailPath("jö@example.org")?.localPart, "jö")
        XCTAssertEqual(MailPath.parse(path: "<@x.example:a@b.example>"), MailPath(localPart: "a", domain: "b.example"))
        XCTAssertNil(MailPath.parse(path: "<>"))
        XCTAssertEqual(MailPath(localPart: "a", domain: "b.example").description, "<a@b.example>")
    }
}
