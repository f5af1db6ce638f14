// DSNBuilder: the bounce parses with Python's email package as multipart/report with one
// message/delivery-status block per recipient (RFC 3464, RFC 6522); RET=HDRS returns
// text/rfc822-headers; never a bounce of a bounce; the boundary never occurs in the original.
import Foundation
import MailSyntax
import OutboundProtocol
import SMTPProtocol
import XCTest

final class DSNBuilderTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let original = Array("From: Alice <alice@example.net>\r\nTo: a@example.org, b@example.org\r\nSubject: Quarterly report\r\nMessage-ID: <q1@example.net>\r\n\r\nHello,\r\n.this line started with a dot\r\nBye\r\n".utf8)

    /// Parses `bytes` with Python's email package; returns its findings as JSON.
    func parseWithPython(_ bytes: [UInt8]) throws -> [String: Any] {
        let file = try temporaryFile(self, bytes)
        let script = """
        import email, json, sys
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
        parts = m.get_payload()
        blocks = parts[1].get_payload()
        out = {"type": m.get_content_type(), "report": m.get_param("report-type"), "from": m["From"],
               "auto": m["Auto-Submitted"], "subject": m["Subject"], "to": m["To"],
               "defects": [str(d) for p in m.walk() for d in p.defects],
               "parts": [p.get_content_type() for p in parts],
               "message": dict(blocks[0].items()), "recipients": [dict(b.items()) for b in blocks[1:]]}
        third = parts[2]
        if third.get_content_type() == "message/rfc822":
            inner = third.get_payload()[0]
            out["original_subject"] = inner["Subject"]
            out["original_body"] = inner.get_payload()
        else:
            out["headers_text"] = third.get_payload(decode=True).decode()
        print(json.dumps(out))
        """
        let json = try runPython(script, [file])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    func report(ret: DSNReturn? = nil, sender: MailPath? = path("alice@example.net")) -> DSNReport {
        let refused = RecipientResult(recipient: path("b@example.org"), status: .permanent,
                                      reply: SMTPReply(code: 550, enhanced: "5.1.1", lines: ["<b@example.org>:", "User unknown"]), remote: true)
        let expired = RecipientResult(recipient: path("c@example.org"), status: .temporary, reply: .clientTimeout, remote: false)
        return DSNReport(reportingMTA: "mail.example.net", originalSender: sender, arrivalDate: now - 3600, envelopeID: "ENV-7",
                         recipients: [
                             DSNRecipient(refused, action: .failed, remoteMTA: "mx.example.org", originalRecipient: "B@example.org",
                                          lastAttemptDate: now),
                             DSNRecipient(expired, action: .failed, remoteMTA: "mx.example.org", lastAttemptDate: now),
                         ], ret: ret, original: original)
    }

    func testBounceParsesAsMultipartReportWithPerRecipientBlocks() throws {
        var rng = SplitMix(seed: 3)
        let dsn = try XCTUnwrap(DSNBuilder.build(report(), date: now, using: &rng))
        XCTAssertNil(dsn.sender, "null envelope sender")
        XCTAssertEqual(dsn.recipient, path("alice@example.net"))
        let parsed = try parseWithPython(dsn.bytes)
        XCTAssertEqual(parsed["type"] as? String, "multipart/report")
        XCTAssertEqual(parsed["report"] as? String, "delivery-status")
        XCTAssertEqual(parsed["parts"] as? [String], ["text/plain", "message/delivery-status", "message/rfc822"])
        XCTAssertEqual(parsed["defects"] as? [String], [])
        XCTAssertEqual(parsed["from"] as? String, "Mail Delivery System <MAILER-DAEMON@mail.example.net>")
        XCTAssertEqual(parsed["auto"] as? String, "auto-replied")
        XCTAssertEqual(parsed["to"] as? String, "<alice@example.net>")
        let message = try XCTUnwrap(parsed["message"] as? [String: String])
        XCTAssertEqual(message["Reporting-MTA"], "dns; mail.example.net")
        XCTAssertEqual(message["Original-Envelope-Id"], "ENV-7")
        XCTAssertEqual(message["Arrival-Date"], TraceHeaders.rfc5322Date(now - 3600))
        let recipients = try XCTUnwrap(parsed["recipients"] as? [[String: String]])
        XCTAssertEqual(recipients.count, 2)
        XCTAssertEqual(recipients[0]["Final-Recipient"], "rfc822; b@example.org")
        XCTAssertEqual(recipients[0]["Original-Recipient"], "rfc822; B@example.org")
        XCTAssertEqual(recipients[0]["Action"], "failed")
        XCTAssertEqual(recipients[0]["Status"], "5.1.1")
        XCTAssertEqual(recipients[0]["Remote-MTA"], "dns; mx.example.org")
        XCTAssertEqual(recipients[0]["Diagnostic-Code"], "smtp; 550 5.1.1 <b@example.org>: User unknown")
        XCTAssertEqual(recipients[0]["Last-Attempt-Date"], TraceHeaders.rfc5322Date(now))
        // Our own decision: no Remote-MTA, an X-Postern diagnostic, the status of the last try.
        XCTAssertEqual(recipients[1]["Final-Recipient"], "rfc822; c@example.org")
        XCTAssertEqual(recipients[1]["Action"], "failed")
        XCTAssertEqual(recipients[1]["Status"], "4.4.2")
        XCTAssertNil(recipients[1]["Remote-MTA"])
        XCTAssertEqual(recipients[1]["Diagnostic-Code"], "X-Postern; Timeout while talking to the server")
        XCTAssertEqual(parsed["original_subject"] as? String, "Quarterly report")
        XCTAssertEqual(parsed["original_body"] as? String, "Hello,\n.this line started with a dot\nBye\n")   // Python reads CRLF as \n
    }

    func testRetHeadersReturnsTextRFC822Headers() throws {
        var rng = SplitMix(seed: 4)
        let dsn = try XCTUnwrap(DSNBuilder.build(report(ret: .headers), date: now, using: &rng))
        let parsed = try parseWithPython(dsn.bytes)
        XCTAssertEqual(parsed["parts"] as? [String], ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        let headers = try XCTUnwrap(parsed["headers_text"] as? String)
        XCTAssertTrue(headers.contains("Subject: Quarterly report"))
        XCTAssertFalse(headers.contains("Hello,"))
        // A FULL return over the size limit shrinks to the headers too.
        let big = try XCTUnwrap(DSNBuilder.build(report(ret: .full), date: now, returnSizeLimit: 10, using: &rng))
        XCTAssertTrue(String(decoding: big.bytes, as: UTF8.self).contains("Content-Type: text/rfc822-headers"))
    }

    func testDelayWarning() throws {
        let result = RecipientResult(recipient: path("b@example.org"), status: .temporary, reply: SMTPReply(451, "4.7.1", "greylisted"), remote: true)
        let r = DSNReport(reportingMTA: "mail.example.net", originalSender: path("alice@example.net"),
                          recipients: [DSNRecipient(result, action: .delayed, remoteMTA: "mx.example.org", willRetryUntil: now + 86_400)],
                          ret: .headers, original: original)
        var rng = SplitMix(seed: 5)
        let parsed = try parseWithPython(try XCTUnwrap(DSNBuilder.build(r, date: now, using: &rng)).bytes)
        XCTAssertEqual(parsed["subject"] as? String, "Delayed Mail (still being retried)")
        let block = try XCTUnwrap((parsed["recipients"] as? [[String: String]])?.first)
        XCTAssertEqual(block["Action"], "delayed")
        XCTAssertEqual(block["Status"], "4.7.1")
        XCTAssertEqual(block["Will-Retry-Until"], TraceHeaders.rfc5322Date(now + 86_400))
    }

    func testNeverABounceOfABounce() {
        XCTAssertFalse(DSNBuilder.mayBounce(sender: nil))
        XCTAssertTrue(DSNBuilder.mayBounce(sender: path("alice@example.net")))
        var rng = SplitMix(seed: 6)
        XCTAssertNil(DSNBuilder.build(report(sender: nil), date: now, using: &rng))
    }

    func testBoundaryNeverOccursInTheOriginalAndFieldsCannotBeInjected() throws {
        // The generator's first boundary is planted in the original: the builder must pick another.
        var probe = SplitMix(seed: 9)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        let first = "=_postern_" + String(decoding: (0..<24).map { _ in alphabet[Int(probe.next() % UInt64(alphabet.count))] }, as: UTF8.self)
        var r = report()
        r.original = Array("Subject: trap\r\n\r\n--\(first)\r\n".utf8)
        r.envelopeID = "x\r\nAction: delivered"
        var rng = SplitMix(seed: 9)
        let text = String(decoding: try XCTUnwrap(DSNBuilder.build(r, date: now, using: &rng)).bytes, as: UTF8.self)
        XCTAssertFalse(text.contains("boundary=\"\(first)\""))
        XCTAssertTrue(text.contains("Original-Envelope-Id: x??Action: delivered\r\n"))
        let parsed = try parseWithPython(Array(text.utf8))
        XCTAssertEqual((parsed["recipients"] as? [[String: String]])?.map { $0["Action"] }, ["failed", "failed"])
    }

    func testNonASCIIAddressGivesTheRFC6533Form() throws {
        let result = RecipientResult(recipient: path("jörg@exämple.org"), status: .permanent, reply: .mailboxUnknown, remote: true)
        let r = DSNReport(reportingMTA: "mail.example.net", originalSender: path("alice@example.net"),
                          recipients: [DSNRecipient(result, action: .failed, remoteMTA: "mx.xn--exmple-cua.org")],
                          original: Array("Subject: x\r\n\r\nbody\r\n".utf8))
        var rng = SplitMix(seed: 8)
        let dsn = try XCTUnwrap(DSNBuilder.build(r, date: now, using: &rng))
        XCTAssertTrue(dsn.requiresSMTPUTF8)
        let text = String(decoding: dsn.bytes, as: UTF8.self)
        XCTAssertTrue(text.contains("Final-Recipient: utf-8; jörg@exämple.org\r\n"))
        let parts = try runPython("""
        import email, sys
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
        print(m.get_content_type(), *[p.get_content_type() for p in m.get_payload()])
        """, [try temporaryFile(self, dsn.bytes)])
        XCTAssertEqual(parts, "multipart/report text/plain message/global-delivery-status message/global\n")
        var rng2 = SplitMix(seed: 8)
        XCTAssertFalse(try XCTUnwrap(DSNBuilder.build(report(), date: now, using: &rng2)).requiresSMTPUTF8)
    }

    func testStatusFromAReplyWithoutEnhancedCode() {
        let r = RecipientResult(recipient: path("b@example.org"), status: .permanent, reply: SMTPReply(554, nil, "no"), remote: true)
        XCTAssertEqual(DSNRecipient(r, action: .failed, remoteMTA: "mx").status, "5.0.0")
        let t = RecipientResult(recipient: path("b@example.org"), status: .temporary, reply: SMTPReply(421, nil, "busy"), remote: false)
        let block = DSNRecipient(t, action: .delayed, remoteMTA: "mx")
        XCTAssertEqual(block.status, "4.0.0")
        XCTAssertNil(block.remoteMTA, "a local decision names no remote MTA")
    }
}
