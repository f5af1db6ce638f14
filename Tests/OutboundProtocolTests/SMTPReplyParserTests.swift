// SMTPReplyParser: RFC 5321 §4.2 single and multi-line replies, RFC 3463 enhanced codes, and
// hostile servers (never-ending lines, bare LF, junk codes, code changes mid-reply), fed whole,
// one byte at a time and many replies in one buffer.
import OutboundProtocol
import SMTPProtocol
import XCTest

final class SMTPReplyParserTests: XCTestCase {
    enum Expected {
        case replies([SMTPReply])
        case needMore
        case failure(SMTPReplyParser.Error)
    }

    func check(_ input: String, _ expected: Expected, limits: SMTPReplyParser.Limits = .init(), file: StaticString = #filePath, line: UInt = #line) {
        // Whole, then one byte at a time: the same result.
        for bytewise in [false, true] {
            var parser = SMTPReplyParser(limits: limits)
            var got: [SMTPReply] = []
            var failure: SMTPReplyParser.Error?
            let bytes = Array(input.utf8)
            let pieces: [[UInt8]] = bytewise ? bytes.map { [$0] } : [bytes]
            outer: for piece in pieces {
                parser.append(piece)
                do { got += try parser.replies() } catch { failure = error; break outer }
            }
            switch expected {
            case .replies(let r):
                XCTAssertNil(failure, "bytewise \(bytewise)", file: file, line: line)
                XCTAssertEqual(got, r, "bytewise \(bytewise)", file: file, line: line)
                XCTAssertTrue(parser.isEmpty, file: file, line: line)
            case .needMore:
                XCTAssertNil(failure, file: file, line: line)
                XCTAssertEqual(got, [], file: file, line: line)
                XCTAssertFalse(parser.isEmpty, file: file, line: line)
            case .failure(let e):
                XCTAssertEqual(failure, e, "bytewise \(bytewise)", file: file, line: line)
            }
        }
    }

    func testSingleLineReplies() {
        check("220 mx.example.org ESMTP\r\n", .replies([SMTPReply(220, nil, "mx.example.org ESMTP")]))
        check("250 2.1.0 Sender OK\r\n", .replies([SMTPReply(250, "2.1.0", "Sender OK")]))
        check("250\r\n", .replies([SMTPReply(code: 250, enhanced: nil, lines: [""])]))
        check("550 5.1.1\r\n", .replies([SMTPReply(code: 550, enhanced: "5.1.1", lines: [""])]))
        check("354 End data with <CR><LF>.<CR><LF>\r\n", .replies([SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>")]))
    }

    func testMultiLineReplyAndEnhancedCodeOnEveryLine() {
        check("250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
              .replies([SMTPReply(code: 250, enhanced: nil, lines: ["mx.example.org", "PIPELINING", "SIZE 1000"])]))
        // RFC 2034 §4: every line carries the code; it is split from each.
        check("550-5.7.1 Blocked\r\n550 5.7.1 see https://example.org\r\n",
              .replies([SMTPReply(code: 550, enhanced: "5.7.1", lines: ["Blocked", "see https://example.org"])]))
    }

    func testEnhancedCodeOnlyWhenItMatchesTheClass() {
        // "5.1.1" after a 250 is text, not a status (RFC 2034 §3); so is "2.0" (two parts) or "2.1000.0".
        check("250 5.1.1 odd\r\n", .replies([SMTPReply(250, nil, "5.1.1 odd")]))
        check("250 2.0 ok\r\n", .replies([SMTPReply(250, nil, "2.0 ok")]))
        check("250 2.1000.0 ok\r\n", .replies([SMTPReply(250, nil, "2.1000.0 ok")]))
        check("451 4.4.1x later\r\n", .replies([SMTPReply(451, nil, "4.4.1x later")]))
        check("452 4.5.3 Too many\r\n", .replies([SMTPReply(452, "4.5.3", "Too many")]))
    }

    func testManyRepliesInOneBufferPipelined() {
        check("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n354 go\r\n", .replies([
            SMTPReply(250, "2.1.0", "ok"), SMTPReply(250, "2.1.5", "ok"), SMTPReply(550, "5.1.1", "unknown"), SMTPReply(354, nil, "go"),
        ]))
    }

    func testBareLFEndsALine() {
        check("250-a\n250 b\n", .replies([SMTPReply(code: 250, enhanced: nil, lines: ["a", "b"])]))
    }

    func testPartialReplyNeedsMore() {
        check("250-mx.example.org\r\n250-PIPE", .needMore)
        check("220 greeting without end", .needMore)
    }

    func testNeverEndingLineIsRefused() {
        let limits = SMTPReplyParser.Limits(maxLineLength: 64, maxLines: 10)
        check("250 " + String(repeating: "x", count: 100), .failure(.lineTooLong), limits: limits)
        check("250 " + String(repeating: "x", count: 100) + "\r\n", .failure(.lineTooLong), limits: limits)
        check(String(repeating: "250-x\r\n", count: 11) + "250 y\r\n", .failure(.tooManyLines), limits: limits)
    }

    func testJunkCodesAreMalformed() {
        let junk = ["abc hello\r\n", "25\r\n", "2500 ok\r\n", "699 no\r\n", "190 no\r\n", "260 bad\r\n", "250_x\r\n", "\r\n", "HTTP/1.1 400 Bad\r\n"]
        for input in junk {
            var parser = SMTPReplyParser()
            parser.append(Array(input.utf8))
            XCTAssertThrowsError(try parser.next(), input) { error in
                guard case .malformed = error as? SMTPReplyParser.Error else { return XCTFail("\(input): \(error)") }
            }
        }
    }

    func testCodeChangeInsideAMultiLineReply() {
        check("250-first\r\n550 second\r\n", .failure(.inconsistentCode(first: 250, then: 550)))
    }

    func testAFailedParserStaysFailed() {
        var parser = SMTPReplyParser()
        parser.append(Array("xyz\r\n".utf8))
        XCTAssertThrowsError(try parser.next())
        parser.append(Array("250 ok\r\n".utf8))
        XCTAssertThrowsError(try parser.next())
    }

    func testResetDropsHeldBytes() {
        var parser = SMTPReplyParser()
        parser.append(Array("220 go ahead\r\n250 injected\r\n".utf8))
        XCTAssertEqual(try parser.next(), SMTPReply(220, nil, "go ahead"))
        parser.reset()
        XCTAssertTrue(parser.isEmpty)
        XCTAssertNil(try parser.next())
    }
}
