// The routing glue against a real DNS server: Debian's unbound on loopback serving test zones
// (as Tests/MailDNSTests does), read through UnboundResolver: MX by preference, no MX → the
// domain's own address, null MX and NXDOMAIN → permanent, IPv6 and IPv4 interleaved; and the
// runner end to end: the first MX refuses connections, the second takes the mail.
import Foundation
import MailCore
import MailDNS
import MailTesting
import OutboundProtocol
@testable import OutboundServer
import SMTPProtocol
import XCTest

/// unbound in the foreground on 127.0.0.1:port with `zones` as local-data.
final class LoopbackDNS {
    let dir = TempDir()
    let port: Int
    let process = Process()

    static let zones = """
        local-zone: "t.example." static
        local-data: "one.t.example. MX 10 mx.one.t.example."
        local-data: "mx.one.t.example. A 127.0.0.1"
        local-data: "two.t.example. MX 20 live.two.t.example."
        local-data: "two.t.example. MX 10 dead.two.t.example."
        local-data: "dead.two.t.example. A 127.0.0.2"
        local-data: "live.two.t.example. A 127.0.0.1"
        local-data: "nullmx.t.example. MX 0 ."
        local-data: "nomx.t.example. A 127.0.0.1"
        local-data: "dual.t.example. AAAA ::1"
        local-data: "dual.t.example. A 127.0.0.1"
        local-data: "dual.t.example. A 127.0.0.3"
    """

    init() throws {
        port = try freePort()
        let conf = """
        server:
            interface: 127.0.0.1
            port: \(port)
            do-daemonize: no
            username: ""
            chroot: ""
            directory: "\(dir.path)"
            pidfile: ""
            logfile: ""
            use-syslog: no
            verbosity: 0
            do-ip6: no
            do-tcp: yes
            access-control: 127.0.0.0/8 allow
            module-config: "iterator"
            num-threads: 1
        \(Self.zones)
        remote-control:
            control-enable: no

        """
        try writeFile(dir.file("unbound.conf"), conf)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/unbound")
        process.arguments = ["-d", "-c", dir.file("unbound.conf")]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try waitForListener(port, process)
    }

    deinit { stopProcess(process) }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var instance: LoopbackDNS?
    /// One server for the whole run.
    static func shared() throws -> LoopbackDNS {
        try lock.withLock {
            if let i = instance { return i }
            let i = try LoopbackDNS()
            instance = i
            atexit { if let p = LoopbackDNS.instance?.process { kill(p.processIdentifier, SIGKILL) } }     // no unbound left behind the test run
            return i
        }
    }

    func resolver() throws -> UnboundResolver { try UnboundResolver(forwarder: "127.0.0.1@\(port)", timeout: 5) }
}

final class RouterTests: XCTestCase {
    func router(smtpPort: Int = 25) throws -> Router {
        Router(resolver: try LoopbackDNS.shared().resolver(), relayhost: nil, smtpPort: smtpPort)
    }

    func testMXHostsInPreferenceOrder() async throws {
        let r = try router()
        let got1 = await r.route(.domain("two.t.example"))
        XCTAssertEqual(got1, .targets([
            RouteTarget(host: "dead.two.t.example", address: "127.0.0.2", port: 25),
            RouteTarget(host: "live.two.t.example", address: "127.0.0.1", port: 25),
        ]))
        let got2 = await r.route(.domain("one.t.example"))
        XCTAssertEqual(got2, .targets([RouteTarget(host: "mx.one.t.example", address: "127.0.0.1", port: 25)]))
    }

    func testNoMXFallsBackToTheDomainsAddresses() async throws {
        let r = try router(smtpPort: 2525)
        let got3 = await r.route(.domain("nomx.t.example"))
        XCTAssertEqual(got3, .targets([RouteTarget(host: "nomx.t.example", address: "127.0.0.1", port: 2525)]))
        // IPv6 and IPv4 interleaved, IPv6 first (RFC 8305 §4).
        guard case .targets(let t) = await r.route(.domain("dual.t.example")) else { return XCTFail() }
        XCTAssertEqual(t.first?.address, "::1")
        XCTAssertEqual(Set(t.map(\.address)), ["::1", "127.0.0.1", "127.0.0.3"], "unbound may rotate the A records")
    }

    func testNullMXAndNXDOMAINArePermanent() async throws {
        let r = try router()
        let got4 = await r.route(.domain("nullmx.t.example"))
        XCTAssertEqual(got4, .permanent(.nullMXDomain))
        XCTAssertEqual(SMTPReply.nullMXDomain.code, 556)
        XCTAssertEqual(SMTPReply.nullMXDomain.enhanced, "5.1.10")
        let got5 = await r.route(.domain("absent.t.example"))
        XCTAssertEqual(got5, .permanent(.noSuchDomain))
    }

    func testUnreachableDNSIsTemporary() async throws {
        let r = Router(resolver: try UnboundResolver(forwarder: "127.0.0.1@\(try freePort())", timeout: 1), relayhost: nil, smtpPort: 25)
        guard case .temporary(let reply) = await r.route(.domain("one.t.example")) else { return XCTFail() }
        XCTAssertEqual(reply.code, 451)
    }

    func testRelayHostByAddressNeedsNoDNS() async throws {
        let r = Router(resolver: try UnboundResolver(forwarder: "127.0.0.1@9", timeout: 1),
                       relayhost: RelayHost(host: "192.0.2.7", port: 587, literal: true), smtpPort: 25)
        XCTAssertEqual(r.destination(of: "anything.example"), .relay)
        let relay = await r.route(.relay)
        XCTAssertEqual(relay, .targets([RouteTarget(host: "192.0.2.7", address: "192.0.2.7", port: 587)]))
    }

    /// The first MX refuses the connection, the second takes it; a null MX domain bounces at once.
    func testRunnerFallsBackToTheNextMXAndBouncesNullMX() async throws {
        let server = try Receiver.python()
        let q = MemoryQueue([job(1, recipients: ["a@two.t.example", "b@nullmx.t.example", "c@nomx.t.example"], body: message())])
        let runner = try OutboundRunnerTests.runner(q, "smtp_port = \(server.port)\ncommand_timeout = 10\n", resolver: try LoopbackDNS.shared().resolver())
        await runner.runOnce()
        guard case .delivered? = q.outcomes[100], case .delivered? = q.outcomes[102] else { return XCTFail("\(q.outcomes)") }
        guard case .failed(let reply)? = q.outcomes[101] else { return XCTFail("\(q.outcomes)") }
        XCTAssertTrue(reply.hasPrefix("556 5.1.10"), reply)
        XCTAssertEqual(server.envelopes().count, 2, "one transaction per destination domain")
        let dsn = String(decoding: try XCTUnwrap(q.notices.first).body, as: UTF8.self)
        XCTAssertTrue(dsn.contains("Final-Recipient: rfc822; b@nullmx.t.example"), dsn)
        XCTAssertFalse(dsn.contains("Final-Recipient: rfc822; a@two.t.example"), dsn)
    }
}
