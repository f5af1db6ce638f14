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
//
// Policy is decided here, not in the glue: the store's answers come back in store terms
// (`recipientLookedUp`, `deliveryAnswered`) and the session picks the replies; the command
// table (SMTPCommandTable) guards every verb; `shutdownRequested` says when a draining
// worker's session may close. Files: this one (state, resume calls, input), +Commands,
// +Auth, +BDAT, +Headers.

public struct SMTPSession: Sendable {
    public let config: SMTPSessionConfig
    public let clientAddress: String
    /// The client connects from a loopback address: AUTH is allowed before TLS.
    public let clientIsLoopback: Bool
    /// The client is in the trusted networks: it may use our domains as sender without AUTH.
    public let clientIsTrusted: Bool

    enum Phase: Sendable, Equatable {
        case command
        case data
        case bdat          // reading the octets of a BDAT chunk
        case closed
    }

    enum Waiting: Sendable, Equatable {
        case none
        /// `postmasterRetried`: the bare "postmaster" is being asked (RFC 5321 §4.5.1).
        case recipient(MailPath, postmasterRetried: Bool = false)
        case delivery
        case tls                                   // after .startTLS, until tlsStarted
        case auth(SASLMechanism, user: String)     // after .authenticate
        case sender                                // after .checkSender
        case senderDomain                          // after .checkSenderDomain
        case delay                                 // after .delay, until delayElapsed
    }

    /// A SASL exchange in progress: the next line is a response, not a command.
    enum AuthExchange: Sendable, Equatable {
        case plain                    // 334 sent, waiting for the PLAIN message
        case loginUsername            // 334 VXNlcm5hbWU6 sent
        case loginPassword(String)    // 334 UGFzc3dvcmQ6 sent
    }

    /// The BDAT chunk being read.
    struct BDATChunk: Sendable, Equatable {
        var size: Int
        var remaining: Int
        var last: Bool
        /// Set when the command was refused: the octets are read and dropped, then this
        /// reply is sent (`countsAsError`: through protocolError).
        var refusal: SMTPReply?
        var countsAsError: Bool
    }

    var phase: Phase = .command
    var waiting: Waiting = .none
    /// Argument of the last HELO/EHLO/LHLO, and which of them it was.
    var helo: String?
    var heloVerb: SMTPVerb?
    /// Non-nil from an accepted MAIL until the transaction ends.
    var transaction: SMTPEnvelope?
    /// MAIL waiting for `senderChecked`.
    var pendingSender: SMTPEnvelope?
    /// The DSN parameters of the RCPT waiting for its check (RFC 3461 §4.1, §4.2).
    var pendingRecipientDSN = RcptDSNParameters()
    /// Errors and junk commands since the session began or a message was last delivered
    /// (`SMTPLimits.maxErrors`, `maxJunkCommands`).
    var errorCount = 0
    var junkCount = 0
    var framer: CommandFramer
    var reader: DataReader
    /// Non-nil once the current transaction used BDAT, until LAST or the transaction ends.
    var bdatReader: BDATReader?
    var bdatChunk: BDATChunk?
    var authExchange: AuthExchange?
    var tlsActive: Bool
    var authUser: String?
    var authFailures = 0
    let optionalCommands: SMTPOptionalCommands
    /// Unconsumed input: a partial command line, or everything received while waiting.
    var input: [UInt8] = []
    var inputStart = 0
    /// 421 and close once the current message is answered: the worker is shutting down, or
    /// the session reached its maximum length while the store was delivering.
    var pendingClose: SMTPReply?

    /// - clientIsLoopback: nil derives it from `clientAddress` (127.0.0.0/8, ::1,
    ///   ::ffff:127.x.x.x); a unix-socket peer is not treated as loopback unless passed.
    /// - tlsInfo: for implicit TLS when the handshake is already done (else see `tlsStarted`).
    /// - clientIsTrusted: nil means loopback (SMTPSessionConfig.localSenderRequiresAuth).
    public init(config: SMTPSessionConfig, clientAddress: String, clientIsLoopback: Bool? = nil, tlsInfo: TLSInfo? = nil,
                clientIsTrusted: Bool? = nil) {
        self.config = config
        self.clientAddress = clientAddress
        self.clientIsLoopback = clientIsLoopback ?? SMTPSession.isLoopbackAddress(clientAddress)
        self.clientIsTrusted = clientIsTrusted ?? self.clientIsLoopback
        // RFC 3461 §4.4/§4.2: with DSN, MAIL may be 100 and RCPT 500 characters longer.
        self.framer = CommandFramer(maxLine: config.limits.maxCommandLine + (config.advertises(.dsn) ? DSNParameterParser.commandLineAllowance : 0),
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

    /// True after a request to the glue (`checkRecipient`, `checkPostmaster`, `checkSender`, `authenticate`,
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

    /// The store's answer to `checkRecipient` (or `checkPostmaster`); the engine decides the
    /// reply. A local address is accepted; `notLocal` only for an authenticated session,
    /// queued for the outbound agent (DESIGN §4: never an open relay). RFC 5321 §4.5.1: when
    /// postmaster@hostname is not local, `.checkPostmaster` asks about the bare "postmaster"
    /// first; an accepted postmaster@hostname is delivered to the canonical address.
    public mutating func recipientLookedUp(_ lookup: RecipientLookup) -> [SMTPAction] {
        guard case .recipient(let path, let retried) = waiting else { return [] }
        let hostPostmaster = path.localPart.lowercased() == "postmaster"
            && path.domain.lowercased() == config.hostname.lowercased()
        if lookup == .notLocal, hostPostmaster, !retried {
            waiting = .recipient(path, postmasterRetried: true)
            return [.checkPostmaster]
        }
        let check: RecipientCheck
        switch lookup {
        case .ok(let canonical):
            if hostPostmaster, let index = transaction?.recipients.count {
                transaction?.canonicalAddresses[index] = canonical
            }
            check = .accept
        case .unknownUser: check = .unknown
        case .notLocal: check = .acceptRemote
        case .tempFail: check = .tempFail
        case .overQuota: check = .reject(config.overQuotaReply)
        }
        return recipientChecked(check)
    }

    /// Adds an accepted recipient, with its DSN parameters if it gave any; returns its index.
    @discardableResult
    mutating func acceptRecipient(_ path: MailPath) -> Int? {
        guard let index = transaction?.recipients.count else { return nil }
        transaction?.recipients.append(path)
        if pendingRecipientDSN != RcptDSNParameters() { transaction?.recipientDSN[index] = pendingRecipientDSN }
        return index
    }

    /// The glue's verdict on `checkRecipient`. Emits the RCPT reply, then continues with
    /// buffered (pipelined) input. Ignored if no recipient check is pending.
    public mutating func recipientChecked(_ result: RecipientCheck) -> [SMTPAction] {
        guard case .recipient(let path, _) = waiting else { return [] }
        waiting = .none
        var actions: [SMTPAction] = []
        let reply: SMTPReply
        switch result {
        case .accept:
            acceptRecipient(path)
            reply = .okRecipient
        case .acceptRemote where authUser != nil:
            if let index = acceptRecipient(path) { transaction?.remoteIndices.insert(index) }
            reply = .okRecipient
        case .acceptRemote: reply = .relayDenied     // unauthenticated: never relay
        case .unknown: reply = .mailboxUnknown
        case .relayDenied: reply = .relayDenied
        case .tempFail: reply = .localError
        case .reject(let r): reply = r
        }
        if reply.isPermanent {
            // Probing for addresses counts (postconf(5) smtpd_hard_error_limit).
            protocolError(reply, &actions)
        } else {
            actions.append(.reply(reply))
        }
        drain(into: &actions)
        return actions
    }

    /// The store could not answer `checkSender` (unreachable, or no answer in time): 451 4.3.0
    /// and no transaction; the client may try MAIL again (RFC 5321 §4.2.5). Ignored if no check is pending.
    public mutating func senderCheckFailed() -> [SMTPAction] {
        guard waiting == .sender, pendingSender != nil else { return [] }
        waiting = .none
        pendingSender = nil
        var actions: [SMTPAction] = [.reply(.localError)]
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

    /// The store's answer to `checkSenderDomain`: one of our domains → 553 5.7.1 (counted as
    /// an error), else 250 2.1.0 and the transaction starts; nil (the store could not say) →
    /// 451 4.3.0. Then continues with buffered input. Ignored if no check is pending.
    public mutating func senderDomainLookedUp(isLocal: Bool?) -> [SMTPAction] {
        guard waiting == .senderDomain, let pending = pendingSender else { return [] }
        waiting = .none
        pendingSender = nil
        var actions: [SMTPAction] = []
        switch isLocal {
        case false?:
            transaction = pending
            actions.append(.reply(.okSender))
        case true?: protocolError(.localSenderNeedsAuth, &actions)
        case nil: actions.append(.reply(.localError))
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

    /// The store's answer to `endMessage`, in store terms; the engine picks the replies:
    /// delivered → 250, unknown user → 550 5.1.1, not local → 554 5.7.1, over quota →
    /// `config.overQuotaReply` (552 5.2.2 or 452 4.2.2), temporary or rejected → 451 4.3.0; a sender the store refuses for this
    /// session → 553 5.7.1 for every recipient; a failed store → 451 4.3.0.
    public mutating func deliveryAnswered(_ answer: DeliveryAnswer) -> [SMTPAction] {
        let count = transaction?.recipients.count ?? 0
        let results: [DeliveryResult]
        switch answer {
        case .statuses(let statuses):
            results = statuses.map {
                switch $0 {
                case .delivered: return .delivered
                case .unknownUser: return .failed(.mailboxUnknown)
                case .notLocal: return .failed(.relayDenied)
                case .overQuota: return .failed(config.overQuotaReply)
                case .tempFail, .rejected: return .failed(.localError)
                }
            }
        case .senderDenied: results = Array(repeating: .failed(.senderNotOwned), count: count)
        case .failed: results = Array(repeating: .failed(.localError), count: count)
        }
        return deliveryFinished(results)
    }

    /// The glue's answer to `endMessage`. LMTP: one result per accepted recipient, in RCPT
    /// order, each answered with its own reply (RFC 2033 §4.2); missing results count as
    /// 451 4.3.0. SMTP: one reply — success only if every result is `.delivered`, otherwise
    /// the first failure. The transaction then resets and buffered input continues.
    public mutating func deliveryFinished(_ results: [DeliveryResult]) -> [SMTPAction] {
        guard waiting == .delivery else { return [] }
        waiting = .none
        var actions: [SMTPAction] = []
        answerMessage(results, &actions)
        bdatReader = nil
        drain(into: &actions)
        return actions
    }

    /// The worker is draining (the glue got `WorkerSessionEvent.shuttingDown`). Between
    /// messages: 421 4.3.2 and close now (RFC 5321 §3.8). While a message is being read
    /// (DATA, between BDAT chunks) or the store is being asked: nothing now; once that is
    /// answered, 421 4.3.2 and close, and pipelined input after it is not acted on.
    public mutating func shutdownRequested() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        pendingClose = .shuttingDown
        var actions: [SMTPAction] = []
        _ = closeIfShuttingDown(&actions)
        return actions
    }

    /// The glue's idle timer fired: 421 4.4.2 and close (RFC 5321 §4.5.3.2). A message in
    /// progress is aborted first.
    public mutating func timedOut() -> [SMTPAction] {
        abortAndClose(.timeout)
    }

    /// The glue's session timer fired: the session reached its maximum length (the
    /// daemons' `max_session_time`; Postfix has no such limit, its per-read timeouts alone
    /// let a client that trickles bytes hold a slot for ever). 421 4.7.0 and close now, a
    /// message being read is aborted (it was not acknowledged: the client retries); while
    /// the store delivers, the close waits for its answer so an accepted message is
    /// acknowledged.
    public mutating func sessionTimeExceeded() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        if waiting == .delivery {
            pendingClose = .sessionTooLong
            return []
        }
        return abortAndClose(.sessionTooLong)
    }

    /// Aborts a message in progress, then `reply` and close.
    mutating func abortAndClose(_ reply: SMTPReply) -> [SMTPAction] {
        guard phase != .closed else { return [] }
        var actions: [SMTPAction] = []
        if phase == .data {
            reader.abandon(actions: &actions)
        }
        abandonTransaction(&actions)              // a message begun with BDAT
        actions.append(.reply(reply))
        close(&actions)
        return actions
    }

    // MARK: - Input processing

    /// With a close pending and no message under way: its 421, close, and true.
    mutating func closeIfShuttingDown(_ actions: inout [SMTPAction]) -> Bool {
        guard let reply = pendingClose, phase == .command, waiting == .none, bdatReader == nil else { return false }
        transaction = nil
        actions.append(.reply(reply))
        close(&actions)
        return true
    }

    /// Continues with buffered input unless waiting or closed.
    mutating func drain(into actions: inout [SMTPAction]) {
        if closeIfShuttingDown(&actions) { return }
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
    mutating func process(_ p: UnsafeBufferPointer<UInt8>, from start: Int, into actions: inout [SMTPAction]) -> Int {
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
                if closeIfShuttingDown(&actions) { return p.count }
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
                    } else if handleLine(Array(p[range]), &actions).contains(.discardsPipelinedInput), waiting != .none {
                        // Accepted (now waiting for the handshake). RFC 3207 §4.2 (CVE-2011-0411):
                        // drop everything pipelined after STARTTLS.
                        return p.count
                    }
                }
            }
        }
        return i
    }


    /// The last command line, printable and at most 256 characters, for logging a refusal with
    /// what was refused. AUTH keeps only its mechanism: credentials never reach a log.
    public internal(set) var lastCommand = ""

    // MARK: - End of message, errors and closing

    /// The replies that end a message (RFC 5321 §4.1.1.4, RFC 2033 §4.2), then the transaction
    /// ends. LMTP: one per accepted recipient in RCPT order, a missing result counting as
    /// 451 4.3.0. SMTP: one — 250 only if every result is `.delivered`, else the first failure.
    mutating func answerMessage(_ results: [DeliveryResult], _ actions: inout [SMTPAction]) {
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
        if results.contains(.delivered) {
            // postconf(5): the error and junk limits apply "without delivering mail".
            errorCount = 0
            junkCount = 0
        }
        transaction = nil
    }

    /// Counts a junk command (SMTPCommandFlags.junk, a repeated HELO/EHLO/LHLO); over
    /// `maxJunkCommands`: 421 4.7.0, close, and true — the command is not run.
    mutating func tooMuchJunk(_ actions: inout [SMTPAction]) -> Bool {
        junkCount += 1
        guard junkCount > config.limits.maxJunkCommands else { return false }
        abandonTransaction(&actions)
        actions.append(.reply(.tooManyJunkCommands))
        close(&actions)
        return true
    }

    /// A message refused after it was read (too big, bare LF, long line): `reply` for every
    /// recipient (LMTP) or once (SMTP); the glue already got `abortMessage`.
    mutating func refuseMessage(_ reply: SMTPReply, _ actions: inout [SMTPAction]) {
        let count = max(transaction?.recipients.count ?? 1, 1)
        answerMessage(Array(repeating: .failed(reply), count: count), &actions)
    }

    /// Ends the transaction early (RSET, HELO/EHLO, close). A message begun with BDAT is
    /// aborted so the glue drops what it received.
    mutating func abandonTransaction(_ actions: inout [SMTPAction]) {
        bdatReader?.abandon(actions: &actions)
        bdatReader = nil
        transaction = nil
    }

    /// Replies with `reply` and counts a protocol error; drops the session at maxErrors.
    mutating func protocolError(_ reply: SMTPReply, _ actions: inout [SMTPAction]) {
        errorCount += 1
        actions.append(.reply(reply))
        if errorCount >= config.limits.maxErrors {
            actions.append(.reply(.tooManyErrors))
            close(&actions)
        }
    }

    mutating func close(_ actions: inout [SMTPAction]) {
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
