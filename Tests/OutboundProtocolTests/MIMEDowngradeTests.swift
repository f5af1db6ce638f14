// MIMEDowngrade: 8-bit MIME to 7-bit for a server without 8BITMIME (RFC 6152 §3). Results are
// decoded with Python's email package and must give back the original text; what cannot be
// converted (8-bit headers, 8-bit bytes under base64) is refused.
import Foundation
import MailSyntax
import OutboundProtocol
import XCTest

final class MIMEDowngradeTests: XCTestCase {
    func crlf(_ s: String) -> [UInt8] { Array(s.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    /// Python's decoded text of every text/* part, in order, and each part's transfer encoding.
    func decodeWithPython(_ bytes: [UInt8]) throws -> [[String]] {
        let file = try temporaryFile(self, bytes)
        let script = """
        import email, json, sys
        from email import policy
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
        out = []
        for p in m.walk():
            if p.get_content_maintype() == 'text':
                out.append([p.get_content_type(), p.get('Content-Transfer-Encoding', ''), p.get_content()])
            elif not p.is_multipart() and p.get_content_maintype() != 'message':
                out.append([p.get_content_type(), p.get('Content-Transfer-Encoding', ''), p.get_content().hex()])
        print(json.dumps(out))
        """
        let json = try runPython(script, [file])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String]])
    }

    func testSevenBitMessageIsUnchanged() {
        let m = crlf("Subject: hi\n\nplain ascii\n")
        XCTAssertFalse(MIMEDowngrade.needsDowngrade(m))
        XCTAssertEqual(MIMEDowngrade.sevenBit(m), m)
    }

    func testMultipartWithEightBitPartsDecodesToTheSameText() throws {
        let m = crlf("""
        From: a@example.net
        Subject: greetings
        MIME-Version: 1.0
        Content-Type: multipart/alternative; boundary="b1"
        Content-Transfer-Encoding: 8bit

        --b1
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        Grüße aus Köln = schön 
        \(String(repeating: "ä", count: 60))
        --b1
        Content-Type: text/html; charset=utf-8

        <p>naïve café</p>
        --b1--

        """)
        XCTAssertTrue(MIMEDowngrade.needsDowngrade(m))
        let out = try XCTUnwrap(MIMEDowngrade.sevenBit(m))
        XCTAssertFalse(out.contains { $0 >= 0x80 })
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.contains("Content-Type: multipart/alternative; boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"))
        for line in text.components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 76, line) }
        let parts = try decodeWithPython(out)
        XCTAssertEqual(parts.map { $0[0] }, ["text/plain", "text/html"])
        XCTAssertEqual(parts.map { $0[1] }, ["quoted-printable", "quoted-printable"])
        // The CRLF before a boundary belongs to the delimiter (RFC 2046 §5.1.1), so no final newline.
        XCTAssertEqual(parts[0][2], "Grüße aus Köln = schön \n\(String(repeating: "ä", count: 60))")
        XCTAssertEqual(parts[1][2], "<p>naïve café</p>")
    }

    func testPlainEightBitMessageBecomesMIME() throws {
        let m = crlf("From: a@example.net\nSubject: x\n\nÜberall\n.dot line\n")
        let out = try XCTUnwrap(MIMEDowngrade.sevenBit(m))
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("From: a@example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                     + "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=9Cberall\r\n.dot line\r\n"))
        XCTAssertEqual(try decodeWithPython(out).first?[2], "Überall\n.dot line\n")
    }

    func testBinaryPartBecomesBase64() throws {
        let payload: [UInt8] = (0..<200).map { UInt8($0) }
        var m = crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n")
        m += payload
        m += crlf("\n--zz--\n")
        let out = try XCTUnwrap(MIMEDowngrade.sevenBit(m))
        let parts = try decodeWithPython(out)
        XCTAssertEqual(parts.first?[1], "base64")
        XCTAssertEqual(parts.first?[2], payload.map { String(format: "%02x", $0) }.joined())
    }

    func testUnconvertibleMessages() {
        // Raw UTF-8 in a header would need RFC 2047 words; 8-bit bytes under base64 are broken.
        XCTAssertNil(MIMEDowngrade.sevenBit(crlf("Subject: Grüße\n\nbody\n")))
        XCTAssertNil(MIMEDowngrade.sevenBit(crlf("MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\nÿÿÿÿ\n")))
        // In a multipart preamble nothing is converted: refused rather than sent raw.
        XCTAssertNil(MIMEDowngrade.sevenBit(crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n\npréambule\n--q\n\nx\n--q--\n")))
    }

    func testQuotedPrintableDetails() throws {
        let long = String(repeating: "x", count: 200)
        let m = crlf("Content-Type: text/plain; charset=utf-8\n\né\(long)\ntab\t\nend=")
        let out = try XCTUnwrap(MIMEDowngrade.sevenBit(m))
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.contains("tab=09\r\n"), "whitespace before a line break is encoded")
        XCTAssertTrue(text.hasSuffix("end=3D"))
        for line in text.components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 76) }
        XCTAssertEqual(try decodeWithPython(out).first?[2], "é\(long)\ntab\t\nend=")
    }
}
