// The POP3 session state machine (RFC 1939 §3: AUTHORIZATION → TRANSACTION → UPDATE) as a value:
// lines in, actions out; the driver carries out logins, message transfers and the UPDATE delete
// and reports back. A command table's flags decide where each command is allowed. Deletions are
// only marks until QUIT in TRANSACTION (RFC 1939 §6); nothing here touches the store.
import MailSyntax

/// One message of the maildrop snapshot taken at login: its UID and size in octets.
public struct POP3Message: Sendable, Equatable {
    public var uid: UInt32, size: Int
    public init(uid: UInt32, size: Int) { self.uid = uid; self.size = size }
}

/// INBOX as it was at login (the snapshot the session works on).
public struct POP3Maildrop: Sendable, Equatable {
    public var mailbox: Int64, uidValidity: UInt32, messages: [POP3Message]
    public init(mailbox: Int64, uidValidity: UInt32, messages: [POP3Message]) {
        self.mailbox = mailbox; self.uidValidity = uidValidity; self.messages = messages
    }
}

public struct POP3EngineConfig: Sendable, Equatable {
    public var hostname: String
    public var limits: POP3Limits
    /// STLS is offered (a TLS context exists and the listener is not implicit TLS).
    public var startTLSAvailable: Bool
    /// Plaintext USER/PASS and AUTH before TLS from a loopback client (plaintext_auth_on_loopback).
    public var plaintextOnLoopback: Bool
    public var implementation: String
    public init(hostname: String, limits: POP3Limits = POP3Limits(), startTLSAvailable: Bool, plaintextOnLoopback: Bool = true,
                implementation: String = "Postern") {
        self.hostname = hostname; self.limits = limits; self.startTLSAvailable = startTLSAvailable
        self.plaintextOnLoopback = plaintextOnLoopback; self.implementation = implementation
    }
}

public enum POP3Action: Sendable, Equatable {
    case reply(POP3Response)
    /// A status line, then these lines and "." (CAPA, LIST, UIDL, AUTH without a mechanism).
    case replyLines(POP3Response, [String])
    /// RFC 5034 §4: "+ " and a base64 challenge; the next line is the client's response.
    case continuation(String)
    /// After `.reply(beginTLS)`: upgrade now, dropping anything pipelined (RFC 2595 §4).
    case startTLS
    /// Check the credentials (then `loginSucceeded` or `loginFailed`). Never logged.
    case login(user: String, password: String, mechanism: String)
    /// RETR (`lines` nil) or TOP: "+OK", the message's bytes dot-stuffed, ".".
    case send(uid: UInt32, size: Int, lines: Int?)
    /// QUIT in TRANSACTION (RFC 1939 §6): delete these UIDs at once, then `updated(ok:)`.
    case update(mailbox: Int64, uids: [UInt32])
    /// Close after what was written.
    case close
}

/// Why a login did not open the maildrop.
public enum POP3LoginFailure: Sendable, Equatable {
    case credentials      // wrong user or password: [AUTH], delayed and counted by the driver
    case inUse            // another session holds the maildrop: [IN-USE]
    case temporary        // the store could not answer: [SYS/TEMP]
}

public struct POP3Engine: Sendable {
    public enum Phase: Sendable, Equatable {
        case authorization
        /// Inside AUTH: waiting for the `step`th response of `mechanism` (LOGIN: user then password).
        case sasl(mechanism: String, user: String?)
        /// A login is being checked: no input is taken.
        case checking
        case transaction
        case update
        case closed
    }

    /// Where each command is allowed (RFC 1939 §4–§6, RFC 2449, RFC 2595, RFC 5034).
    struct Rule { var authorization: Bool, transaction: Bool }
    static let table: [String: Rule] = [
        "USER": Rule(authorization: true, transaction: false), "PASS": Rule(authorization: true, transaction: false),
        "APOP": Rule(authorization: true, transaction: false), "AUTH": Rule(authorization: true, transaction: false),
        "STLS": Rule(authorization: true, transaction: false),
        "CAPA": Rule(authorization: true, transaction: true), "QUIT": Rule(authorization: true, transaction: true),
        "STAT": Rule(authorization: false, transaction: true), "LIST": Rule(authorization: false, transaction: true),
        "RETR": Rule(authorization: false, transaction: true), "DELE": Rule(authorization: false, transaction: true),
        "NOOP": Rule(authorization: false, transaction: true), "RSET": Rule(authorization: false, transaction: true),
        "TOP": Rule(authorization: false, transaction: true), "UIDL": Rule(authorization: false, transaction: true),
    ]

    public let config: POP3EngineConfig
    public private(set) var phase: Phase = .authorization
    public private(set) var tlsActive: Bool
    public let clientIsLoopback: Bool
    public private(set) var maildrop: POP3Maildrop?
    /// Message numbers (1-based) marked by DELE.
    public private(set) var deleted: Set<Int> = []
    private var pendingUser: String?
    private var badInARow = 0
    public private(set) var authFailures = 0

    public init(config: POP3EngineConfig, tlsActive: Bool, clientIsLoopback: Bool) {
        self.config = config; self.tlsActive = tlsActive; self.clientIsLoopback = clientIsLoopback
    }

    /// RFC 2595 §2.3 / DESIGN §5: plaintext credentials only inside TLS, or from trusted loopback.
    public var plaintextAllowed: Bool { tlsActive || (clientIsLoopback && config.plaintextOnLoopback) }
    var stlsOffered: Bool { config.startTLSAvailable && !tlsActive }

    public func greeting() -> [POP3Action] { [.reply(POP3Reply.greeting(config.hostname))] }

    /// RFC 1939 §7: the unique-id listing of a message: "<uidvalidity>.<uid>", stable across
    /// sessions and never reused (a UID is never reused under one UIDVALIDITY).
    public static func uniqueID(uidValidity: UInt32, uid: UInt32) -> String { "\(uidValidity).\(uid)" }

    // MARK: input

    public mutating func receive(_ event: POP3LineFramer.Event) -> [POP3Action] {
        switch event {
        case .lineTooLong:
            if case .sasl = phase { phase = .authorization; return [.reply(POP3Reply.authMalformed)] }
            return bad(POP3Reply.lineTooLong)
        case .line(let line):
            switch phase {
            case .sasl(let mechanism, let user): return saslResponse(line, mechanism: mechanism, user: user)
            case .checking, .update, .closed: return []
            case .authorization, .transaction: break
            }
            switch POP3Parser.parse(line) {
            case .failure(.unknownCommand), .failure(.empty): return bad(POP3Reply.unknownCommand)
            case .failure(.badArguments(let why)): return bad(.err(why))
            case .success(let command): return run(command)
            }
        }
    }

    private mutating func bad(_ r: POP3Response) -> [POP3Action] {
        badInARow += 1
        if badInARow >= config.limits.maxBadCommands { phase = .closed; return [.reply(POP3Reply.tooManyErrors), .close] }
        return [.reply(r)]
    }

    private mutating func run(_ command: POP3Command) -> [POP3Action] {
        let rule = Self.table[command.keyword]!
        let allowed = phase == .authorization ? rule.authorization : rule.transaction
        guard allowed else { return bad(POP3Reply.notNow) }
        badInARow = 0
        if case .pass = command {} else { if phase == .authorization { pendingUser = nil } }
        switch command {
        case .capa: return [.replyLines(POP3Reply.capabilities, capabilities())]
        case .quit:
            if phase == .transaction {
                phase = .update
                let uids = deleted.sorted().map { maildrop!.messages[$0 - 1].uid }
                if uids.isEmpty { phase = .closed; return [.reply(POP3Reply.bye), .close] }
                return [.update(mailbox: maildrop!.mailbox, uids: uids)]
            }
            phase = .closed
            return [.reply(POP3Reply.bye), .close]
        case .stls:
            guard stlsOffered else { return [.reply(POP3Reply.tlsUnavailable)] }
            return [.reply(POP3Reply.beginTLS), .startTLS]
        case .apop: return [.reply(POP3Reply.apopUnsupported)]
        case .user(let name):
            guard plaintextAllowed else { return [.reply(POP3Reply.plaintextDisallowed)] }
            pendingUser = name
            return [.reply(POP3Reply.userAccepted)]
        case .pass(let password):
            guard plaintextAllowed else { return [.reply(POP3Reply.plaintextDisallowed)] }
            guard let user = pendingUser else { return [.reply(POP3Reply.userFirst)] }
            pendingUser = nil
            phase = .checking
            return [.login(user: user, password: password, mechanism: "user")]
        case .auth(let mechanism, let initial): return auth(mechanism: mechanism, initial: initial)
        default: return transaction(command)
        }
    }

    // MARK: AUTHORIZATION

    /// RFC 2449 §6 capabilities; USER and SASL only where plaintext is allowed now.
    public func capabilities() -> [String] {
        var caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER"]
        if phase == .authorization {
            if plaintextAllowed { caps += ["USER", "SASL PLAIN LOGIN"] }
            if stlsOffered { caps.append("STLS") }
        }
        caps.append("IMPLEMENTATION \(config.implementation)")
        return caps
    }

    /// RFC 5034 §4: AUTH mechanism [initial-response]; "=" is an empty initial response.
    private mutating func auth(mechanism: String?, initial: String?) -> [POP3Action] {
        guard let mechanism else { return [.replyLines(.ok("Methods follow"), ["PLAIN", "LOGIN"])] }
        guard mechanism == "PLAIN" || mechanism == "LOGIN" else { return [.reply(POP3Reply.unsupportedMechanism)] }
        guard plaintextAllowed else { return [.reply(POP3Reply.plaintextDisallowed)] }
        phase = .sasl(mechanism: mechanism, user: nil)
        if let initial { return saslResponse(Array(initial.utf8), mechanism: mechanism, user: nil, initial: true) }
        return [.continuation(mechanism == "PLAIN" ? "" : Self.usernamePrompt)]
    }

    static let usernamePrompt = "VXNlcm5hbWU6"     // "Username:"
    static let passwordPrompt = "UGFzc3dvcmQ6"     // "Password:"

    private mutating func saslResponse(_ line: [UInt8], mechanism: String, user: String?, initial: Bool = false) -> [POP3Action] {
        // RFC 5034 §4: "*" cancels the exchange.
        if !initial && line == [UInt8(ascii: "*")] { phase = .authorization; return [.reply(POP3Reply.authCancelled)] }
        let data: [UInt8]
        if initial && line == [UInt8(ascii: "=")] { data = [] } else {
            guard let d = Base64.decode(line) else { phase = .authorization; return [.reply(POP3Reply.authMalformed)] }
            data = d
        }
        if mechanism == "PLAIN" {
            // RFC 4616 §2: [authzid] NUL authcid NUL passwd
            let parts = data.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { phase = .authorization; return [.reply(POP3Reply.authMalformed)] }
            let authz = String(decoding: parts[0], as: UTF8.self), authc = String(decoding: parts[1], as: UTF8.self)
            guard authz.isEmpty || authz == authc else { phase = .authorization; return [.reply(POP3Reply.authzRefused)] }
            phase = .checking
            return [.login(user: authc, password: String(decoding: parts[2], as: UTF8.self), mechanism: "plain")]
        }
        // LOGIN: the user name, then the password.
        guard let user else {
            var name = data
            if name.last == 0 { name.removeLast() }
            phase = .sasl(mechanism: mechanism, user: String(decoding: name, as: UTF8.self))
            return [.continuation(Self.passwordPrompt)]
        }
        phase = .checking
        return [.login(user: user, password: String(decoding: data, as: UTF8.self), mechanism: "login")]
    }

    /// The store accepted the login, the maildrop is locked and this is its snapshot.
    public mutating func loginSucceeded(_ drop: POP3Maildrop) -> [POP3Action] {
        maildrop = drop
        deleted = []
        phase = .transaction
        let octets = drop.messages.reduce(0) { $0 + $1.size }
        return [.reply(.ok("Logged in, \(drop.messages.count) messages (\(octets) octets)"))]
    }

    public mutating func loginFailed(_ why: POP3LoginFailure) -> [POP3Action] {
        phase = .authorization
        switch why {
        case .inUse: return [.reply(POP3Reply.inUse)]
        case .temporary: return [.reply(POP3Reply.tempFail)]
        case .credentials:
            authFailures += 1
            if authFailures >= config.limits.maxAuthFailures { phase = .closed; return [.reply(POP3Reply.authFailed), .close] }
            return [.reply(POP3Reply.authFailed)]
        }
    }

    /// The STLS handshake finished.
    public mutating func tlsStarted() { tlsActive = true; pendingUser = nil }

    // MARK: TRANSACTION (RFC 1939 §5)

    /// The message numbered `n` unless it is out of range or deleted.
    private func message(_ n: Int) -> Result<POP3Message, POP3Response> {
        guard let drop = maildrop, n >= 1, n <= drop.messages.count else { return .failure(POP3Reply.noSuchMessage) }
        guard !deleted.contains(n) else { return .failure(POP3Reply.alreadyDeleted) }
        return .success(drop.messages[n - 1])
    }

    private var live: [(n: Int, m: POP3Message)] {
        (maildrop?.messages ?? []).enumerated().map { (n: $0.offset + 1, m: $0.element) }.filter { !deleted.contains($0.n) }
    }

    private mutating func transaction(_ command: POP3Command) -> [POP3Action] {
        let drop = maildrop!
        switch command {
        case .stat:
            let l = live
            return [.reply(.ok("\(l.count) \(l.reduce(0) { $0 + $1.m.size })"))]
        case .list(nil):
            let l = live
            return [.replyLines(.ok("\(l.count) messages"), l.map { "\($0.n) \($0.m.size)" })]
        case .list(let n?):
            switch message(n) {
            case .success(let m): return [.reply(.ok("\(n) \(m.size)"))]
            case .failure(let r): return [.reply(r)]
            }
        case .uidl(nil):
            return [.replyLines(.ok(""), live.map { "\($0.n) \(Self.uniqueID(uidValidity: drop.uidValidity, uid: $0.m.uid))" })]
        case .uidl(let n?):
            switch message(n) {
            case .success(let m): return [.reply(.ok("\(n) \(Self.uniqueID(uidValidity: drop.uidValidity, uid: m.uid))"))]
            case .failure(let r): return [.reply(r)]
            }
        case .retr(let n):
            switch message(n) {
            case .success(let m): return [.send(uid: m.uid, size: m.size, lines: nil)]
            case .failure(let r): return [.reply(r)]
            }
        case .top(let n, let lines):
            switch message(n) {
            case .success(let m): return [.send(uid: m.uid, size: m.size, lines: lines)]
            case .failure(let r): return [.reply(r)]
            }
        case .dele(let n):
            switch message(n) {
            case .success: deleted.insert(n); return [.reply(.ok("Message \(n) deleted"))]
            case .failure(let r): return [.reply(r)]
            }
        case .rset:
            deleted = []
            return [.reply(.ok("\(drop.messages.count) messages"))]
        case .noop: return [.reply(POP3Reply.noop)]
        default: return [.reply(POP3Reply.notNow)]
        }
    }

    // MARK: UPDATE and the end

    /// The UPDATE delete's outcome (RFC 1939 §6: "-ERR some deleted messages not removed").
    public mutating func updated(ok: Bool) -> [POP3Action] {
        phase = .closed
        return [.reply(ok ? POP3Reply.bye : POP3Reply.updateFailed), .close]
    }

    /// RFC 1939 §3 autologout: the session ends without entering UPDATE (nothing is deleted).
    public mutating func timeout() -> [POP3Action] { phase = .closed; return [.reply(POP3Reply.autologout), .close] }

    public mutating func shutdown() -> [POP3Action] { phase = .closed; return [.reply(POP3Reply.shutdown), .close] }
}
