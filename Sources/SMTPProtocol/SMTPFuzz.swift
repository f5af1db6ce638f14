// Fuzz entry point: drives sessions with arbitrary bytes, answering the glue's requests
// deterministically, and traps (precondition) when an engine invariant breaks.
//
// Invariants checked: nothing after `close`; chunks only inside a message, exact-size except
// the last, within maxMessageSize; a body delivered from DATA never holds a bare CR or LF; LMTP
// gives one reply per recipient after DATA/BDAT LAST; the envelope delivered is the one announced
// by `beginMessage`; nothing follows `.startTLS` in a batch and
// no input from before the handshake is acted on after it; AUTH only where allowed; sender
// checks, remote recipients and accepted MAILs only as the auth policy permits; and the
// action stream does not depend on how the input was split (whole / random pieces / byte by
// byte).
//
// TLS handshakes: the input is cut into records at every 0x16 byte (the TLS handshake record
// type), which are dropped. When the session asks for `.startTLS`, the driver drops the rest
// of the current record — the plaintext a man in the middle could have injected after the
// STARTTLS line — then completes the "handshake" and goes on with the next record.
import MailSyntax

public enum SMTPFuzz {
    /// Byte 0 picks the configuration; byte 1 seeds the input segmentation and its high
    /// nibble enables smtpd features (see `features`); the rest is what the client sends.
    public static func run(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let setup = Setup(config: configuration(data[0], features: data[1] >> 4), loopback: data[1] & 0x80 != 0)
        let seed = UInt64(data[1])
        let records = Array(data[2...]).split(separator: 0x16, omittingEmptySubsequences: false).map(Array.init)

        let whole = drive(setup, records: records.map { [$0] })
        check(whole, setup: setup)
        let split = drive(setup, records: records.map { segment($0, seed: seed) })
        precondition(split == whole, "actions depend on input segmentation")
        if data.count <= 4096 {
            let bytewise = drive(setup, records: records.map { $0.map { [$0] } })
            precondition(bytewise == whole, "actions differ when fed byte by byte")
        }
    }

    struct Setup {
        var config: SMTPSessionConfig
        var loopback: Bool
    }

    /// Feature bits (high nibble of byte 1): 0x1 STARTTLS + AUTH PLAIN LOGIN + CHUNKING +
    /// BINARYMIME + DSN with a short failure delay and 3 AUTH failures; 0x2 implicit TLS; 0x4 MAIL
    /// needs AUTH (else the null sender is allowed when authenticated); 0x8 loopback client.
    static func configuration(_ b: UInt8, features: UInt8) -> SMTPSessionConfig {
        var config = configuration(b)
        if features & 0x1 != 0 {
            config.tlsAvailable = true
            config.authMechanisms = [.plain, .login]
            config.extensions += [.chunking, .binaryMIME, .dsn]
            config.authFailureDelay = AuthFailureDelay(initial: .milliseconds(1), maximum: .milliseconds(3))
            config.limits.maxAuthFailures = 3
            config.limits.maxAuthLine = 200
        }
        config.implicitTLS = features & 0x2 != 0
        config.requireAuthForMail = features & 0x4 != 0
        config.allowNullSenderWhenAuthenticated = features & 0x4 == 0
        return config
    }

    /// Small limits so that every limit is reachable by short inputs.
    static func configuration(_ b: UInt8) -> SMTPSessionConfig {
        var limits = SMTPLimits()
        limits.maxMessageSize = b & 0x04 != 0 ? 300 : 1 << 20
        limits.maxTextLine = b & 0x08 != 0 ? 40 : Int.max
        limits.maxCommandLine = b & 0x10 != 0 ? 40 : 512
        limits.messageChunkSize = b & 0x20 != 0 ? 7 : 64 * 1024
        limits.maxRecipients = b & 0x40 != 0 ? 2 : 100
        limits.maxErrors = b & 0x80 != 0 ? 3 : 50
        return SMTPSessionConfig(
            dialect: b & 0x01 != 0 ? .lmtp : .smtp,
            hostname: "mx.example.org",
            limits: limits,
            bareLinefeed: b & 0x02 != 0 ? .normalize : .reject)
    }

    /// Splits `input` into pieces of pseudo-random length (1...64).
    static func segment(_ input: [UInt8], seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(seed: seed)
        var pieces: [[UInt8]] = []
        var i = 0
        while i < input.count {
            let length = Int(rng.next() % 64) + 1
            let end = min(i + length, input.count)
            pieces.append(Array(input[i..<end]))
            i = end
        }
        return pieces
    }

    static let tlsInfo = TLSInfo(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", bits: 128)

    /// Feeds the records' pieces, answering every request as a store / TLS stack would.
    static func drive(_ setup: Setup, records: [[[UInt8]]]) -> [SMTPAction] {
        var session = SMTPSession(config: setup.config, clientAddress: setup.loopback ? "127.0.0.1" : "192.0.2.1")
        var all = session.greeting()
        /// Appends one batch; a `.startTLS` must end it.
        func take(_ batch: [SMTPAction]) {
            if let index = batch.firstIndex(of: .startTLS) {
                precondition(index == batch.count - 1, "actions after startTLS")
            }
            all += batch
        }
        for record in records {
            pieces: for piece in record {
                take(session.receive(piece))
                while session.isAwaitingExternal {
                    switch all.last {
                    case .checkRecipient(let path)?:
                        take(session.recipientLookedUp(recipientVerdict(path)))
                    case .checkPostmaster?:
                        take(session.recipientLookedUp(.ok(canonical: "postmaster@example.org")))
                    case .endMessage?:
                        let begun = all.last { if case .beginMessage = $0 { return true } else { return false } }
                        precondition(begun.map { $0 == .beginMessage(session.envelope!) } ?? false,
                                     "envelope changed after beginMessage")
                        let recipients = session.envelope?.recipients ?? []
                        take(session.deliveryFinished(recipients.map(deliveryVerdict)))
                    case .checkSender(let path)?:
                        take(session.senderChecked(allowed: senderVerdict(path)))
                    case .checkSenderDomain(let domain)?:
                        take(session.senderDomainLookedUp(isLocal: domain.lowercased() == "example.org"))
                    case .authenticate(let user, let password)?:
                        take(session.authenticated(authVerdict(user: user, password: password)))
                    case .delay?:
                        take(session.delayElapsed())
                    case .startTLS?:
                        // Whatever the rest of this record holds was sent before the handshake.
                        precondition(session.receive(Array("NOOP\r\n".utf8)).isEmpty, "input acted on during the handshake")
                        let after = session.tlsStarted(info: tlsInfo)
                        precondition(after.isEmpty, "tlsStarted replied")
                        precondition(!session.isAwaitingExternal && session.isTLSActive)
                        break pieces
                    default:
                        preconditionFailure("waiting without a pending request")
                    }
                }
                precondition(!session.isAwaitingExternal)
            }
        }
        if !session.isClosed {
            all += session.timedOut()
        }
        return all
    }

    /// The store's answer by address length; postmaster@ is not local, so the <Postmaster>
    /// fallback (`.checkPostmaster`) is exercised too.
    static func recipientVerdict(_ path: MailPath) -> RecipientLookup {
        if path.localPart.lowercased() == "postmaster" { return .notLocal }
        switch path.address.utf8.count % 6 {
        case 0, 1: return .ok(canonical: path.address)
        case 2: return .unknownUser
        case 4: return .tempFail
        default: return .notLocal      // 3, 5: relay denied, or queued after AUTH
        }
    }

    /// The null sender is allowed; other senders by the length of their local part.
    static func senderVerdict(_ path: MailPath?) -> Bool {
        guard let path else { return true }
        return path.localPart.utf8.count % 3 != 0
    }

    /// "secret" succeeds, "temp" fails temporarily, anything else is wrong.
    static func authVerdict(user: String, password: String) -> AuthResult {
        switch password {
        case "secret": return .success(user.lowercased())
        case "temp": return .tempFail
        default: return .failure
        }
    }

    static func deliveryVerdict(_ path: MailPath) -> DeliveryResult {
        path.address.utf8.count % 7 == 0 ? .failed(.mailboxFull) : .delivered
    }

    /// Invariants over one action stream.
    static func check(_ actions: [SMTPAction], setup: Setup) {
        let config = setup.config
        var closed = false
        var inMessage = false
        var body: [UInt8] = []
        var lastChunkShort = false
        var recipientsInMessage = 0
        var expectRepliesAfterEnd = 0
        var tls = config.implicitTLS
        var authenticated = false
        var authPending = false
        var failures = 0
        var messageFromDATA = false
        var previous: SMTPAction? = nil
        for action in actions {
            precondition(!closed, "action after close")
            if case .reply = action {} else {
                precondition(expectRepliesAfterEnd == 0, "missing per-recipient replies after DATA")
            }
            if case .reply(.tooManyAuthFailures)? = previous {
                precondition(action == .close, "421 without close")
            }
            switch action {
            case .reply(let reply):
                precondition((200..<600).contains(reply.code), "bad reply code")
                let wire = reply.encoded()
                precondition(wire.count >= 5 && wire[wire.count - 2] == 13 && wire[wire.count - 1] == 10)
                if expectRepliesAfterEnd > 0 { expectRepliesAfterEnd -= 1 }
                if reply == .authSucceeded {
                    precondition(authPending, "235 without authenticate")
                    authenticated = true
                }
                if reply.code == 235 || reply.code == 535 || reply == .authTemporaryFailure { authPending = false }
                if reply == .okSender, config.requireAuthForMail {
                    precondition(authenticated, "MAIL accepted without AUTH")
                }
            case .checkRecipient, .checkPostmaster:
                precondition(!inMessage)
            case .startTLS:
                precondition(previous == .reply(.readyToStartTLS), "startTLS without 220")
                precondition(!tls && !inMessage, "STARTTLS twice or inside a message")
                tls = true
                authenticated = false
            case .authenticate:
                precondition(!config.requireTLSForAuth || tls || setup.loopback, "AUTH before TLS")
                precondition(!authenticated, "AUTH twice")
                authPending = true
            case .authFailed(_, _, let count):
                failures += 1
                precondition(count == failures && count <= config.limits.maxAuthFailures, "failure count")
            case .delay:
                if case .authFailed? = previous {} else { preconditionFailure("delay without authFailed") }
            case .checkSender:
                precondition(authenticated, "sender check without AUTH")
            case .checkSenderDomain:
                precondition(!authenticated && config.localSenderRequiresAuth, "sender domain check after AUTH")
            case .beginMessage(let envelope):
                precondition(!inMessage && !envelope.recipients.isEmpty)
                precondition(envelope.remoteIndices.allSatisfy { $0 < envelope.recipients.count })
                precondition(envelope.remoteIndices.isEmpty || envelope.authenticatedUser != nil, "relay without AUTH")
                precondition(!config.requireAuthForMail || envelope.authenticatedUser != nil, "message without AUTH")
                messageFromDATA = previous == .reply(.startMailInput)
                precondition(messageFromDATA != envelope.chunked)
                inMessage = true
                body = []
                lastChunkShort = false
                recipientsInMessage = envelope.recipients.count
            case .messageChunk(let chunk):
                precondition(inMessage, "chunk outside a message")
                precondition(!chunk.isEmpty && chunk.count <= config.limits.messageChunkSize)
                precondition(!lastChunkShort, "short chunk before the last one")
                lastChunkShort = chunk.count < config.limits.messageChunkSize
                body += chunk
                precondition(body.count <= config.limits.maxMessageSize, "body over the size limit")
            case .abortMessage:
                precondition(inMessage)
                inMessage = false
            case .endMessage:
                precondition(inMessage)
                inMessage = false
                if messageFromDATA { checkLineEnds(body) }   // BDAT bodies are binary
                expectRepliesAfterEnd = config.dialect == .lmtp ? recipientsInMessage : 1
            case .close:
                closed = true
            }
            previous = action
        }
        precondition(!inMessage || !closed, "closed inside a message without abort")
    }

    /// A delivered body consists of CRLF-terminated lines only.
    static func checkLineEnds(_ body: [UInt8]) {
        var i = 0
        while i < body.count {
            if body[i] == 13 {
                precondition(i + 1 < body.count && body[i + 1] == 10, "bare CR in delivered body")
                i += 2
            } else {
                precondition(body[i] != 10, "bare LF in delivered body")
                i += 1
            }
        }
        precondition(body.isEmpty || (body.count >= 2 && body[body.count - 2] == 13 && body[body.count - 1] == 10),
                     "body does not end in CRLF")
    }
}
