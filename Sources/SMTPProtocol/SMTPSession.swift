// The SMTP/LMTP session state machine (RFC 5321, RFC 2033, with STARTTLS RFC 3207, AUTH
// RFC 4954, CHUNKING RFC 3030) as a plain value: bytes in, actions out. No I/O and no clock
// (the glue reports timeouts and carries out delays). Buffers are bounded by the named
// limits, except input that arrives while the session waits for the glue (see below).
//
// Pipelining (RFC 2920): the glue feeds whatever it read; while the session waits for the
// glue (recipient/sender check, authentication, delay, delivery) `receive` only buffers, and
// the resume calls continue with the buffered input. The glue writes replies as they come
// and flushes when it runs out of input. The glue should stop reading while
// `isAwaitingExternal` to bound that buffer. While waiting for the TLS handshake
// (`.startTLS` until `tlsStarted`) input is dropped, not buffered (RFC 3207 §4.2).

public struct SMTPSession: Sendable {
    public let config: SMTPSessionConfig
    public let clientAddress: String
    /// The client connects from a loopback address: AUTH is allowed before TLS.
    public let clientIsLoopback: Bool

    private enum Phase: Sendable, Equatable {
        case command
        case data
        case bdat          // reading the octets of a BDAT chunk
        case closed
    }

    private enum Waiting: Sendable, Equatable {
        case none
        case recipient(MailPath)
        case delivery
        case tls                                   // after .startTLS, until tlsStarted
        case auth(SASLMechanism, user: String)     // after .authenticate
        case sender                                // after .checkSender
        case delay                                 // after .delay, until delayElapsed
    }

    /// A SASL exchange in progress: the next line is a response, not a command.
    private enum AuthExchange: Sendable, Equatable {
        case plain                    // 334 sent, waiting for the PLAIN message
        case loginUsername            // 334 VXNlcm5hbWU6 sent
        case loginPassword(String)    // 334 UGFzc3dvcmQ6 sent
    }

    /// The BDAT chunk being read.
    private struct BDATChunk: Sendable, Equatable {
        var size: Int
        var remaining: Int
        var last: Bool
        /// Set when the command was refused: the octets are read and dropped, then this
        /// reply is sent (`countsAsError`: through protocolError).
        var refusal: SMTPReply?
        var countsAsError: Bool
    }

    private var phase: Phase = .command
    private var waiting: Waiting = .none
    /// Argument of the last HELO/EHLO/LHLO, and which of them it was.
    private var helo: String?
    private var heloVerb: SMTPVerb?
    /// Non-nil from an accepted MAIL until the transaction ends.
    private var transaction: SMTPEnvelope?
    /// MAIL waiting for `senderChecked`.
    private var pendingSender: SMTPEnvelope?
    private var errorCount = 0
    private var framer: CommandFramer
    private var reader: DataReader
    /// Non-nil once the current transaction used BDAT, until LAST or the transaction ends.
    private var bdatReader: BDATReader?
    private var bdatChunk: BDATChunk?
    private var authExchange: AuthExchange?
    private var tlsActive: Bool
    private var authUser: String?
    private var authFailures = 0
    private let optionalCommands: SMTPOptionalCommands
    /// Unconsumed input: a partial command line, or everything received while waiting.
    private var input: [UInt8] = []
    private var inputStart = 0

    /// - clientIsLoopback: nil derives it from `clientAddress` (127.0.0.0/8, ::1,
    ///   ::ffff:127.x.x.x); a unix-socket peer is not treated as loopback unless passed.
    /// - tlsInfo: for implicit TLS when the handshake is already done (else see `tlsStarted`).
    public init(config: SMTPSessionConfig, clientAddress: String, clientIsLoopback: Bool? = nil, tlsInfo: TLSInfo? = nil) {
        self.config = config
        self.clientAddress = clientAddress
        self.clientIsLoopback = clientIsLoopback ?? SMTPSession.isLoopbackAddress(clientAddress)
        self.framer = CommandFramer(maxLine: config.limits.maxCommandLine,
                                    authMaxLine: config.authConfigured ? config.limits.maxAuthLine : nil)
        self.reader = DataReader(limits: config.limits, policy: config.bareLinefeed)
        self.tlsActive = config.implicitTLS
        self.tlsInfo = config.implicitTLS ? tlsInfo : nil
        var optional: SMTPOptionalCommands = []
        if config.startTLSConfigured { optional.insert(.startTLS) }
        if config.authConfigured { optional.insert(.auth) }
        if config.advertises(.chunking) { optional.insert(.bdat) }
        self.optionalCommands = optional
    }

    // MARK: - Public state

    /// True after a request to the glue (`checkRecipient`, `checkSender`, `authenticate`,
    /// `delay`, `startTLS`, `endMessage`) until the matching resume call.
    public var isAwaitingExternal: Bool { waiting != .none }

    /// The current transaction (nil before MAIL and after it ended).
    public var envelope: SMTPEnvelope? { transaction }

    /// True once `close` was emitted; further input is ignored.
    public var isClosed: Bool { phase == .closed }

    /// True while message data is being read (between 354 and the final dot, or inside the
    /// octets of a BDAT chunk): the glue uses its DATA timeout.
    public var isReadingData: Bool { phase == .data || phase == .bdat }

    /// Whether replies should be encoded with enhanced status codes (RFC 2034).
    public var usesEnhancedStatusCodes: Bool { config.advertises(.enhancedStatusCodes) }

    /// TLS is active (implicit TLS, or after `tlsStarted`).
    public var isTLSActive: Bool { tlsActive }

    /// What `tlsStarted(info:)` (or init) reported; nil without TLS.
    public private(set) var tlsInfo: TLSInfo?

    /// The canonical user name after a successful AUTH; nil otherwise (and after STARTTLS).
    public var authenticatedUser: String? { authUser }

    /// Failed authentications in this session.
    public var authFailureCount: Int { authFailures }

    /// AUTH may be used now: configured, and TLS is active, or the client is on loopback,
    /// or TLS is not required. (After HELO it is still refused with 503.)
    public var isAuthAvailable: Bool {
        config.authConfigured && (!config.requireTLSForAuth || tlsActive || clientIsLoopback)
    }

    /// The keyword lines of the EHLO/LHLO reply right now: `config.extensions` in order, then
    /// STARTTLS (when `tlsAvailable` and TLS is not active yet), then "AUTH PLAIN LOGIN"
    /// (the configured mechanisms, when `isAuthAvailable`).
    public var capabilities: [String] {
        var lines = config.extensions.map { $0.keywordLine(limits: config.limits) }
        if config.tlsAvailable, !tlsActive { lines.append("STARTTLS") }
        if isAuthAvailable {
            lines.append((["AUTH"] + config.authMechanisms.map(\.rawValue)).joined(separator: " "))
        }
        return lines
    }

    /// The "with" keyword for the Received header: "LMTP", "SMTP" (after HELO) or "ESMTP",
    /// plus "S" for TLS and "A" for authenticated (RFC 3848, as Postfix does); SMTPUTF8
    /// transactions use "UTF8SMTP…"/"UTF8LMTP…" (RFC 6531 §3.7.3). `tls` / `authenticated`
    /// default to the session's own state.
    public func receivedProtocol(tls: Bool? = nil, authenticated: Bool? = nil) -> String {
        let utf8 = transaction?.smtpUTF8 ?? false
        var name: String
        switch config.dialect {
        case .lmtp: name = "LMTP"
        case .smtp: name = (utf8 || heloVerb == .helo) ? "SMTP" : "ESMTP"
        }
        if tls ?? tlsActive { name += "S" }
        if authenticated ?? (authUser != nil) { name += "A" }
        return utf8 ? "UTF8" + name : name
    }

    /// 127.0.0.0/8, ::1 and IPv4-mapped 127.x.x.x (textual forms as NIO prints them).
    public static func isLoopbackAddress(_ address: String) -> Bool {
        var text = Substring(address)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        let lower = text.lowercased()
        if lower == "::1" || lower == "0:0:0:0:0:0:0:1" { return true }
        var v4 = Substring(lower)
        if v4.hasPrefix("::ffff:") { v4 = v4.dropFirst(7) }
        let bytes = Array(v4.utf8)
        return AddressParser.isIPv4(bytes[...]) && v4.hasPrefix("127.")
    }

    // MARK: - Driving the session

    /// The 220 greeting (RFC 5321 §4.3.1).
    public mutating func greeting() -> [SMTPAction] {
        [.reply(.serviceReady(config.hostname, service: config.serviceName))]
    }

    /// Feeds bytes from the client. Partial lines are kept; while waiting for the glue
    /// the bytes are only buffered (dropped while waiting for the TLS handshake).
    public mutating func receive(_ bytes: [UInt8]) -> [SMTPAction] {
        guard phase != .closed, !bytes.isEmpty else { return [] }
        if waiting == .tls { return [] }       // plaintext after STARTTLS: RFC 3207 §4.2
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
        case .acceptRemote where authUser != nil:
            if let index = transaction?.recipients.count {
                transaction?.recipients.append(path)
                transaction?.remoteIndices.insert(index)
            }
            reply = .okRecipient
        case .acceptRemote: reply = .relayDenied     // unauthenticated: never relay
        case .unknown: reply = .mailboxUnknown
        case .relayDenied: reply = .relayDenied
        case .tempFail: reply = .localError
        case .reject(let r): reply = r
        }
        actions.append(.reply(reply))
        drain(into: &actions)
        return actions
    }

    /// The glue's answer to `checkSender`: 250 2.1.0 and the transaction starts, or
    /// 553 5.7.1. Then continues with buffered input. Ignored if no check is pending.
    public mutating func senderChecked(allowed: Bool) -> [SMTPAction] {
        guard waiting == .sender, let pending = pendingSender else { return [] }
        waiting = .none
        pendingSender = nil
        var actions: [SMTPAction] = []
        if allowed {
            transaction = pending
            actions.append(.reply(.okSender))
        } else {
            actions.append(.reply(.senderNotOwned))
        }
        drain(into: &actions)
        return actions
    }

    /// The glue's answer to `authenticate`. Success: 235 2.7.0. Failure: `.authFailed`, then
    /// (after `.delay` and `delayElapsed()`) 535 5.7.8, and 421 + close at
    /// `maxAuthFailures`. Temporary failure: 454 4.7.0. Ignored if nothing is pending.
    public mutating func authenticated(_ result: AuthResult) -> [SMTPAction] {
        guard case .auth(let mechanism, let user) = waiting else { return [] }
        waiting = .none
        var actions: [SMTPAction] = []
        switch result {
        case .success(let canonical):
            authUser = canonical
            actions.append(.reply(.authSucceeded))
        case .tempFail:
            actions.append(.reply(.authTemporaryFailure))
        case .failure:
            authFailure(user: user, mechanism: mechanism, &actions)
        }
        drain(into: &actions)
        return actions
    }

    /// The glue finished a `.delay`: sends the delayed reply, then continues with buffered
    /// input. Ignored if no delay is pending.
    public mutating func delayElapsed() -> [SMTPAction] {
        guard waiting == .delay else { return [] }
        waiting = .none
        var actions: [SMTPAction] = []
        finishAuthFailure(&actions)
        drain(into: &actions)
        return actions
    }

    /// The TLS handshake finished. After STARTTLS: the session forgets HELO/EHLO, the
    /// transaction and the authentication and waits for a new EHLO (RFC 3207 §4.2); nothing
    /// is replied. With implicit TLS it only records `info` (call it when the handshake is
    /// done if `info` was not known at init). Otherwise ignored.
    public mutating func tlsStarted(info: TLSInfo?) -> [SMTPAction] {
        guard phase != .closed else { return [] }
        if waiting == .tls {
            waiting = .none
            tlsActive = true
            tlsInfo = info
            helo = nil
            heloVerb = nil
            transaction = nil
            pendingSender = nil
            bdatReader = nil
            authUser = nil
            authExchange = nil
            input = []
            inputStart = 0
            framer.reset()
        } else if config.implicitTLS {
            tlsInfo = info
        }
        return []
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
        bdatReader = nil
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
        abandonTransaction(&actions)              // a message begun with BDAT
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
            case .bdat:
                i = consumeChunk(p, from: i, &actions)
            case .command:
                let (frame, next) = framer.next(p, from: i, continuation: authExchange != nil)
                switch frame {
                case .needMore:
                    return next
                case .tooLong:
                    i = next
                    authExchange = nil
                    protocolError(.lineTooLong, &actions)
                case .line(let range, let bareLF):
                    i = next
                    if bareLF, config.bareLinefeed == .reject {
                        authExchange = nil
                        protocolError(.bareLinefeedCommand, &actions)
                    } else if authExchange != nil {
                        authResponse(p[range], &actions)
                    } else {
                        handleLine(Array(p[range]), &actions)
                    }
                    if waiting == .tls {
                        // RFC 3207 §4.2 (CVE-2011-0411): drop everything pipelined after STARTTLS.
                        return p.count
                    }
                }
            }
        }
        return i
    }

    // MARK: - Commands

    /// The last command line, printable and at most 256 characters, for logging a refusal with
    /// what was refused. AUTH keeps only its mechanism: credentials never reach a log.
    public private(set) var lastCommand = ""

    static func loggable(_ line: [UInt8]) -> String {
        var s = String(decoding: line.prefix(256).map { (32...126).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        if s.uppercased().hasPrefix("AUTH") { s = s.split(separator: " ").prefix(2).joined(separator: " ") }
        return s
    }

    private mutating func handleLine(_ line: [UInt8], _ actions: inout [SMTPAction]) {
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
        case .success(let command):
            execute(command, &actions)
        }
    }

    private mutating func execute(_ command: SMTPCommand, _ actions: inout [SMTPAction]) {
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
            guard let helo else { return protocolError(needHelloReply, &actions) }
            guard transaction == nil else { return protocolError(.nestedMail, &actions) }
            if config.requireAuthForMail, authUser == nil {
                return protocolError(.authRequired, &actions)   // RFC 4954 §6
            }
            var envelope = SMTPEnvelope(helo: helo, sender: nil, authenticatedUser: authUser)
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
            transaction = envelope
            actions.append(.reply(.okSender))

        case .rcpt(let path, let params):
            guard helo != nil else { return protocolError(needHelloReply, &actions) }
            guard let current = transaction else { return protocolError(.needMail, &actions) }
            // RFC 3030 §3: all RCPTs come before the first BDAT; the glue already has the envelope.
            guard !current.chunked else { return protocolError(.badSequence, &actions) }
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

        case .bdat(let size, let last):
            startChunk(size: size, last: last, &actions)

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

    private var needHelloReply: SMTPReply {
        config.dialect == .lmtp ? .needLHLO : .needHello
    }

    private var noValidRecipientsReply: SMTPReply {
        config.dialect == .lmtp ? .noValidRecipientsLMTP : .noValidRecipients
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

    // MARK: - STARTTLS (RFC 3207)

    private mutating func startTLS(_ actions: inout [SMTPAction]) {
        guard transaction == nil else { return protocolError(.transactionInProgress, &actions) }
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

    // MARK: - AUTH (RFC 4954)

    private mutating func startAuth(_ name: String, _ initialResponse: ArraySlice<UInt8>?, _ actions: inout [SMTPAction]) {
        guard helo != nil else { return protocolError(needHelloReply, &actions) }
        guard heloVerb != .helo else { return protocolError(.ehloRequired, &actions) }
        guard authUser == nil else { return protocolError(.alreadyAuthenticated, &actions) }
        guard transaction == nil else { return protocolError(.transactionInProgress, &actions) }
        guard isAuthAvailable else { return protocolError(.tlsRequiredForAuth, &actions) }
        guard let mechanism = SASLMechanism(rawValue: name), config.authMechanisms.contains(mechanism) else {
            return protocolError(.authMechanismUnknown, &actions)
        }
        guard let initialResponse else {
            switch mechanism {
            case .plain:
                authExchange = .plain
                actions.append(.reply(.authChallengeEmpty))
            case .login:
                authExchange = .loginUsername
                actions.append(.reply(.authChallengeUsername))
            }
            return
        }
        guard let decoded = SASL.decodeResponse(initialResponse) else {
            return protocolError(.authBadBase64, &actions)
        }
        switch mechanism {
        case .plain:
            finishPlain(decoded, &actions)
        case .login:
            // LOGIN with an initial response: it is the user name.
            loginUsername(decoded, &actions)
        }
    }

    /// A line while a SASL exchange is in progress (RFC 4954 §4).
    private mutating func authResponse(_ line: Slice<UnsafeBufferPointer<UInt8>>, _ actions: inout [SMTPAction]) {
        guard let exchange = authExchange else { return }
        authExchange = nil
        let bytes = ArraySlice(line)
        if bytes.count == 1, bytes.first == UInt8(ascii: "*") {
            return protocolError(.authCancelled, &actions)
        }
        guard let decoded = SASL.decodeResponse(bytes) else {
            return protocolError(.authBadBase64, &actions)
        }
        switch exchange {
        case .plain:
            finishPlain(decoded, &actions)
        case .loginUsername:
            loginUsername(decoded, &actions)
        case .loginPassword(let user):
            guard let password = SASL.parseLoginField(decoded) else {
                return authFailure(user: user, mechanism: .login, &actions)
            }
            requestAuthentication(user: user, password: password, mechanism: .login, &actions)
        }
    }

    private mutating func loginUsername(_ decoded: [UInt8], _ actions: inout [SMTPAction]) {
        guard let user = SASL.parseLoginField(decoded) else {
            return authFailure(user: String(decoding: decoded, as: UTF8.self), mechanism: .login, &actions)
        }
        authExchange = .loginPassword(user)
        actions.append(.reply(.authChallengePassword))
    }

    private mutating func finishPlain(_ message: [UInt8], _ actions: inout [SMTPAction]) {
        switch SASL.parsePlain(message) {
        case .success(let (user, password)):
            requestAuthentication(user: user, password: password, mechanism: .plain, &actions)
        case .failure(.malformed(let user)), .failure(.authzidMismatch(let user)):
            authFailure(user: user, mechanism: .plain, &actions)
        case .failure(.badBase64):
            protocolError(.authBadBase64, &actions)
        }
    }

    private mutating func requestAuthentication(user: String, password: String, mechanism: SASLMechanism,
                                                _ actions: inout [SMTPAction]) {
        waiting = .auth(mechanism, user: user)
        actions.append(.authenticate(user: user, password: password))
    }

    /// Counts a failure, tells the glue, and answers 535 now or after `.delay`.
    private mutating func authFailure(user: String, mechanism: SASLMechanism, _ actions: inout [SMTPAction]) {
        authFailures += 1
        actions.append(.authFailed(user: SASL.logSafe(user), mechanism: mechanism, failures: authFailures))
        let delay = config.authFailureDelay.delay(afterFailure: authFailures)
        if delay > .zero {
            waiting = .delay
            actions.append(.delay(delay))
            return
        }
        finishAuthFailure(&actions)
    }

    private mutating func finishAuthFailure(_ actions: inout [SMTPAction]) {
        actions.append(.reply(.authCredentialsInvalid))
        if authFailures >= config.limits.maxAuthFailures {
            actions.append(.reply(.tooManyAuthFailures))
            close(&actions)
        }
    }

    // MARK: - BDAT (RFC 3030)

    /// A BDAT command: its octets are always read, whatever the answer (RFC 3030 §2).
    private mutating func startChunk(size: Int, last: Bool, _ actions: inout [SMTPAction]) {
        var refusal: SMTPReply? = nil
        var countsAsError = true
        if helo == nil {
            refusal = needHelloReply
        } else if heloVerb == .helo {
            refusal = .ehloRequired
        } else if transaction == nil {
            refusal = .needMail
        } else if transaction?.recipients.isEmpty == true {
            refusal = noValidRecipientsReply         // as for DATA: not counted
            countsAsError = false
        }
        if refusal == nil, var current = transaction {
            if bdatReader == nil {
                current.chunked = true
                transaction = current
                bdatReader = BDATReader(limits: config.limits)
            }
            bdatReader!.announce(size, envelope: current, actions: &actions)
        }
        bdatChunk = BDATChunk(size: size, remaining: size, last: last, refusal: refusal, countsAsError: countsAsError)
        if size == 0 {
            finishChunk(&actions)
        } else {
            phase = .bdat
        }
    }

    /// Reads octets of the current chunk from `p[start...]`.
    private mutating func consumeChunk(_ p: UnsafeBufferPointer<UInt8>, from start: Int, _ actions: inout [SMTPAction]) -> Int {
        guard var chunk = bdatChunk else {
            phase = .command
            return start
        }
        let take = min(chunk.remaining, p.count - start)
        if chunk.refusal == nil {
            bdatReader?.append(p, start, start + take, &actions)
        }
        chunk.remaining -= take
        bdatChunk = chunk
        if chunk.remaining == 0 { finishChunk(&actions) }
        return start + take
    }

    private mutating func finishChunk(_ actions: inout [SMTPAction]) {
        phase = .command
        guard let chunk = bdatChunk else { return }
        bdatChunk = nil
        if let refusal = chunk.refusal {
            if chunk.countsAsError { protocolError(refusal, &actions) } else { actions.append(.reply(refusal)) }
            return
        }
        guard chunk.last else {
            actions.append(.reply(.chunkReceived(chunk.size)))
            return
        }
        guard var body = bdatReader else { return }
        bdatReader = nil
        if let reason = body.finish(actions: &actions) {
            let count = config.dialect == .lmtp ? max(transaction?.recipients.count ?? 1, 1) : 1
            for _ in 0..<count { actions.append(.reply(reason.reply)) }
            transaction = nil
        } else {
            waiting = .delivery
        }
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

    /// Ends the transaction early (RSET, HELO/EHLO, close). A message begun with BDAT is
    /// aborted so the glue drops what it received.
    private mutating func abandonTransaction(_ actions: inout [SMTPAction]) {
        bdatReader?.abandon(actions: &actions)
        bdatReader = nil
        transaction = nil
    }

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
        if phase != .data, waiting != .delivery {
            bdatReader?.abandon(actions: &actions)
        }
        phase = .closed
        waiting = .none
        transaction = nil
        pendingSender = nil
        bdatReader = nil
        bdatChunk = nil
        authExchange = nil
        input = []
        inputStart = 0
        actions.append(.close)
    }
}
