// Trace header tests: Return-Path, Received layout and folding (RFC 5321 §4.4), and the
// RFC 5322 §3.3 date format.
import Foundation
@testable import SMTPProtocol
import XCTest

final class TraceHeadersTests: XCTestCase {
    func testLastCommandIsLoggableAndNeverHoldsCredentials() {
        XCTAssertEqual(SMTPSession.loggable(Array("RCPT TO:<a!b@c>".utf8)), "RCPT TO:<a!b@c>")
        XCTAssertEqual(SMTPSession.loggable(Array("AUTH PLAIN AGFsaWNlAHNlY3JldA==".utf8)), "AUTH PLAIN")
        XCTAssertEqual(SMTPSession.loggable([0x4d, 0x0a, 0xff]), "M??")
        XCTAssertEqual(SMTPSession.loggable(Array(repeating: 0x41, count: 1000)).count, 256)
    }

    // 2025-07-01 10:00:00 UTC, a Tuesday.
    let date = Date(timeIntervalSince1970: 1_751_364_000)

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func testReturnPath() {
        XCTAssertEqual(text(TraceHeaders.returnPath(MailPath(localPart: "a", domain: "b.example"))), "Return-Path: <a@b.example>\r\n")
        XCTAssertEqual(text(TraceHeaders.returnPath(nil)), "Return-Path: <>\r\n")
        XCTAssertEqual(text(TraceHeaders.returnPath(MailPath(localPart: "\"x y\"", domain: "b.example"))), "Return-Path: <\"x y\"@b.example>\r\n")
    }

    func testReceivedLMTP() {
        let header = TraceHeaders.received(
            from: "mail.example.net", clientAddress: "192.0.2.7", by: "mx.example.org", with: "LMTP",
            id: "4aF9c2", for: MailPath(localPart: "alice", domain: "example.org"), date: date)
        XCTAssertEqual(text(header), """
            Received: from mail.example.net ([192.0.2.7]) by mx.example.org with LMTP\r
            \tid 4aF9c2 for <alice@example.org>; Tue, 1 Jul 2025 10:00:00 +0000\r\n
            """)
    }

    func testReceivedWithTLSAndIPv6FoldsBelow78() {
        let header = text(TraceHeaders.received(
            from: "a-rather-long-client-hostname.mail.example.net", clientAddress: "2001:db8::25",
            by: "mx.example.org", with: "ESMTPS", id: "ABCDEF0123", for: nil,
            tls: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256)",
            date: date))
        XCTAssertTrue(header.hasPrefix("Received: from a-rather-long-client-hostname.mail.example.net\r\n\t([IPv6:2001:db8::25])"), header)
        XCTAssertTrue(header.hasSuffix("; Tue, 1 Jul 2025 10:00:00 +0000\r\n"), header)
        XCTAssertFalse(header.contains(" for "))
        XCTAssertTrue(header.contains("(using TLSv1.3 with cipher"))
        for line in header.components(separatedBy: "\r\n").dropLast() {
            XCTAssertLessThan(line.utf8.count, 78, line)
        }
        let unfolded = header.replacingOccurrences(of: "\r\n\t", with: " ")
        XCTAssertTrue(unfolded.contains("by mx.example.org with ESMTPS id ABCDEF0123;"), unfolded)
        XCTAssertTrue(unfolded.contains("(256/256 bits) key-exchange"), unfolded)
    }

    func testReceivedSanitizesInjectedText() {
        let header = text(TraceHeaders.received(
            from: "evil\r\nX-Injected: yes", clientAddress: "unix-socket", by: "mx.example.org", with: "LMTP",
            id: "1", for: nil, tls: "bad)(parens", date: date))
        XCTAssertEqual(header.components(separatedBy: "\r\n").filter { $0.hasPrefix("X-Injected") }.count, 0)
        XCTAssertTrue(header.contains("from evilX-Injected: yes (unix-socket)"), header)
        XCTAssertTrue(header.contains("(using badparens)"), header)
    }

    func testDates() {
        let table: [(Double, TimeZone, String)] = [
            (0, TraceHeaders.utc, "Thu, 1 Jan 1970 00:00:00 +0000"),
            (1_709_208_000, TraceHeaders.utc, "Thu, 29 Feb 2024 12:00:00 +0000"),
            (1_751_364_000, TimeZone(secondsFromGMT: 2 * 3600)!, "Tue, 1 Jul 2025 12:00:00 +0200"),
            (1_751_364_000, TimeZone(secondsFromGMT: -(9 * 3600 + 30 * 60))!, "Tue, 1 Jul 2025 00:30:00 -0930"),
            (-1, TraceHeaders.utc, "Wed, 31 Dec 1969 23:59:59 +0000"),
            (4_102_444_799, TraceHeaders.utc, "Thu, 31 Dec 2099 23:59:59 +0000"),
        ]
        for (seconds, zone, expected) in table {
            XCTAssertEqual(TraceHeaders.rfc5322Date(Date(timeIntervalSince1970: seconds), timeZone: zone), expected)
        }
    }
}
