// The IMAP engine's driver (DESIGN §4): one per connection, run as one task that takes the
// glue's inputs in order, checks each command against the state machine (CommandTable), runs
// it against IMAPServices and answers through IMAPConnection. Untagged updates of the
// selected mailbox are written before a command's tagged response, where RFC 9051 §7.5.1
// allows them. Split by concern: +Auth, +Mailboxes, +Selected, +Fetch, +Search.
import Foundation
import Logging
import IMAPProtocol
import MailModel

/// What a session needs to know of its service (built from postern.toml [imap]).
public struct IMAPSessionConfig: Sendable {
    public var hostname: String
    public var limits: IMAPLimits
    /// STARTTLS is offered (a TLS context exists and the connection is not TLS yet).
    public var startTLSAvailable: Bool
    /// LOGIN/AUTHENTICATE PLAIN without TLS are accepted from loopback clients
    /// (`[imap] plaintext_auth_on_loopback`).
    public var plaintextOnLoopback: Bool
    /// Seconds a failed login waits before its answer (DESIGN §5).
    public var authFailureDelay: Double
    /// Invalid commands in a row after which the connection is closed.
    public var maxBadCommands: Int
    /// [spam] on: Junk moves and $Junk/$NotJunk teach rspamd (IMAPSpamLearning.swift).
    public var spamLearning: IMAPSpamLearning? = nil
    public init(hostname: String, limits: IMAPLimits = IMAPLimits(), startTLSAvailable: Bool, plaintextOnLoopback: Bool = true,
                authFailureDelay: Double = 2, maxBadCommands: Int = 20) {
        self.hostname = hostname; self.limits = limits; self.startTLSAvailable = startTLSAvailable
        self.plaintextOnLoopback = plaintextOnLoopback; self.authFailureDelay = authFailureDelay; self.maxBadCommands = maxBadCommands
    }
}

/// A command's end: the tagged status line.
struct Completion {
    var status: IMAPWriter.Status
    var code: String?
    var text: String
    /// The command wrote its own tagged response (STARTTLS writes it before the handshake).
    var written = false
    static let alreadyWritten = Completion(status: .ok, code: nil, text: "", written: true)
    static func ok(_ text: String, code: String? = nil) -> Completion { Completion(status: .ok, code: code, text: text) }
    static func no(_ text: String, code: String? = nil) -> Completion { Completion(status: .no, code: code, text: text) }
    static func bad(_ text: String, code: String? = nil) -> Completion { Completion(status: .bad, code: code, text: text) }
}

/// The inputs, pulled one at a time by the session (also from inside IDLE and AUTHENTICATE).
final class InputQueue: @unchecked Sendable {
    private var iterator: AsyncStream<IMAPSessionInput>.AsyncIterator
    init(_ s: AsyncStream<IMAPSessionInput>) { iterator = s.makeAsyncIterator() }
    func next() async -> IMAPSessionInput? { await iterator.next() }
}

public final class IMAPSession: @unchecked Sendable {
    let config: IMAPSessionConfig
    let services: any IMAPServices
    let connection: any IMAPConnection
    let client: String
    let clientIsLoopback: Bool
    var logger: Logger
    let now: @Sendable () -> Int64
    /// Called after each failed login; returns this client's recent failures (the log line's
    /// `failures=`). Set by the glue (ClientLimiter); nil counts per session.
    public var recordAuthFailure: (@Sendable () -> Int)?
    /// Feeds an input to this session's own stream (set by the glue to its continuation's
    /// `yield`): the selected mailbox's watch posts `.mailboxChanged` through it.
    public var post: (@Sendable (IMAPSessionInput) -> Void)?

    var state: IMAPState = .notAuthenticated
    var selected: SelectedMailbox?
    var watch: (any IMAPWatch)?
    /// The highest MODSEQ the store said the selected mailbox reached.
    var notified: UInt64 = 0
    /// ENABLEd extensions (RFC 5161), uppercase.
    var enabled: Set<String> = []
    /// CONDSTORE is on: enabled, or used by a command (RFC 7162 §3.1).
    var condstore = false
    /// The saved search result (RFC 5182), UIDs.
    var saved: [UInt32]?
    var user: String?
    /// The tag of the IDLE in progress (RFC 2177): inputs go to `idleInput` until its DONE.
    var idling: String?
    var badInARow = 0
    var authFailures = 0
    var finished = false
    var inputs: InputQueue!
    private var output: [UInt8] = []

    /// `client` is the peer's address (logs, failure counting); `now` gives seconds since the epoch.
    public init(config: IMAPSessionConfig, services: any IMAPServices, connection: any IMAPConnection, client: String,
                clientIsLoopback: Bool, logger: Logger, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) {
        self.config = config; self.services = services; self.connection = connection; self.client = client
        self.clientIsLoopback = clientIsLoopback; self.logger = logger; self.now = now
    }

    var utf8: Bool { enabled.contains("UTF8=ACCEPT") || enabled.contains("IMAP4REV2") }
    var rev2: Bool { enabled.contains("IMAP4REV2") }
    var qresync: Bool { enabled.contains("QRESYNC") }
    func writer() -> IMAPWriter { IMAPWriter(utf8: utf8) }

    // MARK: output

    /// Queues a response; written at the next flush (or now when much is queued).
    func emit(_ w: IMAPWriter) async {
        if output.isEmpty { output = w.bytes } else { output.append(contentsOf: w.bytes) }   // FETCH emits 64 KiB at a time: no copy
        if output.count >= 64 * 1024 { await flush() }
    }

    func emit(_ line: String) async {
        var w = writer(); w.raw(line); w.crlf(); await emit(w)
    }

    func flush() async {
        guard !output.isEmpty else { return }
        let bytes = output
        output = []   // the connection has them; an idle session keeps no output buffer
        await connection.write(bytes)
    }

    // MARK: the loop

    /// Greets, then handles every input until LOGOUT, a fatal input, `.closed` or `.shutdown`;
    /// returns after closing the connection and the store session.
    public func run(_ stream: AsyncStream<IMAPSessionInput>) async {
        inputs = InputQueue(stream)
        await emit("* OK [CAPABILITY \(capabilities())] \(config.hostname) Postern ready.")
        await flush()
        while !finished, let input = await inputs.next() {
            await shallow { [self] in
                if let tag = idling { await idleInput(tag, input) } else { await handle(input) }
                await flush()
            }
        }
        watch?.cancel()
        services.close()
        await flush()
        await connection.close()
    }

    func handle(_ input: IMAPSessionInput) async {
        switch input {
        case .framed(let event):
            switch event {
            case .unit(let bytes): await command(bytes)
            case .continuationNeeded: break   // the glue answered it
            case .literalRefused(let tag, let size):
                await tagged(tag, .no("Literal of \(size) bytes is too large", code: "TOOBIG"))
            case .lineTooLong(let tag):
                await tagged(tag, .bad("Command line too long"))
                await countBad()
            case .fatal(_, let reason):
                await bye(reason)
            }
        case .closed:
            finished = true
        case .shutdown:
            await bye("Server shutting down")
        case .mailboxChanged(let modseq):
            notified = max(notified, modseq)
        case .timeout:
            await bye(state == .notAuthenticated ? "Login timeout" : "Autologout; idle for too long")
        }
    }

    func bye(_ text: String, code: String? = nil) async {
        var w = writer()
        w.raw("* BYE "); if let code { w.raw("[\(code)] ") }; w.raw(text); w.crlf()
        await emit(w)
        finished = true
    }

    func tagged(_ tag: String?, _ c: Completion) async {
        var w = writer()
        w.tagged(tag ?? "*", c.status, code: c.code, c.text)
        await emit(w)
    }

    func countBad() async {
        badInARow += 1
        if badInARow >= config.maxBadCommands { await bye("Too many invalid commands") }
    }

    func command(_ bytes: [UInt8]) async {
        let options = IMAPParserOptions(utf8Accept: utf8, limits: config.limits)
        let cmd: IMAPCommand
        switch IMAPParser.parse(bytes, options: options) {
        case .failure(let e) where e.tag != nil && e.code == IMAPResponseCodes.cannot:
            await tagged(e.tag, .no(e.message, code: e.code))   // well-formed: not a BAD
            return
        case .failure(let e):
            await tagged(e.tag, .bad(e.message, code: e.code))
            await countBad()
            return
        case .success(let c): cmd = c
        }
        let rule = CommandTable.rule(cmd.kind)
        guard CommandTable.allows(rule, in: state) else {
            switch (rule.needs, state) {
            case (.selected, .authenticated): await tagged(cmd.tag, .bad("No mailbox selected"))
            case (.notAuthenticated, _): await tagged(cmd.tag, .bad("Already authenticated"))
            default: await tagged(cmd.tag, .bad("Command not valid in this state"))
            }
            await countBad()
            return
        }
        badInARow = 0
        if rule.writes, case .selected(readOnly: true) = state {
            await tagged(cmd.tag, .no("Mailbox is read-only", code: "READ-ONLY"))
            return
        }
        let completion: Completion
        do {
            completion = try await execute(cmd)
        } catch let e as IMAPServiceError {
            completion = Self.completion(for: e)
        } catch let e as BadCommand {
            completion = .bad(e.message)
        } catch is UnknownTransferEncoding {
            completion = UnknownTransferEncoding.completion
        } catch {
            completion = .no("Internal error", code: "SERVERBUG")
        }
        if completion.written { return }
        if finished && completion.status == .ok, case .logout = cmd.kind {
            await tagged(cmd.tag, completion)
            return
        }
        // RFC 9051 §7.5.1: updates before the tagged response; no EXPUNGE while FETCH, STORE or
        // SEARCH by sequence number complete.
        if !finished, selected != nil {
            await announce(expunges: !rule.bySequence, pull: false)
        }
        await tagged(cmd.tag, completion)
    }

    static func completion(for e: IMAPServiceError) -> Completion {
        switch e.kind {
        case .notFound: return .no(e.message, code: "NONEXISTENT")
        case .exists: return .no(e.message, code: "ALREADYEXISTS")
        case .denied: return .no(e.message, code: "CANNOT")
        case .invalid: return .no(e.message, code: "CANNOT")
        case .limit: return .no(e.message, code: "LIMIT")
        case .overQuota: return .no(e.message, code: "OVERQUOTA")   // RFC 9208 §4.3 (APPEND, COPY)
        case .temporary: return .no("Temporary failure, try again", code: "UNAVAILABLE")
        }
    }

    func execute(_ cmd: IMAPCommand) async throws -> Completion {
        let tag = cmd.tag
        switch cmd.kind {
        case .capability:
            await emit("* CAPABILITY \(capabilities())")
            return .ok("Capability completed")
        case .noop:
            if selected != nil { await announce(expunges: true, pull: true) }
            return .ok("NOOP completed")
        case .logout:
            await emit("* BYE Logging out")
            finished = true
            return .ok("Logout completed")
        case .id:
            var w = writer(); w.raw("* ID (\"name\" \"Postern\")"); w.crlf(); await emit(w)
            return .ok("ID completed")
        case .starttls: return await startTLS(tag)
        case .login(let u, let p): return await login(user: u, password: p, mechanism: "login")
        case .authenticate(let mech, let initial): return await authenticate(mechanism: mech, initial: initial)
        case .enable(let caps): return await enable(caps)
        case .select(let name, let p): return try await select(name, p, readOnly: false)
        case .examine(let name, let p): return try await select(name, p, readOnly: true)
        case .create(let name, let use): return try await create(name, specialUse: use)
        case .delete(let name): return try await delete(name)
        case .rename(let from, let to): return try await rename(from, to)
        case .subscribe(let name): return try await subscribe(name, true)
        case .unsubscribe(let name): return try await subscribe(name, false)
        case .list(let l): return try await list(l)
        case .lsub(let ref, let pattern): return try await lsub(reference: ref, pattern: pattern)
        case .namespace:
            await emit("* NAMESPACE ((\"\" \"/\")) NIL NIL")
            return .ok("Namespace completed")
        case .status(let name, let items): return try await status(name, items)
        case .append(let name, let messages): return try await append(name, messages)
        case .idle: return try await idle(tag)
        case .compress(let mechanism): return await compress(tag, mechanism: mechanism)
        case .check:
            await announce(expunges: true, pull: true)
            return .ok("Check completed")
        case .close: return try await close(expunge: true)
        case .unselect: return try await close(expunge: false)
        case .expunge: return try await expunge(uids: nil)
        case .uidExpunge(let set): return try await expunge(uids: set)
        case .search(let s, let uid): return try await search(s, uid: uid, tag: tag)
        case .sort(let s, let uid): return try await sort(s, uid: uid, tag: tag)
        case .thread(let t, let uid): return try await thread(t, uid: uid)
        case .fetch(let f, let uid): return try await fetch(f, uid: uid)
        case .store(let s, let uid): return try await store(s, uid: uid)
        case .copy(let set, let name, let uid): return try await copy(set, to: name, uid: uid, move: false)
        case .move(let set, let name, let uid): return try await copy(set, to: name, uid: uid, move: true)
        case .getQuota(let root): return try await getQuota(root: root)
        case .getQuotaRoot(let name): return try await getQuotaRoot(mailbox: name)
        case .setQuota: return setQuota()
        }
    }

    // MARK: capabilities

    var tlsActive: Bool { connection.isTLS }
    /// RFC 9051 §6.2.3 / DESIGN §5: plaintext passwords only over TLS, or from loopback if allowed.
    var plaintextAllowed: Bool { tlsActive || (clientIsLoopback && config.plaintextOnLoopback) }

    func capabilities() -> String {
        var caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        if state == .notAuthenticated {
            if config.startTLSAvailable && !tlsActive { caps.append("STARTTLS") }
            if plaintextAllowed { caps += ["AUTH=PLAIN", "AUTH=LOGIN"] } else { caps.append("LOGINDISABLED") }
        } else {
            caps += ["NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC", "LIST-EXTENDED", "LIST-STATUS",
                     "SPECIAL-USE", "CREATE-SPECIAL-USE", "ESEARCH", "SEARCHRES", "CHILDREN", "MULTIAPPEND", "UTF8=ACCEPT",
                     "BINARY", "STATUS=SIZE", "APPENDLIMIT=\(config.limits.maxAppend)",
                     "SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"] + Self.quotaCapabilities
        }
        // RFC 4978 §3: after authentication, and not once compression is on.
        if state != .notAuthenticated && !connection.isCompressed { caps.append("COMPRESS=DEFLATE") }
        return caps.joined(separator: " ")
    }

    func enable(_ caps: [String]) async -> Completion {
        var newly: [String] = []
        for c in caps {
            let u = c.uppercased()
            guard ["IMAP4REV2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT"].contains(u), !enabled.contains(u) else { continue }
            enabled.insert(u); newly.append(c)
            if u == "QRESYNC" || u == "CONDSTORE" { condstore = true }
            if u == "QRESYNC" { enabled.insert("CONDSTORE") }
        }
        await emit("* ENABLED" + newly.map { " " + $0 }.joined())
        return .ok("Enabled")
    }
}
