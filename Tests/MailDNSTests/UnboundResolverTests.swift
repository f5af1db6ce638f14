// UnboundResolver against a real DNS server on loopback: Debian's unbound (installed by `make
// test`) serving zones under t.example. from local-data (not .test: unbound and libunbound answer
// RFC 6761 names themselves), a zone delegated to a closed port, and a socket that never answers.
import XCTest
import Foundation
@testable import MailDNS

/// An unbound server on 127.0.0.1 and a free port, in the foreground, for one test class.
final class TestDNSServer {
    static let binary = "/usr/sbin/unbound"
    let dir: String
    let port: UInt16
    let process = Process()

    static let zones = """
        local-zone: "t.example." static
        local-data: "two.t.example. MX 10 mx1.two.t.example."
        local-data: "two.t.example. MX 20 mx2.two.t.example."
        local-data: "mx1.two.t.example. A 192.0.2.1"
        local-data: "mx2.two.t.example. A 192.0.2.2"
        local-data: "nullmx.t.example. MX 0 ."
        local-data: "nomx.t.example. A 192.0.2.10"
        local-data: "dual.t.example. AAAA 2001:db8::25"
        local-data: "dual.t.example. A 192.0.2.25"
        local-data: "v6only.t.example. AAAA 2001:db8::6"
        local-data: "cname.t.example. MX 10 alias.cname.t.example."
        local-data: "alias.cname.t.example. CNAME real.cname.t.example."
        local-data: "real.cname.t.example. A 192.0.2.53"
        local-data: "txtonly.t.example. TXT \\"no mail here\\""
    """

    /// `extra`: more configuration at the end of the server: clause, given the directory.
    init(brokenDelegationPort: UInt16, dir existing: String? = nil, extra: (String) -> String = { _ in "" }) throws {
        if let existing {
            dir = existing
        } else {
            var template = Array("/tmp/unbound-test-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw DNSError.resolver("mkdtemp") }
            dir = String(cString: p)
        }
        port = try Self.freePort()
        let conf = """
        server:
            interface: 127.0.0.1
            port: \(port)
            do-daemonize: no
            username: ""
            chroot: ""
            directory: "\(dir)"
            pidfile: ""
            logfile: ""
            use-syslog: no
            verbosity: 0
            do-ip6: no
            access-control: 127.0.0.0/8 allow
            do-not-query-localhost: no
            module-config: "iterator"
            num-threads: 1
            infra-cache-min-rtt: 50
        \(Self.zones)
        \(extra(dir))
        \(Self.authZone("servfail.example.", file: dir + "/absent.zone"))
        stub-zone:
            name: "broken.example."
            stub-addr: 127.0.0.1@\(brokenDelegationPort)
        remote-control:
            control-enable: no

        """
        try conf.write(toFile: dir + "/unbound.conf", atomically: true, encoding: .utf8)
        // A zone file with no records: unbound serves the zone as broken, SERVFAIL.
        try "$ORIGIN servfail.example.\n".write(toFile: dir + "/absent.zone", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["-d", "-c", dir + "/unbound.conf"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Ready when its TCP listener accepts.
        let deadline = Date().addingTimeInterval(10)
        while !Self.accepts(port) {
            guard process.isRunning, Date() < deadline else { stop(); throw DNSError.resolver("unbound did not start on port \(port)") }
            usleep(50_000)
        }
    }

    /// An auth-zone clause serving `name` from `file` (then back in the server: clause).
    static func authZone(_ name: String, file: String) -> String {
        """
        auth-zone:
            name: "\(name)"
            zonefile: "\(file)"
            for-downstream: yes
            for-upstream: yes
            fallback-enabled: no
        server:
        """
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw DNSError.resolver("no free port") }
        return UInt16(bigEndian: a.sin_port)
    }

    static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: port.bigEndian, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        return withUnsafePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A UDP socket on loopback that reads queries and never answers.
final class SilentUDPServer {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var a = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw DNSError.resolver("bind") }
        port = UInt16(bigEndian: a.sin_port)
    }

    deinit { close(fd) }
}

final class UnboundResolverTests: XCTestCase {
    nonisolated(unsafe) static var server: TestDNSServer?
    nonisolated(unsafe) static var closedPort: UInt16 = 0
    nonisolated(unsafe) static var setupError: Error?

    override class func setUp() {
        guard FileManager.default.isExecutableFile(atPath: TestDNSServer.binary) else { return }
        // A port nothing listens on: the broken.example. delegation points there.
        closedPort = (try? TestDNSServer.freePort()) ?? 9
        do { server = try TestDNSServer(brokenDelegationPort: closedPort) } catch { setupError = error }
    }

    override class func tearDown() { server?.stop(); server = nil }

    func resolver(timeout: Double = 5) throws -> UnboundResolver {
        if let e = Self.setupError { throw e }          // installed but broken: a failure, not a skip
        guard let s = Self.server else {
            throw XCTSkip("unbound (Debian package) is not installed: make test installs it")
        }
        return try UnboundResolver(forwarder: "127.0.0.1@\(s.port)", timeout: timeout)
    }

    func testMXWithTwoPreferences() async throws {
        let r = try resolver()
        let answer = try await r.mx("Two.T.Example")
        guard case .records(let records, let dnssec) = answer else { return XCTFail("\(answer)") }
        XCTAssertEqual(records.sorted { $0.preference < $1.preference },
                       [MXRecord(preference: 10, exchange: "mx1.two.t.example"), MXRecord(preference: 20, exchange: "mx2.two.t.example")])
        XCTAssertEqual(dnssec, .insecure)
        var rng = SystemRandomNumberGenerator()
        XCTAssertEqual(answer.deliveryOrder(using: &rng), ["mx1.two.t.example", "mx2.two.t.example"])
        let a = try await r.addresses("mx2.two.t.example")
        XCTAssertEqual(a.addresses.map(\.description), ["192.0.2.2"])
    }

    func testNullMX() async throws {
        let answer = try await resolver().mx("nullmx.t.example")
        XCTAssertEqual(answer, .nullMX(.insecure))
    }

    func testNoMXIsNodataAndTheDomainsAddressesServe() async throws {
        let r = try resolver()
        let nomx = try await r.mx("nomx.t.example")
        XCTAssertEqual(nomx, .noMX(.insecure))
        let a = try await r.addresses("nomx.t.example")
        XCTAssertEqual(a.addresses.map(\.description), ["192.0.2.10"])
        let txt = try await r.mx("txtonly.t.example")
        XCTAssertEqual(txt, .noMX(.insecure))
        let none = try await r.addresses("txtonly.t.example")
        XCTAssertEqual(none, .noAddresses(.insecure))
    }

    func testNXDOMAIN() async throws {
        let r = try resolver()
        let mx = try await r.mx("missing.t.example")
        XCTAssertEqual(mx, .nxdomain(.insecure))
        let a = try await r.addresses("missing.t.example")
        XCTAssertEqual(a, .nxdomain(.insecure))
    }

    func testAAAAAndA() async throws {
        let r = try resolver()
        let dual = try await r.addresses("dual.t.example")
        XCTAssertEqual(dual.addresses.map(\.description), ["2001:db8::25", "192.0.2.25"])
        XCTAssertEqual(dual.addresses.map(\.isIPv6), [true, false])
        let v6 = try await r.addresses("v6only.t.example")
        XCTAssertEqual(v6.addresses.map(\.description), ["2001:db8::6"])
        // Literals are not looked up.
        let literal = try await r.addresses("[192.0.2.7]")
        XCTAssertEqual(literal.addresses.map(\.description), ["192.0.2.7"])
        let literal6 = try await r.addresses("[IPv6:2001:db8::7]")
        XCTAssertEqual(literal6.addresses.map(\.description), ["2001:db8::7"])
    }

    func testCNAMEdExchange() async throws {
        let r = try resolver()
        let mx = try await r.mx("cname.t.example")
        XCTAssertEqual(mx.records, [MXRecord(preference: 10, exchange: "alias.cname.t.example")])
        let a = try await r.addresses("alias.cname.t.example")
        XCTAssertEqual(a.addresses.map(\.description), ["192.0.2.53"])
    }

    func testDelegationToNowhereIsTemporary() async throws {
        let r = try resolver(timeout: 2)
        let mx = try await r.mx("broken.example")
        guard case .temporaryFailure(let why) = mx else { return XCTFail("\(mx)") }
        XCTAssertTrue(why.contains("SERVFAIL") || why.contains("timed out"), why)
        let a = try await r.addresses("host.broken.example")
        guard case .temporaryFailure = a else { return XCTFail("\(a)") }
    }

    /// An auth-zone whose zone file is missing: unbound answers SERVFAIL at once.
    func testSERVFAILIsTemporary() async throws {
        let r = try resolver()
        let mx = try await r.mx("servfail.example")
        XCTAssertEqual(mx, .temporaryFailure("SERVFAIL"))
        let a = try await r.addresses("host.servfail.example")
        XCTAssertEqual(a, .temporaryFailure("SERVFAIL; SERVFAIL"))
    }

    func testServerThatNeverAnswersTimesOut() async throws {
        let silent = try SilentUDPServer()
        let r = try UnboundResolver(forwarder: "127.0.0.1@\(silent.port)", timeout: 1)
        let start = Date()
        let mx = try await r.mx("example.t.example")
        guard case .temporaryFailure(let why) = mx else { return XCTFail("\(mx)") }
        XCTAssertTrue(why.contains("timed out"), why)
        XCTAssertLessThan(Date().timeIntervalSince(start), 4)
    }

    func testShutdownEndsWaitingQueries() async throws {
        let silent = try SilentUDPServer()
        let r = try UnboundResolver(forwarder: "127.0.0.1@\(silent.port)", timeout: 30)
        async let waiting = r.mx("example.t.example")
        try await Task.sleep(nanoseconds: 200_000_000)
        let start = Date()
        r.shutdown()
        let answer = try await waiting
        XCTAssertEqual(answer, .temporaryFailure("resolver shut down"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testManyConcurrentQueriesAndShutdown() async throws {
        let r = try resolver()
        let names = (0..<50).map { ["two.t.example", "nullmx.t.example", "nomx.t.example", "missing.t.example", "cname.t.example"][$0 % 5] }
        let answers = try await withThrowingTaskGroup(of: (Int, MXAnswer).self) { g in
            for (i, n) in names.enumerated() { g.addTask { (i, try await r.mx(n)) } }
            var out = [Int: MXAnswer]()
            for try await (i, a) in g { out[i] = a }
            return out
        }
        for (i, a) in answers {
            switch i % 5 {
            case 0: XCTAssertEqual(a.records.count, 2)
            case 1: XCTAssertEqual(a, .nullMX(.insecure))
            case 2: XCTAssertEqual(a, .noMX(.insecure))
            case 3: XCTAssertEqual(a, .nxdomain(.insecure))
            default: XCTAssertEqual(a.records.count, 1)
            }
        }
        r.shutdown()
        do { _ = try await r.mx("two.t.example"); XCTFail("query after shutdown") } catch let e as DNSError {
            XCTAssertEqual(e, .resolver("shut down"))
        }
    }

    func testInvalidNamesAndForwarder() async throws {
        let r = try resolver()
        do { _ = try await r.mx("bad..name"); XCTFail() } catch let e as DNSError { XCTAssertEqual(e, .invalidName("bad..name")) }
        XCTAssertThrowsError(try UnboundResolver(forwarder: "not an address"))
        // nil: the servers of /etc/resolv.conf (no query: the test machine may have no network).
        XCTAssertNoThrow(try UnboundResolver(forwarder: nil, timeout: 1).shutdown())
    }
}
