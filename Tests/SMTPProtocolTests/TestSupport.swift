// Helpers shared by the SMTPProtocol tests: a scripted glue that answers the session's
// requests, and views of the resulting action stream.
import SMTPProtocol
import XCTest

extension Array where Element == UInt8 {
    init(ascii text: String) { self = Array(text.utf8) }
}

func lmtpConfig(limits: SMTPLimits = SMTPLimits(), bareLinefeed: BareLinefeedPolicy = .reject) -> SMTPSessionConfig {
    SMTPSessionConfig(dialect: .lmtp, hostname: "mx.example.org", limits: limits, bareLinefeed: bareLinefeed,
                      serviceName: "Postern LMTP")
}

func smtpConfig(limits: SMTPLimits = SMTPLimits(), bareLinefeed: BareLinefeedPolicy = .reject) -> SMTPSessionConfig {
    SMTPSessionConfig(dialect: .smtp, hostname: "mx.example.org", limits: limits, bareLinefeed: bareLinefeed)
}

/// Plays the glue: feeds input pieces and answers recipient checks and deliveries.
struct ScriptedGlue {
    var session: SMTPSession
    /// Verdict per recipient address; default `.accept`.
    var verdicts: [String: RecipientCheck] = [:]
    /// Delivery result per recipient address; default `.delivered`.
    var deliveries: [String: DeliveryResult] = [:]
    /// Every action in order.
    private(set) var actions: [SMTPAction] = []

    init(_ config: SMTPSessionConfig, greet: Bool = false) {
        session = SMTPSession(config: config, clientAddress: "192.0.2.7")
        if greet { actions += session.greeting() }
    }

    mutating func feed(_ pieces: [[UInt8]]) {
        for piece in pieces {
            actions += session.receive(piece)
            answerPending()
        }
    }

    mutating func feed(_ text: String) { feed([Array(ascii: text)]) }

    mutating func feedBytewise(_ text: String) { feed(Array(text.utf8).map { [$0] }) }

    mutating func answerPending() {
        while session.isAwaitingExternal {
            switch actions.last {
            case .checkRecipient(let path)?:
                actions += session.recipientChecked(verdicts[path.address] ?? .accept)
            case .endMessage?:
                let results = (session.envelope?.recipients ?? []).map { deliveries[$0.address] ?? .delivered }
                actions += session.deliveryFinished(results)
            default:
                XCTFail("session waits but the last action is \(String(describing: actions.last))")
                return
            }
        }
    }

    var replies: [SMTPReply] { actions.compactMap { if case .reply(let r) = $0 { return r } else { return nil } } }
    var codes: [String] { replies.map { "\($0.code) \($0.enhanced ?? "")".trimmingCharacters(in: .whitespaces) } }
    /// The bodies of the messages, one entry per beginMessage (nil if aborted).
    var bodies: [[UInt8]?] {
        var result: [[UInt8]?] = []
        var current: [UInt8]? = nil
        for action in actions {
            switch action {
            case .beginMessage: current = []
            case .messageChunk(let chunk): current! += chunk
            case .endMessage: result.append(current); current = nil
            case .abortMessage: result.append(nil); current = nil
            default: break
            }
        }
        return result
    }
}

/// Adjacent chunks merged, so streams fed differently can be compared by content.
func coalesced(_ actions: [SMTPAction]) -> [SMTPAction] {
    var out: [SMTPAction] = []
    for action in actions {
        if case .messageChunk(let b) = action, case .messageChunk(let a)? = out.last {
            out[out.count - 1] = .messageChunk(a + b)
        } else {
            out.append(action)
        }
    }
    return out
}

/// Deterministic PRNG for reproducible "random" tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
