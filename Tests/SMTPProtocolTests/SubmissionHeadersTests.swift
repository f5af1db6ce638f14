// Submission header fix-ups (RFC 6409 §8.2/§8.3): header-section end, Message-ID/Date
// detection (folded lines, LF-only, no body, limits), and the lines built when missing.
// The scanner is also fed one byte at a time.
import Foundation
import SMTPProtocol
import MailSyntax
import XCTest

final class SubmissionHeadersTests: XCTestCase {
    // 2025-07-01 10:00:00 UTC, a Tuesday.
    let date = Date(timeIntervalSince1970: 1_751_364_000)

    func testScan() {
        // (message, expected headerEnd, hasMessageID, hasDate, usesBareLF)
        let table: [(String, Int?, Bool, Bool, Bool)] = [
            ("From: a\r\nSubject: x\r\n\r\nbody\r\n", 23, false, false, false),
            ("Message-ID: <x@y>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\n\r\n", 59, true, true, false),
            ("message-id:<x@y>\r\nDATE:x\r\n\r\n", 28, true, true, false),
            ("Date : obsolete space before the colon\r\n\r\n", 42, false, true, false),
            ("Subject: a\r\n Date: folded, not a field\r\n\tMessage-ID: <no@no>\r\n\r\n", 64, false, false, false),
            ("Date:\r\n Tue, 1 Jul 2025 10:00:00 +0000\r\n\r\n", 42, false, true, false),
            ("Resent-Date: x\r\nResent-Message-ID: <a@b>\r\nX-Date: y\r\nDates: z\r\n\r\n", 65, false, false, false),
            ("Subject: no body\r\nDate: x\r\n", nil, false, true, false),
            ("Subject: x\r\n\r\nDate: in the body\r\nMessage-ID: <body@x>\r\n", 14, false, false, false),
            ("Subject: x\nMessage-ID: <a@b>\n\nbody\nDate: z\n", 30, true, false, true),
            ("Subject: x\r\nDate: y\n\n", 21, false, true, false),
            ("\r\nDate: body\r\n", 2, false, false, false),
            ("\n", 1, false, false, true),
            ("", nil, false, false, false),
            ("Date", nil, false, false, false),
            ("Date:", nil, false, true, false),
            ("not a header line\r\nDate: x\r\n\r\n", 30, false, true, false),
            ("Subject: bare\rcr\r\nDate: x\r\n\r\n", 29, false, true, false),
        ]
        for (message, end, mid, hasDate, bareLF) in table {
            let expected = MessageHeaderScan(headerEnd: end, hasMessageID: mid, hasDate: hasDate, usesBareLF: bareLF)
            XCTAssertEqual(SubmissionHeaders.scan(Array(message.utf8)), expected, message.debugDescription)
            var scanner = HeaderScanner()
            for byte in message.utf8 { scanner.feed([byte]) }
            scanner.finish()
            XCTAssertEqual(scanner.result, expected, "byte by byte: \(message.debugDescription)")
        }
    }

    func testScannerStopsAtTheEndOfTheHeaderOrTheLimit() {
        var scanner = HeaderScanner()
        scanner.feed(Array("Subject: x\r\n\r\n".utf8))
        XCTAssertTrue(scanner.isDone)
        scanner.feed(Array("Date: later\r\n".utf8))
        XCTAssertFalse(scanner.result.hasDate)
        XCTAssertEqual(scanner.result.headerEnd, 14)

        let big = "X-Filler: " + String(repeating: "x", count: 200) + "\r\nDate: x\r\n\r\n"
        let limited = SubmissionHeaders.scan(Array(big.utf8), maxHeaderBytes: 100)
        XCTAssertEqual(limited, MessageHeaderScan())
        XCTAssertTrue(SubmissionHeaders.scan(Array(big.utf8)).hasDate)
        // Only the first bytes of a message: no end seen yet, nothing claimed.
        XCTAssertEqual(SubmissionHeaders.scan(Array("Date: x\r\nSubj".utf8), complete: false),
                       MessageHeaderScan(hasDate: true))
    }

    func testMissingHeaders() {
        var rng = SplitMix(seed: 1)
        let none = SubmissionHeaders.missingHeaders(for: MessageHeaderScan(), hostname: "mx.example.org", date: date, using: &rng)
        let text = String(decoding: none, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        XCTAssertEqual(lines.count, 3, text)
        XCTAssertTrue(lines[0].hasPrefix("Message-ID: <"), text)
        XCTAssertTrue(lines[0].hasSuffix("@mx.example.org>"), text)
        XCTAssertEqual(lines[1], "Date: Tue, 1 Jul 2025 10:00:00 +0000")
        XCTAssertEqual(lines[2], "")
        let id = lines[0].dropFirst("Message-ID: <".count).prefix { $0 != "@" }
        XCTAssertTrue(id.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." }, String(id))
        XCTAssertGreaterThanOrEqual(id.count, 20)

        var again = SplitMix(seed: 1)
        XCTAssertEqual(SubmissionHeaders.missingHeaders(for: MessageHeaderScan(), hostname: "mx.example.org", date: date, using: &again), none,
                       "deterministic with an injected generator")

        let both = MessageHeaderScan(headerEnd: 10, hasMessageID: true, hasDate: true)
        XCTAssertEqual(SubmissionHeaders.missingHeaders(for: both, hostname: "h", date: date), [])
        let onlyDate = SubmissionHeaders.missingHeaders(for: MessageHeaderScan(hasMessageID: true, usesBareLF: true),
                                                        hostname: "h", date: date,
                                                        timeZone: TimeZone(secondsFromGMT: 7200)!)
        XCTAssertEqual(String(decoding: onlyDate, as: UTF8.self), "Date: Tue, 1 Jul 2025 12:00:00 +0200\n")
        let a = SubmissionHeaders.missingHeaders(for: MessageHeaderScan(hasDate: true), hostname: "h", date: date)
        let b = SubmissionHeaders.missingHeaders(for: MessageHeaderScan(hasDate: true), hostname: "h", date: date)
        XCTAssertNotEqual(a, b, "random Message-IDs")
    }

    func testMessageIDHostSanitized() {
        var rng = SplitMix(seed: 2)
        for (host, suffix) in [("mx.example.org.", "@mx.example.org>"), ("", "@localhost>"), ("evil>\r\nX: y", "@evilXy>"),
                               ("[192.0.2.1]", "@192.0.2.1>")] {
            let id = SubmissionHeaders.messageID(hostname: host, date: date, using: &rng)
            XCTAssertTrue(id.hasPrefix("<") && id.hasSuffix(suffix), id)
            XCTAssertFalse(id.contains("\r") || id.contains("\n") || id.contains(" "))
        }
        XCTAssertEqual(SubmissionHeaders.dateLine(date), Array("Date: Tue, 1 Jul 2025 10:00:00 +0000\r\n".utf8))
    }

    /// The helpers on a body as the session hands it out (messageChunk pieces).
    func testScanningMessageChunks() {
        var limits = SMTPLimits()
        limits.messageChunkSize = 5
        var glue = ScriptedGlue(smtpdConfig(.mta, limits: limits))
        glue.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nDATA\r\nSubject: hi\r\nDate: x\r\n\r\nbody\r\n.\r\n")
        var scanner = HeaderScanner()
        for case .messageChunk(let chunk) in glue.actions where !scanner.isDone { scanner.feed(chunk) }
        XCTAssertEqual(scanner.result, MessageHeaderScan(headerEnd: 24, hasMessageID: false, hasDate: true))
    }
}
