// Scans one message through rspamd's /checkv2 (normal worker) with the SMTP envelope as
// request header fields, and turns the answer into a SpamVerdict. Never fails: rspamd down,
// slow or confused gives the [spam] on_failure verdict, with the reason for the worker's log.
import Logging
import MailCore
import NIOCore

/// What the receiving worker knows beside the message: rspamd's request header fields
/// (rspamd protocol docs, "HTTP headers").
public struct SpamEnvelope: Sendable, Equatable {
    /// MAIL FROM, "" for the null reverse-path.
    public var sender: String
    public var recipients: [String]
    /// The SMTP client's address.
    public var clientIP: String?
    public var helo: String?
    /// The client's resolved host name, when known.
    public var clientHostname: String?
    /// The authenticated user (submission), nil from outside.
    public var user: String?
    /// The session id the worker logs with (rspamd logs it as qid).
    public var queueID: String?

    public init(sender: String, recipients: [String], clientIP: String? = nil, helo: String? = nil,
                clientHostname: String? = nil, user: String? = nil, queueID: String? = nil) {
        self.sender = sender; self.recipients = recipients; self.clientIP = clientIP; self.helo = helo
        self.clientHostname = clientHostname; self.user = user; self.queueID = queueID
    }

    /// The request's header fields, values stripped of CR/LF (they come from the SMTP client).
    public var headerFields: [(String, String)] {
        var h: [(String, String)] = [("From", sender.isEmpty ? "<>" : sender)]
        for r in recipients { h.append(("Rcpt", r)) }
        if let clientIP { h.append(("IP", clientIP)) }
        if let helo { h.append(("Helo", helo)) }
        if let clientHostname { h.append(("Hostname", clientHostname)) }
        if let user { h.append(("User", user)) }
        if let queueID { h.append(("Queue-Id", queueID)) }
        return h.compactMap { name, value in SpamHeaders.safeValue(value).map { (name, $0) } }
    }
}

/// A scan's outcome: the verdict, and rspamd's reply or why there is none (for the log line).
public struct SpamScan: Sendable {
    public var verdict: SpamVerdict
    public var reply: RspamdReply?
    public var failure: RspamdError?

    /// "action=add header score=66.00/100.00 verdict=junk" or "unscanned (timed out) verdict=inbox".
    public var logDescription: String {
        if let reply {
            return "action=\(reply.action.name) score=\(SpamHeaders.number(reply.score))/\(SpamHeaders.number(reply.requiredScore)) verdict=\(verdict.name)"
        }
        return "unscanned (\(failure.map { "\($0)" } ?? "no reply")) verdict=\(verdict.name)"
    }
}

public final class SpamScanner: Sendable {
    public let endpoint: RspamdEndpoint
    public let timeout: TimeAmount
    public let onFailure: SpamFailurePolicy
    private let group: EventLoopGroup

    public init(group: EventLoopGroup, endpoint: RspamdEndpoint, timeout: TimeAmount, onFailure: SpamFailurePolicy) {
        self.group = group; self.endpoint = endpoint; self.timeout = timeout; self.onFailure = onFailure
    }

    /// From [spam]; nil when `url` is no usable http:// URL (the config reader refuses those).
    public convenience init?(group: EventLoopGroup, config: SpamConfig) {
        guard let e = RspamdEndpoint(url: config.url) else { return nil }
        self.init(group: group, endpoint: e, timeout: .nanoseconds(Int64(config.timeout * 1e9)), onFailure: config.onFailure)
    }

    /// Scans `message` (the whole message as received). The future never fails.
    public func scan(_ message: ByteBuffer, _ envelope: SpamEnvelope) -> EventLoopFuture<SpamScan> {
        let onFailure = self.onFailure
        return RspamdHTTP.exchange(group: group, endpoint: endpoint, path: "/checkv2",
                                   headers: envelope.headerFields, body: message, timeout: timeout)
            .flatMapThrowing { http -> SpamScan in
                guard http.status == 200 else { throw RspamdError.http(status: http.status) }
                let reply = try RspamdReply(json: Array(http.body.readableBytesView))
                return SpamScan(verdict: SpamVerdict(reply), reply: reply, failure: nil)
            }
            .recover { error in
                SpamScan(verdict: .unscanned(onFailure), reply: nil, failure: error as? RspamdError ?? .connect("\(error)"))
            }
    }
}

extension SpamAction {
    /// rspamd's own name ("add header").
    public var name: String {
        switch self {
        case .reject: return "reject"
        case .softReject: return "soft reject"
        case .greylist: return "greylist"
        case .addHeader: return "add header"
        case .rewriteSubject: return "rewrite subject"
        case .noAction: return "no action"
        case .other(let n): return SpamHeaders.safeValue(n) ?? "?"
        }
    }
}

extension SpamVerdict {
    /// "reject", "tempfail", "junk", "inbox": the log's word for it.
    public var name: String {
        switch self {
        case .reject: return "reject"
        case .tempfail: return "tempfail"
        case .deliver(let d): return d.toJunk ? "junk" : "inbox"
        }
    }
}
