// The config is the one source of imapd's values: IMAPLimits from the default [imap] equal the
// engine's own defaults, configured values reach the engine, the session config and the glue's
// timers; listener names give their role; the master's ticket secret decodes.
import MailCore
import NIOCore
import IMAPProtocol
import XCTest
@testable import IMAPServer

final class IMAPLimitsConfigTests: XCTestCase {
    func testDefaultsAreTheEngineDefaults() {
        XCTAssertEqual(IMAPLimits(IMAPConfig()), IMAPLimits())
        XCTAssertEqual(IMAPTimers(IMAPConfig()), IMAPTimers(login: .seconds(60), autologout: .seconds(1800), command: .seconds(60)))
        let session = IMAPSessionConfig(IMAPConfig(), hostname: "imap.example.org", role: .imap)
        let engine = IMAPSessionConfig(hostname: "imap.example.org", startTLSAvailable: true)
        XCTAssertEqual(session.limits, engine.limits)
        XCTAssertEqual(session.plaintextOnLoopback, engine.plaintextOnLoopback)
        XCTAssertEqual(session.authFailureDelay, engine.authFailureDelay)
    }

    func testConfiguredValuesReachTheEngine() throws {
        let c = try PosternConfig.parse("""
            [imap]
            max_line = 2048
            max_literal = 4096
            append_limit = 1048576
            max_command = 2097152
            login_timeout = 20
            autologout = 7200
            command_timeout = 90
            auth_failure_delay = 0.25
            plaintext_auth_on_loopback = false
            """, path: "/etc/p.toml").imap
        let limits = IMAPLimits(c)
        XCTAssertEqual([limits.maxLine, limits.maxLiteral, limits.maxAppend, limits.maxCommand], [2048, 4096, 1 << 20, 2 << 20])
        XCTAssertEqual(limits.maxDepth, IMAPLimits().maxDepth, "no key: the engine's")
        XCTAssertEqual(IMAPTimers(c), IMAPTimers(login: .seconds(20), autologout: .seconds(7200), command: .seconds(90)))
        let imaps = IMAPSessionConfig(c, hostname: "h", role: .imaps)
        XCTAssertFalse(imaps.startTLSAvailable, "RFC 8314: TLS from the first byte, no STARTTLS")
        XCTAssertTrue(IMAPSessionConfig(c, hostname: "h", role: .imap).startTLSAvailable)
        XCTAssertFalse(imaps.plaintextOnLoopback)
        XCTAssertEqual(imaps.authFailureDelay, 0.25)
        XCTAssertEqual(imaps.limits, limits)
    }

    func testListenerRoleFromItsName() {
        XCTAssertEqual(IMAPDWorker.role(of: "imap@127.0.0.1:143"), .imap)
        XCTAssertEqual(IMAPDWorker.role(of: "imaps@[::]:993"), .imaps)
        XCTAssertNil(IMAPDWorker.role(of: "mta@127.0.0.1:25"))
        XCTAssertNil(IMAPDWorker.role(of: "127.0.0.1:143"))
    }

    func testTicketSecretDecodes() {
        let bytes = (0..<80).map { UInt8($0 * 3 % 256) }
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(IMAPDWorker.ticketKeys(hex), bytes)
        XCTAssertNil(IMAPDWorker.ticketKeys(String(hex.dropLast(2))))
        XCTAssertNil(IMAPDWorker.ticketKeys("zz" + hex.dropFirst(2)))
    }
}
