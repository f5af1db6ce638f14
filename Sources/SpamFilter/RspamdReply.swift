// rspamd's /checkv2 reply (its JSON protocol, "rspamd protocol" docs) parsed into a value:
// the action, the score against the required score, the symbols that fired, and the Subject
// rspamd wants when its action is `rewrite subject`. Unknown fields are ignored.
import Foundation

/// rspamd's metric actions (`actions {}` in its config), by the names its replies use.
public enum SpamAction: Sendable, Equatable {
    case reject
    case softReject
    case greylist
    case addHeader
    case rewriteSubject
    case noAction
    /// An action this version does not know (a site's custom one): delivered as `no action`.
    case other(String)

    public init(rspamdName: String) {
        switch rspamdName.lowercased() {
        case "reject": self = .reject
        case "soft reject", "soft_reject": self = .softReject
        case "greylist": self = .greylist
        case "add header", "add_header": self = .addHeader
        case "rewrite subject", "rewrite_subject": self = .rewriteSubject
        case "no action", "no_action": self = .noAction
        default: self = .other(rspamdName)
        }
    }
}

public struct SpamSymbol: Sendable, Equatable {
    public var name: String
    public var score: Double
}

public struct RspamdReply: Sendable, Equatable {
    public var action: SpamAction
    public var score: Double
    public var requiredScore: Double
    /// By name.
    public var symbols: [SpamSymbol]
    /// With `rewrite subject`: the whole new Subject (rspamd already applied its template).
    public var subject: String?

    public init(action: SpamAction, score: Double, requiredScore: Double, symbols: [SpamSymbol] = [], subject: String? = nil) {
        self.action = action; self.score = score; self.requiredScore = requiredScore
        self.symbols = symbols.sorted { $0.name < $1.name }; self.subject = subject
    }

    private struct Wire: Decodable {
        struct Symbol: Decodable { var name: String?; var score: Double? }
        var action: String
        var score: Double
        var required_score: Double?
        var symbols: [String: Symbol]?
        var subject: String?
    }

    /// The JSON body of a /checkv2 reply (HTTP 200). Throws RspamdError.badReply otherwise.
    public init(json: [UInt8]) throws {
        let w: Wire
        do { w = try JSONDecoder().decode(Wire.self, from: Data(json)) } catch {
            // rspamd reports its own failures as {"error": "..."}.
            if let o = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any], let e = o["error"] as? String {
                throw RspamdError.badReply("rspamd: \(e)")
            }
            throw RspamdError.badReply("not a /checkv2 reply")
        }
        guard w.score.isFinite else { throw RspamdError.badReply("score is not a number") }
        self.init(action: SpamAction(rspamdName: w.action), score: w.score, requiredScore: w.required_score ?? 0,
                  symbols: (w.symbols ?? [:]).map { SpamSymbol(name: $1.name ?? $0, score: $1.score ?? 0) },
                  subject: w.subject)
    }
}
