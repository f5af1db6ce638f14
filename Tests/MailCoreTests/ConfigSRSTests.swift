// [srs]: the SRS domain defaults to the hostname, takes a host name (lowercased), refuses
// anything else and unknown keys with file, line and key; the example documents it.
import XCTest
import Foundation
@testable import MailCore

final class ConfigSRSTests: XCTestCase {
    func testDefaultIsTheHostname() throws {
        let c = try PosternConfig.parse("hostname = \"mx.example.org\"\n", path: "/etc/postern/postern.toml")
        XCTAssertEqual(c.srs, SRSConfig())
        XCTAssertNil(c.srs.domain)
        XCTAssertEqual(c.srsDomain, "mx.example.org")
        XCTAssertEqual(try PosternConfig.parse("[srs]\n", path: "/p.toml").srs, SRSConfig(), "an empty section")
    }

    func testDomain() throws {
        let c = try PosternConfig.parse("hostname = \"mx.example.org\"\n[srs]\ndomain = \"SRS.Example.ORG\"\n", path: "/p.toml")
        XCTAssertEqual(c.srs.domain, "srs.example.org")
        XCTAssertEqual(c.srsDomain, "srs.example.org")
        XCTAssertEqual(try PosternConfig.parse("[srs]\ndomain = \"a-1.b2\"\n", path: "/p.toml").srsDomain, "a-1.b2")
    }

    func testRefusals() {
        let cases: [(String, Int, String, String)] = [
            ("[srs]\ndomain = \"\"\n", 2, "srs.domain", "must not be empty"),
            ("[srs]\ndomain = 5\n", 2, "srs.domain", "expected a string"),
            ("[srs]\ndomain = \"bad domain.org\"\n", 2, "srs.domain", "host name"),
            ("[srs]\ndomain = \"-x.org\"\n", 2, "srs.domain", "host name"),
            ("[srs]\ndomain = \"x..org\"\n", 2, "srs.domain", "host name"),
            ("[srs]\ndomain = \"x.org.\"\n", 2, "srs.domain", "host name"),
            ("[srs]\ndomain = \"exämple.org\"\n", 2, "srs.domain", "host name"),
            ("[srs]\ndomain = \"\(String(repeating: "a", count: 64)).org\"\n", 2, "srs.domain", "host name"),
            ("[srs]\nsecret = \"x\"\n", 2, "srs.secret", "unknown key"),
        ]
        for (text, line, key, reason) in cases {
            XCTAssertThrowsError(try PosternConfig.parse(text, path: "/etc/postern/postern.toml"), text) { e in
                guard let e = e as? ConfigError else { return XCTFail("\(e)") }
                XCTAssertEqual(e.line, line, text)
                XCTAssertEqual(e.key, key, text)
                XCTAssertTrue(e.reason.contains(reason), "\(e.reason) should contain \(reason)")
            }
        }
    }

    /// postern.toml.example has an [srs] section documenting `domain` (commented: its default
    /// is the hostname) and parses to the default.
    func testTheExampleDocumentsIt() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("postern.toml.example").path
        XCTAssertEqual(try PosternConfig.load(path: path).srs, SRSConfig())
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("\n[srs]"))
        XCTAssertTrue(text.contains("\n# domain = "))
    }
}
