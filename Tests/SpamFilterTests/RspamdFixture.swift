// A private rspamd (+ the redis its Bayes needs) on loopback for these tests, started through
// Tests/integration/spam_support.py so the Swift and pytest suites share one configuration.
// Skips when rspamd is not installed (`make test` installs it: Makefile TEST_PKGS).
import Foundation
import XCTest

final class RspamdFixture {
    let dir: String
    let normalPort: Int, controllerPort: Int
    let password: String
    /// spam_support.py's markers: a Subject holding them crosses add_header / greylist.
    static let addHeaderMarker = "POSTERN-TEST-ADD-HEADER"
    static let greylistMarker = "POSTERN-TEST-GREYLIST"
    static let rewriteMarker = "POSTERN-TEST-REWRITE"
    static let gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("integration/spam_support.py").path
    }

    static var installed: Bool {
        ["/usr/bin/rspamd", "/usr/bin/redis-server"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init() throws {
        guard Self.installed else { throw XCTSkip("rspamd / redis-server (Debian packages) not installed: make test installs them") }
        dir = NSTemporaryDirectory() + "postern-rspamd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let out = try Self.run("start", dir)
        guard let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let n = o["normal_port"] as? Int, let c = o["controller_port"] as? Int, let p = o["password"] as? String else {
            throw NSError(domain: "RspamdFixture", code: 1, userInfo: [NSLocalizedDescriptionKey: "spam_support.py start said: \(out)"])
        }
        normalPort = n; controllerPort = c; password = p
    }

    var url: String { "http://127.0.0.1:\(normalPort)" }
    var controllerURL: String { "http://127.0.0.1:\(controllerPort)" }

    /// Stops rspamd only (redis stays): the "rspamd is down" case.
    func stopRspamd() throws { _ = try Self.run("stop-rspamd", dir) }

    func stop() {
        _ = try? Self.run("stop", dir)
        if ProcessInfo.processInfo.environment["POSTERN_KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    @discardableResult
    static func run(_ verb: String, _ dir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [script, verb, dir]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "RspamdFixture", code: Int(p.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "spam_support.py \(verb) exited \(p.terminationStatus)"])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A small RFC 5322 message with CRLF line ends.
    static func message(subject: String, body: String, id: String = UUID().uuidString) -> [UInt8] {
        Array(("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.com>\r\nSubject: \(subject)\r\n"
               + "Message-ID: <\(id)@example.org>\r\nDate: Sun, 6 Dec 2026 05:00:00 +0000\r\n"
               + "Content-Type: text/plain; charset=us-ascii\r\n\r\n\(body)\r\n").utf8)
    }

    /// Words enough for rspamd's Bayes to take the message (it refuses very short ones).
    static func prose(_ seed: String) -> String {
        (0..<40).map { "\(seed)\($0) lorem ipsum dolor sit amet consectetur adipiscing elit" }.joined(separator: "\r\n")
    }
}
