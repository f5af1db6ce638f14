// Delivery family (types 10–29): recipient checks, Postfix map lookups, deliveries.
//
//   request                                   → reply                      roles
//   LookupRecipient(address, size)            → RecipientReply(status, canonical)   lmtpd smtpd lookupd admin
//   Lookup(map, key)                          → LookupResult(found, value)  lookupd admin
//   SenderLogins(address)                     → Names(logins)               smtpd
//   LocalDomain(domain)                       → LookupResult(found, "")     smtpd
//   DeliverBegin(sender, recipients, session, ┐ one request id; the body in DeliverChunk frames; with
//     envelopeDSN, recipientDSN,              │ a session (smtpd after AUTH) remote recipients are queued
//     mailbox, mailboxSpecialUse)             │ with their RFC 3461 RET/ENVID and NOTIFY/ORCPT; mailbox
//                                             │ "" → INBOX, else local copies go there (spam: Junk)
//   DeliverChunk(bytes)*                      │
//   DeliverEnd                                ┤ → DeliverResult([status])   lmtpd smtpd
//   DeliverAbort                              ┘ instead of DeliverEnd: the store discards the body; no reply
// DeliverChunk/End/Abort also carry an APPEND body after AppendBegin (imapd, Messages+Mailbox.swift).
//                                               (RSET mid-BDAT, size exceeded, client gone, timeout)
import NIOCore
import LookupProtocol
import MailModel

public enum RecipientStatus: UInt8, Sendable {
    case ok = 0, unknownUser = 1, notLocal = 2, tempFail = 3, overQuota = 4, rejected = 5
}

public struct LookupRecipient: RPCRequest {
    public typealias Reply = RecipientReply
    public static let type = MessageType.lookupRecipient
    public static let roles: Set<Role> = [.lmtpd, .smtpd, .lookupd, .admin]
    /// `size`: the message size the client declared (RFC 1870 SIZE), 0 when unknown: a local
    /// user whose quota has no room for it is `.overQuota` already at RCPT.
    public var address: String, size: UInt64
    public init(_ address: String, size: UInt64 = 0) { self.address = address; self.size = size }
    public init(reading r: inout WireReader) throws { address = try r.string(); size = try r.u64() }
    public func write(to w: inout WireWriter) { w.string(address); w.u64(size) }
}

public struct RecipientReply: RPCMessage {
    public static let type = MessageType.recipient
    /// `canonical`: when `status` is ok, the user's stored address if the address has one
    /// target, else the address asked (it reaches all its targets); otherwise the address asked.
    public var status: RecipientStatus, canonical: String
    public init(_ status: RecipientStatus, _ canonical: String) { self.status = status; self.canonical = canonical }
    public init(reading r: inout WireReader) throws { status = try r.enumU8(RecipientStatus.self); canonical = try r.string() }
    public func write(to w: inout WireWriter) { w.u8(status.rawValue); w.string(canonical) }
}

public struct Lookup: RPCRequest {
    public typealias Reply = LookupResult
    public static let type = MessageType.lookup
    public static let roles: Set<Role> = [.lookupd, .admin]
    public var map: LookupMap, key: String
    public init(map: LookupMap, key: String) { self.map = map; self.key = key }
    public init(reading r: inout WireReader) throws { map = try r.enumString(LookupMap.self); key = try r.string() }
    public func write(to w: inout WireWriter) { w.string(map.rawValue); w.string(key) }
}

public struct LookupResult: RPCMessage {
    public static let type = MessageType.lookupResult
    /// Postfix's answer: "OK" for recipients/domains, comma-separated targets or logins otherwise.
    public var found: Bool, value: String
    public init(found: Bool, value: String) { self.found = found; self.value = value }
    public init(reading r: inout WireReader) throws { found = try r.bool(); value = try r.string() }
    public func write(to w: inout WireWriter) { w.bool(found); w.string(value) }
}

/// The logins (user addresses) that may use `address` as envelope sender (RFC 6409 §6.1
/// submission checks; the same answer as Postfix's smtpd_sender_login_maps, as a list).
public struct SenderLogins: RPCRequest {
    public typealias Reply = Names
    public static let type = MessageType.senderLogins
    public static let roles: Set<Role> = [.smtpd]
    public var address: String
    public init(_ address: String) { self.address = address }
    public init(reading r: inout WireReader) throws { address = try r.string() }
    public func write(to w: inout WireWriter) { w.string(address) }
}

/// Is `domain` one of ours? smtpd's check of an unauthenticated sender on the mta port
/// (the Postfix `domains` map stays lookupd's).
public struct LocalDomain: RPCRequest {
    public typealias Reply = LookupResult
    public static let type = MessageType.localDomain
    public static let roles: Set<Role> = [.smtpd]
    public var domain: String
    public init(_ domain: String) { self.domain = domain }
    public init(reading r: inout WireReader) throws { domain = try r.string() }
    public func write(to w: inout WireWriter) { w.string(domain) }
}

public struct DeliverBegin: RPCRequest {
    public typealias Reply = DeliverResult
    public static let type = MessageType.deliverBegin
    public static let roles: Set<Role> = .workersThatDeliver
    /// At most this many recipients in one delivery (the SMTP limits are far lower).
    public static let maxRecipients = 100_000
    public var sender: String, recipients: [String], session: UInt64
    /// RFC 3461 RET and ENVID of MAIL (smtpd's submission roles; empty otherwise).
    public var envelopeDSN: QueueEnvelopeDSN
    /// NOTIFY and ORCPT per recipient, parallel to `recipients`; empty when none was given.
    public var recipientDSN: [QueueRecipientDSN]
    /// "" delivers local copies to INBOX; otherwise to the user's mailbox marked
    /// `mailboxSpecialUse` (RFC 6154), else the one named so, created when missing (issue 14: Junk).
    public var mailbox: String, mailboxSpecialUse: String
    /// The wire's "NOTIFY not given" (a real mask uses bits 0–2 only).
    static let notifyAbsent: UInt8 = 0xFF
    public init(sender: String, recipients: [String], session: UInt64 = 0, envelopeDSN: QueueEnvelopeDSN = QueueEnvelopeDSN(),
                recipientDSN: [QueueRecipientDSN] = [], mailbox: String = "", mailboxSpecialUse: String = "") {
        self.sender = sender; self.recipients = recipients; self.session = session
        self.envelopeDSN = envelopeDSN; self.recipientDSN = recipientDSN
        self.mailbox = mailbox; self.mailboxSpecialUse = mailboxSpecialUse
    }
    public init(reading r: inout WireReader) throws {
        sender = try r.string(); recipients = try r.strings(max: Self.maxRecipients); session = try r.u64()
        envelopeDSN = QueueEnvelopeDSN(ret: try r.string(), envid: try r.string())
        recipientDSN = try r.list(minElementBytes: WireSize.u8 + WireSize.string, max: Self.maxRecipients) { r in
            let notify = try r.u8()
            guard notify == Self.notifyAbsent || notify <= 7 else { throw WireError.badValue("notify") }
            return QueueRecipientDSN(notify: notify == Self.notifyAbsent ? nil : notify, orcpt: try r.string())
        }
        guard recipientDSN.isEmpty || recipientDSN.count == recipients.count else { throw WireError.badValue("recipient DSN count") }
        mailbox = try r.string(); mailboxSpecialUse = try r.string()
    }
    public func write(to w: inout WireWriter) {
        w.string(sender); w.strings(recipients); w.u64(session)
        w.string(envelopeDSN.ret); w.string(envelopeDSN.envid)
        w.list(recipientDSN) { $0.u8($1.notify ?? Self.notifyAbsent); $0.string($1.orcpt) }
        w.string(mailbox); w.string(mailboxSpecialUse)
    }

    /// The DSN parameters of `recipients[index]` (none given when the list is empty).
    public func dsn(ofRecipient index: Int) -> QueueRecipientDSN {
        index < recipientDSN.count ? recipientDSN[index] : QueueRecipientDSN()
    }
}

public struct DeliverChunk: RPCRequest {
    public typealias Reply = DeliverResult
    public static let type = MessageType.deliverChunk
    public static let roles: Set<Role> = .bodyChunkRoles
    public var bytes: ByteBuffer
    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
    public init(reading r: inout WireReader) throws { bytes = try r.bytes() }
    public func write(to w: inout WireWriter) { w.bytes(bytes) }
}

extension Set where Element == Role {
    /// Who may send body chunks: the delivering workers, and imapd for APPEND bodies.
    public static let bodyChunkRoles: Set<Role> = Set<Role>.workersThatDeliver.union([.imapd])
}

public struct DeliverEnd: RPCRequest, EmptyMessage {
    public typealias Reply = DeliverResult
    public static let type = MessageType.deliverEnd
    public static let roles: Set<Role> = .bodyChunkRoles
    public init() {}
}

/// Ends a delivery without delivering: the store discards what it staged of the body. No
/// reply is sent (the worker has stopped waiting); `Reply` names the delivery's reply type.
public struct DeliverAbort: RPCRequest, EmptyMessage {
    public typealias Reply = DeliverResult
    public static let type = MessageType.deliverAbort
    public static let roles: Set<Role> = .bodyChunkRoles
    public init() {}
}

public struct DeliverResult: RPCMessage {
    public static let type = MessageType.deliverResult
    /// One status per recipient of DeliverBegin, in order.
    public var statuses: [RecipientStatus]
    public init(_ statuses: [RecipientStatus]) { self.statuses = statuses }
    public init(reading r: inout WireReader) throws {
        statuses = try r.list(minElementBytes: WireSize.u8, max: DeliverBegin.maxRecipients) { try $0.enumU8(RecipientStatus.self) }
    }
    public func write(to w: inout WireWriter) { w.list(statuses) { $0.u8($1.rawValue) } }
}
