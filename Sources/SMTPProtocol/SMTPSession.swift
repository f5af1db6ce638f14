// The SMTP/LMTP session state machine (RFC 5321, RFC 2033) as a plain value: bytes in,
// actions out. No I/O and no clock (the glue reports timeouts). Buffers are bounded by the
// named limits, except input that arrives while the session waits for the glue (see below).
//
// Pipelining (RFC 2920): the glue feeds whatever it read; while the session waits for the
// glue (recipient check, delivery) `receive` only buffers, and the resume calls continue with
// the buffered input. The glue writes replies as they come and flushes when it runs out of
// input. The glue should stop reading while `isAwaitingExternal` to bound that buffer.

public struct SMTPSession: Sendable {
    public let config: SMTPSessionConfig
    public let clientAddress: String

    private enum Phase: Sendable, Equatable {
        case command
        case data
        case closed
    }

    private enum Waiting: Sendable, Equatable {
        case none
        case recipient(MailPath)
        case delivery
    }

    private var phase: Phase = .command
    private var waiting: Waiting = .none
    /// Argument of the last HELO/EHLO/LHLO, and which of them it was.
    private var helo: String?
    private var heloVerb: SMTPVerb?
    /// Non-nil from an accepted MAIL until the transaction ends.
    private var transaction: SMTPEnvelope?
    private var errorCount = 0
    private var framer: CommandFramer
    private var reader: DataReader
    /// Unconsumed input: a partial command line, or everything received while waiting.
    private var input: [UInt8] = []
    private var inputStart = 0

    public init(config: SMTPSessionConfig, clientAddress: String) {
        self.config = config
        self.clientAddress = clientAddress
        self.framer = CommandFramer(maxLine: config.limits.maxCommandLine)
        self.reader = DataReader(limits: config.limits, policy: config.bareLinefeed)
    }

    // MARK: - Public state

    /// True after `checkRecipient` / `endMessage` until the matching resume call.
    public var isAwaitingExternal: Bool { waiting != .none }

    /// The current transaction (nil before MAIL and after it ended).
    public var envelope: SMTPEnvelope? { transaction }

    /// True once `close` was emitted; further input is ignored.
    public var isClosed: Bool { phase == .closed }

    /// True while message data is being read (between 354 and the final dot).
    public var isReadingData: Bool { phase == .data }

    /// Whether replies should be encoded with enhanced status codes (RFC 2034).
    public var usesEnhancedStatusCodes: Bool { config.advertises(.enhancedStatusCodes) }

    /// The "with" keyword for the Received header: "LMTP", "SMTP" (after HELO) or "ESMTP",
    /// plus "S" for TLS and "A" for authenticated (RFC 3848, as Postfix does); SMTPUTF8
    /// transactions use "UTF8SMTP…"/"UTF8LMTP…" (RFC 6531 §3.7.3).
    public func receivedProtocol(tls: Bool = false, authenticated: Bool = false) -> String {
        let utf8 = transaction?.smtpUTF8 ?? false
        var name: String
        switch config.dialect {
        case .lmtp: name = "LMTP"
        case .smtp: name = (utf8 || heloVerb == .helo) ? "SMTP" : "ESMTP"
        }
        if tls { name += "S" }
        if authenticated { name += "A" }
        return utf8 ? "UTF8" + name : name
    }

    // MARK: - Driving the session

    /// The 220 greeting (RFC 5321 §4.3.1).
    public mutating func greeting() -> [SMTPAction] {
        [.reply(.serviceReady(config.hostname, service: config.serviceName))]
    }

    /// Feeds bytes from the client. Partial lines are kept; while waiting for the glue
    /// the bytes are only buffered.
    public mutating func receive(_ bytes: [UInt8]) -> [SMTPAction] {
        guard phase != .closed, !bytes.isEmpty else { return [] }
        if inputStart == input.count, waiting == .none {
            // Nothing buffered: parse straight from the caller's bytes.
            var actions: [SMTPAction] = []
            let consumed = bytes.withUnsafeBufferPointer { process($0, from: 0, into: &actions) }
            input.removeAll(keepingCapacity: true)
            inputStart = 0
            if consumed < bytes.count, phase != .closed {
                input.append(contentsOf: bytes[consumed...])
            }
            return actions
        }
        input.append(contentsOf: bytes)
        var actions: [SMTPAction] = []
        drain(into: &actions)
        return actions
    }

    /// The glue's answer to `checkRecipient`. Emits the RCPT reply, then continues with
    /// buffered (pipelined) input. Ignored if no recipient check is pending.
    public mutating func recipientChecked(_ result: RecipientCheck) -> [SMTPAction] {
        guard case .recipient(let path) = waiting else { return [] }
        waiting = .none
        var actions: [SMTPAction] = []
        let reply: SMTPReply
        switch result {
        case .accept:
            transaction?.recipients.append(path)
            reply = .okRecipient
        case .unknown: reply = .mailboxUnknown
        case .relayDenied: reply = .relayDenied
        case .tempFail: reply = .localError
        case .reject(let r): reply = r
        }
        actions.append(.reply(reply))
        drain(into: &actions)
        return actions
    }

    /// The glue's answer to `endMessage`. LMTP: one result per accepted recipient, in RCPT
    /// order, each answered with its own reply (RFC 2033 §4.2); missing results count as
    /// 451 4.3.0. SMTP: one reply — success only if every result is `.delivered`, otherwise
    /// the first failure. The transaction then resets and buffered input continues.
    public mutating func deliveryFinished(_ results: [DeliveryResult]) -> [SMTPAction] {
        guard waiting == .delivery else { return [] }
        waiting = .none
        var actions: [SMTPAction] = []
        let recipients = transaction?.recipients ?? []
        switch config.dialect {
        case .lmtp:
            for (index, recipient) in recipients.enumerated() {
                let result = index < results.count ? results[index] : .failed(.localError)
                switch result {
                case .delivered: actions.append(.reply(.delivered(to: recipient)))
                case .failed(let reply): actions.append(.reply(reply))
                }
            }
        case .smtp:
            var reply = SMTPReply.delivered(to: nil)
            if results.isEmpty { reply = .localError }
            for case .failed(let failure) in results {
                reply = failure
                break
            }
            actions.append(.reply(reply))
        }
        transaction = nil
        drain(into: &actions)
        return actions
    }

    /// The glue's idle timer fired: 421 4.4.2 and close (RFC 5321 §4.5.3.2). A message in
    /// progress is aborted first.
    public mutating func timedOut() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        var actions: [SMTPAction] = []
        if phase == .data {
            reader.abandon(actions: &actions)
        }
        actions.append(.reply(.timeout))
        close(&actions)
        return actions
    }

    // MARK: - Input processing

    /// Continues with buffered input unless waiting or closed.
    private mutating func drain(into actions: inout [SMTPAction]) {
        guard phase != .closed, waiting == .none, inputStart < input.count else { return }
        var buffer = input
        input = []  // `buffer` is now the only reference: no copy below
        let consumed = buffer.withUnsafeBufferPointer { process($0, from: inputStart, into: &actions) }
        if phase == .closed || consumed >= buffer.count {
            buffer.removeAll(keepingCapacity: phase != .closed)
            inputStart = 0
        } else if waiting != .none {
            inputStart = consumed             // more may be waiting: avoid moving it repeatedly
        } else {
            buffer.removeSubrange(0..<consumed)  // only a partial command line is left
            inputStart = 0
        }
        input = buffer
    }

    /// Runs the framing stages over `p[start...]`; returns the first unconsumed index.
    private mutating func process(_ p: UnsafeBufferPointer<UInt8>, from start: Int, into actions: inout [SMTPAction]) -> Int {
        var i = start
        while i < p.count, waiting == .none {
            switch phase {
            case .closed:
                return p.count
            case .data:
                let (next, ended) = reader.consume(p, from: i, actions: &actions)
                i = next
                if ended { finishData(&actions) }
            case .command:
                let (frame, next) = framer.next(p, from: i)
                switch frame {
                case .needMore:
                    return next
                case .tooLong:
                    i = next
                    protocolError(.lineTooLong, &actions)
                case .line(let range, let bareLF):
                    i = next
                    if bareLF, config.bareLinefeed == .reject {
                        protocolError(.bareLinefeedCommand, &actions)
                    } else {
                        handleLine(Array(p[range]), &actions)
                    }
                }
            }
        }
        return i
    }

    // MARK: - Commands

    private mutating func handleLine(_ line: [UInt8], _ actions: inout [SMTPAction]) {
        let parsed = SMTPCommandParser.parse(
            line,
            dialect: config.dialect,
            smtpUTF8Advertised: config.advertises(.smtpUTF8),
            rcptAllowsUTF8: transaction?.smtpUTF8 ?? false)
        switch parsed {
        case .failure(let error):
            protocolError(error.reply, &actions)
        case .success(let command):
            execute(command, &actions)
        }
    }

    private mutating func execute(_ command: SMTPCommand, _ actions: inout [SMTPAction]) {
        switch command {
        case .hello(let verb, let domain):
            // RFC 5321 §4.1.4: EHLO/HELO (and LHLO) reset any transaction.
            helo = domain
            heloVerb = verb
            transaction = nil
            if verb == .helo {
                actions.append(.reply(.helo(config.hostname)))
            } else {
                let keywords = config.extensions.map { $0.keywordLine(limits: config.limits) }
                actions.append(.reply(.hello(config.hostname, keywords: keywords)))
            }

        case .mail(let path, let params):
            guard let helo else { return protocolError(needHelloReply, &actions) }
            guard transaction == nil else { return protocolError(.nestedMail, &actions) }
            var envelope = SMTPEnvelope(helo: helo, sender: nil)
            switch path {
            case .mailbox(let mailbox): envelope.sender = mailbox
            case .null: envelope.sender = nil
            case .postmaster: return protocolError(.badSenderAddress, &actions)
            }
            if let error = applyMailParameters(params, to: &envelope) {
                if error == .messageTooBig {
                    actions.append(.reply(error))   // a policy refusal, not a protocol error
                } else {
                    protocolError(error, &actions)
                }
                return
            }
            transaction = envelope
            actions.append(.reply(.okSender))

        case .rcpt(let path, let params):
            guard helo != nil else { return protocolError(needHelloReply, &actions) }
            guard let current = transaction else { return protocolError(.needMail, &actions) }
            // No RCPT parameters are supported (no DSN): RFC 5321 §4.1.1.11.
            guard params.isEmpty else { return protocolError(.parameterNotRecognized, &actions) }
            guard current.recipients.count < config.limits.maxRecipients else {
                actions.append(.reply(.tooManyRecipients))   // RFC 5321 §4.5.3.1.10
                return
            }
            let recipient: MailPath
            switch path {
            case .mailbox(let mailbox): recipient = mailbox
            case .postmaster(let local): recipient = MailPath(localPart: local, domain: config.hostname)
            case .null: return protocolError(.badAddress, &actions)
            }
            waiting = .recipient(recipient)
            actions.append(.checkRecipient(recipient))

        case .data:
            guard helo != nil else { return protocolError(needHelloReply, &actions) }
            guard let current = transaction else { return protocolError(.needMail, &actions) }
            guard !current.recipients.isEmpty else {
                // Expected after a pipelined group whose RCPTs all failed: not counted as an error.
                actions.append(.reply(config.dialect == .lmtp ? .noValidRecipientsLMTP : .noValidRecipients))
                return
            }
            guard current.bodyType != .binaryMIME else {
                // RFC 3030 §3: BINARYMIME content can only be sent with BDAT.
                return protocolError(.badSequence, &actions)
            }
            actions.append(.reply(.startMailInput))
            actions.append(.beginMessage(current))
            reader = DataReader(limits: config.limits, policy: config.bareLinefeed)
            phase = .data

        case .rset:
            transaction = nil                          // RFC 5321 §4.1.1.5
            actions.append(.reply(.ok))

        case .noop:
            actions.append(.reply(.ok))

        case .quit:
            actions.append(.reply(.closing))
            close(&actions)

        case .vrfy:
            actions.append(.reply(.cannotVerify))      // RFC 5321 §3.5.3: never disclose

        case .expn, .unimplemented:
            protocolError(.notImplemented, &actions)

        case .help:
            actions.append(.reply(.help))
        }
    }

    private var needHelloReply: SMTPReply {
        config.dialect == .lmtp ? .needLHLO : .needHello
    }

    /// MAIL parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8). Each is only
    /// accepted when its extension is advertised and the client used EHLO/LHLO.
    /// Returns the reply to refuse MAIL with, or nil.
    private func applyMailParameters(_ params: [ESMTPParameter], to envelope: inout SMTPEnvelope) -> SMTPReply? {
        let extended = heloVerb != .helo
        for param in params {
            switch param.keyword {
            case "SIZE" where extended && config.advertises(.size):
                // size-value = 1*20DIGIT (RFC 1870 §3)
                guard let text = param.value, !text.isEmpty, text.utf8.count <= 20,
                      text.utf8.allSatisfy(ASCII.isDigit) else { return .parameterError }
                let size = Int(text) ?? Int.max
                if size > config.limits.maxMessageSize { return .messageTooBig }
                envelope.declaredSize = size
            case "BODY" where extended && config.advertises(.eightBitMIME):
                switch param.value?.uppercased() {
                case "7BIT": envelope.bodyType = .sevenBit
                case "8BITMIME": envelope.bodyType = .eightBitMIME
                case "BINARYMIME" where config.advertises(.binaryMIME): envelope.bodyType = .binaryMIME
                default: return .parameterError
                }
            case "SMTPUTF8" where extended && config.advertises(.smtpUTF8):
                guard param.value == nil else { return .parameterError }
                envelope.smtpUTF8 = true
            default:
                return .parameterNotRecognized
            }
        }
        return nil
    }

    // MARK: - End of DATA

    private mutating func finishData(_ actions: inout [SMTPAction]) {
        phase = .command
        if let reason = reader.finish(actions: &actions) {
            // Refused: the glue already got abortMessage. LMTP answers per recipient.
            let count = config.dialect == .lmtp ? max(transaction?.recipients.count ?? 1, 1) : 1
            for _ in 0..<count { actions.append(.reply(reason.reply)) }
            transaction = nil
        } else {
            waiting = .delivery
        }
    }

    // MARK: - Errors and closing

    /// Replies with `reply` and counts a protocol error; drops the session at maxErrors.
    private mutating func protocolError(_ reply: SMTPReply, _ actions: inout [SMTPAction]) {
        errorCount += 1
        actions.append(.reply(reply))
        if errorCount >= config.limits.maxErrors {
            actions.append(.reply(.tooManyErrors))
            close(&actions)
        }
    }

    private mutating func close(_ actions: inout [SMTPAction]) {
        phase = .closed
        waiting = .none
        transaction = nil
        input = []
        inputStart = 0
        actions.append(.close)
    }
}
