// postern.toml: defaults, the example file, and refusals that name file, line, key and reason.
import XCTest
import Foundation
@testable import MailCore

final class ConfigTests: XCTestCase {
    func testEmptyFileGivesDocumentedDefaults() throws {
        let c = try PosternConfig.parse("", path: "/etc/postern/postern.toml")
        XCTAssertEqual(c.dataDir, "/var/lib/postern")
        XCTAssertEqual(c.runDir, "/run/postern")
        XCTAssertEqual(c.master.controlSocket, "/run/postern/control")
        XCTAssertEqual(c.lmtp.service.listen, [ListenAddress(.unix(path: "/run/postern/lmtp"))])
        XCTAssertEqual(c.workerUser, "postern")
        XCTAssertEqual(c.storeUser, "postern-store")
        XCTAssertTrue(c.store.fsync)
        XCTAssertEqual(c.lmtp.maxMessageSize, 50 * 1024 * 1024)
        // The LMTP socket is not world-writable: 0660, its group the worker's (set by the master).
        XCTAssertEqual(c.lmtp.service.socketMode, 0o660)
        XCTAssertNil(c.lmtp.service.socketGroup)
        XCTAssertEqual(c.lmtp.maxJunkCommands, 100)
        XCTAssertEqual(c.smtp.maxJunkCommands, 100)
        XCTAssertEqual(c.smtp.maxSessionTime, 3600)
        XCTAssertEqual(c.lmtp.maxSessionTime, 3600)
    }

    func testTheAnnotatedExampleParsesToTheDefaults() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("postern.toml.example").path
        var c = try PosternConfig.load(path: path)
        var d = PosternConfig.defaults(path: path)
        c.hostname = "x"; d.hostname = "x"
        // TLS files default to tls/ next to the config file (/etc/postern/tls/... for the real one)
        let dir = (path as NSString).deletingLastPathComponent
        d.tls.certificate = dir + "/tls/cert.pem"; d.tls.key = dir + "/tls/key.pem"
        XCTAssertEqual(c, d, "every default in postern.toml.example must match the code")
    }

    func testListenersAndRelativePaths() throws {
        let c = try PosternConfig.parse("""
            run_dir = "/srv/run"
            [lmtp]
            listen = ["unix:lmtp", "127.0.0.1:24", "[::1]:2424", "/abs/sock"]
            socket_mode = "0660"
            """, path: "/etc/p.toml")
        XCTAssertEqual(c.lmtp.service.listen.map(\.description), ["unix:/srv/run/lmtp", "127.0.0.1:24", "[::1]:2424", "unix:/abs/sock"])
        XCTAssertEqual(c.lmtp.service.socketMode, 0o660)
    }

    /// The AUTH budget is the store's, for every protocol ([auth]); the store deadline is [store]'s.
    /// The old per-smtpd keys are refused, so a stale file is pointed at rather than ignored.
    func testAuthBudgetAndStoreDeadlineKeys() throws {
        let d = try PosternConfig.parse("", path: "/etc/p.toml")
        XCTAssertEqual(d.auth.failuresPerClient, 10)
        XCTAssertEqual(d.auth.failureWindow, 600)
        XCTAssertEqual(d.store.answerTimeout, 10)
        let c = try PosternConfig.parse("[store]\nanswer_timeout = 2.5\n[auth]\nfailures_per_client = 3\nfailure_window = 60\n", path: "/etc/p.toml")
        XCTAssertEqual(c.auth.failuresPerClient, 3)
        XCTAssertEqual(c.auth.failureWindow, 60)
        XCTAssertEqual(c.store.answerTimeout, 2.5)
        XCTAssertThrowsError(try PosternConfig.parse("[smtp]\nauth_failures_per_client = 3\n", path: "/etc/p.toml")) { e in
            XCTAssertEqual((e as? ConfigError)?.key, "smtp.auth_failures_per_client")
        }
        XCTAssertThrowsError(try PosternConfig.parse("[auth]\nfailures_per_client = 0\n", path: "/etc/p.toml"))
        XCTAssertEqual(d.auth.cacheTTL, 300)
        XCTAssertEqual(try PosternConfig.parse("[auth]\ncache_ttl = 0\n", path: "/etc/p.toml").auth.cacheTTL, 0)
        XCTAssertThrowsError(try PosternConfig.parse("[auth]\ncache_ttl = -1\n", path: "/etc/p.toml"))
    }

    func testRefusalsNameFileLineKeyAndReason() {
        let cases: [(String, Int?, String, String)] = [
            ("hostname = \"a\"\nbogus = 1\n", 2, "bogus", "unknown key"),
            ("[lmtp]\nprocesses = 1\nmax_recipients = 0\n", 3, "lmtp.max_recipients", "out of range"),
            ("[lmtp]\nlisten = [\"nonsense\"]\n", 2, "lmtp.listen", "is not unix:/path"),
            ("[store]\nfsync = \"yes\"\n", 2, "store.fsync", "expected true or false"),
            ("[lmtp]\nbare_linefeed = \"allow\"\n", 2, "lmtp.bare_linefeed", "not one of"),
            ("[users]\nworker = \"mail\"\nstore = \"mail\"\n", 3, "users.store", "must differ"),
            ("[nosuchsection]\nx = 1\n", 1, "nosuchsection", "unknown key"),
            ("hostname = \n", 1, "", "expected value"),                          // TOML syntax error
        ]
        for (text, line, key, reason) in cases {
            XCTAssertThrowsError(try PosternConfig.parse(text, path: "/etc/postern/postern.toml"), text) { e in
                guard let e = e as? ConfigError else { return XCTFail("\(e)") }
                XCTAssertEqual(e.file, "/etc/postern/postern.toml")
                XCTAssertEqual(e.line, line, text)
                XCTAssertEqual(e.key, key, text)
                XCTAssertTrue(e.reason.contains(reason), "\(e.reason) should contain \(reason)")
                XCTAssertTrue(e.description.hasPrefix("/etc/postern/postern.toml:\(line ?? 0)"), e.description)
            }
        }
    }
}

final class ConfigSectionTests: XCTestCase {
    /// Every service section takes the same service keys (one `service(default:)` reader).
    func testEveryServiceTakesTheServiceKeys() throws {
        let keys = "processes = 3\nmax_connections = 9\nsocket_mode = \"0660\"\nsocket_owner = \"postfix\"\nsocket_group = \"mail\"\n"
        let c = try PosternConfig.parse("[lmtp]\n" + keys + "[smtp]\n" + keys + "[lookup]\n" + keys, path: "/etc/p.toml")
        for s in [c.lmtp.service, c.smtp.service, c.lookup.service] {
            XCTAssertEqual(s.processes, 3)
            XCTAssertEqual(s.maxConnections, 9)
            XCTAssertEqual(s.socketMode, 0o660)
            XCTAssertEqual(s.socketOwner, "postfix")
            XCTAssertEqual(s.socketGroup, "mail")
        }
    }

    /// smtp and lookup name their listeners by role or map: a `listen` key there is unknown.
    func testListenOnlyWhereTheServiceHasIt() {
        for section in ["smtp", "lookup"] {
            XCTAssertThrowsError(try PosternConfig.parse("[\(section)]\nlisten = [\"127.0.0.1:1\"]\n", path: "/p.toml")) { e in
                XCTAssertEqual((e as? ConfigError)?.key, "\(section).listen")
                XCTAssertEqual((e as? ConfigError)?.reason, "unknown key")
            }
        }
    }

    func testTypedValuesAndRunDirDefaults() throws {
        let c = try PosternConfig.parse("""
            run_dir = "/srv/run"
            log_level = "debug"
            [smtp]
            bare_linefeed = "normalize"
            [tls]
            min_version = "TLSv1.3"
            """, path: "/etc/p/postern.toml")
        XCTAssertEqual(c.logLevel, .debug)
        XCTAssertEqual(c.smtp.bareLinefeed, .normalize)
        XCTAssertEqual(c.lmtp.bareLinefeed, .reject)
        XCTAssertEqual(c.tls.minVersion, .tls13)
        XCTAssertEqual(c.master.controlSocket, "/srv/run/control")
        XCTAssertEqual(c.lmtp.service.listen, [ListenAddress(.unix(path: "/srv/run/lmtp"))])
        XCTAssertEqual(c.tls.certificate, "/etc/p/tls/cert.pem")
        XCTAssertThrowsError(try PosternConfig.parse("[tls]\nmin_version = \"TLSv1.1\"\n", path: "/p.toml")) { e in
            XCTAssertTrue((e as? ConfigError)?.reason.contains("not one of TLSv1.2, TLSv1.3") ?? false, "\(e)")
        }
    }
}
