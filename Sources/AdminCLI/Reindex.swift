// `postern reindex USER | --all`: rebuilds SEARCH's full-text index in the store (issue 11
// point 1), for bodies stored before it existed or while `[store] search_index` was off.
import ArgumentParser
import Foundation
import MailIPC

struct ReindexCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex", abstract: "Rebuild the SEARCH index of a user's mail (or of every stored message with --all), showing progress.")
    @OptionGroup var o: Options
    @Argument(help: "The user whose mail to index.") var user: String?
    @Flag(help: "Index every stored message.") var all = false
    @Flag(help: "Print only the final count.") var quiet = false

    func validate() throws {
        guard (user == nil) == all else { throw ValidationError("name a user or give --all, not both") }
    }

    func run() {
        Postern_.run {
            let c = try o.store()
            let end = try c.stream(MailIPC.Reindex(user: user ?? "")) { p in
                if !quiet { print("reindex: \(p.done)/\(p.total) messages") }
            }
            print("reindexed \(end.done) messages of \(user?.lowercased() ?? "every user")")
        }
    }
}
