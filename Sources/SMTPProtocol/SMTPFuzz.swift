// Fuzz entry point: drives sessions with arbitrary bytes, answering the glue's requests
// deterministically, and traps (precondition) when an engine invariant breaks.
//
// Invariants checked: nothing after `close`; chunks only inside a message, exact-size except
// the last, within maxMessageSize; a delivered body never holds a bare CR or LF; LMTP gives one
// reply per recipient after DATA; and the action stream does not depend on how the input
// was split (whole / random pieces / byte by byte).

public enum SMTPFuzz {
    /// Byte 0 picks the configuration, byte 1 seeds the input segmentation, the rest is
    /// what the client sends.
    public static func run(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let config = configuration(data[0])
        let seed = UInt64(data[1])
        let input = Array(data[2...])

        let whole = drive(config, pieces: [input])
        check(whole, config: config)
        let split = drive(config, pieces: segment(input, seed: seed))
        precondition(split == whole, "actions depend on input segmentation")
        if input.count <= 4096 {
            let bytewise = drive(config, pieces: input.map { [$0] })
            precondition(bytewise == whole, "actions differ when fed byte by byte")
        }
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
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        var pieces: [[UInt8]] = []
        var i = 0
        while i < input.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = Int((state >> 33) % 64) + 1
            let end = min(i + length, input.count)
            pieces.append(Array(input[i..<end]))
            i = end
        }
        return pieces
    }

    /// Feeds the pieces, answering recipient checks and deliveries as a store would.
    static func drive(_ config: SMTPSessionConfig, pieces: [[UInt8]]) -> [SMTPAction] {
        var session = SMTPSession(config: config, clientAddress: "192.0.2.1")
        var all = session.greeting()
        for piece in pieces {
            all += session.receive(piece)
            while session.isAwaitingExternal {
                switch all.last {
                case .checkRecipient(let path)?:
                    all += session.recipientChecked(recipientVerdict(path))
                case .endMessage?:
                    let recipients = session.envelope?.recipients ?? []
                    all += session.deliveryFinished(recipients.map(deliveryVerdict))
                default:
                    preconditionFailure("waiting without a pending request")
                }
            }
            precondition(!session.isAwaitingExternal)
        }
        if !session.isClosed {
            all += session.timedOut()
        }
        return all
    }

    static func recipientVerdict(_ path: MailPath) -> RecipientCheck {
        switch path.address.utf8.count % 5 {
        case 0, 1: return .accept
        case 2: return .unknown
        case 3: return .relayDenied
        default: return .tempFail
        }
    }

    static func deliveryVerdict(_ path: MailPath) -> DeliveryResult {
        path.address.utf8.count % 7 == 0 ? .failed(.mailboxFull) : .delivered
    }

    /// Invariants over one action stream.
    static func check(_ actions: [SMTPAction], config: SMTPSessionConfig) {
        var closed = false
        var inMessage = false
        var body: [UInt8] = []
        var lastChunkShort = false
        var recipientsInMessage = 0
        var expectRepliesAfterEnd = 0
        for action in actions {
            precondition(!closed, "action after close")
            if case .reply = action {} else {
                precondition(expectRepliesAfterEnd == 0, "missing per-recipient replies after DATA")
            }
            switch action {
            case .reply(let reply):
                precondition((200..<600).contains(reply.code), "bad reply code")
                let wire = reply.encoded()
                precondition(wire.count >= 5 && wire[wire.count - 2] == 13 && wire[wire.count - 1] == 10)
                if expectRepliesAfterEnd > 0 { expectRepliesAfterEnd -= 1 }
            case .checkRecipient:
                precondition(!inMessage)
            case .beginMessage(let envelope):
                precondition(!inMessage && !envelope.recipients.isEmpty)
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
                checkLineEnds(body)
                expectRepliesAfterEnd = config.dialect == .lmtp ? recipientsInMessage : 1
            case .close:
                closed = true
            }
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
