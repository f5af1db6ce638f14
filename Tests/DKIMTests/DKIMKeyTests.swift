// DKIM keys: generation, PEM round trip (ours and `openssl genpkey`'s), the TXT record, the
// key directory (0600, never overwritten) and refused keys.
import XCTest
import Foundation
@testable import DKIM

final class DKIMKeyTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/dkimkey-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw DKIMError.file("mkdtemp") }
        dir = String(cString: p)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testGenerateRoundTripAndRecord() throws {
        for kind in DKIMKey.Kind.allCases {
            let key = try DKIMKey.generate(kind)
            let again = try DKIMKey(pem: try key.privateKeyPEM())
            XCTAssertEqual(try again.txtRecord(), try key.txtRecord())
            let record = try key.txtRecord()
            XCTAssertTrue(record.hasPrefix("v=DKIM1; k=\(kind == .rsa2048 ? "rsa" : "ed25519"); p="), record)
            let p = Base64.decodeForTest(String(record.split(separator: "=", maxSplits: 3).last!))
            if kind == .ed25519 {
                XCTAssertEqual(p?.count, 32)                                // RFC 8463 §4.2: the raw key
            } else {
                XCTAssertTrue(record.contains("p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"), record)   // SPKI, 2048 bits
            }
            XCTAssertEqual(try key.txtRecordZoneStrings().joined(), record)
            XCTAssertTrue(try key.txtRecordZoneStrings().allSatisfy { $0.utf8.count <= 255 })
        }
    }

    func testLoadsOpenSSLGeneratedKeysAndRefusesOthers() throws {
        func genpkey(_ args: [String]) throws -> [UInt8] {
            let path = dir + "/k\(UUID().uuidString).pem"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = ["genpkey"] + args + ["-out", path]
            p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        XCTAssertEqual(try DKIMKey(pem: genpkey(["-algorithm", "ed25519"])).algorithm, .ed25519SHA256)
        XCTAssertEqual(try DKIMKey(pem: genpkey(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])).algorithm, .rsaSHA256)
        XCTAssertThrowsError(try DKIMKey(pem: genpkey(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"])))
        XCTAssertThrowsError(try DKIMKey(pem: genpkey(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])))
        // An encrypted key fails at once instead of prompting for a passphrase.
        XCTAssertThrowsError(try DKIMKey(pem: genpkey(["-algorithm", "ed25519", "-aes256", "-pass", "pass:secret"])))
        XCTAssertThrowsError(try DKIMKey(pem: Array("not a key".utf8)))
    }

    func testKeyDirectory() throws {
        let keys = DKIMKeyDirectory(configFile: dir + "/postern.toml")
        XCTAssertEqual(keys.path, dir + "/dkim")
        let key = try DKIMKey.generate(.ed25519)
        let path = try keys.write(key, domain: "Example.COM.", selector: "s2026")
        XCTAssertEqual(path, dir + "/dkim/example.com/s2026.pem")
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        XCTAssertEqual(stat(dir + "/dkim/example.com", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
        XCTAssertEqual(try DKIMKey(contentsOfFile: path).txtRecord(), try key.txtRecord())
        XCTAssertEqual(try keys.load(domain: "example.com", selector: "S2026").txtRecord(), try key.txtRecord())
        XCTAssertThrowsError(try keys.load(domain: "example.com", selector: "missing"))
        XCTAssertThrowsError(try keys.load(domain: "example.com/..", selector: "s2026")) { XCTAssertEqual($0 as? DKIMError, .invalidName("example.com/..")) }
        // Never overwritten.
        XCTAssertThrowsError(try keys.write(try DKIMKey.generate(.ed25519), domain: "example.com", selector: "s2026"))
        XCTAssertEqual(try DKIMKey(contentsOfFile: path).txtRecord(), try key.txtRecord())
        try keys.write(try DKIMKey.generate(.rsa2048), domain: "example.com", selector: "a-older")
        XCTAssertEqual(keys.selectors(domain: "EXAMPLE.com"), ["a-older", "s2026"])
        XCTAssertEqual(keys.domains(), ["example.com"])
        // Names that would leave the directory are refused.
        XCTAssertNil(keys.keyPath(domain: "../x", selector: "s"))
        XCTAssertNil(keys.keyPath(domain: "example.com", selector: "a/b"))
        XCTAssertNil(keys.keyPath(domain: "", selector: "s"))
    }
}

import MailSyntax
extension Base64 {
    static func decodeForTest(_ s: String) -> [UInt8]? { decode(Array(s.utf8)) }
}
