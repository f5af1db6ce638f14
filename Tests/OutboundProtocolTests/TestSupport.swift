// Helpers for the OutboundProtocol tests: HMAC-SHA1 from OpenSSL (the store's, injected into
// SRS), running python3 on a temp file, and reading a client session's actions as a transcript.
import Foundation
import MailStore
import OutboundProtocol
import SMTPProtocol
import XCTest

/// HMAC-SHA1 through OpenSSL: the store's (MailStore signs and checks SRS addresses with it).
let opensslHMACSHA1: SRS.HMAC = SRS.openSSLHMAC

/// Runs `python3 -c script args…` and returns its standard output; fails the test on a non-zero exit.
func runPython(_ script: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + args
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, String(decoding: errors, as: UTF8.self), file: file, line: line)
    return String(decoding: data, as: UTF8.self)
}

/// A temporary directory removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("outproto-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// `bytes` in a file of a temporary directory; its path.
func temporaryFile(_ test: XCTestCase, _ bytes: [UInt8]) throws -> String {
    let file = try temporaryDirectory(test).appendingPathComponent("message.eml")
    try Data(bytes).write(to: file)
    return file.path
}

func path(_ s: String) -> MailPath { MailPath(s)! }

extension Array where Element == SMTPClientAction {
    /// Everything the client wrote, as text.
    var sentText: String {
        compactMap { if case .send(let b, _) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }.joined()
    }
    var outcome: SMTPClientOutcome? {
        for case .finished(let o) in self { return o }
        return nil
    }
    var timers: [SMTPClientTimer] {
        compactMap { if case .armTimer(let t, _) = $0 { return t } else { return nil } }
    }
    var closes: Bool { contains(.close) }
}

/// A client session plus a log of everything it wrote, fed server lines as a transcript.
struct ClientHarness {
    var session: SMTPClientSession
    var all: [SMTPClientAction] = []

    init(_ config: SMTPClientConfig = SMTPClientConfig(heloName: "out.example.net"), _ envelope: OutboundEnvelope) {
        session = SMTPClientSession(config: config, envelope: envelope)
        all = session.start()
    }

    /// Feeds the server's lines (CRLF added to each) and returns the actions they caused.
    @discardableResult
    mutating func server(_ lines: String...) -> [SMTPClientAction] {
        let actions = session.receive(Array(lines.map { $0 + "\r\n" }.joined().utf8))
        all += actions
        return actions
    }

    @discardableResult
    mutating func run(_ step: (inout SMTPClientSession) -> [SMTPClientAction]) -> [SMTPClientAction] {
        let actions = step(&session)
        all += actions
        return actions
    }
}

let ehloFull = ["250-mx.example.org", "250-PIPELINING", "250-SIZE 10000000", "250-8BITMIME", "250-SMTPUTF8",
                "250-DSN", "250-ENHANCEDSTATUSCODES", "250 CHUNKING"]

func envelope(_ recipients: [String], sender: String? = "alice@example.net", size: Int = 1000,
              bodyType: BodyType = .sevenBit) -> OutboundEnvelope {
    OutboundEnvelope(sender: sender.map(path), recipients: recipients.map { OutboundRecipient(path($0)) }, size: size,
                     bodyType: bodyType)
}
