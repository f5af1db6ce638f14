// IPNetwork: CIDR parsing (refusing malformed text) and membership, IPv4-mapped IPv6 included.
import XCTest
@testable import MailCore

final class IPNetworkTests: XCTestCase {
    func testParsing() {
        XCTAssertEqual(IPNetwork("127.0.0.0/8")?.description, "127.0.0.0/8")
        XCTAssertEqual(IPNetwork("192.0.2.77/24")?.description, "192.0.2.0/24", "host bits are cleared")
        XCTAssertEqual(IPNetwork("::1/128")?.description, "::1/128")
        XCTAssertEqual(IPNetwork("2001:db8::1")?.description, "2001:db8::1/128")
        XCTAssertEqual(IPNetwork("10.1.2.3")?.prefix, 32)
        for bad in ["", "/8", "127.0.0.0/33", "::/129", "127.0.0.0/-1", "127.0.0.0/8/8", "localhost", "1.2.3/8", "127.0.0.0/"] {
            XCTAssertNil(IPNetwork(bad), bad)
        }
    }

    func testMembership() {
        let nets = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!, IPNetwork("192.0.2.128/25")!, IPNetwork("2001:db8::/32")!]
        for inside in ["127.0.0.1", "127.255.1.2", "::1", "[::1]", "::ffff:127.0.0.1", "192.0.2.200", "2001:db8:1::5"] {
            XCTAssertTrue(IPNetwork.contains(nets, inside), inside)
        }
        for outside in ["128.0.0.1", "192.0.2.127", "::2", "2001:db9::1", "10.0.0.1", "unknown", ""] {
            XCTAssertFalse(IPNetwork.contains(nets, outside), outside)
        }
        XCTAssertTrue(IPNetwork("0.0.0.0/0")!.contains("203.0.113.9"))
        XCTAssertFalse(IPNetwork("0.0.0.0/0")!.contains("2001:db8::1"), "an IPv4 network holds no IPv6 address")
    }

    func testTrustedNetworksConfig() throws {
        XCTAssertEqual(try PosternConfig.parse("", path: "/p.toml").smtp.trustedNetworks.map(\.description), ["127.0.0.0/8", "::1/128"])
        let c = try PosternConfig.parse("[smtp]\ntrusted_networks = [\"192.0.2.0/24\"]\nlocal_sender_requires_auth = false\n", path: "/p.toml")
        XCTAssertEqual(c.smtp.trustedNetworks, [IPNetwork("192.0.2.0/24")!])
        XCTAssertFalse(c.smtp.localSenderRequiresAuth)
        XCTAssertThrowsError(try PosternConfig.parse("[smtp]\ntrusted_networks = [\"nonsense\"]\n", path: "/p.toml")) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "smtp.trusted_networks")
        }
    }
}
