// `postern spam status`: asks rspamd itself (the URLs and password file of [spam]) whether its
// scanner and controller answer, and prints the controller's /stat counts. No running master
// needed; the password is read from its file and sent only as the `Password:` field.
import Foundation
import ArgumentParser
import NIOCore
import NIOPosix
import SpamFilter

struct SpamCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spam", abstract: "rspamd scanning and learning.", subcommands: [Status.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "rspamd's reachability (scanner and controller) and learn counts; exits 1 when either is unreachable.")
        @OptionGroup var o: Options

        func run() throws {
            var reachable = true
            Postern_.run {
                let s = try o.loadConfig().spam
                guard let scanner = RspamdEndpoint(url: s.url), let controller = RspamdEndpoint(url: s.controllerURL) else {
                    throw ValidationError("[spam] url / controller_url: expected http://HOST[:PORT]")
                }
                let password = try s.controllerPasswordFile.map { try readControllerPassword(path: $0) }
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                defer { try? group.syncShutdownGracefully() }
                let report = try SpamStatusReport.fetch(group: group, scanner: scanner, controller: controller, password: password,
                                                        timeout: .nanoseconds(Int64(s.timeout * 1e9))).wait()
                print("enabled     \(s.enabled ? "yes" : "no")")
                report.lines.forEach { print($0) }
                reachable = report.reachable
            }
            if !reachable { throw ExitCode(1) }
        }
    }
}
