// `postern dkim`: makes DKIM signing keys and prints the TXT records to publish (RFC 6376 §3.6).
// Keys go to `<config dir>/dkim/<domain>/<selector>.pem`, 0600 root like the TLS keys, so only
// root (the outbound agent before it drops privileges) can read them. No running master needed.
import Foundation
import ArgumentParser
import DKIM

struct DKIMCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dkim", abstract: "DKIM signing keys.", subcommands: [Generate.self, Show.self])

    /// "s" and the year and month ("s202612"): a new selector each month lets a key be rotated
    /// while the old record is still published.
    static func defaultSelector(_ now: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMM"
        return "s" + f.string(from: now)
    }

    /// What to publish for `key`: the record's name and value, and the zone-file line.
    static func printRecord(domain: String, selector: String, key: DKIMKey) throws {
        let name = "\(selector)._domainkey.\(domain)"
        print("name:  \(name)")
        print("value: \(try key.txtRecord())")
        print("zone:  \(name). IN TXT ( \(try key.txtRecordZoneStrings().map { "\"\($0)\"" }.joined(separator: " ")) )")
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a signing key for DOMAIN and print the TXT record to publish (an existing key is never replaced).")
        @OptionGroup var o: Options
        @Argument(help: "The signing domain (d=).") var domain: String
        @Option(help: "The selector (s=); default s<YYYYMM>.") var selector: String?
        @Option(help: "rsa (2048 bits, what every verifier knows) or ed25519 (RFC 8463).") var algorithm: DKIMKey.Kind = .rsa2048

        func run() {
            Postern_.run {
                let dir = DKIMKeyDirectory(configFile: try o.loadConfig().path)
                let sel = selector ?? DKIMCmd.defaultSelector()
                guard let d = DKIMName.normalized(domain), DKIMName.normalized(sel) != nil else {
                    throw ValidationError("invalid domain or selector: \(domain) / \(sel)")
                }
                let key = try DKIMKey.generate(algorithm)
                let root = geteuid() == 0
                let path = try dir.write(key, domain: d, selector: sel, uid: root ? 0 : nil, gid: root ? 0 : nil)
                print("key:   \(path) (\(key.algorithm.rawValue), mode 0600)")
                try DKIMCmd.printRecord(domain: d, selector: DKIMName.normalized(sel)!, key: key)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the TXT records of the existing keys (of DOMAIN, or all).")
        @OptionGroup var o: Options
        @Argument var domain: String?

        func run() {
            Postern_.run {
                let dir = DKIMKeyDirectory(configFile: try o.loadConfig().path)
                for d in domain.flatMap(DKIMName.normalized).map({ [$0] }) ?? dir.domains() {
                    for s in dir.selectors(domain: d) {
                        let path = dir.keyPath(domain: d, selector: s)!
                        let key = try DKIMKey(contentsOfFile: path)
                        print("key:   \(path) (\(key.algorithm.rawValue))")
                        try DKIMCmd.printRecord(domain: d, selector: s, key: key)
                    }
                }
            }
        }
    }
}

extension DKIMKey.Kind: ExpressibleByArgument {}
