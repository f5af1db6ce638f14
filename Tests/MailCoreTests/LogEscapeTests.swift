// Log injection (issue 9.1): every hostile field gives one line with no forged `key=value` pair,
// and the fail2ban filter of docs/fail2ban.md matches only real failures for the real client.
import Foundation
import Logging
import XCTest
@testable import MailCore

final class LogEscapeTests: XCTestCase {
    func testTextEscapes() {
        let table: [(String, String)] = [
            ("plain text 123 <a@b> k=v \"q\"", "plain text 123 <a@b> k=v \"q\""),
            ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("a\tb", "a\\tb"),
            ("\u{0}\u{1}\u{1b}[31m\u{7f}", "\\x00\\x01\\x1b[31m\\x7f"),
            ("back\\slash", "back\\\\slash"), ("\\n", "\\\\n"),
            ("nel\u{85}c1\u{9f}", "nel\\u0085c1\\u009f"),
            ("ls\u{2028}ps\u{2029}", "ls\\u2028ps\\u2029"),
            ("rlo\u{202e}bom\u{feff}zw\u{200b}", "rlo\\u202ebom\\ufeffzw\\u200b"),
            ("jürgen ✓ 日本", "jürgen ✓ 日本"),
        ]
        for (input, expected) in table {
            XCTAssertEqual(LogEscape.text(input), expected, input.debugDescription)
        }
    }

    func testValueQuoting() {
        let table: [(String, String)] = [
            ("alice@example.org", "alice@example.org"), ("", ""), ("192.0.2.7", "192.0.2.7"),
            ("x client=1.2.3.4", "\"x client=1.2.3.4\""),
            ("a=b", "\"a=b\""), ("say \"hi\"", "\"say \\\"hi\\\"\""), ("q\"", "\"q\\\"\""),
            ("a\nclient=1.2.3.4", "\"a\\nclient=1.2.3.4\""),
            ("nbsp\u{a0}client=1", "\"nbsp\u{a0}client=1\""),
            ("tab\there", "\"tab\\there\""),
            ("back\\slash", "back\\\\slash"),
        ]
        for (input, expected) in table {
            XCTAssertEqual(LogEscape.value(input), expected, input.debugDescription)
        }
    }

    /// Hostile client-chosen values, one per logged field.
    static let hostile: [String] = [
        "x\nsmtpd[1] warning: [ABC] authentication failed client=6.6.6.6 failures=1 mechanism=plain user=x",
        "x\rsmtpd[1] warning: [ABC] authentication failed client=6.6.6.6 failures=1 mechanism=plain user=x",
        "x client=6.6.6.6", "x\tclient=6.6.6.6", "x\u{a0}client=6.6.6.6", "x\u{2028}client=6.6.6.6",
        "x\u{85}client=6.6.6.6", "\" client=6.6.6.6 x=\"", "\\\" client=6.6.6.6", "x\u{0}client=6.6.6.6",
        "x\u{b}\u{c}\u{1c}\u{1d}\u{1e}client=6.6.6.6", "\u{1b}[2K\u{1b}[1Gsmtpd[1] warning: x",
        String(repeating: "\n", count: 300),
    ]

    func captured(_ body: (Logger) -> Void) -> [String] {
        final class Box: @unchecked Sendable { var lines: [String] = []; let lock = NSLock() }
        let box = Box()
        var logger = Logger(label: "t") { _ in
            PosternLogHandler(process: "smtpd", level: .debug) { l in box.lock.lock(); box.lines.append(l); box.lock.unlock() }
        }
        logger[metadataKey: "session"] = "1QTQVC3E85"
        body(logger)
        return box.lines
    }

    /// The failregex of docs/fail2ban.md, as fail2ban would use it (<HOST> an address group).
    static func failregex() throws -> NSRegularExpression {
        let doc = try String(contentsOf: URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().appendingPathComponent("../../docs/fail2ban.md"), encoding: .utf8)
        let line = try XCTUnwrap(doc.split(separator: "\n").first { $0.hasPrefix("failregex = ") })
        let pattern = line.dropFirst("failregex = ".count).replacingOccurrences(of: "<HOST>", with: "(?<host>[0-9a-fA-F.:]+)")
        return try NSRegularExpression(pattern: String(pattern), options: [.anchorsMatchLines])
    }

    static func hosts(_ regex: NSRegularExpression, _ text: String) -> [String] {
        regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(withName: "host"), in: text).map { String(text[$0]) }
        }
    }

    func testAuthFailureLineIsTheDocumentedOne() throws {
        let lines = captured { AuthLog.failed(logger: $0, client: "192.0.2.7", user: "alice@example.org", mechanism: "PLAIN", failures: 3) }
        XCTAssertEqual(lines, ["smtpd[\(getpid())] warning: [1QTQVC3E85] authentication failed client=192.0.2.7 failures=3 mechanism=plain user=alice@example.org\n"])
        XCTAssertEqual(Self.hosts(try Self.failregex(), lines[0]), ["192.0.2.7"])
        let v6 = captured { AuthLog.failed(logger: $0, client: "2001:db8::7", user: "", mechanism: "login", failures: 1) }
        XCTAssertEqual(Self.hosts(try Self.failregex(), v6[0]), ["2001:db8::7"])
    }

    /// Each hostile value through every field: one line each, ending in its only newline; the
    /// metadata keys are exactly the ones given; fail2ban sees only the real client, and only
    /// on the real failure line (whatever the user name, so no name escapes the filter either).
    func testHostileFieldsGiveOneLineAndNoForgedPair() throws {
        let regex = try Self.failregex()
        for h in Self.hostile {
            let lines = captured { logger in
                AuthLog.failed(logger: logger, client: "192.0.2.7", user: h, mechanism: "plain", failures: 1)
                AuthLog.refused(logger: logger, client: "192.0.2.7", user: h)
                logger.warning("\(h)", metadata: ["client": "192.0.2.8", "helo": "\(h)", "command": "\(h)"])
                logger.warning("reply 550 \(h)", metadata: ["sni": "\(h)", "key": "\(h)"])
                logger.info("TLS established", metadata: ["sni": "\(h)", "version": "TLSv1.3"])
            }
            XCTAssertEqual(lines.count, 5)
            for l in lines {
                XCTAssertEqual(l.filter { $0 == "\n" || $0 == "\r" }.count, 1, l.debugDescription)
                XCTAssertTrue(l.hasSuffix("\n"))
                XCTAssertFalse(l.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029 },
                               l.debugDescription)
                // Python's splitlines (fail2ban reads lines with it) sees one line too.
                XCTAssertFalse(l.dropLast().unicodeScalars.contains { [0x0b, 0x0c, 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029].contains($0.value) })
            }
            let all = lines.joined()
            XCTAssertEqual(Self.hosts(regex, all), ["192.0.2.7"], all)
            // Where the message is fixed text, the pairs after it are exactly the ones logged.
            XCTAssertEqual(pairs(lines[0], after: "authentication failed ").map(\.0), ["client", "failures", "mechanism", "user"], lines[0])
            XCTAssertEqual(pairs(lines[0], after: "authentication failed ").last?.1, AuthLog.shortened(h), lines[0])
            XCTAssertEqual(pairs(lines[1], after: "too many failures ").map(\.0), ["client", "user"], lines[1])
            XCTAssertEqual(pairs(lines[4], after: "TLS established ").map { "\($0)=\($1)" }, ["sni=\(h)", "version=TLSv1.3"], lines[4])
        }
    }

    func testLongUserNamesAreShortened() {
        let long = String(repeating: "ü", count: 100)          // 200 bytes
        XCTAssertEqual(AuthLog.shortened(long), String(repeating: "ü", count: 64) + "...")
        XCTAssertEqual(AuthLog.shortened("short"), "short")
        let lines = captured { AuthLog.failed(logger: $0, client: "192.0.2.7", user: String(repeating: "u", count: 6000), mechanism: "login", failures: 1) }
        XCTAssertTrue(lines[0].hasSuffix(" user=" + String(repeating: "u", count: 128) + "...\n"))
    }

    /// Parses the " key=value" pairs after the message the way a reader of the format would:
    /// a bare value runs to the next space, a quoted one to its closing quote; escapes undone.
    func pairs(_ line: String, after message: String) -> [(String, String)] {
        var s = Substring(line.dropLast())
        guard let start = s.range(of: message) else { return [] }
        s = s[start.upperBound...]
        var out: [(String, String)] = []
        while let eq = s.firstIndex(of: "=") {
            let key = String(s[..<eq]); s = s[s.index(after: eq)...]
            var raw: Substring
            if s.first == "\"" {
                var i = s.index(after: s.startIndex)
                while i < s.endIndex, s[i] != "\"" { i = s.index(after: s[i] == "\\" ? s.index(after: i) : i) }
                raw = s[s.index(after: s.startIndex)..<i]
                s = i < s.endIndex ? s[s.index(after: i)...] : ""
            } else {
                let end = s.firstIndex(of: " ") ?? s.endIndex
                raw = s[..<end]; s = s[end...]
            }
            out.append((key, unescape(raw)))
            s = s.drop { $0 == " " }
        }
        return out
    }

    /// Undoes LogEscape: \\ \" \n \r \t \xNN \uXXXX.
    func unescape(_ s: Substring) -> String {
        var out = "", it = Array(s.unicodeScalars)[...]
        while let c = it.popFirst() {
            guard c == "\\", let n = it.popFirst() else { out.unicodeScalars.append(c); continue }
            switch n {
            case "n": out += "\n"
            case "r": out += "\r"
            case "t": out += "\t"
            case "x", "u":
                let digits = n == "x" ? 2 : 4
                let hex = String(String.UnicodeScalarView(it.prefix(digits))); it = it.dropFirst(digits)
                out.unicodeScalars.append(Unicode.Scalar(UInt32(hex, radix: 16)!)!)
            default: out.unicodeScalars.append(n)
            }
        }
        return out
    }
}
