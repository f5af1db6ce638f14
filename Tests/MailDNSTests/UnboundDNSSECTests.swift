// The DNSSEC flag: a zone signed with ldns-signzone (Debian ldnsutils, installed by `make test`)
// served by unbound as an auth-zone; the resolver, given the zone's key as trust anchor, reports
// its answers secure, and with a wrong anchor treats them as bogus: a temporary failure.
import XCTest
import Foundation
@testable import MailDNS

final class UnboundDNSSECTests: XCTestCase {
    nonisolated(unsafe) static var server: TestDNSServer?
    nonisolated(unsafe) static var anchor = ""
    static let tools = ["/usr/bin/ldns-keygen", "/usr/bin/ldns-signzone"]
    nonisolated(unsafe) static var setupError: Error?

    static let zone = """
    $ORIGIN sec.example.
    $TTL 300
    @   IN SOA ns.sec.example. hostmaster.sec.example. 1 3600 600 86400 300
    @   IN NS ns.sec.example.
    ns  IN A 192.0.2.98
    @   IN MX 10 mx.sec.example.
    mx  IN A 192.0.2.99
    mx  IN AAAA 2001:db8::99

    """

    @discardableResult
    static func run(_ tool: String, _ args: [String], in dir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw DNSError.resolver("\(tool) failed") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    override class func setUp() {
        guard FileManager.default.isExecutableFile(atPath: TestDNSServer.binary),
              tools.allSatisfy(FileManager.default.isExecutableFile) else { return }
        var template = Array("/tmp/unbound-sec-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { return }
        let dir = String(cString: p)
        do {
            try zone.write(toFile: dir + "/sec.example.zone", atomically: true, encoding: .utf8)
            let key = try run(tools[0], ["-a", "ECDSAP256SHA256", "-k", "sec.example"], in: dir)
            try run(tools[1], ["-f", dir + "/sec.example.zone.signed", dir + "/sec.example.zone", key], in: dir)
            anchor = try String(contentsOfFile: dir + "/" + key + ".key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            server = try TestDNSServer(brokenDelegationPort: 9, dir: dir) {
                TestDNSServer.authZone("sec.example.", file: $0 + "/sec.example.zone.signed")
            }
        } catch {
            setupError = error
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    override class func tearDown() { server?.stop(); server = nil }

    func resolver(anchors: [String]) throws -> UnboundResolver {
        if let e = Self.setupError { throw e }          // installed but broken: a failure, not a skip
        guard let s = Self.server else { throw XCTSkip("unbound and ldnsutils (Debian) are needed: make test installs them") }
        return try UnboundResolver(forwarder: "127.0.0.1@\(s.port)", timeout: 5, trustAnchors: anchors)
    }

    func testSignedZoneIsSecureWithItsTrustAnchor() async throws {
        let r = try resolver(anchors: [Self.anchor])
        let mx = try await r.mx("sec.example")
        XCTAssertEqual(mx, .records([MXRecord(preference: 10, exchange: "mx.sec.example")], .secure))
        let a = try await r.addresses("mx.sec.example")
        XCTAssertEqual(a.addresses.map(\.description), ["2001:db8::99", "192.0.2.99"])
        guard case .addresses(_, .secure) = a else { return XCTFail("\(a)") }
        // Proven absence (NSEC) is secure too; an unsigned zone stays insecure.
        let nx = try await r.mx("missing.sec.example")
        XCTAssertEqual(nx, .nxdomain(.secure))
        let unsigned = try await r.mx("two.t.example")
        XCTAssertEqual(unsigned.dnssec, .insecure)
    }

    func testWithoutAnchorInsecureAndWithAWrongOneBogus() async throws {
        let plain = try await resolver(anchors: []).mx("sec.example")
        XCTAssertEqual(plain.dnssec, .insecure)
        // Another key of the same algorithm as the anchor: validation fails.
        var template = Array("/tmp/unbound-key-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = try Self.run(Self.tools[0], ["-a", "ECDSAP256SHA256", "-k", "sec.example"], in: dir)
        let wrong = try String(contentsOfFile: dir + "/" + other + ".key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let bogus = try await resolver(anchors: [wrong]).mx("sec.example")
        guard case .temporaryFailure(let why) = bogus else { return XCTFail("\(bogus)") }
        XCTAssertTrue(why.contains("DNSSEC"), why)
    }
}
