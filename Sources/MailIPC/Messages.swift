// Every RPC message, with explicit, never-reused type numbers (DESIGN §2).
//
// Request → reply (any request may instead get .error; replies echo the request id):
//   hello(major, minor, client)              → helloOK(major, minor, role)     all roles, first frame
//   lookupRecipient(address)                 → recipient(status, canonical)     lmtpd smtpd lookupd
//   lookup(map, key)                         → lookupResult(found, value)        lookupd admin
//   deliverBegin(sender, recipients, session)┐ same request id; body bytes in chunks; a session
//   deliverChunk(bytes)*                     │ (smtpd, after AUTH) queues remote recipients
//   deliverEnd                               ┘ → deliverResult([status])        lmtpd smtpd
//   authenticate(user, password)             → session(id, canonical user)       smtpd imapd pop3d
//   sessionEnd(session)                      → ok                                smtpd imapd pop3d
//   mailboxList(session, user)               → mailboxes([MailboxInfo])          imapd pop3d (session) admin (user)
//   domainAdd/domainRemove(name)             → ok                                admin
//   domainList                               → names([String])                   admin
//   userAdd/userPasswd(address, password)    → ok                                admin
//   userRemove(address)                      → ok                                admin
//   userList(domain)                         → names([String])                   admin
//   aliasAdd/aliasRemove(source, target)     → ok                                admin
//   aliasList(domain)                        → pairs([(source, target)])         admin
//   export(user, mailbox)                    → (exportMessage, exportChunk*)* exportEnd(count)   admin
//   queueList                                → names([String])                   admin
// Unsolicited (request id 0, store → worker):
//   mailboxChanged(session, mailbox, uidNext, exists)
// Master control socket (CLI → master):
//   hello → helloOK; status → status([ProcessStatus]); reload → ok;
//   attach(role) → ok, after which the same socket is an RPC connection to the store.
import NIOCore

public enum ProtocolVersion {
    public static let major: UInt16 = 1
    public static let minor: UInt16 = 0
}

public enum MessageType: UInt16, Sendable, CaseIterable {
    case hello = 1, helloOK = 2, error = 3, ok = 4
    case lookupRecipient = 10, recipient = 11, lookup = 12, lookupResult = 13
    case deliverBegin = 20, deliverChunk = 21, deliverEnd = 22, deliverResult = 23
    case authenticate = 30, session = 31, sessionEnd = 32
    case mailboxList = 40, mailboxes = 41
    case domainAdd = 50, domainRemove = 51, domainList = 52, names = 53
    case userAdd = 60, userRemove = 61, userPasswd = 62, userList = 63
    case aliasAdd = 70, aliasRemove = 71, aliasList = 72, pairs = 73
    case export = 80, exportMessage = 81, exportChunk = 82, exportEnd = 83
    case queueList = 85
    case mailboxChanged = 90
    case status = 110, statusResult = 111, attach = 112, reload = 113
}

public enum RecipientStatus: UInt8, Sendable {
    case ok = 0, unknownUser = 1, notLocal = 2, tempFail = 3, overQuota = 4, rejected = 5
}

public enum ErrorCode: UInt16, Sendable {
    case notFound = 1, exists = 2, invalid = 3, denied = 4, temporary = 5, `internal` = 6, badSequence = 7
}

public struct MailboxInfo: Sendable, Equatable {
    public var name: String, specialUse: String, uidValidity: UInt32, uidNext: UInt32
    public var highestModSeq: UInt64, messages: UInt32, subscribed: Bool
    public init(name: String, specialUse: String, uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, messages: UInt32, subscribed: Bool) {
        self.name = name; self.specialUse = specialUse; self.uidValidity = uidValidity; self.uidNext = uidNext
        self.highestModSeq = highestModSeq; self.messages = messages; self.subscribed = subscribed
    }
}

public struct ExportedMessage: Sendable, Equatable {
    public var mailbox: String, uid: UInt32, internalDate: Int64, sender: String, size: UInt64
    public init(mailbox: String, uid: UInt32, internalDate: Int64, sender: String, size: UInt64) {
        self.mailbox = mailbox; self.uid = uid; self.internalDate = internalDate; self.sender = sender; self.size = size
    }
}

public struct ProcessStatus: Sendable, Equatable {
    public var service: String, instance: UInt32, pid: Int64, startedAt: Int64, restarts: UInt32, state: String
    public init(service: String, instance: UInt32, pid: Int64, startedAt: Int64, restarts: UInt32, state: String) {
        self.service = service; self.instance = instance; self.pid = pid; self.startedAt = startedAt; self.restarts = restarts; self.state = state
    }
}

public enum IPCMessage: Sendable, Equatable {
    case hello(major: UInt16, minor: UInt16, client: String)
    case helloOK(major: UInt16, minor: UInt16, role: String)
    case error(ErrorCode, String)
    case ok
    case lookupRecipient(String)
    case recipient(RecipientStatus, String)
    case lookup(map: String, key: String)
    case lookupResult(found: Bool, value: String)
    case deliverBegin(sender: String, recipients: [String], session: UInt64 = 0)
    case deliverChunk(ByteBuffer)
    case deliverEnd
    case deliverResult([RecipientStatus])
    case authenticate(user: String, password: String)
    case session(UInt64, String)
    case sessionEnd(UInt64)
    case mailboxList(session: UInt64, user: String)
    case mailboxes([MailboxInfo])
    case domainAdd(String), domainRemove(String), domainList
    case names([String])
    case userAdd(String, password: String), userRemove(String), userPasswd(String, password: String), userList(String)
    case aliasAdd(String, String), aliasRemove(String, String), aliasList(String)
    case pairs([[String]])
    case export(user: String, mailbox: String)
    case exportMessage(ExportedMessage)
    case exportChunk(ByteBuffer)
    case exportEnd(UInt32)
    case queueList
    case mailboxChanged(session: UInt64, mailbox: String, uidNext: UInt32, exists: UInt32)
    case status
    case statusResult([ProcessStatus])
    case attach(role: String)
    case reload

    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .helloOK: return .helloOK
        case .error: return .error
        case .ok: return .ok
        case .lookupRecipient: return .lookupRecipient
        case .recipient: return .recipient
        case .lookup: return .lookup
        case .lookupResult: return .lookupResult
        case .deliverBegin: return .deliverBegin
        case .deliverChunk: return .deliverChunk
        case .deliverEnd: return .deliverEnd
        case .deliverResult: return .deliverResult
        case .authenticate: return .authenticate
        case .session: return .session
        case .sessionEnd: return .sessionEnd
        case .mailboxList: return .mailboxList
        case .mailboxes: return .mailboxes
        case .domainAdd: return .domainAdd
        case .domainRemove: return .domainRemove
        case .domainList: return .domainList
        case .names: return .names
        case .userAdd: return .userAdd
        case .userRemove: return .userRemove
        case .userPasswd: return .userPasswd
        case .userList: return .userList
        case .aliasAdd: return .aliasAdd
        case .aliasRemove: return .aliasRemove
        case .aliasList: return .aliasList
        case .pairs: return .pairs
        case .export: return .export
        case .exportMessage: return .exportMessage
        case .exportChunk: return .exportChunk
        case .exportEnd: return .exportEnd
        case .queueList: return .queueList
        case .mailboxChanged: return .mailboxChanged
        case .status: return .status
        case .statusResult: return .statusResult
        case .attach: return .attach
        case .reload: return .reload
        }
    }

    public func encodePayload(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var w = WireWriter(allocator.buffer(capacity: 64))
        switch self {
        case .hello(let a, let b, let c): w.u16(a); w.u16(b); w.string(c)
        case .helloOK(let a, let b, let r): w.u16(a); w.u16(b); w.string(r)
        case .error(let c, let m): w.u16(c.rawValue); w.string(m)
        case .ok, .deliverEnd, .domainList, .queueList, .status, .reload: break
        case .lookupRecipient(let a): w.string(a)
        case .recipient(let s, let c): w.u8(s.rawValue); w.string(c)
        case .lookup(let m, let k): w.string(m); w.string(k)
        case .lookupResult(let f, let v): w.bool(f); w.string(v)
        case .deliverBegin(let s, let r, let session): w.string(s); w.strings(r); w.u64(session)
        case .deliverChunk(let b), .exportChunk(let b): w.bytes(b)
        case .deliverResult(let r): w.u32(UInt32(r.count)); for s in r { w.u8(s.rawValue) }
        case .authenticate(let u, let p): w.string(u); w.string(p)
        case .session(let id, let u): w.u64(id); w.string(u)
        case .sessionEnd(let id): w.u64(id)
        case .mailboxList(let s, let u): w.u64(s); w.string(u)
        case .mailboxes(let list):
            w.u32(UInt32(list.count))
            for m in list {
                w.string(m.name); w.string(m.specialUse); w.u32(m.uidValidity); w.u32(m.uidNext)
                w.u64(m.highestModSeq); w.u32(m.messages); w.bool(m.subscribed)
            }
        case .domainAdd(let n), .domainRemove(let n), .userRemove(let n), .userList(let n), .aliasList(let n): w.string(n)
        case .names(let n): w.strings(n)
        case .userAdd(let u, let p), .userPasswd(let u, let p): w.string(u); w.string(p)
        case .aliasAdd(let a, let b), .aliasRemove(let a, let b): w.string(a); w.string(b)
        case .pairs(let p): w.u32(UInt32(p.count)); for e in p { w.strings(e) }
        case .export(let u, let m): w.string(u); w.string(m)
        case .exportMessage(let e): w.string(e.mailbox); w.u32(e.uid); w.i64(e.internalDate); w.string(e.sender); w.u64(e.size)
        case .exportEnd(let n): w.u32(n)
        case .mailboxChanged(let s, let m, let u, let e): w.u64(s); w.string(m); w.u32(u); w.u32(e)
        case .statusResult(let list):
            w.u32(UInt32(list.count))
            for p in list { w.string(p.service); w.u32(p.instance); w.i64(p.pid); w.i64(p.startedAt); w.u32(p.restarts); w.string(p.state) }
        case .attach(let r): w.string(r)
        }
        return w.buffer
    }

    public func frame(requestID: UInt32) -> Frame {
        Frame(type: type.rawValue, requestID: requestID, payload: encodePayload())
    }

    /// Strict decode: unknown types, missing fields and trailing bytes are errors.
    public static func decode(_ frame: Frame) throws -> IPCMessage {
        guard let t = MessageType(rawValue: frame.type) else { throw WireError.unknownType(frame.type) }
        var r = WireReader(frame.payload)
        let m: IPCMessage
        switch t {
        case .hello: m = .hello(major: try r.u16(), minor: try r.u16(), client: try r.string())
        case .helloOK: m = .helloOK(major: try r.u16(), minor: try r.u16(), role: try r.string())
        case .error:
            let raw = try r.u16()
            guard let c = ErrorCode(rawValue: raw) else { throw WireError.badValue("error code \(raw)") }
            m = .error(c, try r.string())
        case .ok: m = .ok
        case .lookupRecipient: m = .lookupRecipient(try r.string())
        case .recipient: m = .recipient(try status(r.u8()), try r.string())
        case .lookup: m = .lookup(map: try r.string(), key: try r.string())
        case .lookupResult: m = .lookupResult(found: try r.bool(), value: try r.string())
        case .deliverBegin: m = .deliverBegin(sender: try r.string(), recipients: try r.strings(max: 100_000), session: try r.u64())
        case .deliverChunk: m = .deliverChunk(try r.bytes())
        case .deliverEnd: m = .deliverEnd
        case .deliverResult:
            let n = Int(try r.u32())
            guard n <= r.buffer.readableBytes else { throw WireError.truncated }
            var out: [RecipientStatus] = []
            for _ in 0..<n { out.append(try status(r.u8())) }
            m = .deliverResult(out)
        case .authenticate: m = .authenticate(user: try r.string(), password: try r.string())
        case .session: m = .session(try r.u64(), try r.string())
        case .sessionEnd: m = .sessionEnd(try r.u64())
        case .mailboxList: m = .mailboxList(session: try r.u64(), user: try r.string())
        case .mailboxes:
            let n = Int(try r.u32())
            guard n <= r.buffer.readableBytes / 29 else { throw WireError.truncated }
            var out: [MailboxInfo] = []
            for _ in 0..<n {
                out.append(MailboxInfo(name: try r.string(), specialUse: try r.string(), uidValidity: try r.u32(), uidNext: try r.u32(),
                                       highestModSeq: try r.u64(), messages: try r.u32(), subscribed: try r.bool()))
            }
            m = .mailboxes(out)
        case .domainAdd: m = .domainAdd(try r.string())
        case .domainRemove: m = .domainRemove(try r.string())
        case .domainList: m = .domainList
        case .names: m = .names(try r.strings())
        case .userAdd: m = .userAdd(try r.string(), password: try r.string())
        case .userRemove: m = .userRemove(try r.string())
        case .userPasswd: m = .userPasswd(try r.string(), password: try r.string())
        case .userList: m = .userList(try r.string())
        case .aliasAdd: m = .aliasAdd(try r.string(), try r.string())
        case .aliasRemove: m = .aliasRemove(try r.string(), try r.string())
        case .aliasList: m = .aliasList(try r.string())
        case .pairs:
            let n = Int(try r.u32())
            guard n <= r.buffer.readableBytes / 4 else { throw WireError.truncated }
            var out: [[String]] = []
            for _ in 0..<n { out.append(try r.strings()) }
            m = .pairs(out)
        case .export: m = .export(user: try r.string(), mailbox: try r.string())
        case .exportMessage:
            m = .exportMessage(ExportedMessage(mailbox: try r.string(), uid: try r.u32(), internalDate: try r.i64(),
                                               sender: try r.string(), size: try r.u64()))
        case .exportChunk: m = .exportChunk(try r.bytes())
        case .exportEnd: m = .exportEnd(try r.u32())
        case .queueList: m = .queueList
        case .mailboxChanged: m = .mailboxChanged(session: try r.u64(), mailbox: try r.string(), uidNext: try r.u32(), exists: try r.u32())
        case .status: m = .status
        case .statusResult:
            let n = Int(try r.u32())
            guard n <= r.buffer.readableBytes / 32 else { throw WireError.truncated }
            var out: [ProcessStatus] = []
            for _ in 0..<n {
                out.append(ProcessStatus(service: try r.string(), instance: try r.u32(), pid: try r.i64(), startedAt: try r.i64(),
                                         restarts: try r.u32(), state: try r.string()))
            }
            m = .statusResult(out)
        case .attach: m = .attach(role: try r.string())
        case .reload: m = .reload
        }
        try r.finish()
        return m
    }

    private static func status(_ v: UInt8) throws -> RecipientStatus {
        guard let s = RecipientStatus(rawValue: v) else { throw WireError.badValue("recipient status \(v)") }
        return s
    }
}
