// POP3Services over the store RPC (DESIGN §2, §4): one instance per connection, every call
// scoped to the store session its login opened; the store confines role pop3d to that user's
// INBOX. The snapshot is the SELECT stream, whose entries carry the stored sizes (DetailsGet
// only for an entry without one). RPC errors become POP3ServiceError kinds.
import Foundation
import NIOCore
import MailIPC
import MailModel
import MailWorker
import MIME
import POP3Protocol

public final class RPCPOP3Services: POP3Services, @unchecked Sendable {
    let rpc: RPCClient
    private let lock = NSLock()
    private var session: UInt64 = 0
    /// The mailbox name pop3d serves (RFC 1939: the maildrop is the user's INBOX).
    static let inbox = "INBOX"

    public init(rpc: RPCClient) { self.rpc = rpc }

    private var sid: UInt64 { lock.withLock { session } }

    static func serviceError(_ e: Error) -> POP3ServiceError {
        if let e = e as? POP3ServiceError { return e }
        guard let r = e as? RPCError, let code = r.code else { return POP3ServiceError(.temporary, "store unavailable: \(e)") }
        switch code {
        case .exists: return POP3ServiceError(.inUse, r.message)
        case .notFound: return POP3ServiceError(.notFound, r.message)
        case .denied, .invalid, .overQuota: return POP3ServiceError(.denied, r.message)
        case .throttled, .temporary, .internal, .badSequence: return POP3ServiceError(.temporary, r.message)
        }
    }

    func call<R: RPCRequest>(_ request: R) async throws -> R.Reply {
        do { return try await rpc.call(request).get() } catch { throw Self.serviceError(error) }
    }

    public func authenticate(user: String, password: String, client: String) async -> POP3AuthOutcome {
        await StoreLogin.authenticate(rpc, user: user, password: password, client: client, service: "pop3") { s in
            let old = lock.withLock { () -> UInt64 in let o = session; session = s.id; return o }
            if old != 0 { rpc.call(SessionEnd(old)).whenComplete { _ in } }
        }
    }

    public func close() {
        let s = lock.withLock { () -> UInt64 in let s = session; session = 0; return s }
        if s != 0 { rpc.call(SessionEnd(s)).whenComplete { _ in } }
    }

    /// Pop3Lock and the SELECT go out together (one round trip less per login): the store
    /// handles a connection's requests in the order sent and takes the lock on its event loop
    /// before it reads the view, so the snapshot is still taken under the lock. Without the
    /// lock the view read is dropped and `.inUse` thrown.
    public func openMaildrop() async throws -> POP3Maildrop {
        let locked = rpc.call(Pop3Lock(session: sid))
        let drop: Result<POP3Maildrop, Error>
        do { drop = .success(try await maildrop()) } catch { drop = .failure(error) }
        do { _ = try await locked.get() } catch { throw Self.serviceError(error) }
        return try drop.get()
    }

    private func maildrop() async throws -> POP3Maildrop {
        final class Gathered: @unchecked Sendable { var header: ViewHeader?; var entries: [ViewEntry] = [] }
        let g = Gathered(), loop = rpc.channel.eventLoop, sid = self.sid
        let end: ViewEnd
        do {
            end = try await rpc.stream(MailboxSelect(session: sid, name: Self.inbox)) { item in
                switch item {
                case .header(let h): g.header = h; g.entries.reserveCapacity(Int(h.summary.messages))
                case .chunk(let e): g.entries.append(contentsOf: e)
                }
                return loop.makeSucceededVoidFuture()
            }.get()
        } catch { throw Self.serviceError(error) }
        guard let h = g.header, end.count == g.entries.count else { throw POP3ServiceError(.temporary, "incomplete view of INBOX") }
        let mailbox = h.summary.id
        // A whole view carries each message's stored size; only entries without one (a size
        // past the view's 32 bits, as IMAP's RFC822.SIZE falls back too) are asked for, every
        // batch at once; the store may answer a batch in part (`through`).
        let unknown = g.entries.lazy.filter { $0.size == ViewEntry.unknownSize }.map(\.uid)
        guard !unknown.isEmpty else {
            return POP3Maildrop(mailbox: mailbox, uidValidity: h.summary.uidValidity,
                                messages: g.entries.map { POP3Message(uid: $0.uid, size: Int($0.size)) })
        }
        let missing = Array(unknown)
        let batches = stride(from: 0, to: missing.count, by: MailboxLimits.detailsPerRequest).map {
            Array(missing[$0..<min($0 + MailboxLimits.detailsPerRequest, missing.count)])
        }
        var sizes: [UInt32: Int] = [:]
        sizes.reserveCapacity(missing.count)
        try await withThrowingTaskGroup(of: [(UInt32, Int)].self) { group in
            for batch in batches {
                group.addTask { try await self.sizes(mailbox: mailbox, uids: batch) }
            }
            for try await part in group { for (u, s) in part { sizes[u] = s } }
        }
        // A message expunged between the view and the sizes is left out of the snapshot.
        let messages = g.entries.compactMap { e in
            e.size != ViewEntry.unknownSize ? POP3Message(uid: e.uid, size: Int(e.size)) : sizes[e.uid].map { POP3Message(uid: e.uid, size: $0) }
        }
        return POP3Maildrop(mailbox: mailbox, uidValidity: h.summary.uidValidity, messages: messages)
    }

    private func sizes(mailbox: Int64, uids: [UInt32]) async throws -> [(UInt32, Int)] {
        var rest = uids[...], out: [(UInt32, Int)] = []
        while !rest.isEmpty {
            // Sizes only: no MessageInfo (ENVELOPE, BODYSTRUCTURE) for a thousand messages.
            let r = try await call(DetailsGet(session: sid, mailbox: mailbox, uids: Array(rest), want: []))
            out += r.details.map { ($0.uid, Int($0.size)) }
            guard rest.contains(r.through) else { throw POP3ServiceError(.temporary, "details reply through UID \(r.through)") }
            rest = rest.drop { $0 <= r.through }
        }
        return out
    }

    public func headerSize(mailbox: Int64, uid: UInt32) async throws -> Int {
        let r = try await call(DetailsGet(session: sid, mailbox: mailbox, uids: [uid]))
        guard let d = r.details.first(where: { $0.uid == uid }) else { throw POP3ServiceError(.notFound, "message \(uid) is gone") }
        do { return try MessageInfo(encoded: d.info).headerSize } catch {
            throw POP3ServiceError(.temporary, "stored message info of \(uid) unreadable: \(error)")
        }
    }

    public func read(mailbox: Int64, uid: UInt32, offset: Int, length: Int) async throws -> [UInt8] {
        let want = UInt32(min(length, MailboxLimits.maxReadLength))
        let b = try await call(MessageRead(session: sid, mailbox: mailbox, uid: uid, offset: UInt64(offset), length: want)).bytes
        return Array(b.readableBytesView)
    }

    /// The bodies stay slices of the reply frame (not copied).
    public func readAhead(mailbox: Int64, uids: [UInt32], maxSize: Int) async throws -> [UInt32: ByteBuffer] {
        let r = try await call(Pop3Read(session: sid, mailbox: mailbox, uids: Array(uids.prefix(Pop3Read.maxUIDs)),
                                        maxSize: UInt32(min(maxSize, MailboxLimits.maxReadLength))))
        return Dictionary(r.bodies.map { ($0.uid, $0.bytes) }, uniquingKeysWith: { a, _ in a })
    }

    public func delete(mailbox: Int64, uids: [UInt32]) async throws -> [UInt32] {
        try await call(Pop3Delete(session: sid, mailbox: mailbox, uids: uids)).uids
    }
}
