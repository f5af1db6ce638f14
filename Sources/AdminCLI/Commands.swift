// The `postern` admin CLI (DESIGN §6). It talks to the master's root-only control socket;
// store operations go through an admin connection the master hands to the store, so nothing
// edits the database behind the store's back. Passwords come from a prompt or stdin, never argv.
import Foundation
import ArgumentParser
import MailCore
import MailIPC
import MailWorker

struct Options: ParsableArguments {
    @Option(name: [.short, .long], help: "Configuration file.")
    var config: String = ProcessInfo.processInfo.environment["POSTERN_CONFIG"] ?? "/etc/postern/postern.toml"

    func loadConfig() throws -> PosternConfig {
        do { return try PosternConfig.load(path: absolute(config)) } catch let e as ConfigError { throw ValidationError(e.description) }
    }
    func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p }

    func control() throws -> BlockingRPCConnection {
        let c = try BlockingRPCConnection.connect(unixPath: try loadConfig().master.controlSocket)
        try c.hello(client: "postern-cli")
        return c
    }
    /// An admin connection to the store, by way of the master.
    /// Waits up to 15 s while the store is (re)starting.
    func store() throws -> BlockingRPCConnection {
        let deadline = Date().addingTimeInterval(15)
        while true {
            let c = try control()
            do {
                _ = try c.call(Attach(role: .admin))
            } catch let e as RPCError where e.code == .temporary && Date() < deadline {
                usleep(200_000); continue
            }
            try c.hello(client: "postern-cli")
            return c
        }
    }
}

func fail(_ e: Error) -> Never {
    FileHandle.standardError.write("postern: \(e)\n".data(using: .utf8)!)
    exit((e as? RPCError)?.code == .notFound ? 2 : 1)
}

func run(_ body: () throws -> Void) {
    do { try body() } catch let e as ValidationError { fail(e) } catch { fail(error) }
}

public struct Postern: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "postern", abstract: "Administer a running Postern mail server.",
        subcommands: [DomainCmd.self, UserCmd.self, AliasCmd.self, MailboxCmd.self, Export.self, ReindexCmd.self, QueueCmd.self,
                      Status.self, ConfigCmd.self, Reload.self, CertCmd.self, DKIMCmd.self, SpamCmd.self])
    public init() {}
}

struct DomainCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "domain", abstract: "Mail domains.", subcommands: [Add.self, List.self, Remove.self])
    struct Add: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var name: String
        func run() { Postern_.run { _ = try o.store().call(DomainAdd(name)); print("domain \(name.lowercased()) added") } }
    }
    struct List: ParsableCommand {
        @OptionGroup var o: Options
        func run() { Postern_.run { try o.store().call(DomainList()).names.forEach { print($0) } } }
    }
    struct Remove: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var name: String
        func run() { Postern_.run { _ = try o.store().call(DomainRemove(name)); print("domain \(name.lowercased()) removed") } }
    }
}

enum Postern_ { static func run(_ b: () throws -> Void) { AdminCLI.run(b) } }

func readPassword(stdin: Bool) throws -> String {
    if stdin {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password on stdin") }
        return line
    }
    guard isatty(0) == 1 else { throw ValidationError("stdin is not a terminal: use --password-stdin") }
    func prompt(_ p: String) -> String {
        FileHandle.standardError.write(p.data(using: .utf8)!)
        var t = termios(); tcgetattr(0, &t)
        var quiet = t; quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSANOW, &quiet)
        defer { tcsetattr(0, TCSANOW, &t); FileHandle.standardError.write("\n".data(using: .utf8)!) }
        return readLine(strippingNewline: true) ?? ""
    }
    let a = prompt("Password: "), b = prompt("Again: ")
    guard a == b else { throw ValidationError("passwords do not match") }
    guard !a.isEmpty else { throw ValidationError("empty password") }
    return a
}

struct UserCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Mail users (their mailboxes are created with them).",
                                                    subcommands: [Add.self, List.self, Remove.self, Passwd.self, SpamJunk.self, Quota.self])
    struct Add: ParsableCommand {
        @OptionGroup var o: Options
        @Argument(help: "user@domain") var address: String
        @Flag(help: "Read the password (or a {CRYPT}$y$... hash) from the first line of stdin.") var passwordStdin = false
        func run() { Postern_.run { let p = try readPassword(stdin: passwordStdin); _ = try o.store().call(UserAdd(address, password: p)); print("user \(address.lowercased()) added") } }
    }
    struct List: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var domain: String = ""
        @Flag(help: "Show each user's quota usage and limits (Quota.swift).") var quota = false
        func run() {
            Postern_.run {
                let c = try o.store()
                for name in try c.call(UserList(domain)).names { print(quota ? QuotaText.summary(name, try c.call(UserQuota(name)).usage) : name) }
            }
        }
    }
    struct Remove: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var address: String
        func run() { Postern_.run { _ = try o.store().call(UserRemove(address)); print("user \(address.lowercased()) removed") } }
    }
    struct Passwd: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var address: String
        @Flag(help: "Read the password from the first line of stdin.") var passwordStdin = false
        func run() { Postern_.run { let p = try readPassword(stdin: passwordStdin); _ = try o.store().call(UserPasswd(address, password: p)); print("password changed") } }
    }
    struct SpamJunk: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "spam-junk",
                                                        abstract: "Deliver mail the spam filter marks into Junk (on, the default) or INBOX (off).")
        @OptionGroup var o: Options
        @Argument var address: String
        @Argument(help: "on or off") var setting: String
        func validate() throws { guard ["on", "off"].contains(setting) else { throw ValidationError("expected on or off") } }
        func run() { Postern_.run { _ = try o.store().call(UserSpamJunk(address, on: setting == "on")); print("spam-junk \(setting) for \(address.lowercased())") } }
    }
}

struct AliasCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alias", abstract: "Aliases: SOURCE is local@domain, or @domain for a catch-all.",
                                                    subcommands: [Add.self, List.self, Remove.self])
    struct Add: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var source: String
        @Argument var target: String
        func run() { Postern_.run { _ = try o.store().call(AliasAdd(source, target)); print("alias \(source) -> \(target) added") } }
    }
    struct List: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var domain: String = ""
        func run() { Postern_.run { try o.store().call(AliasList(domain)).aliases.forEach { print("\($0.source) -> \($0.target)") } } }
    }
    struct Remove: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var source: String
        @Argument var target: String = ""
        func run() { Postern_.run { _ = try o.store().call(AliasRemove(source, target)); print("alias \(source) removed") } }
    }
}

struct MailboxCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mailbox", abstract: "Mailboxes.", subcommands: [List.self])
    struct List: ParsableCommand {
        @OptionGroup var o: Options
        @Argument var user: String
        func run() {
            Postern_.run {
                let list = try o.store().call(MailboxList(session: 0, user: user)).list
                print("NAME\tSPECIAL-USE\tMESSAGES\tUIDVALIDITY\tUIDNEXT\tHIGHESTMODSEQ")
                for m in list { print("\(m.name)\t\(m.specialUse.isEmpty ? "-" : m.specialUse)\t\(m.messages)\t\(m.uidValidity)\t\(m.uidNext)\t\(m.highestModSeq)") }
            }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a user's mail as mboxrd to stdout (bodies byte-exact).")
    @OptionGroup var o: Options
    @Argument var user: String
    @Argument var mailbox: String = ""
    func run() {
        Postern_.run {
            let c = try o.store()
            var writer = MboxWriter()
            _ = try c.stream(MailIPC.Export(user: user, mailbox: mailbox)) { item in
                switch item {
                case .message(let meta): writer.begin(meta)
                case .chunk(let b): writer.body(Array(b.readableBytesView))
                }
            }
            writer.end()
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Processes, pids, uptime and restarts.")
    @OptionGroup var o: Options
    func run() {
        Postern_.run {
            let list = try o.control().call(MailIPC.Status()).processes
            let now = Int64(Date().timeIntervalSince1970)
            print("SERVICE\tINSTANCE\tPID\tSTATE\tUPTIME\tRESTARTS")
            for p in list {
                let up = p.startedAt > 0 ? "\(now - p.startedAt)s" : "-"
                print("\(p.service)\t\(p.instance)\t\(p.pid)\t\(p.state)\t\(up)\t\(p.restarts)")
            }
        }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reload the configuration (same as SIGHUP to the master).")
    @OptionGroup var o: Options
    func run() { Postern_.run { _ = try o.control().call(MailIPC.Reload()); print("reload requested") } }
}

struct CertCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cert", abstract: "TLS certificates.", subcommands: [Show.self])
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Subject, SAN, issuer and expiry of the configured certificates (as smtpd loads them).")
        @OptionGroup var o: Options
        func run() {
            Postern_.run {
                let c = try o.loadConfig()
                for info in try TLSSetup.check(c.tls) { print(info.description) }
            }
        }
    }
}

struct ConfigCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration.", subcommands: [Check.self])
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Parse and validate the configuration file.")
        @OptionGroup var o: Options
        func run() {
            Postern_.run {
                let c = try o.loadConfig()
                print("\(c.path): OK (hostname \(c.hostname), data \(c.dataDir), lmtp \(c.lmtp.service.listen.map(\.description).joined(separator: " ")))")
            }
        }
    }
}

/// Times a person can read: local time, to the second, with the zone ("2026-11-29 23:47:01 +0000").
enum CLITime {
    nonisolated(unsafe) static let formatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss Z"
        return f
    }()
    static func format(_ epochSeconds: Int64) -> String { formatter.string(from: Date(timeIntervalSince1970: TimeInterval(epochSeconds))) }
}
