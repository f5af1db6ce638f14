// The pure parts of MailDNS: rdata parsing with hostile input, MX answer classification
// (null MX, records), combining AAAA and A answers, names, delivery order.
import XCTest
@testable import MailDNS

final class RDataTests: XCTestCase {
    func wire(_ name: String) -> [UInt8] {
        var out = [UInt8]()
        for l in name.split(separator: ".") { out.append(UInt8(l.utf8.count)); out += Array(l.utf8) }
        return out + [0]
    }

    func mxRdata(_ pref: UInt16, _ name: String) -> [UInt8] { [UInt8(pref >> 8), UInt8(pref & 0xff)] + wire(name) }

    func testMXRdata() {
        XCTAssertEqual(RData.mx(mxRdata(10, "MX1.Example.COM")), MXRecord(preference: 10, exchange: "mx1.example.com"))
        XCTAssertEqual(RData.mx(mxRdata(0x1234, "")), MXRecord(preference: 0x1234, exchange: ""))      // "."
        let table: [[UInt8]] = [
            [],
            [0, 10],
            [0, 10, 3, 0x61, 0x62],                  // label runs past the end
            [0, 10, 1, 0x61],                        // no root label
            [0, 10, 0xC0, 0x0C],                     // a compression pointer
            [0, 10, 1, 0x2e, 0],                     // a dot inside a label
            [0, 10, 1, 0x20, 0],                     // a space
            [0, 10, 0, 0],                           // trailing bytes
            [0, 10, 64] + Array(repeating: 0x61, count: 64) + [0],  // label over 63
        ]
        for r in table { XCTAssertNil(RData.mx(r), "\(r)") }
        // A name over 255 octets on the wire.
        let long = (0..<5).map { _ in String(repeating: "a", count: 63) }.joined(separator: ".")
        XCTAssertNil(RData.mx(mxRdata(1, long)))
        // Every truncation of a valid record is refused, never a crash.
        let good = mxRdata(5, "mail.example.net")
        for n in 0..<good.count { XCTAssertNil(RData.mx(Array(good.prefix(n)))) }
    }

    func testMXAnswerClassification() {
        XCTAssertEqual(MXAnswer.from(rdata: [mxRdata(0, "")], dnssec: .insecure), .nullMX(.insecure))
        XCTAssertEqual(MXAnswer.from(rdata: [mxRdata(10, "a.example"), mxRdata(0, "")], dnssec: .secure),
                       .records([MXRecord(preference: 10, exchange: "a.example")], .secure))
        XCTAssertEqual(MXAnswer.from(rdata: [[1, 2, 3]], dnssec: .insecure), .temporaryFailure("malformed MX records"))
        XCTAssertEqual(RawAnswer.noData(.insecure).mx, .noMX(.insecure))
        XCTAssertEqual(RawAnswer.nxdomain(.secure).mx, .nxdomain(.secure))
        XCTAssertEqual(RawAnswer.failure("SERVFAIL").mx, .temporaryFailure("SERVFAIL"))
    }

    func testDeliveryOrder() {
        let answer = MXAnswer.records([MXRecord(preference: 20, exchange: "c"), MXRecord(preference: 10, exchange: "a"),
                                       MXRecord(preference: 10, exchange: "b"), MXRecord(preference: 30, exchange: "a")], .insecure)
        var seen = Set<[String]>()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let order = answer.deliveryOrder(using: &rng)
            XCTAssertEqual(order.count, 3)
            XCTAssertEqual(Set(order.prefix(2)), ["a", "b"])
            XCTAssertEqual(order[2], "c")
            seen.insert(order)
        }
        XCTAssertEqual(seen.count, 2, "equal preferences are shuffled")
    }

    func testCombinedAddresses() {
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        let v4: [UInt8] = [192, 0, 2, 1]
        let both = RawAnswer.addresses(aaaa: .data([v6], .secure), a: .data([v4], .secure))
        XCTAssertEqual(both.addresses.map(\.description), ["2001:db8::1", "192.0.2.1"])
        XCTAssertEqual(both, .addresses([ResolvedAddress(bytes: v6)!, ResolvedAddress(bytes: v4)!], .secure))
        XCTAssertEqual(RawAnswer.addresses(aaaa: .noData(.insecure), a: .data([v4], .secure)), .addresses([ResolvedAddress(bytes: v4)!], .insecure))
        XCTAssertEqual(RawAnswer.addresses(aaaa: .failure("SERVFAIL"), a: .data([v4], .insecure)), .addresses([ResolvedAddress(bytes: v4)!], .insecure))
        XCTAssertEqual(RawAnswer.addresses(aaaa: .failure("SERVFAIL"), a: .noData(.insecure)), .temporaryFailure("SERVFAIL"))
        XCTAssertEqual(RawAnswer.addresses(aaaa: .nxdomain(.insecure), a: .nxdomain(.insecure)), .nxdomain(.insecure))
        XCTAssertEqual(RawAnswer.addresses(aaaa: .noData(.insecure), a: .noData(.insecure)), .noAddresses(.insecure))
        // Wrong-sized rdata is skipped.
        XCTAssertEqual(RawAnswer.addresses(aaaa: .data([v4], .insecure), a: .data([[1, 2]], .insecure)), .noAddresses(.insecure))
    }

    func testNames() throws {
        XCTAssertEqual(try DNSName.normalized("Example.COM."), "example.com")
        for bad in ["", ".", "a..b", "exa mple.com", "b\u{fc}cher.example", String(repeating: "a", count: 64) + ".com",
                    (0..<64).map { _ in "abc" }.joined(separator: ".")] {
            XCTAssertThrowsError(try DNSName.normalized(bad), bad)
        }
    }
}
