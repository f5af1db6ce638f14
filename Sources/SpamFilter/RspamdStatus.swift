// `postern spam status`: rspamd's reachability (both workers' /ping) and the controller's /stat
// figures (version, scanned, learned, per-class Bayes revisions), read by the admin CLI.
import Foundation
import NIOCore

public struct RspamdStatus: Sendable, Equatable {
    public var version: String?
    public var uptime: Int?
    public var scanned: Int?
    /// Learn requests rspamd took since its start (/stat "learned").
    public var learned: Int?
    public var spamCount: Int?
    public var hamCount: Int?
    /// Bayes statfiles: symbol (BAYES_SPAM / BAYES_HAM) → revision (messages learned into it).
    public var statfiles: [String: Int] = [:]

    public init() {}

    /// The JSON body of /stat.
    public init(json: [UInt8]) throws {
        guard let o = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw RspamdError.badReply("not a /stat reply")
        }
        if let e = o["error"] as? String { throw RspamdError.badReply("rspamd: \(e)") }
        version = o["version"] as? String
        uptime = (o["uptime"] as? NSNumber)?.intValue
        scanned = (o["scanned"] as? NSNumber)?.intValue
        learned = (o["learned"] as? NSNumber)?.intValue
        spamCount = (o["spam_count"] as? NSNumber)?.intValue
        hamCount = (o["ham_count"] as? NSNumber)?.intValue
        for case let f as [String: Any] in (o["statfiles"] as? [Any]) ?? [] {
            if let s = f["symbol"] as? String { statfiles[s, default: 0] += (f["revision"] as? NSNumber)?.intValue ?? 0 }
        }
    }
}

/// Reachability of both workers and the controller's figures.
public struct SpamStatusReport: Sendable {
    public var scanner: RspamdEndpoint
    public var controller: RspamdEndpoint
    public var scannerError: RspamdError?
    public var controllerError: RspamdError?
    public var stat: RspamdStatus?

    /// Asks both workers; never fails.
    public static func fetch(group: EventLoopGroup, scanner: RspamdEndpoint, controller: RspamdEndpoint,
                             password: String?, timeout: TimeAmount) -> EventLoopFuture<SpamStatusReport> {
        let ping = RspamdHTTP.exchange(group: group, endpoint: scanner, path: "/ping", headers: [], body: nil, timeout: timeout)
            .flatMapThrowing { r -> RspamdError? in r.status == 200 ? nil : RspamdError.http(status: r.status) }
            .recover { $0 as? RspamdError ?? .connect("\($0)") }
        let stat = RspamdHTTP.exchange(group: group, endpoint: controller, path: "/stat",
                                       headers: password.map { [("Password", $0)] } ?? [], body: nil, timeout: timeout)
            .flatMapThrowing { r -> Result<RspamdStatus, RspamdError> in
                guard r.status == 200 else { throw RspamdError.http(status: r.status) }
                return .success(try RspamdStatus(json: Array(r.body.readableBytesView)))
            }
            .recover { .failure($0 as? RspamdError ?? .connect("\($0)")) }
        return ping.and(stat).map { pingError, statResult in
            var rep = SpamStatusReport(scanner: scanner, controller: controller, scannerError: pingError)
            switch statResult {
            case .success(let s): rep.stat = s
            case .failure(let e): rep.controllerError = e
            }
            return rep
        }
    }

    /// The lines `postern spam status` prints.
    public var lines: [String] {
        var out = ["scanner     \(scanner)  \(scannerError.map { "unreachable: \($0)" } ?? "reachable")",
                   "controller  \(controller)  \(controllerError.map { "unreachable: \($0)" } ?? "reachable")"]
        if let s = stat {
            if let v = s.version { out.append("version     \(v)") }
            if let n = s.scanned { out.append("scanned     \(n)") }
            if let n = s.learned { out.append("learned     \(n)") }
            for (symbol, revision) in s.statfiles.sorted(by: { $0.key < $1.key }) { out.append("bayes       \(symbol) \(revision)") }
        }
        return out
    }

    public var reachable: Bool { scannerError == nil && controllerError == nil }
}

/// The controller password from [spam] controller_password_file: its first line, spaces and
/// the line end trimmed; read before the worker drops privileges.
public func readControllerPassword(path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw RspamdError.badReply("cannot read \(path)")
    }
    let first = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
    return first.trimmingCharacters(in: .whitespacesAndNewlines)
}
