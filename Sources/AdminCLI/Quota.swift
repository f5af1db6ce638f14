// `postern user quota USER [--storage 2G|none] [--messages N|none]`: sets a user's quota limits
// (RFC 9208 STORAGE and MESSAGE), or with neither option shows them with the usage, as the store
// counts it (the same figures imapd's GETQUOTA reports, STORAGE there in KiB).
import ArgumentParser
import MailIPC
import MailModel

extension UserCmd {
    struct Quota: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a user's quota: storage in bytes (K/M/G/T suffixes, binary) and messages; 'none' removes a limit.")
        @OptionGroup var o: Options
        @Argument(help: "user@domain") var address: String
        @Option(help: "Storage limit, e.g. 500M or 2G; none removes it.") var storage: String?
        @Option(help: "Message count limit; none removes it.") var messages: String?

        func validate() throws {
            if let s = storage, QuotaLimitChange.storage(s) == nil { throw ValidationError("--storage: expected bytes with K/M/G/T, or none") }
            if let m = messages, QuotaLimitChange.messages(m) == nil { throw ValidationError("--messages: expected a count, or none") }
        }

        func run() {
            Postern_.run {
                let change = UserQuota(address, storage: storage.flatMap(QuotaLimitChange.storage) ?? .keep,
                                       messages: messages.flatMap(QuotaLimitChange.messages) ?? .keep)
                let usage = try o.store().call(change).usage
                print("user \(address.lowercased())")
                QuotaText.lines(usage).forEach { print($0) }
            }
        }
    }
}

/// How the CLI prints a quota: bytes exactly, KiB as IMAP shows them.
enum QuotaText {
    static func lines(_ q: QuotaUsage) -> [String] {
        let limit = q.storageLimit.map { "\($0) bytes (\(QuotaUsage.kibibytes($0)) KiB)" } ?? "none"
        return ["storage used \(q.bytes) bytes (\(QuotaUsage.kibibytes(q.bytes)) KiB), limit \(limit)",
                "messages used \(q.messages), limit \(q.messageLimit.map(String.init) ?? "none")"]
    }

    /// One line of `postern user list --quota`.
    static func summary(_ address: String, _ q: QuotaUsage) -> String {
        "\(address)  storage \(q.bytes)/\(q.storageLimit.map(String.init) ?? "none")  messages \(q.messages)/\(q.messageLimit.map(String.init) ?? "none")"
    }
}
