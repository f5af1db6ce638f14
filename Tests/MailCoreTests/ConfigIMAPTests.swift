// [imap]: the defaults, every key, listeners by role, refusals that name key, line and reason,
// and the annotated example documenting exactly the keys the reader takes, at their defaults.
import XCTest
import Foundation
@testable import MailCore

final class ConfigIMAPTests: XCTestCase {
    static func tcp(_ host: String, _ port: Int) -> ListenAddress { ListenAddress(.tcp(host: host, port: port)) }

    func testDefaults() throws {
        let c = try PosternConfig.parse("", path: "/etc/postern/postern.toml").imap
        XCTAssertEqual(c, IMAPConfig())
        XCTAssertTrue(c.enabled)
        XCTAssertEqual(c.listeners.map(\.description), ["imap@0.0.0.0:143", "imap@[::]:143", "imaps@0.0.0.0:993", "imaps@[::]:993"])
        XCTAssertEqual(c.listeners(.imap), [Self.tcp("0.0.0.0", 143), Self.tcp("::", 143)])
        XCTAssertEqual(c.listeners(.imaps), [Self.tcp("0.0.0.0", 993), Self.tcp("::", 993)])
        XCTAssertEqual(c.service.processes, 1)
        XCTAssertEqual(c.service.maxConnections, 1024)
        XCTAssertEqual(c.service.maxUnsentBytes, 256 * 1024)
        XCTAssertEqual(c.maxConnectionsPerClient, 50)
        XCTAssertEqual(c.ipv6ClientPrefix, 64)
        XCTAssertEqual(c.loginTimeout, 60)
        XCTAssertEqual(c.autologout, 1800)
        XCTAssertEqual(c.commandTimeout, 60)
        XCTAssertEqual(c.maxLine, 64 * 1024)
        XCTAssertEqual(c.maxLiteral, 64 * 1024)
        XCTAssertEqual(c.appendLimit, 50 * 1024 * 1024)
        XCTAssertEqual(c.maxCommand, 64 * 1024 * 1024)
        XCTAssertEqual(c.authFailureDelay, 2)
        XCTAssertTrue(c.plaintextAuthOnLoopback)
    }

    func testEveryKey() throws {
        let c = try PosternConfig.parse("""
            run_dir = "/srv/run"
            [imap]
            processes = 3
            listen = ["imap@127.0.0.1:10143", "imaps@[::1]:10993", "imap@unix:imap"]
            max_connections = 500
            max_connections_per_client = 7
            ipv6_client_prefix = 56
            max_unsent_bytes = 65536
            socket_mode = "0660"
            socket_owner = "root"
            socket_group = "mail"
            login_timeout = 30
            autologout = 3600
            command_timeout = 120
            max_line = 8192
            max_literal = 4096
            append_limit = 1048576
            max_command = 2097152
            auth_failure_delay = 0.5
            plaintext_auth_on_loopback = false
            """, path: "/etc/p.toml").imap
        XCTAssertEqual(c.listeners, [IMAPListener(.imap, Self.tcp("127.0.0.1", 10143)), IMAPListener(.imaps, Self.tcp("::1", 10993)),
                                     IMAPListener(.imap, ListenAddress(.unix(path: "/srv/run/imap")))])
        XCTAssertEqual(c.listeners.map(\.description), ["imap@127.0.0.1:10143", "imaps@[::1]:10993", "imap@unix:/srv/run/imap"])
        XCTAssertEqual(c.service.processes, 3)
        XCTAssertEqual(c.service.listen, [], "the listeners are by role, not the shared listen list")
        XCTAssertEqual(c.service.maxConnections, 500)
        XCTAssertEqual(c.service.maxUnsentBytes, 65536)
        XCTAssertEqual(c.service.socketMode, 0o660)
        XCTAssertEqual(c.service.socketOwner, "root")
        XCTAssertEqual(c.service.socketGroup, "mail")
        XCTAssertEqual(c.maxConnectionsPerClient, 7)
        XCTAssertEqual(c.ipv6ClientPrefix, 56)
        XCTAssertEqual(c.loginTimeout, 30)
        XCTAssertEqual(c.autologout, 3600)
        XCTAssertEqual(c.commandTimeout, 120)
        XCTAssertEqual(c.maxLine, 8192)
        XCTAssertEqual(c.maxLiteral, 4096)
        XCTAssertEqual(c.appendLimit, 1 << 20)
        XCTAssertEqual(c.maxCommand, 2 << 20)
        XCTAssertEqual(c.authFailureDelay, 0.5)
        XCTAssertFalse(c.plaintextAuthOnLoopback)
    }

    func testNoListenersTurnsIMAPOff() throws {
        let c = try PosternConfig.parse("[imap]\nlisten = []\n", path: "/etc/p.toml").imap
        XCTAssertFalse(c.enabled)
        XCTAssertEqual(c.listeners(.imap), [])
    }

    /// (text, key, part of the reason); each refusal names the line of the key.
    func testBadValuesAreRefused() {
        let cases: [(String, String, String)] = [
            ("[imap]\nlisten = [\"127.0.0.1:143\"]\n", "imap.listen", "does not start with a role"),
            ("[imap]\nlisten = [\"pop3@127.0.0.1:110\"]\n", "imap.listen", "does not start with a role"),
            ("[imap]\nlisten = [\"imaps@nowhere\"]\n", "imap.listen", "the address is not"),
            ("[imap]\nlisten = [\"imap@127.0.0.1:99999\"]\n", "imap.listen", "the address is not"),
            ("[imap]\nlisten = [143]\n", "imap.listen", "list of strings"),
            ("[imap]\nautologout = 600\n", "imap.autologout", "out of range 1800"),
            ("[imap]\nlogin_timeout = 0\n", "imap.login_timeout", "out of range"),
            ("[imap]\ncommand_timeout = \"60\"\n", "imap.command_timeout", "expected an integer"),
            ("[imap]\nmax_line = 100\n", "imap.max_line", "out of range"),
            ("[imap]\nmax_literal = -1\n", "imap.max_literal", "out of range"),
            ("[imap]\nmax_command = 1048576\n", "imap.max_command", "at least append_limit"),
            ("[imap]\nappend_limit = 104857600\n", "imap.append_limit", "at least append_limit"),
            ("[imap]\nauth_failure_delay = 61\n", "imap.auth_failure_delay", "at most 60"),
            ("[imap]\nauth_failure_delay = -1\n", "imap.auth_failure_delay", "seconds"),
            ("[imap]\nplaintext_auth_on_loopback = 1\n", "imap.plaintext_auth_on_loopback", "true or false"),
            ("[imap]\nmax_connections_per_client = 0\n", "imap.max_connections_per_client", "out of range"),
            ("[imap]\nipv6_client_prefix = 8\n", "imap.ipv6_client_prefix", "out of range"),
            ("[imap]\nmax_unsent_bytes = 100\n", "imap.max_unsent_bytes", "out of range"),
            ("[imap]\nprocesses = 0\n", "imap.processes", "out of range"),
            ("[imap]\nimaps = [\"0.0.0.0:993\"]\n", "imap.imaps", "unknown key"),
            ("[imap]\nmax_message_size = 1024\n", "imap.max_message_size", "unknown key"),
        ]
        for (text, key, reason) in cases {
            XCTAssertThrowsError(try PosternConfig.parse(text, path: "/p.toml"), text) { e in
                XCTAssertEqual((e as? ConfigError)?.key, key, text)
                XCTAssertTrue((e as? ConfigError)?.reason.contains(reason) ?? false, "\(text): \(e)")
                XCTAssertEqual((e as? ConfigError)?.line, 2, text)
                XCTAssertEqual((e as? ConfigError)?.file, "/p.toml", text)
            }
        }
    }

    /// postern.toml.example documents every [imap] key (and only those), at the defaults.
    func testTheExampleDocumentsEveryKeyAtItsDefault() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("postern.toml.example").path
        XCTAssertEqual(try PosternConfig.load(path: path).imap, IMAPConfig())
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var section = "", documented: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") { section = String(line.dropFirst().prefix { $0 != "]" }); continue }
            // Keys commented out (`# socket_owner = ...`) are documented too.
            let body = line.hasPrefix("# ") ? String(line.dropFirst(2)) : line
            guard section == "imap", let eq = body.firstIndex(of: "="), !body.hasPrefix("#") else { continue }
            let key = body[..<eq].trimmingCharacters(in: .whitespaces)
            if key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { documented.append(key) }
        }
        XCTAssertEqual(Set(documented), [
            "processes", "listen", "max_connections", "max_connections_per_client", "ipv6_client_prefix", "max_unsent_bytes",
            "socket_mode", "socket_owner", "socket_group", "login_timeout", "autologout", "command_timeout", "max_line",
            "max_literal", "append_limit", "max_command", "auth_failure_delay", "plaintext_auth_on_loopback",
        ])
        XCTAssertEqual(documented.count, Set(documented).count, "a key documented twice")
        // testEveryKey sets each of these keys: the reader takes every documented one.
    }
}
