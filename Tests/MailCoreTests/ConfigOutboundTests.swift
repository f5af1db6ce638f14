// [outbound]: the defaults, every key, relay host forms, refusals naming key and reason, and the
// annotated example documenting exactly the keys the reader takes, at their defaults.
import XCTest
import Foundation
@testable import MailCore

final class ConfigOutboundTests: XCTestCase {
    func testDefaults() throws {
        let c = try PosternConfig.parse("hostname = \"mail.example.org\"", path: "/etc/postern/postern.toml")
        let o = c.outbound
        XCTAssertEqual(o, OutboundConfig())
        XCTAssertTrue(o.enabled)
        XCTAssertEqual(c.outboundHeloName, "mail.example.org", "helo_name defaults to hostname")
        XCTAssertNil(o.relayhost)
        XCTAssertEqual(o.relayTLS, .starttls)
        XCTAssertEqual(o.smtpPort, 25)
        XCTAssertEqual(o.tlsPolicy, .opportunistic)
        XCTAssertEqual(o.concurrency, 20)
        XCTAssertEqual(o.perDestination, 4)
        XCTAssertEqual(o.connectionCacheTime, 2_000)
        XCTAssertEqual(o.retryInitial, 300)
        XCTAssertEqual(o.retryMax, 14_400)
        XCTAssertEqual(o.maxQueueLifetime, 432_000)
        XCTAssertEqual(o.delayWarning, 14_400)
        XCTAssertEqual(o.lease, 600)
        XCTAssertEqual(o.connectTimeout, 300)
        XCTAssertEqual(o.commandTimeout, 0)
        XCTAssertEqual(o.dkimSelector, "")
        XCTAssertTrue(o.dkim)
    }

    func testEveryKey() throws {
        let c = try PosternConfig.parse("""
            [outbound]
            enabled = false
            helo_name = "out.example.org"
            relayhost = "[192.0.2.1]:587"
            relay_tls = "implicit"
            relay_user = "relay"
            relay_password_file = "relay.secret"
            resolver = "127.0.0.1@5353"
            smtp_port = 2525
            tls_policy = "verify"
            ca_file = "/etc/ssl/ca.pem"
            concurrency = 50
            per_destination = 8
            connection_cache_time_ms = 500
            retry_initial = 60
            retry_max = 3600
            max_queue_lifetime = 86400
            delay_warning = 0
            lease = 120
            connect_timeout = 30
            command_timeout = 5
            dkim_selector = "s2026"
            dkim = false
            [outbound.tls_policy_domains]
            "Example.COM" = "verify"
            "plain.example" = "none"
            """, path: "/etc/p/postern.toml")
        let o = c.outbound
        XCTAssertFalse(o.enabled)
        XCTAssertEqual(c.outboundHeloName, "out.example.org")
        XCTAssertEqual(o.relayhost, RelayHost(host: "192.0.2.1", port: 587, literal: true))
        XCTAssertEqual(o.relayTLS, .implicit)
        XCTAssertEqual(o.relayUser, "relay")
        XCTAssertEqual(o.relayPasswordFile, "/etc/p/relay.secret")
        XCTAssertEqual(o.resolver, "127.0.0.1@5353")
        XCTAssertEqual(o.smtpPort, 2525)
        XCTAssertEqual(o.tlsPolicy, .verify)
        XCTAssertEqual(o.caFile, "/etc/ssl/ca.pem")
        XCTAssertEqual(o.concurrency, 50)
        XCTAssertEqual(o.perDestination, 8)
        XCTAssertEqual(o.connectionCacheTime, 500)
        XCTAssertEqual(o.retryInitial, 60)
        XCTAssertEqual(o.retryMax, 3600)
        XCTAssertEqual(o.maxQueueLifetime, 86_400)
        XCTAssertEqual(o.delayWarning, 0)
        XCTAssertEqual(o.lease, 120)
        XCTAssertEqual(o.connectTimeout, 30)
        XCTAssertEqual(o.commandTimeout, 5)
        XCTAssertEqual(o.dkimSelector, "s2026")
        XCTAssertFalse(o.dkim)
        XCTAssertEqual(o.tlsPolicyDomains, ["example.com": .verify, "plain.example": .none])
        XCTAssertEqual(o.tlsPolicy(for: "EXAMPLE.com"), .verify)
        XCTAssertEqual(o.tlsPolicy(for: "other.example"), .verify)
    }

    func testEmptyStringsMeanTheDefaultBehaviour() throws {
        let o = try PosternConfig.parse("[outbound]\nrelayhost = \"\"\nresolver = \"\"\nhelo_name = \"\"\nca_file = \"\"\n", path: "/p.toml").outbound
        XCTAssertNil(o.relayhost)
        XCTAssertEqual(o.resolver, "")
        XCTAssertEqual(o.caFile, "")
    }

    func testRelayHostForms() {
        let cases: [(String, RelayHost?)] = [
            ("smtp.example.net", RelayHost(host: "smtp.example.net", port: 25, literal: false)),
            ("smtp.example.net:587", RelayHost(host: "smtp.example.net", port: 587, literal: false)),
            ("[smtp.example.net]", RelayHost(host: "smtp.example.net", port: 25, literal: true)),
            ("[smtp.example.net]:465", RelayHost(host: "smtp.example.net", port: 465, literal: true)),
            ("127.0.0.1:2525", RelayHost(host: "127.0.0.1", port: 2525, literal: true)),
            ("[2001:db8::1]:587", RelayHost(host: "2001:db8::1", port: 587, literal: true)),
            ("[IPv6:2001:db8::1]", RelayHost(host: "2001:db8::1", port: 25, literal: true)),
            ("host:0", nil), ("host:70000", nil), ("[host", nil), ("host:x", nil), ("[]:25", nil), ("a b", nil), ("2001:db8::1", nil),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(RelayHost(parsing: text), expected, text)
        }
        XCTAssertEqual(RelayHost(host: "2001:db8::1", port: 587, literal: true).description, "[2001:db8::1]:587")
        XCTAssertEqual(RelayHost(host: "relay.example", port: 25, literal: true).description, "[relay.example]:25")
    }

    func testRefusals() {
        let bad: [(String, String)] = [
            ("relayhost = \"host:99999\"", "outbound.relayhost"),
            ("relay_tls = \"ssl\"", "outbound.relay_tls"),
            ("tls_policy = \"must\"", "outbound.tls_policy"),
            ("concurrency = 0", "outbound.concurrency"),
            ("per_destination = 30", "outbound.per_destination"),
            ("retry_initial = 600\nretry_max = 300", "outbound.retry_max"),
            ("relay_user = \"u\"", "outbound.relay_user"),
            ("smtp_port = 0", "outbound.smtp_port"),
            ("bogus = 1", "outbound.bogus"),
            ("[outbound.tls_policy_domains]\n\"x.example\" = \"sometimes\"", "outbound.tls_policy_domains.x.example"),
        ]
        for (keys, key) in bad {
            XCTAssertThrowsError(try PosternConfig.parse("[outbound]\n" + keys, path: "/p.toml"), keys) { e in
                XCTAssertEqual((e as? ConfigError)?.key, key, "\(keys): \(e)")
                XCTAssertNotNil((e as? ConfigError)?.line, "\(keys): \(e)")
            }
        }
    }

    /// postern.toml.example documents every [outbound] key (and only those), at the defaults.
    func testTheExampleDocumentsEveryKeyAtItsDefault() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("postern.toml.example").path
        XCTAssertEqual(try PosternConfig.load(path: path).outbound, OutboundConfig())
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var section = "", documented: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") { section = String(line.dropFirst().prefix { $0 != "]" }); continue }
            guard section == "outbound", let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            if key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { documented.append(key) }
        }
        XCTAssertEqual(Set(documented), [
            "enabled", "helo_name", "relayhost", "relay_tls", "relay_user", "relay_password_file", "resolver", "smtp_port",
            "tls_policy", "ca_file", "concurrency", "per_destination", "connection_cache_time_ms", "retry_initial", "retry_max", "max_queue_lifetime",
            "delay_warning", "lease", "connect_timeout", "command_timeout", "dkim_selector", "dkim",
        ])
        XCTAssertEqual(documented.count, Set(documented).count, "a key documented twice")
    }
}
