// `postern queue`: list and show the outbound queue, and flush, hold, release, delete or bounce
// one message's recipients (ID: the message's queue id), over the store's admin connection.
// `list` keeps its tab-separated columns, ID, <SENDER>, <RECIPIENT> first, for scripts.
import Foundation
import ArgumentParser
import MailIPC
import MailModel

struct QueueCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "The outbound queue.",
                                                    subcommands: [List.self, Show.self, Flush.self, Hold.self, Release.self, Delete.self, Bounce.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per queued recipient: message id, age, next attempt, attempts, state, last reply.")
        @OptionGroup var o: Options
        func run() {
            Postern_.run {
                let rows = try QueueText.entries(o)
                let now = Int64(Date().timeIntervalSince1970)
                print("ID\tSENDER\tRECIPIENT\tAGE\tNEXT-ATTEMPT\tATTEMPTS\tSTATE\tLAST-REPLY")
                for e in rows {
                    print("\(e.message)\t<\(e.sender)>\t<\(e.recipient)>\t\(QueueText.age(e.created, now: now))\t\(QueueText.next(e, now: now))\t\(e.attempts)\t\(QueueText.state(e, now: now))\t\(QueueText.reply(e.lastReply))")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A queued message and each of its recipients.")
        @OptionGroup var o: Options
        @Argument(help: QueueText.idHelp) var id: Int64
        func run() {
            Postern_.run {
                let rows = try QueueText.entries(o).filter { $0.message == id }
                guard let first = rows.first else { throw RPCError("no queued message \(id)", code: .notFound) }
                let now = Int64(Date().timeIntervalSince1970)
                print("message:  \(id)")
                print("sender:   <\(first.sender)>")
                print("size:     \(first.size) bytes")
                print("queued:   \(CLITime.format(first.created)) (\(QueueText.age(first.created, now: now)) ago)")
                print("origin:   \(QueueText.origin(first.origin))")
                for e in rows {
                    print("recipient <\(e.recipient)>: next attempt \(QueueText.next(e, now: now)), \(e.attempts) attempt\(e.attempts == 1 ? "" : "s"), \(QueueText.state(e, now: now)), last reply: \(QueueText.reply(e.lastReply))")
                }
            }
        }
    }

    struct Flush: QueueAction {
        static let configuration = CommandConfiguration(abstract: "Make one message (or, without ID, every message) due now.")
        static let action = (QueueAdminAction.flush, "flushed")
        @OptionGroup var o: Options
        @Argument(help: "The message's queue id; all messages when left out.") var id: Int64?
    }

    struct Hold: QueueAction {
        static let configuration = CommandConfiguration(abstract: "Keep a message in the queue without trying it until released.")
        static let action = (QueueAdminAction.hold, "held")
        @OptionGroup var o: Options
        @Argument(help: QueueText.idHelp) var id: Int64?
    }

    struct Release: QueueAction {
        static let configuration = CommandConfiguration(abstract: "Release a held message (due now).")
        static let action = (QueueAdminAction.release, "released")
        @OptionGroup var o: Options
        @Argument(help: QueueText.idHelp) var id: Int64?
    }

    struct Delete: QueueAction {
        static let configuration = CommandConfiguration(abstract: "Remove a message from the queue without a bounce.")
        static let action = (QueueAdminAction.delete, "deleted")
        @OptionGroup var o: Options
        @Argument(help: QueueText.idHelp) var id: Int64?
    }

    struct Bounce: QueueAction {
        static let configuration = CommandConfiguration(abstract: "Fail a message's recipients now: the sender gets a bounce (5.0.0).")
        static let action = (QueueAdminAction.bounce, "marked for bounce")
        @OptionGroup var o: Options
        @Argument(help: QueueText.idHelp) var id: Int64?
    }
}

/// An action on one message's rows (`flush` alone may name none): the store counts the rows.
protocol QueueAction: ParsableCommand {
    static var action: (QueueAdminAction, String) { get }
    var o: Options { get }
    var id: Int64? { get }
}

extension QueueAction {
    func validate() throws {
        if id == nil, Self.action.0 != .flush { throw ValidationError("Missing the message's queue id.") }
    }
    func run() { QueueText.act(o, Self.action.0, id, Self.action.1) }
}

/// How `postern queue` words times and states. Pure (tests call it with a fixed `now`).
enum QueueText {
    static let idHelp: ArgumentHelp = "The message's queue id (first column of `queue list`)."
    /// "45s", "4m", "2h05m", "3d04h": a duration a person reads at a glance.
    static func duration(_ seconds: Int64) -> String {
        let s = max(0, seconds)
        switch s {
        case ..<60: return "\(s)s"
        case ..<3600: return "\(s / 60)m"
        case ..<86400: return String(format: "%dh%02dm", s / 3600, s % 3600 / 60)
        default: return String(format: "%dd%02dh", s / 86400, s % 86400 / 3600)
        }
    }

    static func age(_ created: Int64, now: Int64) -> String { duration(now - created) }

    /// "now", "in 4m", or "held".
    static func next(_ e: QueueEntryInfo, now: Int64) -> String {
        if e.held { return "held" }
        let at = max(e.nextAttempt, e.leaseUntil)
        return at <= now ? "now" : "in \(duration(at - now))"
    }

    /// "held", "leased", "bounce" joined by commas, or "queued".
    static func state(_ e: QueueEntryInfo, now: Int64) -> String {
        var s: [String] = []
        if e.held { s.append("held") }
        if e.leaseUntil > now { s.append("leased") }
        if e.bounceRequested { s.append("bounce") }
        return s.isEmpty ? "queued" : s.joined(separator: ",")
    }

    static func reply(_ r: String) -> String {
        r.isEmpty ? "-" : r.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
    }

    static func origin(_ o: QueueOrigin) -> String {
        switch o {
        case .submission: return "submission"
        case .forward: return "forwarded by an alias"
        case .bounce: return "bounce (null sender)"
        }
    }

    /// The whole queue, page after page over one connection.
    static func entries(_ o: Options) throws -> [QueueEntryInfo] {
        let store = try o.store()
        var all: [QueueEntryInfo] = []
        while true {
            let page = try store.call(QueueEntriesGet(after: all.last?.id ?? 0))
            all += page.entries
            if page.complete || page.entries.isEmpty { return all }
        }
    }

    static func act(_ o: Options, _ action: QueueAdminAction, _ id: Int64?, _ done: String) {
        Postern_.run {
            let n = try o.store().call(QueueAdminRequest(action, message: id)).rows
            if let id, n == 0 { throw RPCError("no queued message \(id)", code: .notFound) }
            print(id.map { "message \($0): \(n) recipient\(n == 1 ? "" : "s") \(done)" } ?? "\(n) recipient\(n == 1 ? "" : "s") \(done)")
        }
    }
}
