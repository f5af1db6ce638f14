// Fuzz entry point for the SMTP client: arbitrary server bytes drive a session (and with it the
// reply parser) through every glue call it asks for; traps on a violated invariant. A fuzzer or
// a test loop calls `SMTPClientSession.fuzz`.
import SMTPProtocol

extension SMTPClientSession {
    /// Byte 0 picks the configuration and how the rest is cut into reads; the rest is what the
    /// server sends. Invariants: exactly one `.finished` a message (two messages when the
    /// connection is reused), with one result a recipient, in order; no action after `.close`;
    /// the reply buffer stays bounded.
    public static func fuzz(_ data: [UInt8]) {
        let selector = data.first ?? 0
        let policies = TLSPolicy.allCases
        let config = SMTPClientConfig(heloName: "fuzz.example", tlsPolicy: policies[Int(selector) % policies.count],
                                      implicitTLS: selector & 0x40 != 0,
                                      credentials: selector & 0x20 != 0 ? SMTPClientCredentials(user: "u", password: "p") : nil,
                                      authRequiresTLS: selector & 0x10 == 0, usePipelining: selector & 0x08 == 0,
                                      reuseConnection: selector & 0x02 != 0,
                                      replyLimits: SMTPReplyParser.Limits(maxLineLength: 256, maxLines: 16))
        let recipients = ["a@example.org", "b@example.org", "c@example.org"].compactMap { MailPath($0) }.map { OutboundRecipient($0) }
        let envelope = OutboundEnvelope(sender: MailPath("s@example.net"), recipients: recipients, size: 5000,
                                        bodyType: selector & 0x80 != 0 ? .eightBitMIME : .sevenBit)
        var session = SMTPClientSession(config: config, envelope: envelope)
        var finished = 0
        var messages = 1
        var closed = false

        func run(_ actions: [SMTPClientAction]) {
            precondition(!closed || actions.isEmpty, "actions after close")
            var follow: [SMTPClientAction] = []
            for action in actions {
                switch action {
                case .finished(let outcome):
                    finished += 1
                    precondition(finished <= messages, "finished twice")
                    precondition(outcome.results.map(\.recipient) == recipients.map(\.address), "results out of order")
                case .close: closed = true
                case .startTLS: follow += session.tlsEstablished(verified: selector & 0x04 != 0)
                case .needsDowngrade: follow += session.downgraded(size: 6000)
                case .sendBody:
                    follow += session.bodyChunk(Array("Subject: x\r\n\r\n.body\n".utf8))
                    follow += session.bodyFinished()
                case .readyForNextMessage:
                    if messages < 2 {
                        messages += 1
                        follow += session.nextMessage(envelope)
                    } else {
                        follow += session.quit()
                    }
                case .send, .armTimer: break
                }
            }
            if !follow.isEmpty { run(follow) }
        }

        run(session.start())
        let step = Int(selector % 7) + 1
        var i = 1
        while i < data.count {
            let end = min(i + step, data.count)
            run(session.receive(data[i..<end]))
            precondition(session.parser.bufferedCount <= config.replyLimits.maxLineLength, "reply buffer unbounded")
            i = end
        }
        run(session.connectionClosed())
        precondition(finished == messages, "a message without outcome")
    }
}
