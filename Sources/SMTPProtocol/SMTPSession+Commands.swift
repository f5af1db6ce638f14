// SMTPSession: one command line — grammar, the command table's guards, then the verb's own
// rules (RFC 5321 §4.1.1, RFC 2033, RFC 3207). Replies are named; nothing here does I/O.

extension SMTPSession {
    // MARK: - Commands

    static func loggable(_ line: [UInt8]) -> String {
        var s = String(decoding: line.prefix(256).map { (32...126).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        if s.uppercased().hasPrefix("AUTH") { s = s.split(separator: " ").prefix(2).joined(separator: " ") }
        return s
    }

    /// Parses and runs one command line; returns the table flags of the verb that ran
    /// (empty when the line did not parse).
    @discardableResult
    mutating func handleLine(_ line: [UInt8], _ actions: inout [SMTPAction]) -> SMTPCommandFlags {
        lastCommand = Self.loggable(line)
        let parsed = SMTPCommandParser.parse(
            line,
            dialect: config.dialect,
            smtpUTF8Advertised: config.advertises(.smtpUTF8),
            rcptAllowsUTF8: transaction?.smtpUTF8 ?? false,
            optional: optionalCommands)
        switch parsed {
        case .failure(let error):
            protocolError(error.reply, &actions)
            return []
        case .success(let command):
            execute(command, &actions)
            return command.guardedVerb.map(SMTPCommandTable.flags) ?? []
        }
    }

    /// The command table's state guards for `verb`, in this order (the order the replies
    /// have always had): the reply to refuse it with, or nil when it may run.
    func tableRefusal(_ verb: SMTPVerb) -> SMTPReply? {
        let flags = SMTPCommandTable.flags(verb)
        if !flags.isDisjoint(with: [.needsHello, .needsEHLO]), helo == nil { return needHelloReply }  // RFC 5321 §4.1.4
        if flags.contains(.needsEHLO), heloVerb == .helo { return .ehloRequired }
        if flags.contains(.notAuthenticated), authUser != nil { return .alreadyAuthenticated }       // RFC 4954 §4
        if flags.contains(.outsideTransaction), transaction != nil {
            return verb == .mail ? .nestedMail : .transactionInProgress                                 // RFC 5321 §4.1.4
        }
        if flags.contains(.needsTransaction), transaction == nil { return .needMail }
        return nil
    }

    /// Runs a parsed command: the table's guards first, then the verb.
    mutating func execute(_ command: SMTPCommand, _ actions: inout [SMTPAction]) {
        let refusal = command.guardedVerb.flatMap(tableRefusal)
        if case .bdat(let size, let last) = command {
            // RFC 3030 §2: the chunk's octets are read whatever the answer; a refusal follows them.
            return startChunk(size: size, last: last, refusal: refusal, &actions)
        }
        if let refusal { return protocolError(refusal, &actions) }
        var repeatedHello = false
        if case .hello = command { repeatedHello = helo != nil }   // not the EHLO after STARTTLS
        if repeatedHello || command.guardedVerb.map({ SMTPCommandTable.flags($0).contains(.junk) }) == true,
           tooMuchJunk(&actions) { return }
        switch command {
        case .hello(let verb, let domain):
            // RFC 5321 §4.1.4: EHLO/HELO (and LHLO) reset any transaction. Authentication
            // stays (RFC 4954 §4 does not reset it).
            helo = domain
            heloVerb = verb
            abandonTransaction(&actions)
            if verb == .helo {
                actions.append(.reply(.helo(config.hostname)))
            } else {
                actions.append(.reply(.hello(config.hostname, keywords: capabilities)))
            }

        case .mail(let path, let params):
            // The table guarded needsHello and outsideTransaction.
            if config.requireAuthForMail, authUser == nil {
                return protocolError(.authRequired, &actions)   // RFC 4954 §6
            }
            var envelope = SMTPEnvelope(helo: helo ?? "", sender: nil, authenticatedUser: authUser)
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
            if authUser != nil {
                // The sender must belong to the user (DESIGN.md §4).
                if envelope.sender == nil, !config.allowNullSenderWhenAuthenticated {
                    actions.append(.reply(.nullSenderNotAllowed))
                    return
                }
                pendingSender = envelope
                waiting = .sender
                actions.append(.checkSender(envelope.sender))
                return
            }
            if config.localSenderRequiresAuth, !clientIsTrusted, let sender = envelope.sender {
                pendingSender = envelope
                waiting = .senderDomain
                actions.append(.checkSenderDomain(sender.domain))
                return
            }
            transaction = envelope
            actions.append(.reply(.okSender))

        case .rcpt(let path, let params):
            guard let current = transaction else { return }   // the table guarded needsTransaction
            // RFC 3030 §3: all RCPTs come before the first BDAT; the glue already has the envelope.
            guard !current.chunked else { return protocolError(.badSequence, &actions) }
            // RCPT parameters: only NOTIFY and ORCPT, when DSN is advertised (RFC 5321 §4.1.1.11).
            switch rcptParameters(params) {
            case .success(let dsn): pendingRecipientDSN = dsn
            case .failure(let error): return protocolError(error.reply, &actions)
            }
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
            guard let current = transaction else { return }   // the table guarded needsTransaction
            guard !current.chunked else { return protocolError(.dataAfterBDAT, &actions) }   // RFC 3030 §2
            guard !current.recipients.isEmpty else {
                // Expected after a pipelined group whose RCPTs all failed: not counted as an error.
                actions.append(.reply(noValidRecipientsReply))
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

        case .bdat:
            break                                      // started above, before the guards

        case .startTLS:
            startTLS(&actions)

        case .auth(let mechanism, let initialResponse):
            startAuth(mechanism, initialResponse, &actions)

        case .rset:
            abandonTransaction(&actions)               // RFC 5321 §4.1.1.5
            actions.append(.reply(.ok))

        case .noop:
            actions.append(.reply(.ok))

        case .quit:
            abandonTransaction(&actions)
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

    var needHelloReply: SMTPReply {
        config.dialect == .lmtp ? .needLHLO : .needHello
    }

    var noValidRecipientsReply: SMTPReply {
        config.dialect == .lmtp ? .noValidRecipientsLMTP : .noValidRecipients
    }

    /// MAIL parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET and ENVID).
    /// Each is only accepted when its extension is advertised and the client used EHLO/LHLO.
    /// Returns the reply to refuse MAIL with, or nil.
    func applyMailParameters(_ params: [ESMTPParameter], to envelope: inout SMTPEnvelope) -> SMTPReply? {
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
            case "RET" where extended && config.advertises(.dsn):
                // RFC 3461 §4.3
                guard let ret = DSNParameterParser.ret(param.value) else { return .parameterError }
                envelope.dsn.ret = ret
            case "ENVID" where extended && config.advertises(.dsn):
                // RFC 3461 §4.4
                guard let id = DSNParameterParser.envelopeID(param.value) else { return .parameterError }
                envelope.dsn.envelopeID = id
            default:
                return .parameterNotRecognized
            }
        }
        return nil
    }

    /// RCPT parameters (RFC 3461 NOTIFY and ORCPT), accepted only when DSN is advertised and
    /// the client used EHLO; anything else is 555 5.5.4 (RFC 5321 §4.1.1.11). Duplicates were
    /// refused by the parser.
    func rcptParameters(_ params: [ESMTPParameter]) -> Result<RcptDSNParameters, SMTPCommandError> {
        var dsn = RcptDSNParameters()
        let enabled = heloVerb != .helo && config.advertises(.dsn)
        for param in params {
            switch param.keyword {
            case "NOTIFY" where enabled:
                // RFC 3461 §4.1
                guard let notify = DSNParameterParser.notify(param.value) else { return .failure(SMTPCommandError(reply: .parameterError)) }
                dsn.notify = notify
            case "ORCPT" where enabled:
                // RFC 3461 §4.2
                guard let orcpt = DSNParameterParser.originalRecipient(param.value, smtpUTF8: transaction?.smtpUTF8 ?? false) else {
                    return .failure(SMTPCommandError(reply: .parameterError))
                }
                dsn.originalRecipient = orcpt
            default:
                return .failure(SMTPCommandError(reply: .parameterNotRecognized))
            }
        }
        return .success(dsn)
    }

    // MARK: - STARTTLS (RFC 3207)

    mutating func startTLS(_ actions: inout [SMTPAction]) {
        guard !tlsActive else { return protocolError(.tlsAlreadyActive, &actions) }
        guard config.tlsAvailable else {
            // Only reached when tlsTemporarilyUnavailable (otherwise the parser says 502).
            actions.append(.reply(.tlsTemporarilyUnavailable))
            return
        }
        actions.append(.reply(.readyToStartTLS))
        actions.append(.startTLS)
        waiting = .tls        // `process` drops the rest of the input
    }

    // MARK: - End of DATA

    mutating func finishData(_ actions: inout [SMTPAction]) {
        phase = .command
        if let reason = reader.finish(actions: &actions) {
            refuseMessage(reason.reply, &actions)   // the glue already got abortMessage
        } else {
            waiting = .delivery
        }
    }
}
