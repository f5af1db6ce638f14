// Accounts family (types 30–89): authentication sessions, domains, users, aliases, mailbox
// listing and export for the admin CLI.
//
//   request                                 → reply                         roles
//   Authenticate(user, password, client,    → SessionOpened(id, user)       smtpd imapd pop3d
//                service)                   (ErrorReply .denied: wrong credentials; .throttled: the
//                                           client address is over its failure budget, nothing checked)
//   SessionEnd(session)                     → OK                            smtpd imapd pop3d
//   MailboxList(session | user)             → Mailboxes([MailboxInfo])      imapd pop3d (session), admin (user)
//   DomainAdd / DomainRemove(name)          → OK                            admin
//   DomainList                              → Names                         admin
//   UserAdd / UserPasswd(address, password) → OK                            admin
//   UserRemove(address)                     → OK                            admin
//   UserList(domain)                        → Names                         admin
//   UserSpamJunk(address, on)               → OK                            admin
//   UserQuota(address, storage, messages)   → QuotaReply(usage) after the change   admin
//   AliasAdd / AliasRemove(source, target)  → OK                            admin
//   AliasList(domain)                       → AliasPairs                    admin
//   Export(user, mailbox)                   ⇒ stream of ExportItem (ExportMessage, ExportChunk*)*, then ExportEnd(count)   admin
//   Reindex(user | "" for all)              ⇒ stream of ReindexProgress(done, total), then ReindexProgress   admin
import NIOCore
import MailModel

public struct Authenticate: RPCRequest {
    public typealias Reply = SessionOpened
    public static let type = MessageType.authenticate
    public static let roles: Set<Role> = .sessionRoles
    /// `client`: the address the login comes from (the store's per-address failure budget,
    /// DESIGN §5); `service`: the protocol asking ("smtp", "imap", ...), for its log lines.
    public var user: String, password: String, client: String, service: String
    public init(user: String, password: String, client: String = "", service: String = "") {
        self.user = user; self.password = password; self.client = client; self.service = service
    }
    public init(reading r: inout WireReader) throws {
        user = try r.string(); password = try r.string(); client = try r.string(); service = try r.string()
    }
    public func write(to w: inout WireWriter) { w.string(user); w.string(password); w.string(client); w.string(service) }
}

public struct SessionOpened: RPCMessage {
    public static let type = MessageType.session
    /// `id` names the session in later requests on this connection only; `user` is canonical.
    public var id: UInt64, user: String
    public init(id: UInt64, user: String) { self.id = id; self.user = user }
    public init(reading r: inout WireReader) throws { id = try r.u64(); user = try r.string() }
    public func write(to w: inout WireWriter) { w.u64(id); w.string(user) }
}

public struct SessionEnd: RPCRequest {
    public typealias Reply = OK
    public static let type = MessageType.sessionEnd
    public static let roles: Set<Role> = .sessionRoles
    public var session: UInt64
    public init(_ session: UInt64) { self.session = session }
    public init(reading r: inout WireReader) throws { session = try r.u64() }
    public func write(to w: inout WireWriter) { w.u64(session) }
}

public struct MailboxInfo: Sendable, Equatable {
    public var name: String, specialUse: String, uidValidity: UInt32, uidNext: UInt32
    public var highestModSeq: UInt64, messages: UInt32, subscribed: Bool
    public init(name: String, specialUse: String, uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, messages: UInt32, subscribed: Bool) {
        self.name = name; self.specialUse = specialUse; self.uidValidity = uidValidity; self.uidNext = uidNext
        self.highestModSeq = highestModSeq; self.messages = messages; self.subscribed = subscribed
    }
    static let minBytes = WireSize.string * 2 + WireSize.u32 * 3 + WireSize.u64 + WireSize.bool
}

public struct MailboxList: RPCRequest {
    public typealias Reply = Mailboxes
    public static let type = MessageType.mailboxList
    public static let roles: Set<Role> = [.imapd, .pop3d, .admin]
    /// Workers name a session of this connection; admin names a user (session 0).
    public var session: UInt64, user: String
    public init(session: UInt64, user: String = "") { self.session = session; self.user = user }
    public init(reading r: inout WireReader) throws { session = try r.u64(); user = try r.string() }
    public func write(to w: inout WireWriter) { w.u64(session); w.string(user) }
}

public struct Mailboxes: RPCMessage {
    public static let type = MessageType.mailboxes
    public var list: [MailboxInfo]
    public init(_ list: [MailboxInfo]) { self.list = list }
    public init(reading r: inout WireReader) throws {
        list = try r.list(minElementBytes: MailboxInfo.minBytes) { r in
            MailboxInfo(name: try r.string(), specialUse: try r.string(), uidValidity: try r.u32(), uidNext: try r.u32(),
                        highestModSeq: try r.u64(), messages: try r.u32(), subscribed: try r.bool())
        }
    }
    public func write(to w: inout WireWriter) {
        w.list(list) { w, m in
            w.string(m.name); w.string(m.specialUse); w.u32(m.uidValidity); w.u32(m.uidNext)
            w.u64(m.highestModSeq); w.u32(m.messages); w.bool(m.subscribed)
        }
    }
}

/// Admin requests that carry one name (a domain, or an address).
public protocol NameRequest: RPCRequest {
    var name: String { get }
    init(_ name: String)
}
extension NameRequest {
    public init(reading r: inout WireReader) throws { self.init(try r.string()) }
    public func write(to w: inout WireWriter) { w.string(name) }
}
/// Admin requests that carry an address and a password (or a {CRYPT} hash).
public protocol CredentialRequest: RPCRequest {
    var address: String { get }
    var password: String { get }
    init(_ address: String, password: String)
}
extension CredentialRequest {
    public init(reading r: inout WireReader) throws { self.init(try r.string(), password: try r.string()) }
    public func write(to w: inout WireWriter) { w.string(address); w.string(password) }
}
/// Alias requests: source ("local@domain" or "@domain") and target ("" = every target on remove).
public protocol AliasRequest: RPCRequest {
    var source: String { get }
    var target: String { get }
    init(_ source: String, _ target: String)
}
extension AliasRequest {
    public init(reading r: inout WireReader) throws { self.init(try r.string(), try r.string()) }
    public func write(to w: inout WireWriter) { w.string(source); w.string(target) }
}

public struct DomainAdd: NameRequest {
    public typealias Reply = OK; public static let type = MessageType.domainAdd; public static let roles: Set<Role> = .adminOnly
    public var name: String; public init(_ name: String) { self.name = name }
}
public struct DomainRemove: NameRequest {
    public typealias Reply = OK; public static let type = MessageType.domainRemove; public static let roles: Set<Role> = .adminOnly
    public var name: String; public init(_ name: String) { self.name = name }
}
public struct DomainList: RPCRequest, EmptyMessage {
    public typealias Reply = Names; public static let type = MessageType.domainList; public static let roles: Set<Role> = .adminOnly
    public init() {}
}
public struct Names: RPCMessage {
    public static let type = MessageType.names
    public var names: [String]
    public init(_ names: [String]) { self.names = names }
    public init(reading r: inout WireReader) throws { names = try r.strings() }
    public func write(to w: inout WireWriter) { w.strings(names) }
}
public struct UserAdd: CredentialRequest {
    public typealias Reply = OK; public static let type = MessageType.userAdd; public static let roles: Set<Role> = .adminOnly
    public var address: String, password: String
    public init(_ address: String, password: String) { self.address = address; self.password = password }
}
public struct UserRemove: NameRequest {
    public typealias Reply = OK; public static let type = MessageType.userRemove; public static let roles: Set<Role> = .adminOnly
    public var name: String; public init(_ name: String) { self.name = name }
}
public struct UserPasswd: CredentialRequest {
    public typealias Reply = OK; public static let type = MessageType.userPasswd; public static let roles: Set<Role> = .adminOnly
    public var address: String, password: String
    public init(_ address: String, password: String) { self.address = address; self.password = password }
}
/// Whether mail the spam filter marks (rspamd "add header") goes to the user's Junk (on, the
/// default) or stays in INBOX with its X-Spam-* fields (issue 14's per-user setting).
public struct UserSpamJunk: RPCRequest {
    public typealias Reply = OK; public static let type = MessageType.userSpamJunk; public static let roles: Set<Role> = .adminOnly
    public var address: String, on: Bool
    public init(_ address: String, on: Bool) { self.address = address; self.on = on }
    public init(reading r: inout WireReader) throws { address = try r.string(); on = try r.bool() }
    public func write(to w: inout WireWriter) { w.string(address); w.bool(on) }
}
/// Changes (or, with both `.keep`, only reads) a user's quota limits (RFC 9208 STORAGE in bytes,
/// MESSAGE as a count); the reply (Messages+Mailbox.swift) carries the limits and usage after it.
public struct UserQuota: RPCRequest {
    public typealias Reply = QuotaReply; public static let type = MessageType.userQuota; public static let roles: Set<Role> = .adminOnly
    public var address: String, storage: QuotaLimitChange, messages: QuotaLimitChange
    public init(_ address: String, storage: QuotaLimitChange = .keep, messages: QuotaLimitChange = .keep) {
        self.address = address; self.storage = storage; self.messages = messages
    }
    public init(reading r: inout WireReader) throws {
        address = try r.string(); storage = try r.limitChange(); messages = try r.limitChange()
    }
    public func write(to w: inout WireWriter) { w.string(address); w.limitChange(storage); w.limitChange(messages) }
}

extension WireWriter {
    /// A limit change: u8 0 keep, 1 set (then the u64), 2 remove.
    mutating func limitChange(_ c: QuotaLimitChange) {
        switch c {
        case .keep: u8(0)
        case .set(let n): u8(1); u64(n)
        case .remove: u8(2)
        }
    }
    /// An optional limit: bool, then the u64 when present.
    mutating func optU64(_ v: UInt64?) { bool(v != nil); if let v { u64(v) } }
}
extension WireReader {
    mutating func limitChange() throws -> QuotaLimitChange {
        switch try u8() {
        case 0: return .keep
        case 1: return .set(try u64())
        case 2: return .remove
        case let v: throw WireError.badValue("limit change \(v)")
        }
    }
    mutating func optU64() throws -> UInt64? { try bool() ? try u64() : nil }
}

/// `name`: a domain, or "" for every user.
public struct UserList: NameRequest {
    public typealias Reply = Names; public static let type = MessageType.userList; public static let roles: Set<Role> = .adminOnly
    public var name: String; public init(_ name: String) { self.name = name }
}
public struct AliasAdd: AliasRequest {
    public typealias Reply = OK; public static let type = MessageType.aliasAdd; public static let roles: Set<Role> = .adminOnly
    public var source: String, target: String
    public init(_ source: String, _ target: String) { self.source = source; self.target = target }
}
public struct AliasRemove: AliasRequest {
    public typealias Reply = OK; public static let type = MessageType.aliasRemove; public static let roles: Set<Role> = .adminOnly
    public var source: String, target: String
    public init(_ source: String, _ target: String) { self.source = source; self.target = target }
}
/// `name`: a domain, or "" for every alias.
public struct AliasList: NameRequest {
    public typealias Reply = AliasPairs; public static let type = MessageType.aliasList; public static let roles: Set<Role> = .adminOnly
    public var name: String; public init(_ name: String) { self.name = name }
}

public struct AliasEntry: Sendable, Equatable {
    public var source: String, target: String
    public init(source: String, target: String) { self.source = source; self.target = target }
}
public struct AliasPairs: RPCMessage {
    public static let type = MessageType.aliasPairs
    public var aliases: [AliasEntry]
    public init(_ aliases: [AliasEntry]) { self.aliases = aliases }
    public init(reading r: inout WireReader) throws {
        aliases = try r.list(minElementBytes: 2 * WireSize.string) { AliasEntry(source: try $0.string(), target: try $0.string()) }
    }
    public func write(to w: inout WireWriter) { w.list(aliases) { $0.string($1.source); $0.string($1.target) } }
}

/// Every message of a user (or one mailbox: `mailbox` non-empty) as a stream, in mailbox/UID order.
public struct Export: RPCStreamRequest {
    public typealias Reply = ExportEnd
    public typealias Item = ExportItem
    public static let type = MessageType.export
    public static let roles: Set<Role> = .adminOnly
    public var user: String, mailbox: String
    public init(user: String, mailbox: String = "") { self.user = user; self.mailbox = mailbox }
    public init(reading r: inout WireReader) throws { user = try r.string(); mailbox = try r.string() }
    public func write(to w: inout WireWriter) { w.string(user); w.string(mailbox) }
}

public struct ExportedMessage: Sendable, Equatable {
    public var mailbox: String, uid: UInt32, internalDate: Int64, sender: String, size: UInt64
    public init(mailbox: String, uid: UInt32, internalDate: Int64, sender: String, size: UInt64) {
        self.mailbox = mailbox; self.uid = uid; self.internalDate = internalDate; self.sender = sender; self.size = size
    }
}
/// One message's envelope; its body follows in ExportChunk frames.
public struct ExportMessage: RPCMessage, RPCStreamItem {
    public static let type = MessageType.exportMessage
    public var meta: ExportedMessage
    public init(_ meta: ExportedMessage) { self.meta = meta }
    public init(reading r: inout WireReader) throws {
        meta = ExportedMessage(mailbox: try r.string(), uid: try r.u32(), internalDate: try r.i64(), sender: try r.string(), size: try r.u64())
    }
    public func write(to w: inout WireWriter) { w.string(meta.mailbox); w.u32(meta.uid); w.i64(meta.internalDate); w.string(meta.sender); w.u64(meta.size) }
}
public struct ExportChunk: RPCMessage, RPCStreamItem {
    public static let type = MessageType.exportChunk
    public var bytes: ByteBuffer
    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
    public init(reading r: inout WireReader) throws { bytes = try r.bytes() }
    public func write(to w: inout WireWriter) { w.bytes(bytes) }
}
public enum ExportItem: RPCStreamItem, Equatable {
    case message(ExportedMessage), chunk(ByteBuffer)
    public static func decode(_ frame: Frame) throws -> ExportItem {
        switch frame.type {
        case ExportMessage.type.rawValue: return .message(try ExportMessage.decode(frame).meta)
        case ExportChunk.type.rawValue: return .chunk(try ExportChunk.decode(frame).bytes)
        default: throw WireError.unexpectedType(frame.type)
        }
    }
    public func frame(requestID: UInt32, flags: FrameFlags) -> Frame {
        switch self {
        case .message(let m): return ExportMessage(m).frame(requestID: requestID, flags: flags)
        case .chunk(let b): return ExportChunk(b).frame(requestID: requestID, flags: flags)
        }
    }
}
public struct ExportEnd: RPCMessage {
    public static let type = MessageType.exportEnd
    public var count: UInt32
    public init(count: UInt32) { self.count = count }
    public init(reading r: inout WireReader) throws { count = try r.u32() }
    public func write(to w: inout WireWriter) { w.u32(count) }
}

/// Rebuilds SEARCH's full-text index (issue 11 point 1) of the bodies in `user`'s mailboxes, or
/// of every stored body when `user` is "". Progress streams as the work goes, batch by batch.
public struct Reindex: RPCStreamRequest {
    public typealias Reply = ReindexProgress
    public typealias Item = ReindexProgress
    public static let type = MessageType.reindex
    public static let roles: Set<Role> = .adminOnly
    public var user: String
    public init(user: String) { self.user = user }
    public init(reading r: inout WireReader) throws { user = try r.string() }
    public func write(to w: inout WireWriter) { w.string(user) }
}
/// Bodies reindexed so far of `total`: each stream item, and the final reply (done == total).
public struct ReindexProgress: RPCMessage, RPCStreamItem, Equatable {
    public static let type = MessageType.reindexProgress
    public var done: UInt64, total: UInt64
    public init(done: UInt64, total: UInt64) { self.done = done; self.total = total }
    public init(reading r: inout WireReader) throws { done = try r.u64(); total = try r.u64() }
    public func write(to w: inout WireWriter) { w.u64(done); w.u64(total) }
}
