// SRS as postsrsd/libsrs2 writes it: a vector computed with Python's hmac (fixed and at run
// time), round trips, SRS1 for re-forwarding, hash and age checks, secret rotation. The HMAC
// injected is OpenSSL's, checked against RFC 2202 first.
import Foundation
import OutboundProtocol
import SMTPProtocol
import XCTest

final class SRSTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)        // day 20833, slot 353 = "LB"
    let day: TimeInterval = 86_400
    var srs: SRS { SRS(secrets: ["tops3cr3t"], domain: "fwd.example.net", hmac: opensslHMACSHA1) }

    func testInjectedHMACIsRFC2202() {
        let mac = opensslHMACSHA1([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8))
        XCTAssertEqual(mac.map { String(format: "%02x", $0) }.joined(), "b617318655057264e28bc0b6fb378c8ef146be00")
    }

    func testForwardMatchesAPythonHMACVector() {
        // python3: base64(hmac.new(b"tops3cr3t", ("LB"+"Example.COM"+"Joe.User").lower(), sha1))[:4] == "i6L0"
        XCTAssertEqual(srs.forward(sender: path("Joe.User@Example.COM"), now: t0),
                       MailPath(localPart: "SRS0=i6L0=LB=Example.COM=Joe.User", domain: "fwd.example.net"))
    }

    func testForwardAgreesWithPythonAtRunTime() throws {
        let senders = ["a@b.example", "first.last+tag@sub.example.org", "UPPER@CASE.EXAMPLE", "x=y@z.example"]
        let times = [t0, t0 + 400 * day, Date(timeIntervalSince1970: 0)]
        var lines: [String] = []
        for sender in senders {
            for time in times { lines.append("\(sender) \(Int(time.timeIntervalSince1970))") }
        }
        let script = """
        import base64, hashlib, hmac, sys
        A = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        for line in sys.argv[1:]:
            sender, t = line.split(" ")
            local, domain = sender.rsplit("@", 1)
            slot = (int(t) // 86400) % 1024
            stamp = A[slot >> 5] + A[slot & 31]
            mac = hmac.new(b"tops3cr3t", (stamp + domain + local).lower().encode(), hashlib.sha1).digest()
            print("SRS0=%s=%s=%s=%s@fwd.example.net" % (base64.b64encode(mac).decode()[:4], stamp, domain, local))
        """
        let expected = try runPython(script, lines).split(separator: "\n").map(String.init)
        var got: [String] = []
        for sender in senders {
            for time in times { got.append(srs.forward(sender: path(sender), now: time).address) }
        }
        XCTAssertEqual(got, expected)
    }

    func testReverseRoundTripIsCaseInsensitive() throws {
        let forwarded = srs.forward(sender: path("joe@example.com"), now: t0)
        XCTAssertEqual(try srs.reverse(address: forwarded, now: t0 + 3 * day), path("joe@example.com"))
        // Hash and tag in another case, another tag separator: libsrs2 accepts them.
        let shouted = MailPath(localPart: forwarded.localPart.uppercased().replacingOccurrences(of: "SRS0=", with: "srs0+"),
                               domain: "fwd.example.net")
        XCTAssertEqual(try srs.reverse(address: shouted, now: t0), MailPath(localPart: "JOE", domain: "EXAMPLE.COM"))
        XCTAssertTrue(SRS.isSRS(forwarded.localPart))
        XCTAssertFalse(SRS.isSRS("srs0"))
        XCTAssertFalse(SRS.isSRS("SRS2=abc"))
    }

    func testReverseChecksHashAndAge() {
        let forwarded = srs.forward(sender: path("joe@example.com"), now: t0)
        var tampered = forwarded
        tampered.localPart = forwarded.localPart.replacingOccurrences(of: "joe", with: "eve")
        XCTAssertThrowsError(try srs.reverse(address: tampered, now: t0)) { XCTAssertEqual($0 as? SRS.Error, .badHash) }
        XCTAssertNoThrow(try srs.reverse(address: forwarded, now: t0 + 31 * day))
        XCTAssertThrowsError(try srs.reverse(address: forwarded, now: t0 + 32 * day)) { XCTAssertEqual($0 as? SRS.Error, .expired) }
        // Across the 1024-day wrap of the timestamp.
        let late = Date(timeIntervalSince1970: Double(1023 + 1024 * 20) * day)
        XCTAssertNoThrow(try srs.reverse(address: srs.forward(sender: path("joe@example.com"), now: late), now: late + 5 * day))
        XCTAssertThrowsError(try srs.reverse(address: path("joe@fwd.example.net"), now: t0)) { XCTAssertEqual($0 as? SRS.Error, .notSRS) }
        XCTAssertThrowsError(try srs.reverse(address: path("SRS0=abcd=LB@fwd.example.net"), now: t0)) {
            XCTAssertEqual($0 as? SRS.Error, .malformed)
        }
        XCTAssertThrowsError(try srs.reverse(address: path("SRS0=i6L0=L1=example.com=joe@fwd.example.net"), now: t0)) {
            XCTAssertEqual($0 as? SRS.Error, .badTimestamp)
        }
    }

    func testSRS1WhenForwardingAnSRS0AddressAgain() throws {
        // Another forwarder's SRS0 address; we make SRS1 keeping its host and the rest.
        // python3: base64(hmac(b"tops3cr3t", "orig-fwd.example" + "=abcd=LB=example.com=joe"))[:4] == "U8HM"
        let theirs = path("SRS0=abcd=LB=example.com=joe@orig-fwd.example")
        let ours = srs.forward(sender: theirs, now: t0)
        XCTAssertEqual(ours.address, "SRS1=U8HM=orig-fwd.example==abcd=LB=example.com=joe@fwd.example.net")
        XCTAssertEqual(try srs.reverse(address: ours, now: t0 + 900 * day), theirs, "SRS1 carries no timestamp of its own")
        // An SRS1 address of a third forwarder: re-signed for the same first forwarder.
        let third = path("SRS1=zzzz=orig-fwd.example==abcd=LB=example.com=joe@fwd2.example")
        XCTAssertEqual(srs.forward(sender: third, now: t0).address, ours.address)
    }

    func testOwnDomainAndQuotedLocalPartsStayAsTheyAre() {
        XCTAssertEqual(srs.forward(sender: path("joe@FWD.example.net"), now: t0), path("joe@FWD.example.net"))
        var always = srs
        always.alwaysRewrite = true
        XCTAssertTrue(always.forward(sender: path("joe@fwd.example.net"), now: t0).localPart.hasPrefix("SRS0="))
        let quoted = MailPath(localPart: "\"a b\"", domain: "example.com")
        XCTAssertEqual(srs.forward(sender: quoted, now: t0), quoted)
    }

    func testSecretRotation() throws {
        let old = SRS(secrets: ["old-secret"], domain: "fwd.example.net", hmac: opensslHMACSHA1)
        let rotated = SRS(secrets: ["new-secret", "old-secret"], domain: "fwd.example.net", hmac: opensslHMACSHA1)
        let before = old.forward(sender: path("joe@example.com"), now: t0)
        XCTAssertEqual(try rotated.reverse(address: before, now: t0), path("joe@example.com"))
        XCTAssertNotEqual(rotated.forward(sender: path("joe@example.com"), now: t0), before)
        XCTAssertThrowsError(try srs.reverse(address: before, now: t0))
    }
}
