// Reply encoding tests (RFC 5321 §4.2.1 multi-line, RFC 2034 enhanced codes) and a check
// that the named replies agree with their enhanced codes (RFC 3463 class = first digit).
import SMTPProtocol
import XCTest

final class SMTPReplyTests: XCTestCase {
    func testEncoding() {
        let table: [(SMTPReply, Bool, String)] = [
            (.ok, true, "250 2.0.0 OK\r\n"),
            (.ok, false, "250 OK\r\n"),
            (.startMailInput, true, "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (SMTPReply(code: 250, enhanced: nil, lines: ["host", "PIPELINING", "SIZE 10"]), true,
             "250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n"),
            (SMTPReply(code: 550, enhanced: "5.1.1", lines: ["first", "second"]), true,
             "550-5.1.1 first\r\n550 5.1.1 second\r\n"),
            (SMTPReply(code: 451, enhanced: "4.3.0", lines: ["inject\r\n250 ok"]), true, "451 4.3.0 inject  250 ok\r\n"),
            (SMTPReply(code: 250, enhanced: nil, lines: []), true, "250\r\n"),
            (SMTPReply(code: 250, enhanced: "2.0.0", lines: [""]), true, "250 2.0.0\r\n"),
        ]
        for (reply, enhanced, wire) in table {
            XCTAssertEqual(String(decoding: reply.encoded(enhancedStatusCodes: enhanced), as: UTF8.self), wire)
        }
    }

    func testNamedRepliesAreConsistent() {
        let named: [(SMTPReply, Int, String?)] = [
            (.serviceReady("h"), 220, nil), (.closing, 221, "2.0.0"), (.ok, 250, "2.0.0"),
            (.okSender, 250, "2.1.0"), (.okRecipient, 250, "2.1.5"), (.startMailInput, 354, nil),
            (.mailboxUnknown, 550, "5.1.1"), (.relayDenied, 554, "5.7.1"), (.messageTooBig, 552, "5.3.4"),
            (.tooManyRecipients, 452, "4.5.3"), (.localError, 451, "4.3.0"), (.syntaxError, 500, "5.5.2"),
            (.lineTooLong, 500, "5.5.2"), (.parameterError, 501, "5.5.4"), (.badSequence, 503, "5.5.1"),
            (.notImplemented, 502, "5.5.1"), (.bareLinefeed, 550, "5.5.2"), (.tooManyErrors, 421, "4.7.0"),
            (.timeout, 421, "4.4.2"), (.cannotVerify, 252, "2.5.0"), (.help, 214, "2.0.0"),
            (.badAddress, 501, "5.1.3"), (.parameterNotRecognized, 555, "5.5.4"), (.nonASCIIAddress, 553, "5.6.7"),
            (.noValidRecipients, 554, "5.5.1"), (.noValidRecipientsLMTP, 503, "5.5.1"),
        ]
        for (reply, code, enhanced) in named {
            XCTAssertEqual(reply.code, code, reply.description)
            XCTAssertEqual(reply.enhanced, enhanced, reply.description)
            if let enhanced {
                XCTAssertEqual(enhanced.first, String(code).first, "class must match: \(reply)")
            }
        }
    }
}
