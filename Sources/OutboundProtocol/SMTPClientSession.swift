// The SMTP client state machine (RFC 5321, STARTTLS RFC 3207, AUTH RFC 4954, PIPELINING RFC 2920,
// SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN RFC 3461) as a plain value: server
// bytes and glue verdicts in, actions out. No I/O and no clock: the glue arms the one timer the
// session names (RFC 5321 §4.5.3.2) and reports its expiry. One transaction a message, for all
// its recipients at one host, with one result a recipient; with `reuseConnection` further
// messages follow on the same connection (RSET first when the last transaction stayed open).
import MailSyntax
import SMTPProtocol

public struct SMTPClientSession: Sendable {
    public let config: SMTPClientConfig
    public private(set) var envelope: OutboundEnvelope
    /// What the last EHLO offered (reset by STARTTLS, RFC 3207 §4.2).
    public private(set) var capabilities = SMTPServerCapabilities()
    public private(set) var tlsActive = false
    /// The glue reported a verified certificate.
    public private(set) var tlsVerified = false
    /// The timer that applies now; nil when the session waits for the glue or is closed.
    public private(set) var timer: SMTPClientTimer?
    /// Set once `.finished` was emitted.
    public private(set) var outcome: SMTPClientOutcome?

    enum State: Sendable, Equatable {
        case idle
        case implicitTLS         // waiting for the glue's handshake before the greeting
        case greeting
        case ehlo
        case helo
        case startTLS            // STARTTLS sent
        case tlsHandshake
        case authResult          // waiting for 235
        case loginUser           // AUTH LOGIN sent, waiting for 334
        case loginPassword       // user sent, waiting for 334
        case downgrade           // waiting for the glue's 7-bit body
        case transaction         // MAIL/RCPT/DATA replies expected
        case body                // the glue streams the body
        case dataEnd             // "." sent
        case ready               // transaction over, connection kept (reuseConnection)
        case quit
        case closed
    }

    /// A command whose reply is awaited (or, without PIPELINING, still to be sent).
    enum Command: Sendable, Equatable {
        case rset
        case mail
        case rcpt(Int)
        case data
    }

    var state: State = .idle
    var parser: SMTPReplyParser
    /// Replies expected, oldest first.
    var expected: [Command] = []
    /// Without PIPELINING: commands not sent yet.
    var unsent: [Command] = []
    var results: [RecipientResult?]
    /// Recipients the server accepted at RCPT, waiting for the reply to the final dot.
    var accepted: [Int] = []
    var mailFailed = false
    /// 354 arrived although no recipient was accepted: the final reply is ignored (RFC 2920 §3.1).
    var ignoreFinalReply = false
    var stuffer = SMTPDotStuffer()
    /// MAIL was accepted and no reply to the final dot came: the server may hold an open
    /// transaction, so the next message starts with RSET (RFC 5321 §4.1.1.5).
    var needsReset = false

    public init(config: SMTPClientConfig, envelope: OutboundEnvelope) {
        self.config = config
        self.envelope = envelope
        self.parser = SMTPReplyParser(limits: config.replyLimits)
        self.results = Array(repeating: nil, count: envelope.recipients.count)
    }

    public var isClosed: Bool { state == .closed }

    // MARK: - Glue → session

    /// The connection is open: wait for the greeting (or, with implicit TLS, handshake first).
    public mutating func start() -> [SMTPClientAction] {
        guard state == .idle else { return [] }
        var actions: [SMTPClientAction] = []
        if envelope.recipients.isEmpty {
            finish(&actions, tryNextHost: false)
            close(&actions)
            return actions
        }
        if config.implicitTLS {
            state = .implicitTLS
            actions.append(.startTLS)
        } else {
            state = .greeting
            arm(.greeting, &actions)
        }
        return actions
    }

    /// After `.readyForNextMessage`: the next message over the same connection.
    public mutating func nextMessage(_ next: OutboundEnvelope) -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .ready else { return actions }
        envelope = next
        results = Array(repeating: nil, count: next.recipients.count)
        accepted = []
        mailFailed = false
        ignoreFinalReply = false
        expected = []
        unsent = []
        stuffer = SMTPDotStuffer()
        outcome = nil
        if next.recipients.isEmpty {
            endTransaction(&actions)
        } else {
            proceedToMessage(&actions)
        }
        return actions
    }

    /// After `.readyForNextMessage`: no more messages, say QUIT (RFC 5321 §4.1.1.10).
    public mutating func quit() -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .ready else { return actions }
        quit(&actions)
        return actions
    }

    /// Bytes from the server.
    public mutating func receive<S: Sequence>(_ bytes: S) -> [SMTPClientAction] where S.Element == UInt8 {
        var actions: [SMTPClientAction] = []
        // RFC 3207 §4.2: nothing read in plaintext after the 220 to STARTTLS counts.
        guard state != .tlsHandshake, state != .implicitTLS, state != .closed, state != .idle else { return actions }
        parser.append(bytes)
        while state != .closed, state != .tlsHandshake {
            let reply: SMTPReply
            do {
                guard let next = try parser.next() else { break }
                reply = next
            } catch {
                failAll(.temporary, .malformedReply, remote: false, tryNextHost: beforeTransaction, quit: false, &actions)
                break
            }
            handle(reply, &actions)
        }
        if state == .tlsHandshake { parser.reset() }
        return actions
    }

    /// The TLS handshake completed; `verified`: the certificate chain and host name checked out.
    public mutating func tlsEstablished(verified: Bool) -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .tlsHandshake || state == .implicitTLS else { return actions }
        tlsActive = true
        tlsVerified = verified
        if config.tlsPolicy == .verify, !verified {
            // Before the greeting of implicit TLS there is nothing to QUIT from.
            failAll(.temporary, .tlsNotVerified, remote: false, tryNextHost: true, quit: state == .tlsHandshake, &actions)
            return actions
        }
        if state == .implicitTLS {
            state = .greeting
            arm(.greeting, &actions)
        } else {
            capabilities = SMTPServerCapabilities()   // RFC 3207 §4.2: forget, EHLO again
            hello(.ehlo, &actions)
        }
        return actions
    }

    /// The TLS handshake failed: the connection is unusable.
    public mutating func tlsFailed() -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .tlsHandshake || state == .implicitTLS else { return actions }
        failAll(.temporary, .tlsFailed, remote: false, tryNextHost: true, quit: false, &actions,
                retryWithoutTLS: config.tlsPolicy == .opportunistic && !config.implicitTLS)
        return actions
    }

    /// After `.needsDowngrade`: the body is now 7-bit MIME of `size` octets.
    public mutating func downgraded(size: Int) -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .downgrade else { return actions }
        envelope.bodyType = .sevenBit
        envelope.size = size
        proceedToMessage(&actions)
        return actions
    }

    /// After `.needsDowngrade`: the body could not be converted (RFC 6152 §3: bounce it).
    public mutating func downgradeFailed() -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .downgrade else { return actions }
        rejectMessage(.conversionImpossible, &actions)
        return actions
    }

    /// After `.sendBody`: the next piece of the body as stored (CRLF lines, not dot-stuffed).
    public mutating func bodyChunk<C: Collection>(_ chunk: C) -> [SMTPClientAction] where C.Element == UInt8 {
        var actions: [SMTPClientAction] = []
        guard state == .body else { return actions }
        var out: [UInt8] = []
        stuffer.stuff(chunk, into: &out)
        if !out.isEmpty { actions.append(.send(out)) }
        arm(.dataBlock, &actions)
        return actions
    }

    /// After the last `bodyChunk`: sends the terminating "." (RFC 5321 §4.1.1.4).
    public mutating func bodyFinished() -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state == .body else { return actions }
        var out: [UInt8] = []
        stuffer.finish(into: &out)
        actions.append(.send(out))
        state = .dataEnd
        arm(.dataTermination, &actions)
        return actions
    }

    /// The armed timer expired. RFC 5321 §4.5.3.2: give up on this connection.
    public mutating func timedOut() -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state != .closed, state != .idle else { return actions }
        if outcome != nil {
            close(&actions)
        } else {
            failAll(.temporary, .clientTimeout, remote: false, tryNextHost: beforeTransaction, quit: false, &actions)
        }
        return actions
    }

    /// The server closed the connection (or it broke).
    public mutating func connectionClosed() -> [SMTPClientAction] {
        var actions: [SMTPClientAction] = []
        guard state != .closed else { return actions }
        if outcome == nil {
            failAll(.temporary, .connectionLost, remote: false, tryNextHost: beforeTransaction, quit: false, &actions)
        }
        state = .closed
        timer = nil
        actions.removeAll { $0 == .close }
        return actions
    }

    // MARK: - Replies

    var beforeTransaction: Bool {
        switch state {
        case .transaction, .body, .dataEnd, .quit, .closed: return false
        default: return true
        }
    }

    mutating func handle(_ reply: SMTPReply, _ actions: inout [SMTPClientAction]) {
        switch state {
        case .greeting:
            // RFC 5321 §3.1, §4.3.2: 220, or 554/421 and the client QUITs and tries elsewhere.
            if reply.code == 220 {
                hello(.ehlo, &actions)
            } else {
                failAll(.temporary, reply, remote: true, tryNextHost: true, quit: true, &actions)
            }
        case .ehlo:
            if reply.isPositive {
                capabilities = SMTPServerCapabilities(ehlo: reply)
                afterHello(&actions)
            } else if reply.isPermanent {
                hello(.helo, &actions)         // RFC 5321 §4.1.1.1: EHLO not understood, fall back to HELO
            } else {
                failAll(.temporary, reply, remote: true, tryNextHost: true, quit: true, &actions)
            }
        case .helo:
            if reply.isPositive {
                capabilities = SMTPServerCapabilities()
                afterHello(&actions)
            } else {
                failAll(.temporary, reply, remote: true, tryNextHost: true, quit: true, &actions)
            }
        case .startTLS:
            if reply.code == 220 {
                // RFC 3207 §4: 220, then the handshake; bytes after the 220 are dropped (receive).
                state = .tlsHandshake
                timer = nil
                actions.append(.startTLS)
            } else if config.tlsPolicy == .opportunistic {
                afterTLS(&actions)             // RFC 3207 §4: 454 and the client may go on in plaintext
            } else {
                failAll(.temporary, reply, remote: true, tryNextHost: true, quit: true, &actions)
            }
        case .authResult:
            if reply.isPositive {
                proceedToMessage(&actions)
            } else {
                // A relay host refusing our credentials is a configuration problem: defer,
                // never bounce (Postfix: smtp_sasl_auth_soft_bounce = yes).
                failAll(.temporary, reply, remote: true, tryNextHost: false, quit: true, &actions)
            }
        case .loginUser, .loginPassword:
            guard reply.code == 334, let credentials = config.credentials else {
                failAll(.temporary, reply, remote: true, tryNextHost: false, quit: true, &actions)
                return
            }
            let secret = state == .loginUser ? credentials.user : credentials.password
            state = state == .loginUser ? .loginPassword : .authResult
            actions.append(.send(Array((Base64.encode(Array(secret.utf8)) + "\r\n").utf8), sensitive: true))
            arm(.command, &actions)
        case .transaction:
            transactionReply(reply, &actions)
        case .body:
            // A reply while the body is still being sent: the server gave up on the message.
            for i in accepted where results[i] == nil {
                results[i] = result(i, status(reply, final: false), reply)
            }
            failAll(.temporary, reply, remote: true, tryNextHost: false, quit: false, &actions)
        case .dataEnd:
            if !ignoreFinalReply {
                // RFC 5321 §4.1.1.4: one reply for the message, so one status for every accepted recipient.
                for i in accepted { results[i] = result(i, status(reply, final: true), reply) }
            }
            needsReset = false
            endTransaction(&actions)
        case .quit:
            close(&actions)
        case .idle, .implicitTLS, .tlsHandshake, .downgrade, .ready, .closed:
            // Nothing was asked: a server talking out of turn is out of sync with us.
            failAll(.temporary, reply.isPositive ? .malformedReply : reply, remote: !reply.isPositive,
                    tryNextHost: beforeTransaction, quit: false, &actions)
        }
    }

    /// MAIL, RCPT and DATA replies, in the order the commands went (RFC 2920 §3.1).
    mutating func transactionReply(_ reply: SMTPReply, _ actions: inout [SMTPClientAction]) {
        guard !expected.isEmpty else { return }
        let command = expected.removeFirst()
        switch command {
        case .rset:
            break                          // whatever it says, MAIL follows
        case .mail:
            if reply.isPositive {
                needsReset = true
            } else {
                mailFailed = true
                for i in results.indices where results[i] == nil {
                    results[i] = result(i, status(reply, final: false), reply)
                }
            }
        case .rcpt(let i):
            if mailFailed { break }
            if reply.isPositive {
                accepted.append(i)
            } else {
                results[i] = result(i, status(reply, final: false), reply)
            }
        case .data:
            if reply.code == 354 {
                if mailFailed || accepted.isEmpty {
                    // RFC 2920 §3.1: DATA pipelined after refused RCPTs and still 354: end an
                    // empty message at once, then ignore its reply.
                    ignoreFinalReply = true
                    state = .dataEnd
                    actions.append(.send(Array(".\r\n".utf8)))
                    arm(.dataTermination, &actions)
                } else {
                    state = .body
                    actions.append(.sendBody)
                    arm(.dataBlock, &actions)
                }
                return
            }
            if !mailFailed {
                for i in accepted { results[i] = result(i, status(reply, final: false), reply) }
            }
        }
        if let next = expected.first {
            arm(timer(for: next), &actions)
            return
        }
        // Without PIPELINING: the next command, unless nothing is left to send it for.
        if !mailFailed, let next = unsent.first {
            if next == .data && accepted.isEmpty {
                unsent = []
            } else {
                unsent.removeFirst()
                send([next], &actions)
                return
            }
        }
        endTransaction(&actions)
    }

    // MARK: - Steps

    enum Hello { case ehlo, helo }

    mutating func hello(_ verb: Hello, _ actions: inout [SMTPClientAction]) {
        state = verb == .ehlo ? .ehlo : .helo
        actions.append(.send(Array("\(verb == .ehlo ? "EHLO" : "HELO") \(config.heloName)\r\n".utf8)))
        arm(.command, &actions)
    }

    /// After EHLO/HELO: STARTTLS per policy, else AUTH, else the message.
    mutating func afterHello(_ actions: inout [SMTPClientAction]) {
        if !tlsActive, config.tlsPolicy != .disabled {
            if capabilities.startTLS {
                state = .startTLS
                actions.append(.send(Array("STARTTLS\r\n".utf8)))
                arm(.command, &actions)
                return
            }
            if config.tlsPolicy != .opportunistic {
                failAll(.temporary, .tlsNotOffered, remote: false, tryNextHost: true, quit: true, &actions)
                return
            }
        }
        afterTLS(&actions)
    }

    /// AUTH PLAIN (RFC 4616, initial response RFC 4954 §4) or LOGIN when credentials are set.
    mutating func afterTLS(_ actions: inout [SMTPClientAction]) {
        guard let credentials = config.credentials else {
            proceedToMessage(&actions)
            return
        }
        guard tlsActive || !config.authRequiresTLS else {
            failAll(.temporary, .authUnavailable, remote: false, tryNextHost: true, quit: true, &actions)
            return
        }
        if capabilities.authMechanisms.contains(SASLMechanism.plain.rawValue) {
            let message = [0] + Array(credentials.user.utf8) + [0] + Array(credentials.password.utf8)
            state = .authResult
            actions.append(.send(Array("AUTH PLAIN \(Base64.encode(message))\r\n".utf8), sensitive: true))
        } else if capabilities.authMechanisms.contains(SASLMechanism.login.rawValue) {
            state = .loginUser
            actions.append(.send(Array("AUTH LOGIN\r\n".utf8)))
        } else {
            failAll(.temporary, .authUnavailable, remote: false, tryNextHost: true, quit: true, &actions)
            return
        }
        arm(.command, &actions)
    }

    /// The decisions about the message itself, then MAIL.
    mutating func proceedToMessage(_ actions: inout [SMTPClientAction]) {
        if envelope.requiresSMTPUTF8, !capabilities.smtpUTF8 {
            // RFC 6531 §3.2: no SMTPUTF8, no delivery of a message that needs it.
            rejectMessage(.smtpUTF8NotOffered, &actions)
            return
        }
        if envelope.bodyType == .binaryMIME || (envelope.bodyType == .eightBitMIME && !capabilities.eightBitMIME) {
            // RFC 6152 §3: never send 8-bit data to a server without 8BITMIME; convert or bounce.
            if envelope.downgradable {
                state = .downgrade
                timer = nil
                actions.append(.needsDowngrade)
            } else {
                rejectMessage(.conversionImpossible, &actions)
            }
            return
        }
        if let limit = capabilities.size, limit > 0, envelope.size > limit {
            // RFC 1870 §6: the server's fixed maximum is permanent; do not even try MAIL.
            rejectMessage(.tooBigForServer, &actions)
            return
        }
        state = .transaction
        var commands: [Command] = [.mail] + envelope.recipients.indices.map { .rcpt($0) } + [.data]
        if needsReset {
            commands.insert(.rset, at: 0)
            needsReset = false
        }
        if capabilities.pipelining && config.usePipelining {
            send(commands, &actions)       // RFC 2920 §3.1: DATA ends the group
        } else {
            unsent = Array(commands.dropFirst())
            send([commands[0]], &actions)
        }
    }

    mutating func send(_ commands: [Command], _ actions: inout [SMTPClientAction]) {
        var out: [UInt8] = []
        for command in commands {
            out += Array(line(for: command).utf8)
            expected.append(command)
        }
        actions.append(.send(out))
        if let first = expected.first { arm(timer(for: first), &actions) }
    }

    func timer(for command: Command) -> SMTPClientTimer {
        switch command {
        case .rset: return .command
        case .mail: return .mail
        case .rcpt: return .rcpt
        case .data: return .dataInitiation
        }
    }

    /// The command line with the parameters the server offered.
    func line(for command: Command) -> String {
        switch command {
        case .rset:
            return "RSET\r\n"
        case .mail:
            var text = "MAIL FROM:<\(envelope.sender?.address ?? "")>"
            if capabilities.size != nil { text += " SIZE=\(envelope.size)" }                       // RFC 1870 §6
            if envelope.bodyType == .eightBitMIME, capabilities.eightBitMIME { text += " BODY=8BITMIME" }  // RFC 6152 §2
            if envelope.requiresSMTPUTF8 { text += " SMTPUTF8" }                                      // RFC 6531 §3.4
            if capabilities.dsn {                                                                     // RFC 3461 §4.3, §4.4
                if let ret = envelope.ret { text += " RET=\(ret.rawValue)" }
                if let id = envelope.envelopeID { text += " ENVID=\(XText.encode(id))" }
            }
            return text + "\r\n"
        case .rcpt(let i):
            let recipient = envelope.recipients[i]
            var text = "RCPT TO:<\(recipient.address.address)>"
            if capabilities.dsn {                                                                     // RFC 3461 §4.1, §4.2
                if let notify = recipient.notify { text += " NOTIFY=\(notify.parameterValue)" }
                if let original = recipient.originalRecipient { text += " ORCPT=rfc822;\(XText.encode(original))" }
            }
            return text + "\r\n"
        case .data:
            return "DATA\r\n"
        }
    }

    // MARK: - Outcome

    func status(_ reply: SMTPReply, final: Bool) -> RecipientResult.Status {
        if reply.isPermanent { return .permanent }
        if reply.isPositive && final { return .accepted }
        return .temporary
    }

    func result(_ i: Int, _ status: RecipientResult.Status, _ reply: SMTPReply, remote: Bool = true) -> RecipientResult {
        RecipientResult(recipient: envelope.recipients[i].address, status: status, reply: reply, remote: remote)
    }

    /// Gives every recipient without a result this one, emits `.finished`, then QUIT or close.
    mutating func failAll(_ status: RecipientResult.Status, _ reply: SMTPReply, remote: Bool, tryNextHost: Bool, quit sendQuit: Bool,
                          _ actions: inout [SMTPClientAction], retryWithoutTLS: Bool = false) {
        for i in results.indices where results[i] == nil {
            results[i] = result(i, status, reply, remote: remote)
        }
        finish(&actions, tryNextHost: tryNextHost, retryWithoutTLS: retryWithoutTLS)
        if sendQuit { quit(&actions) } else { close(&actions) }
    }

    mutating func finish(_ actions: inout [SMTPClientAction], tryNextHost: Bool, retryWithoutTLS: Bool = false) {
        guard outcome == nil else { return }
        let all = results.indices.map { i in
            results[i] ?? result(i, .temporary, .connectionLost, remote: false)
        }
        let done = SMTPClientOutcome(results: all, tryNextHost: tryNextHost, retryWithoutTLS: retryWithoutTLS, usedTLS: tlsActive)
        outcome = done
        actions.append(.finished(done))
    }

    /// This message cannot go to this server (a local decision): every recipient fails with
    /// `reply`; the connection stays usable for the next message.
    mutating func rejectMessage(_ reply: SMTPReply, _ actions: inout [SMTPClientAction]) {
        for i in results.indices where results[i] == nil {
            results[i] = result(i, .permanent, reply, remote: false)
        }
        endTransaction(&actions)
    }

    /// The transaction is over: report, then keep the connection (`reuseConnection`) or QUIT.
    mutating func endTransaction(_ actions: inout [SMTPClientAction]) {
        finish(&actions, tryNextHost: false)
        if config.reuseConnection {
            state = .ready
            timer = nil
            actions.append(.readyForNextMessage)
        } else {
            quit(&actions)
        }
    }

    /// RFC 5321 §4.1.1.10.
    mutating func quit(_ actions: inout [SMTPClientAction]) {
        state = .quit
        actions.append(.send(Array("QUIT\r\n".utf8)))
        arm(.command, &actions)
    }

    mutating func close(_ actions: inout [SMTPClientAction]) {
        state = .closed
        timer = nil
        actions.append(.close)
    }

    mutating func arm(_ kind: SMTPClientTimer, _ actions: inout [SMTPClientAction]) {
        timer = kind
        actions.append(.armTimer(kind, config.timeouts.duration(kind)))
    }
}
