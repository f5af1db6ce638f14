// The header fields the session adds to an accepted message: trace fields (RFC 5321 §4.4)
// and, on a submission port, Date/Message-ID (RFC 6409 §8), with the caller's clock.
import Foundation
import SMTPProtocol
import XCTest

final class SMTPSessionHeadersTests: XCTestCase {
    let date = Date(timeIntervalSince1970: 1_750_000_000)   // Sun, 15 Jun 2025 15:06:40 +0000

    func testTraceHeaders() {
        var glue = ScriptedGlue(lmtpConfig(), clientAddress: "192.0.2.7")
        glue.feed("LHLO c.example\r\nMAIL FROM:<x@client.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        guard case .beginMessage(let env)? = glue.actions.last else { return XCTFail("\(glue.actions)") }
        let text = String(decoding: glue.session.traceHeaders(for: env, id: "ID1", showAuthUser: false, date: date), as: UTF8.self)
        XCTAssertEqual(text, "Return-Path: <x@client.example>\r\n"
                       + "Received: from c.example ([192.0.2.7]) by mx.example.org with LMTP id ID1\r\n"
                       + "\tfor <alice@example.org>; Sun, 15 Jun 2025 15:06:40 +0000\r\n")
    }

    func testSubmissionHeadersOnlyForAuthenticatedSubmissions() {
        var glue = ScriptedGlue(smtpdConfig(.submission), loopback: true)
        glue.feed("EHLO c\r\nAUTH PLAIN \(base64("\0alice\0secret"))\r\nMAIL FROM:<alice@example.org>\r\n")
        guard let env = glue.session.envelope else { return XCTFail("no transaction") }
        let bare = Array("Subject: x\r\n\r\nhi\r\n".utf8)
        let added = String(decoding: glue.session.submissionHeaders(for: env, submission: true, message: bare, date: date), as: UTF8.self)
        XCTAssertTrue(added.hasPrefix("Message-ID: <"), added)
        XCTAssertTrue(added.hasSuffix("Date: Sun, 15 Jun 2025 15:06:40 +0000\r\n"), added)
        XCTAssertEqual(glue.session.submissionHeaders(for: env, submission: false, message: bare, date: date), [], "MTA port")
        var anonymous = env
        anonymous.authenticatedUser = nil
        XCTAssertEqual(glue.session.submissionHeaders(for: anonymous, submission: true, message: bare, date: date), [])
        let complete = Array("Date: x\r\nMessage-ID: <a@b>\r\n\r\nhi\r\n".utf8)
        XCTAssertEqual(glue.session.submissionHeaders(for: env, submission: true, message: complete, date: date), [])
    }
}
