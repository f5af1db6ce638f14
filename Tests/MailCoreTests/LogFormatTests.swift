// Log lines under journald (JOURNAL_STREAM naming our stderr): an sd-daemon(3) priority prefix
// per level and no time of their own; elsewhere plain, or timed with POSTERN_LOG_TIME=1.
import Foundation
import Logging
import XCTest
@testable import MailCore

final class LogFormatTests: XCTestCase {
    static let stderrID: (dev: UInt64, ino: UInt64) = (dev: 64769, ino: 123456)

    func testDetect() {
        let table: [([String: String], (dev: UInt64, ino: UInt64)?, LogFormat)] = [
            ([:], Self.stderrID, .plain),
            (["JOURNAL_STREAM": "64769:123456"], Self.stderrID, LogFormat(journald: true, withTime: false)),
            (["JOURNAL_STREAM": "64769:123456", "POSTERN_LOG_TIME": "1"], Self.stderrID, LogFormat(journald: true, withTime: false)),
            (["JOURNAL_STREAM": "64769:999"], Self.stderrID, .plain),            // stderr redirected since
            (["JOURNAL_STREAM": "1:123456"], Self.stderrID, .plain),
            (["JOURNAL_STREAM": "64769:123456"], nil, .plain),                   // no stderr at all
            (["JOURNAL_STREAM": "64769:123456:7"], Self.stderrID, .plain),
            (["JOURNAL_STREAM": "garbage"], Self.stderrID, .plain),
            (["JOURNAL_STREAM": ""], Self.stderrID, .plain),
            (["POSTERN_LOG_TIME": "1"], Self.stderrID, LogFormat(journald: false, withTime: true)),
            (["JOURNAL_STREAM": "64769:999", "POSTERN_LOG_TIME": "1"], Self.stderrID, LogFormat(journald: false, withTime: true)),
        ]
        for (env, st, expected) in table {
            XCTAssertEqual(LogFormat.detect(environment: env, stderr: st), expected, "\(env)")
        }
        XCTAssertFalse(LogFormat(journald: true, withTime: true).withTime)
    }

    func testPriorityPrefixPerLevel() {
        let journald = LogFormat.detect(environment: ["JOURNAL_STREAM": "64769:123456", "POSTERN_LOG_TIME": "1"], stderr: Self.stderrID)
        let h = PosternLogHandler(process: "smtpd", level: .trace, format: journald) { _ in }
        let pid = getpid()
        let table: [(Logger.Level, String)] = [
            (.critical, "<2>"), (.error, "<3>"), (.warning, "<4>"), (.notice, "<5>"), (.info, "<6>"), (.debug, "<7>"), (.trace, "<7>"),
        ]
        for (level, prefix) in table {
            let line = h.line(level: level, message: "hello\nworld", metadata: ["session": "AB12", "client": "192.0.2.1"])
            XCTAssertEqual(line, "\(prefix)smtpd[\(pid)] \(level): [AB12] hello\\nworld client=192.0.2.1\n")
        }
    }

    func testPlainAndTimedLines() {
        let pid = getpid()
        let plain = PosternLogHandler(process: "imapd", level: .info, format: .plain) { _ in }
        XCTAssertEqual(plain.line(level: .error, message: "x", metadata: nil), "imapd[\(pid)] error: x\n")
        let timed = PosternLogHandler(process: "imapd", level: .info, format: LogFormat(journald: false, withTime: true)) { _ in }
        let line = timed.line(level: .error, message: "x", metadata: nil)
        XCTAssertTrue(line.hasSuffix(" imapd[\(pid)] error: x\n"), line)
        XCTAssertNotNil(ISO8601DateFormatter().date(from: String(line.prefix { $0 != " " })), line)
    }

    /// This process: its own stderr's identity in JOURNAL_STREAM turns prefixes on (fstat of fd 2).
    func testCurrentReadsOurStderr() {
        var st = stat()
        XCTAssertEqual(fstat(2, &st), 0)
        setenv("JOURNAL_STREAM", "\(st.st_dev):\(st.st_ino)", 1)
        defer { unsetenv("JOURNAL_STREAM") }
        XCTAssertTrue(LogFormat.current().journald)
        setenv("JOURNAL_STREAM", "\(st.st_dev):\(st.st_ino &+ 1)", 1)
        XCTAssertFalse(LogFormat.current().journald)
    }
}
