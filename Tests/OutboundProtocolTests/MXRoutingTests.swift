// MXRouting: preference order, shuffling of equal preferences with an injected generator,
// implicit MX, null MX (RFC 7505), the RFC 5321 §5.1 loop rule, and address interleaving.
import MailSyntax
import OutboundProtocol
import XCTest

final class MXRoutingTests: XCTestCase {
    func hosts(_ domain: String, _ mx: [(UInt16, String)], local: Set<String> = [], seed: UInt64 = 1) -> Result<[String], MXRoutingError> {
        var rng = SplitMix(seed: seed)
        return MXRouting.hosts(for: domain, mx: mx.map { (preference: $0.0, exchange: $0.1) }, localNames: local, using: &rng)
    }

    func testOrderedByPreferenceNormalizedAndDeduplicated() {
        XCTAssertEqual(hosts("example.org", [(20, "MX2.example.org."), (10, "mx1.example.org."), (30, "mx2.example.org")]),
                       .success(["mx1.example.org", "mx2.example.org"]))
    }

    func testEqualPreferencesAreShuffledReproducibly() {
        let records: [(UInt16, String)] = [(5, "first.example"), (10, "a.example"), (10, "b.example"), (10, "c.example"), (20, "last.example")]
        var orders: Set<[String]> = []
        for seed in 0..<40 {
            guard case .success(let list) = hosts("example.org", records, seed: UInt64(seed)) else { return XCTFail() }
            XCTAssertEqual(list.first, "first.example")
            XCTAssertEqual(list.last, "last.example")
            XCTAssertEqual(Set(list[1...3]), ["a.example", "b.example", "c.example"])
            orders.insert(list)
            XCTAssertEqual(hosts("example.org", records, seed: UInt64(seed)), .success(list), "same seed, same order")
        }
        XCTAssertGreaterThan(orders.count, 3, "equal preferences are not always in the same order")
    }

    func testImplicitMXAndAddressLiterals() {
        XCTAssertEqual(hosts("Example.ORG.", []), .success(["example.org"]))           // RFC 5321 §5.1
        XCTAssertEqual(hosts("[192.0.2.7]", [(10, "ignored.example")]), .success(["[192.0.2.7]"]))
    }

    func testNullMX() {
        XCTAssertEqual(hosts("example.org", [(0, ".")]), .failure(.nullMX))             // RFC 7505 §3
        XCTAssertEqual(MXRoutingError.nullMX.reply.code, 556)
        XCTAssertEqual(MXRoutingError.nullMX.reply.enhanced, "5.1.10")
        // A "." mixed with real exchanges is ignored, the real ones are tried.
        XCTAssertEqual(hosts("example.org", [(0, "."), (10, "mx.example.org")]), .success(["mx.example.org"]))
    }

    func testOurselvesAndWorseAreDropped() {
        let records: [(UInt16, String)] = [(10, "backup-elsewhere.example"), (20, "us.example.net"), (30, "worse.example")]
        XCTAssertEqual(hosts("example.org", records, local: ["US.example.net."]), .success(["backup-elsewhere.example"]))
        XCTAssertEqual(hosts("example.org", [(10, "us.example.net"), (20, "other.example")], local: ["us.example.net"]),
                       .failure(.loopsBackToMyself))
    }

    func testAddressOrders() {
        let v6 = ["2001:db8::1", "2001:db8::2", "2001:db8::3"], v4 = ["192.0.2.1"]
        XCTAssertEqual(MXRouting.addresses(ipv6: v6, ipv4: v4), ["2001:db8::1", "192.0.2.1", "2001:db8::2", "2001:db8::3"])
        XCTAssertEqual(MXRouting.addresses(ipv6: v6, ipv4: v4, order: .ipv6First), v6 + v4)
        XCTAssertEqual(MXRouting.addresses(ipv6: v6, ipv4: v4, order: .ipv4Only), v4)
        XCTAssertEqual(MXRouting.addresses(ipv6: v6, ipv4: v4, order: .ipv6Only), v6)
        XCTAssertEqual(MXRouting.addresses(ipv6: [], ipv4: ["192.0.2.1", "192.0.2.2"]), ["192.0.2.1", "192.0.2.2"])
    }
}
