// Helpers shared by the SMTPProtocol tests: a scripted glue that answers the session's
// requests, and views of the resulting action stream.
import Foundation
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

/// The EHLO/LHLO keywords of `SMTPExtension.defaults` with the default limits.
let defaultKeywords = ["PIPELINING", "8BITMIME", "SIZE 52428800", "ENHANCEDSTATUSCODES", "SMTPUTF8"]

/// smtpd presets with fixed test settings: no failure delay unless asked.
func smtpdConfig(_ role: SMTPRole, limits: SMTPLimits = SMTPLimits(), delay: AuthFailureDelay = .none) -> SMTPSessionConfig {
    var config = SMTPSessionConfig.smtpd(role: role, hostname: "mx.example.org", limits: limits)
    config.authFailureDelay = delay
    return config
}

let testTLSInfo = TLSInfo(version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256)

/// Plays the glue: feeds input pieces and answers recipient checks, sender checks,
/// authentications, delays, TLS handshakes and deliveries.
struct ScriptedGlue {
    var session: SMTPSession
    /// Verdict per recipient address; default `.accept`.
    var verdicts: [String: RecipientCheck] = [:]
    /// Delivery result per recipient address; default `.delivered`.
    var deliveries: [String: DeliveryResult] = [:]
    /// user -> (password, canonical name). Unknown users fail.
    var credentials: [String: (password: String, canonical: String)] = [
        "alice": ("secret", "alice@example.org"),
    ]
    /// Answer `.authenticate` with `.tempFail`.
    var authTempFail = false
    /// Addresses the authenticated user owns; `<>` (nil) is always allowed when asked.
    var ownedSenders: Set<String> = ["alice@example.org", "alias@example.org"]
    /// Complete TLS handshakes (else the session stays waiting).
    var completeTLS = true
    /// Every action in order.
    private(set) var actions: [SMTPAction] = []
    /// Indices into `actions` where a TLS handshake completed.
    private(set) var handshakes: [Int] = []

    init(_ config: SMTPSessionConfig, greet: Bool = false, clientAddress: String = "192.0.2.7", loopback: Bool? = nil) {
        session = SMTPSession(config: config, clientAddress: clientAddress, clientIsLoopback: loopback,
                              tlsInfo: config.implicitTLS ? testTLSInfo : nil)
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
            case .checkSender(let path)?:
                actions += session.senderChecked(allowed: path.map { ownedSenders.contains($0.address) } ?? true)
            case .authenticate(let user, let password)?:
                let result: AuthResult
                if authTempFail {
                    result = .tempFail
                } else if let entry = credentials[user], entry.password == password {
                    result = .success(entry.canonical)
                } else {
                    result = .failure
                }
                actions += session.authenticated(result)
            case .delay?:
                actions += session.delayElapsed()
            case .startTLS?:
                guard completeTLS else { return }
                handshakes.append(actions.count)
                let after = session.tlsStarted(info: testTLSInfo)
                XCTAssertEqual(after, [], "tlsStarted never replies")
                actions += after
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

/// Runs `segments` through a glue — whole, or one byte at a time — where each segment is
/// what the client sends after the previous TLS handshake (or the first segment).
func transcript(_ config: SMTPSessionConfig, _ segments: [String], bytewise: Bool = false, greet: Bool = false,
                loopback: Bool? = nil, setup: (inout ScriptedGlue) -> Void = { _ in }) -> ScriptedGlue {
    var glue = ScriptedGlue(config, greet: greet, loopback: loopback)
    setup(&glue)
    for segment in segments {
        if bytewise { glue.feedBytewise(segment) } else { glue.feed(segment) }
    }
    return glue
}

/// Runs a transcript whole and byte by byte and checks both give the same actions.
func transcriptBothWays(_ config: SMTPSessionConfig, _ segments: [String], greet: Bool = false, loopback: Bool? = nil,
                        file: StaticString = #filePath, line: UInt = #line,
                        setup: (inout ScriptedGlue) -> Void = { _ in }) -> ScriptedGlue {
    let whole = transcript(config, segments, greet: greet, loopback: loopback, setup: setup)
    let bytewise = transcript(config, segments, bytewise: true, greet: greet, loopback: loopback, setup: setup)
    XCTAssertEqual(whole.actions, bytewise.actions, "fed byte by byte", file: file, line: line)
    return whole
}

func base64(_ text: String) -> String {
    Data(text.utf8).base64EncodedString()
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

