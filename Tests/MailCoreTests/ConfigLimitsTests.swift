// Issue 9's keys: max_unsent_bytes in every service section, per-role connection caps and
// stress mode in [smtp], ipv6_client_prefix; defaults and refusals.
import XCTest
@testable import MailCore

final class ConfigLimitsTests: XCTestCase {
    func testDefaults() throws {
        let c = try PosternConfig.parse("", path: "/etc/postern/postern.toml")
        for s in [c.lmtp.service, c.smtp.service, c.lookup.service] { XCTAssertEqual(s.maxUnsentBytes, 256 * 1024) }
        XCTAssertEqual(c.smtp.roleMaxConnections, ["mta": 768, "submission": 128, "smtps": 128])
        XCTAssertLessThanOrEqual(c.smtp.roleMaxConnections.values.reduce(0, +), c.smtp.service.maxConnections,
                                 "by default no role can take another's slots")
        XCTAssertEqual(c.smtp.stressThreshold, 0.8)
        XCTAssertEqual(c.smtp.stressCommandTimeout, 10)
        XCTAssertEqual(c.smtp.ipv6ClientPrefix, 64)
    }

    func testValues() throws {
        let c = try PosternConfig.parse("""
            [smtp]
            mta_max_connections = 20
            submission_max_connections = 5
            smtps_max_connections = 6
            stress_threshold = 0.5
            stress_command_timeout = 2
            ipv6_client_prefix = 56
            max_unsent_bytes = 65536
            [lookup]
            max_unsent_bytes = 8192
            [lmtp]
            max_unsent_bytes = 1048576
            """, path: "/etc/p.toml")
        XCTAssertEqual(c.smtp.roleMaxConnections, ["mta": 20, "submission": 5, "smtps": 6])
        XCTAssertEqual(c.smtp.stressThreshold, 0.5)
        XCTAssertEqual(c.smtp.stressCommandTimeout, 2)
        XCTAssertEqual(c.smtp.ipv6ClientPrefix, 56)
        XCTAssertEqual(c.smtp.service.maxUnsentBytes, 65536)
        XCTAssertEqual(c.lookup.service.maxUnsentBytes, 8192)
        XCTAssertEqual(c.lmtp.service.maxUnsentBytes, 1 << 20)
    }

    func testRefusals() {
        let cases: [(String, String, String)] = [
            ("[smtp]\nstress_threshold = 1.5\n", "smtp.stress_threshold", "fraction"),
            ("[smtp]\nstress_threshold = 0\n", "smtp.stress_threshold", "fraction"),
            ("[smtp]\nstress_command_timeout = 0.5\n", "smtp.stress_command_timeout", "at least 1"),
            ("[smtp]\nipv6_client_prefix = 8\n", "smtp.ipv6_client_prefix", "out of range"),
            ("[smtp]\nmta_max_connections = 0\n", "smtp.mta_max_connections", "out of range"),
            ("[lookup]\nmax_unsent_bytes = 100\n", "lookup.max_unsent_bytes", "out of range"),
            ("[lmtp]\nstress_threshold = 0.5\n", "lmtp.stress_threshold", "unknown key"),
        ]
        for (text, key, reason) in cases {
            XCTAssertThrowsError(try PosternConfig.parse(text, path: "/p.toml"), text) { e in
                XCTAssertEqual((e as? ConfigError)?.key, key, text)
                XCTAssertTrue((e as? ConfigError)?.reason.contains(reason) ?? false, "\(e)")
                XCTAssertEqual((e as? ConfigError)?.line, 2, text)
            }
        }
    }
}
