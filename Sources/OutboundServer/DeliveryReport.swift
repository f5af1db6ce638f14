// From one message's attempt (a result per claimed recipient) to what the queue records
// (QueueResult per recipient) and what the sender hears (one RFC 3464 report per message for
// every recipient whose NOTIFY asks for it, RFC 3461 §4.1), plus one log line per recipient in
// Postfix's fields (to=, relay=, delay=, dsn=, status=). Pure: the clock and randomness come in.
import Foundation
import MailModel
import OutboundProtocol
import SMTPProtocol

/// One recipient's attempt.
public struct RecipientAttempt: Sendable, Equatable {
    public var recipient: QueueRecipient
    public var result: RecipientResult
    /// Where it was tried; nil when no connection was made (routing, DNS, admin bounce).
    public var target: RouteTarget?
    public var serverSpeaksDSN: Bool
    public init(recipient: QueueRecipient, result: RecipientResult, target: RouteTarget? = nil, serverSpeaksDSN: Bool = false) {
        self.recipient = recipient; self.result = result; self.target = target; self.serverSpeaksDSN = serverSpeaksDSN
    }
}

extension SMTPReply {
    /// `postern queue bounce`: every recipient fails without a connection. RFC 3463 X.0.0.
    public static let bouncedByAdministrator = SMTPReply(550, "5.0.0", "Message bounced by the administrator")
    /// The store could not give the body: try later. RFC 3463 X.3.0.
    public static let bodyUnavailable = SMTPReply(451, "4.3.0", "Message body could not be read from the queue")
}

public struct DeliveryReport: Sendable, Equatable {
    public var results: [QueueResult]
    /// The DSN to store with the results, addressed to the original sender.
    public var notice: QueueNotice?
    /// One line per recipient attempt.
    public var logLines: [String]
    /// Recipients a DSN was due for but the sender is null (RFC 3464 §2: never a DSN about a DSN).
    public var doubleBounces: [String]

    /// `original(headersOnly)` gives the message for the report (read only when one is made).
    public static func make(job: QueueJob, attempts: [RecipientAttempt], schedule: RetrySchedule, reportingMTA: String,
                            now: Date, original: (Bool) async -> [UInt8]) async -> DeliveryReport {
        var rng = SystemRandomNumberGenerator()
        let plan = plan(job: job, attempts: attempts, schedule: schedule, now: now)
        var notice: QueueNotice?
        var doubleBounces: [String] = []
        if !plan.dsn.isEmpty {
            let sender = job.sender.isEmpty ? nil : MailPath(job.sender)
            if let sender {
                let ret: DSNReturn? = job.envelope.ret == "HDRS" ? .headers : job.envelope.ret == "FULL" ? .full : nil
                let headersOnly = ret == .headers || job.size > OutboundSettings.dsnReturnSizeLimit
                let report = DSNReport(reportingMTA: reportingMTA, originalSender: sender,
                                       arrivalDate: Date(timeIntervalSince1970: TimeInterval(job.created)),
                                       envelopeID: job.envelope.envid.isEmpty ? nil : job.envelope.envid,
                                       recipients: plan.dsn, ret: ret, original: await original(headersOnly))
                if let message = DSNBuilder.build(report, date: now, returnSizeLimit: OutboundSettings.dsnReturnSizeLimit, using: &rng) {
                    notice = QueueNotice(recipient: message.recipient.address, body: message.bytes)
                }
            } else {
                doubleBounces = plan.dsn.map(\.finalRecipient.address)
            }
        }
        return DeliveryReport(results: plan.results, notice: notice, logLines: plan.log, doubleBounces: doubleBounces)
    }

    /// The queue results, the DSN's recipient blocks and the log lines, without building the DSN.
    public static func plan(job: QueueJob, attempts: [RecipientAttempt], schedule: RetrySchedule,
                            now: Date) -> (results: [QueueResult], dsn: [DSNRecipient], log: [String]) {
        var results: [QueueResult] = []
        var dsn: [DSNRecipient] = []
        var log: [String] = []
        let nowSeconds = Int64(now.timeIntervalSince1970)
        for a in attempts {
            let r = a.recipient
            let first = r.firstAttempt.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? now
            let notify = r.dsn.notify.map(DSNNotify.init(rawValue:))
            let verdict = RecipientVerdict.decide(a.result, notify: notify, serverSpeaksDSN: a.serverSpeaksDSN, schedule: schedule,
                                                  attempts: r.attempts + 1, firstAttempt: first, now: now, alreadyWarned: r.warned)
            let text = replyText(a.result.reply)
            let orcpt = originalRecipient(r.dsn.orcpt)
            func block(_ action: DSNAction, until: Date? = nil) -> DSNRecipient {
                DSNRecipient(a.result, action: action, remoteMTA: a.target?.host, originalRecipient: orcpt,
                             lastAttemptDate: now, willRetryUntil: until)
            }
            let status: String
            switch verdict {
            case .delivered(let relayed):
                results.append(QueueResult(recipient: r.id, outcome: .delivered(reply: text)))
                // NOTIFY=SUCCESS (RFC 3461 §4.1): "relayed" to a server without DSN; a server
                // with DSN got NOTIFY passed on and owns the success notice.
                if relayed { dsn.append(block(.relayed)) }
                status = "sent"
            case .deferred(let until, let warn):
                results.append(QueueResult(recipient: r.id, outcome: .deferred(reply: text, nextAttempt: Int64(until.timeIntervalSince1970),
                                                                               warned: r.warned || warn)))
                if warn { dsn.append(block(.delayed, until: schedule.retryUntil(firstAttempt: first))) }
                status = "deferred"
            case .failed(let expired, let notifySender):
                let reply = expired ? "\(text) (expired after \(nowSeconds - Int64(first.timeIntervalSince1970)) s in the queue)" : text
                results.append(QueueResult(recipient: r.id, outcome: .failed(reply: reply)))
                if notifySender { dsn.append(block(.failed)) }
                status = expired ? "expired" : "bounced"
            }
            let cls = min(max(a.result.reply.code / 100, 2), 5)
            let code = a.result.reply.enhanced ?? "\(cls == 3 ? 4 : cls).0.0"
            log.append("\(job.message): to=<\(r.address)>, relay=\(a.target?.description ?? "none"), delay=\(max(0, nowSeconds - job.created)), "
                       + "dsn=\(code), status=\(status) (\(text))")
        }
        return (results, dsn, log)
    }

    /// "250 2.0.0 Ok: queued as X" on one line.
    public static func replyText(_ reply: SMTPReply) -> String {
        let text = reply.lines.joined(separator: " ").filter { $0 != "\r" && $0 != "\n" }
        return "\(reply.code)\(reply.enhanced.map { " \($0)" } ?? "") \(text)"
    }

    /// ORCPT as the queue keeps it ("rfc822;user@example.org") → the address; nil when not given.
    static func originalRecipient(_ orcpt: String) -> String? {
        guard !orcpt.isEmpty else { return nil }
        if let semi = orcpt.firstIndex(of: ";") { return String(orcpt[orcpt.index(after: semi)...]).trimmingCharacters(in: .whitespaces) }
        return orcpt
    }
}
