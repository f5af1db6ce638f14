// The service table from configurations (pure: nothing is bound), the reload reconciliation by
// listener key, and the install list in the Makefile checked against the table and Package.swift.
import XCTest
import MailCore
import MailIPC
import MailPrivsep
import Logging
@testable import MasterCore

final class ServiceTableTests: XCTestCase {
    static func tcp(_ host: String, _ port: Int) -> ListenAddress { ListenAddress(.tcp(host: host, port: port)) }

    /// Defaults with smtp, imap, pop3 and the outbound agent off: lmtp only.
    static func lmtpOnly() -> PosternConfig {
        var c = PosternConfig.defaults(path: "/etc/postern/postern.toml")
        c.smtp.mta = []; c.smtp.submission = []; c.smtp.smtps = []
        c.imap.listeners = []
        c.pop3.listeners = []
        c.outbound.enabled = false          // its own line: ServiceTableOutboundTests
        return c
    }

    static func everything() -> PosternConfig {
        var c = lmtpOnly()
        c.smtp.mta = [tcp("127.0.0.1", 2525)]
        c.smtp.submission = [tcp("127.0.0.1", 2587)]
        c.smtp.smtps = [tcp("::1", 2465)]
        c.smtp.service.processes = 3
        c.lookup.socketmap = [tcp("127.0.0.1", 2700)]
        c.lookup.tcpTable = ["recipients": [tcp("127.0.0.1", 2701)], "aliases": [tcp("127.0.0.1", 2702)]]
        c.lookup.service.processes = 2
        c.imap.listeners = [IMAPListener(.imap, tcp("127.0.0.1", 10143)), IMAPListener(.imaps, tcp("::1", 10993))]
        c.imap.service.processes = 4
        c.workerUser = "mailworker"
        c.master.shutdownGrace = 7
        return c
    }

    func testLMTPOnly() {
        let t = ServiceTable.specs(from: Self.lmtpOnly())
        XCTAssertEqual(t.map(\.name), ["lmtp"])
        XCTAssertEqual(t[0].executable, "lmtpd")
        XCTAssertEqual(t[0].role, .lmtpd)
        XCTAssertEqual(t[0].user, "postern")
        XCTAssertEqual(t[0].processes, 1)
        XCTAssertEqual(t[0].listeners.map(\.key), ["lmtp@unix:/run/postern/lmtp"])
        XCTAssertFalse(t[0].tls)
    }

    func testSMTPIMAPAndLookupEnabled() {
        let t = ServiceTable.specs(from: Self.everything())
        XCTAssertEqual(t.map(\.name), ["lmtp", "smtp", "imap", "lookup"])
        XCTAssertEqual(t.map(\.executable), ["lmtpd", "smtpd", "imapd", "lookupd"])
        XCTAssertEqual(t.map(\.role), [.lmtpd, .smtpd, .imapd, .lookupd])
        XCTAssertEqual(t.map(\.processes), [1, 3, 4, 2])
        XCTAssertEqual(t.map(\.tls), [false, true, true, false])
        XCTAssertEqual(t.map(\.user), ["mailworker", "mailworker", "mailworker", "mailworker"])
        XCTAssertEqual(t.map(\.grace), [7, 7, 7, ServiceTable.lookupGrace])
        XCTAssertEqual(t[1].listeners.map(\.key), ["mta@127.0.0.1:2525", "submission@127.0.0.1:2587", "smtps@[::1]:2465"])
        // tcp_table maps in name order, after socketmap
        XCTAssertEqual(t[3].listeners.map(\.key), ["socketmap@127.0.0.1:2700", "tcp_table:aliases@127.0.0.1:2702", "tcp_table:recipients@127.0.0.1:2701"])
        XCTAssertEqual(t[3].listeners[0].address, Self.tcp("127.0.0.1", 2700))
        // every key is unique across the table (they index the bound sockets)
        let keys = t.flatMap { $0.listeners.map(\.key) }
        XCTAssertEqual(Set(keys).count, keys.count)
        // the listener key is what the fd contract names today
        XCTAssertEqual(t[1].listeners[0].key, "mta@\(Self.tcp("127.0.0.1", 2525))")
    }

    /// imapd: role imapd for the store, listeners keyed by role in [imap] listen order (imapd
    /// reads the role back from the key), a TLS service (STARTTLS and imaps share the ticket keys).
    func testIMAPService() throws {
        let t = ServiceTable.specs(from: Self.everything())
        let imap = try XCTUnwrap(t.first { $0.name == "imap" })
        XCTAssertEqual(imap.executable, "imapd")
        XCTAssertEqual(imap.role, .imapd)
        XCTAssertTrue(imap.tls)
        XCTAssertEqual(imap.listeners.map(\.key), ["imap@127.0.0.1:10143", "imaps@[::1]:10993"])
        XCTAssertEqual(imap.listeners.map(\.address), [Self.tcp("127.0.0.1", 10143), Self.tcp("::1", 10993)])
        XCTAssertEqual(imap.listeners.map { String($0.key.prefix { $0 != "@" }) }, ["imap", "imaps"])

        // The default [imap] listens on 143 and 993, on every IPv4 and IPv6 address.
        var c = Self.lmtpOnly()
        c.imap = IMAPConfig()
        let defaults = try XCTUnwrap(ServiceTable.specs(from: c).first { $0.name == "imap" })
        XCTAssertEqual(defaults.listeners.map(\.key), ["imap@0.0.0.0:143", "imap@[::]:143", "imaps@0.0.0.0:993", "imaps@[::]:993"])
        XCTAssertEqual(defaults.processes, 1)
        XCTAssertEqual(defaults.user, "postern")

        // A listener moved is a restart's business, as for every service; the rest applies now.
        var moved = Self.everything()
        moved.imap.listeners = [IMAPListener(.imaps, Self.tcp("::1", 10993))]
        moved.imap.service.processes = 2
        let (table, deferred) = ServiceTable.reconcile(running: t, new: ServiceTable.specs(from: moved))
        XCTAssertEqual(table[2].listeners, imap.listeners)
        XCTAssertEqual(table[2].processes, 2)
        XCTAssertEqual(deferred, ["listener imap@127.0.0.1:10143 removed"])
    }

    /// pop3d: role pop3d, listeners keyed by role in [pop3] listen order, a TLS service; the
    /// default [pop3] listens on 110 and 995, after imap in the table.
    func testPOP3Service() throws {
        var c = Self.everything()
        c.pop3.listeners = [POP3Listener(.pop3, Self.tcp("127.0.0.1", 10110)), POP3Listener(.pop3s, Self.tcp("::1", 10995))]
        c.pop3.service.processes = 2
        let t = ServiceTable.specs(from: c)
        XCTAssertEqual(t.map(\.name), ["lmtp", "smtp", "imap", "pop3", "lookup"])
        let pop3 = try XCTUnwrap(t.first { $0.name == "pop3" })
        XCTAssertEqual(pop3.executable, "pop3d")
        XCTAssertEqual(pop3.role, .pop3d)
        XCTAssertTrue(pop3.tls)
        XCTAssertEqual(pop3.processes, 2)
        XCTAssertEqual(pop3.listeners.map(\.key), ["pop3@127.0.0.1:10110", "pop3s@[::1]:10995"])
        var d = Self.lmtpOnly()
        d.pop3 = POP3Config()
        let defaults = try XCTUnwrap(ServiceTable.specs(from: d).first { $0.name == "pop3" })
        XCTAssertEqual(defaults.listeners.map(\.key), ["pop3@0.0.0.0:110", "pop3@[::]:110", "pop3s@0.0.0.0:995", "pop3s@[::]:995"])
    }

    func testReloadKeepsListenersByKeyAndAppliesTheRest() {
        let running = ServiceTable.specs(from: Self.everything())
        var c = Self.everything()
        c.smtp.mta = [Self.tcp("127.0.0.1", 2525), Self.tcp("127.0.0.1", 2526)]   // one added
        c.smtp.smtps = []                                                          // one removed
        c.smtp.service.processes = 5
        c.lookup.socketmap = []; c.lookup.tcpTable = [:]                           // lookup disabled
        let (table, deferred) = ServiceTable.reconcile(running: running, new: ServiceTable.specs(from: c))
        XCTAssertEqual(table.map(\.name), ["lmtp", "smtp", "imap", "lookup"])
        XCTAssertEqual(table[1].listeners, running[1].listeners, "listeners stay bound as they are until the next restart")
        XCTAssertEqual(table[1].processes, 5, "the process count applies now")
        XCTAssertEqual(table[3], running[3])
        XCTAssertEqual(Set(deferred), ["listener mta@127.0.0.1:2526 added", "listener smtps@[::1]:2465 removed", "service lookup removed"])

        let same = ServiceTable.reconcile(running: running, new: running)
        XCTAssertEqual(same.table, running)
        XCTAssertEqual(same.deferred, [])

        let grown = ServiceTable.reconcile(running: ServiceTable.specs(from: Self.lmtpOnly()), new: running)
        XCTAssertEqual(grown.table.map(\.name), ["lmtp"])
        XCTAssertEqual(Set(grown.deferred), ["service smtp added", "service imap added", "service lookup added"])
    }

    // MARK: the install list

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The Makefile's `install` target copies `for b in ...` from the release bin dir: it must name
    /// the master, the store and every worker the table can spawn, and each must be a product.
    func testInstallListMatchesTheServiceTableAndPackage() throws {
        let makefile = try String(contentsOf: Self.root.appendingPathComponent("Makefile"), encoding: .utf8)
        let line = try XCTUnwrap(makefile.split(separator: "\n").first { $0.contains("for b in ") && $0.contains("libexec/postern") })
        let listed = line.components(separatedBy: "for b in ")[1].components(separatedBy: ";")[0].split(separator: " ").map(String.init)
        let expected = [ServiceTable.masterExecutable, ServiceTable.storeExecutable] + ServiceTable.workerExecutables
        XCTAssertEqual(Set(listed), Set(expected))
        XCTAssertEqual(listed.count, expected.count)
        // the table names only executables in that list
        XCTAssertTrue(Set(ServiceTable.specs(from: Self.everything()).map(\.executable)).isSubset(of: Set(ServiceTable.workerExecutables)))
        let package = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        for exe in expected {
            XCTAssertTrue(package.contains(".executable(name: \"\(exe)\""), "\(exe) is not a product in Package.swift")
        }
    }
}

/// What a worker of each spec inherits: listeners by key from fd 4, ticket keys iff `tls`.
final class WorkerContractTests: XCTestCase {
    func testListenersByKeyAndTicketKeysFollowTLS() {
        let config = ServiceTableTests.everything()
        let master = Master(config: config, binDir: "/nonexistent", logger: Logger(label: "test"))
        let table = ServiceTable.specs(from: config)
        var fd: Int32 = 10
        for key in table.flatMap({ $0.listeners.map(\.key) }) { master.listenerFDs[key] = fd; fd += 1 }
        for spec in table {
            let (env, fds) = master.workerContract(spec, instance: 1, storeConnection: 9)
            XCTAssertEqual(env["POSTERN_SERVICE"], spec.name)
            XCTAssertEqual(env["POSTERN_INSTANCE"], "1")
            XCTAssertEqual(env["POSTERN_LISTEN_FDS"], String(spec.listeners.count))
            XCTAssertEqual(env["POSTERN_LISTEN_FDNAMES"]?.split(separator: ":").map { FDContract.decodeName(String($0)) },
                           spec.listeners.map(\.key))
            XCTAssertEqual(fds[FDContract.storeFD], 9)
            for (i, l) in spec.listeners.enumerated() { XCTAssertEqual(fds[FDContract.firstListenFD + Int32(i)], master.listenerFDs[l.key]) }
            XCTAssertEqual(env["POSTERN_TLS_TICKET_KEYS"] != nil, spec.tls, spec.name)
        }
        XCTAssertEqual(master.ticketKeys.count, 2 * Master.ticketKeyBytes)
        // a listener-less service (an outbound agent) gets its store connection and nothing else
        let outbound = ServiceSpec(name: "outbound", executable: "outboundd", role: .smtpd, user: "postern", processes: 1, listeners: [], grace: 10)
        let (env, fds) = master.workerContract(outbound, instance: 0, storeConnection: 9)
        XCTAssertEqual(env["POSTERN_LISTEN_FDS"], "0")
        XCTAssertEqual(fds, [FDContract.storeFD: 9])
    }
}
