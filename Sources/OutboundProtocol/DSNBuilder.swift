// Delivery status notifications (bounces and delay warnings): RFC 3464 message/delivery-status
// inside an RFC 6522 multipart/report, sent from MAILER-DAEMON with the null envelope sender so
// it can never be bounced again (RFC 5321 §4.5.5), marked Auto-Submitted (RFC 3834 §5). With a
// non-ASCII address the report is the internationalized form of RFC 6533 and needs SMTPUTF8.
import Foundation
import MailSyntax
import SMTPProtocol

/// Action: of a per-recipient block. RFC 3464 §2.3.3.
public enum DSNAction: String, Sendable, Equatable {
    case failed, delayed, delivered, relayed, expanded
}

/// One recipient's block of the report.
public struct DSNRecipient: Sendable, Equatable {
    public var finalRecipient: MailPath
    /// ORCPT from the submission, as given (RFC 3461 §4.2).
    public var originalRecipient: String?
    public var action: DSNAction
    /// "x.y.z" (RFC 3463).
    public var status: String
    /// The host that answered, e.g. "mx.example.org" (Remote-MTA: dns; …).
    public var remoteMTA: String?
    /// The reply behind the status. `remoteDiagnostic`: it came from the server (smtp; …),
    /// else it is our own decision (X-Postern; …).
    public var diagnostic: SMTPReply?
    public var remoteDiagnostic: Bool
    public var lastAttemptDate: Date?
    /// For `delayed`: RFC 3464 §2.3.9.
    public var willRetryUntil: Date?

    public init(finalRecipient: MailPath, originalRecipient: String? = nil, action: DSNAction, status: String,
                remoteMTA: String? = nil, diagnostic: SMTPReply? = nil, remoteDiagnostic: Bool = true,
                lastAttemptDate: Date? = nil, willRetryUntil: Date? = nil) {
        self.finalRecipient = finalRecipient
        self.originalRecipient = originalRecipient
        self.action = action
        self.status = status
        self.remoteMTA = remoteMTA
        self.diagnostic = diagnostic
        self.remoteDiagnostic = remoteDiagnostic
        self.lastAttemptDate = lastAttemptDate
        self.willRetryUntil = willRetryUntil
    }

    /// The block for a client result: Status from the reply's enhanced code, or "c.0.0" from
    /// its class (RFC 3463 §3.1) when the server sent none.
    public init(_ result: RecipientResult, action: DSNAction, remoteMTA: String?, originalRecipient: String? = nil,
                lastAttemptDate: Date? = nil, willRetryUntil: Date? = nil) {
        let cls = min(max(result.reply.code / 100, 2), 5)
        self.init(finalRecipient: result.recipient, originalRecipient: originalRecipient, action: action,
                  status: result.reply.enhanced ?? "\(cls == 3 ? 4 : cls).0.0", remoteMTA: result.remote ? remoteMTA : nil,
                  diagnostic: result.reply, remoteDiagnostic: result.remote, lastAttemptDate: lastAttemptDate,
                  willRetryUntil: willRetryUntil)
    }
}

/// What the report is about.
public struct DSNReport: Sendable, Equatable {
    /// Our host name (Reporting-MTA: dns; …, and MAILER-DAEMON@…).
    public var reportingMTA: String
    /// The original envelope sender: the report goes there. nil: the null sender, no report.
    public var originalSender: MailPath?
    public var arrivalDate: Date?
    /// ENVID (RFC 3461 §4.4), returned as Original-Envelope-Id.
    public var envelopeID: String?
    public var recipients: [DSNRecipient]
    /// RET: HDRS returns the header section only; FULL or nil the whole message (up to the limit).
    public var ret: DSNReturn?
    /// The original message as queued (Return-Path already stripped).
    public var original: [UInt8]

    public init(reportingMTA: String, originalSender: MailPath?, arrivalDate: Date? = nil, envelopeID: String? = nil,
                recipients: [DSNRecipient], ret: DSNReturn? = nil, original: [UInt8]) {
        self.reportingMTA = reportingMTA
        self.originalSender = originalSender
        self.arrivalDate = arrivalDate
        self.envelopeID = envelopeID
        self.recipients = recipients
        self.ret = ret
        self.original = original
    }
}

/// A report ready to queue: envelope sender always null.
public struct DSNMessage: Sendable, Equatable {
    /// Always nil: `MAIL FROM:<>` (RFC 3464 §2, RFC 5321 §4.5.5).
    public var sender: MailPath? { nil }
    public var recipient: MailPath
    public var bytes: [UInt8]
    /// RFC 6533 form (a non-ASCII address): deliver it only with SMTPUTF8 (RFC 6531).
    public var requiresSMTPUTF8: Bool
}

public enum DSNBuilder {
    /// A FULL return larger than this carries the headers only (cf. Postfix bounce_size_limit).
    public static let defaultReturnSizeLimit = 10 * 1024 * 1024
    /// Longest diagnostic text kept (a header line stays under RFC 5322 §2.1.1's 998).
    public static let maxDiagnosticLength = 900

    /// Whether a message with this envelope sender may be bounced at all: never when it is the
    /// null sender (RFC 5321 §4.5.5, RFC 3464 §2: no DSN about a DSN). Such double bounces are
    /// logged by the caller, not sent.
    public static func mayBounce(sender: MailPath?) -> Bool { sender != nil }

    /// The report, or nil when `mayBounce` says no. `date` is the report's Date:; `rng` makes the
    /// boundary and Message-ID.
    public static func build<R: RandomNumberGenerator>(_ report: DSNReport, date: Date, returnSizeLimit: Int = defaultReturnSizeLimit,
                                                       using rng: inout R) -> DSNMessage? {
        guard mayBounce(sender: report.originalSender), let sender = report.originalSender else { return nil }
        let boundary = makeBoundary(avoiding: report.original, using: &rng)
        let delayedOnly = report.recipients.allSatisfy { $0.action == .delayed }
        let failed = report.recipients.contains { $0.action == .failed }
        let subject = failed ? "Undelivered Mail Returned to Sender"
            : delayedOnly ? "Delayed Mail (still being retried)" : "Delivery Status Notification"

        // RFC 6533 §3, §6: UTF-8 addresses need the "utf-8" address type and the global media types.
        let addresses = [sender.address] + report.recipients.flatMap { [$0.finalRecipient.address] + ($0.originalRecipient.map { [$0] } ?? []) }
        let global = addresses.contains { $0.utf8.contains { $0 >= 0x80 } }
        let addressType = global ? "utf-8" : "rfc822"
        func clean(_ s: String) -> String { DSNBuilder.clean(s, allowUTF8: global) }
        var out = ""
        func field(_ name: String, _ value: String) { out += "\(name): \(value)\r\n" }
        field("From", "Mail Delivery System <MAILER-DAEMON@\(clean(report.reportingMTA))>")
        field("To", "<\(clean(sender.address))>")
        field("Subject", subject)
        field("Date", TraceHeaders.rfc5322Date(date))
        field("Message-ID", SubmissionHeaders.messageID(hostname: report.reportingMTA, date: date, using: &rng))
        field("Auto-Submitted", "auto-replied")                      // RFC 3834 §5
        field("MIME-Version", "1.0")
        field("Content-Type", "multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"")  // RFC 6522 §3
        out += "\r\nThis is a MIME-encapsulated message.\r\n\r\n"

        // 1. Human-readable part (RFC 6522 §3).
        let text = humanText(report, failed: failed)
        out += "--\(boundary)\r\n"
        field("Content-Description", "Notification")
        field("Content-Type", "text/plain; charset=utf-8")
        field("Content-Transfer-Encoding", text.utf8.contains { $0 >= 0x80 } ? "8bit" : "7bit")
        out += "\r\n\(text)\r\n"

        // 2. message/delivery-status (RFC 3464 §2.2, §2.3).
        out += "--\(boundary)\r\n"
        field("Content-Description", "Delivery report")
        field("Content-Type", global ? "message/global-delivery-status" : "message/delivery-status")
        if global { field("Content-Transfer-Encoding", "8bit") }
        out += "\r\n"
        field("Reporting-MTA", "dns; \(clean(report.reportingMTA))")
        if let id = report.envelopeID { field("Original-Envelope-Id", clean(id)) }
        if let arrival = report.arrivalDate { field("Arrival-Date", TraceHeaders.rfc5322Date(arrival)) }
        for r in report.recipients {
            out += "\r\n"
            if let orcpt = r.originalRecipient { field("Original-Recipient", "\(addressType); \(clean(orcpt))") }
            field("Final-Recipient", "\(addressType); \(clean(r.finalRecipient.address))")
            field("Action", r.action.rawValue)
            field("Status", clean(r.status))
            if let mta = r.remoteMTA { field("Remote-MTA", "dns; \(clean(mta))") }
            if let reply = r.diagnostic { field("Diagnostic-Code", diagnostic(reply, remote: r.remoteDiagnostic, allowUTF8: global)) }
            if let last = r.lastAttemptDate { field("Last-Attempt-Date", TraceHeaders.rfc5322Date(last)) }
            if let until = r.willRetryUntil { field("Will-Retry-Until", TraceHeaders.rfc5322Date(until)) }
        }
        out += "\r\n"

        // 3. The original: whole (message/rfc822) or its header section (text/rfc822-headers, RFC 6522 §4).
        let full = report.ret != .headers && report.original.count <= returnSizeLimit
        let returned = full ? report.original : headerSection(report.original)
        out += "--\(boundary)\r\n"
        field("Content-Description", full ? "Undelivered Message" : "Undelivered Message Headers")
        field("Content-Type", full ? (global ? "message/global" : "message/rfc822")
                                   : (global ? "message/global-headers" : "text/rfc822-headers"))
        if returned.contains(where: { $0 >= 0x80 }) { field("Content-Transfer-Encoding", "8bit") }
        out += "\r\n"
        var bytes = Array(out.utf8)
        bytes += returned
        if let last = returned.last, last != ASCII.lf { bytes += [ASCII.cr, ASCII.lf] }
        bytes += Array("\r\n--\(boundary)--\r\n".utf8)
        return DSNMessage(recipient: sender, bytes: bytes, requiresSMTPUTF8: global)
    }

    /// "smtp; 550 5.1.1 text" for a server's reply (RFC 3464 §2.3.6); "X-Postern; text" for ours.
    static func diagnostic(_ reply: SMTPReply, remote: Bool, allowUTF8: Bool = false) -> String {
        func clean(_ s: String) -> String { DSNBuilder.clean(s, allowUTF8: allowUTF8) }
        var text = reply.lines.joined(separator: " ")
        if text.count > maxDiagnosticLength { text = String(text.prefix(maxDiagnosticLength)) }
        if remote {
            let code = reply.enhanced.map { "\(reply.code) \($0)" } ?? "\(reply.code)"
            return "smtp; \(clean("\(code) \(text)"))"
        }
        return "X-Postern; \(clean(text))"
    }

    static func humanText(_ report: DSNReport, failed: Bool) -> String {
        var lines = ["This is the mail system at host \(report.reportingMTA).", ""]
        if failed {
            lines += ["I'm sorry to have to inform you that your message could not",
                      "be delivered to one or more recipients. It's attached below.", ""]
        } else {
            lines += ["Your message could not be delivered yet to one or more recipients.",
                      "The mail system will keep trying; no action is required on your part.", ""]
        }
        for r in report.recipients {
            var line = "<\(r.finalRecipient.address)>: \(r.action.rawValue)"
            if let mta = r.remoteMTA { line += ", host \(mta) said:" }
            if let reply = r.diagnostic { line += " \(reply.code) \(reply.enhanced.map { "\($0) " } ?? "")\(reply.lines.joined(separator: " "))" }
            if let until = r.willRetryUntil { line += " (will retry until \(TraceHeaders.rfc5322Date(until)))" }
            lines.append(line.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " "))
        }
        return lines.joined(separator: "\r\n")
    }

    /// The header section of `message` without the empty line (the whole message if it has none).
    static func headerSection(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { buf in
            var it = HeaderFieldIterator(buf)
            while it.next() != nil {}
            return Array(message[..<it.position])
        }
    }

    /// A boundary that occurs nowhere in the returned message (RFC 2046 §5.1.1).
    static func makeBoundary<R: RandomNumberGenerator>(avoiding original: [UInt8], using rng: inout R) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        while true {
            var b = Array("=_postern_".utf8)
            for _ in 0..<24 { b.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
            if !contains(original, b) { return String(decoding: b, as: UTF8.self) }
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return needle.isEmpty }
        var i = 0
        while i + needle.count <= haystack.count {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// A field value: no CR, LF or other control byte; ASCII only unless `allowUTF8` (the
    /// RFC 6533 form; message/delivery-status itself is 7-bit).
    static func clean(_ s: String, allowUTF8: Bool = false) -> String {
        String(decoding: s.utf8.map { ($0 < 0x20 || $0 == 0x7F || ($0 >= 0x80 && !allowUTF8)) ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }
}
