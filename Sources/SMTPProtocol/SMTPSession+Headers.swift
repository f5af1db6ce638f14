// SMTPSession: the header fields the server adds to a message it accepts — trace fields at
// final delivery (RFC 5321 §4.4) and a submission server's Date/Message-ID (RFC 6409 §8).
// The clock and the session id are the caller's, so the bytes are testable.
import Foundation

extension SMTPSession {
    /// Return-Path, then Received, for the message of `envelope` (call at `.beginMessage`).
    /// `showAuthUser`: the Received field names the authenticated user.
    public func traceHeaders(for envelope: SMTPEnvelope, id: String, showAuthUser: Bool, date: Date) -> [UInt8] {
        // RFC 5321 §4.4: Return-Path at final delivery. One body serves local copies and
        // queued ones alike, so it is always written; the outbound agent strips a leading
        // Return-Path before relaying.
        TraceHeaders.returnPath(envelope.sender)
            + TraceHeaders.received(from: envelope.helo, clientAddress: clientAddress, by: config.hostname,
                                    with: receivedProtocol(), id: id,
                                    for: envelope.recipients.count == 1 ? envelope.recipients[0] : nil,
                                    tls: tlsInfo?.receivedText,
                                    authenticatedUser: showAuthUser ? envelope.authenticatedUser : nil, date: date)
    }

    /// RFC 6409 §8.2, §8.3: on a submission port (`submission`), an authenticated message
    /// missing Date or Message-ID gets them. `message`: the message as the client sent it
    /// (its header section is enough). Returns the fields to put before it; empty if none.
    public func submissionHeaders<S: Sequence>(for envelope: SMTPEnvelope, submission: Bool, message: S,
                                               date: Date) -> [UInt8] where S.Element == UInt8 {
        guard needsSubmissionHeaders(for: envelope, submission: submission) else { return [] }
        return submissionHeaders(scan: SubmissionHeaders.scan(message, complete: false), date: date)
    }

    /// Whether `submissionHeaders` may add fields to this message: a glue streaming the body
    /// holds the header section back (HeaderScanner) only then.
    public func needsSubmissionHeaders(for envelope: SMTPEnvelope, submission: Bool) -> Bool {
        submission && envelope.authenticatedUser != nil
    }

    /// The fields missing by a scan the caller made as the message arrived (RFC 6409 §8.2, §8.3).
    public func submissionHeaders(scan: MessageHeaderScan, date: Date) -> [UInt8] {
        SubmissionHeaders.missingHeaders(for: scan, hostname: config.hostname, date: date)
    }
}
