// SMTPServices over the store RPC (MailIPC.RPCClient): the only file in SMTPServer that speaks
// the store's wire messages, so a change of the RPC layer is ported here and nowhere else.
import NIOCore
import MailIPC
import SMTPProtocol

struct RPCSMTPServices: SMTPServices {
    let rpc: RPCClient

    init(_ rpc: RPCClient) { self.rpc = rpc }

    func checkRecipient(_ address: String) -> EventLoopFuture<RecipientLookup> {
        rpc.call(.lookupRecipient(address)).map { reply in
            guard case .recipient(let status, let canonical) = reply else { return .tempFail }
            switch status {
            case .ok: return .ok(canonical: canonical)
            case .unknownUser: return .unknownUser
            case .notLocal: return .notLocal
            case .tempFail, .overQuota, .rejected: return .tempFail
            }
        }
    }

    func checkPostmaster() -> EventLoopFuture<RecipientLookup> {
        checkRecipient("postmaster")      // the store resolves the bare local part
    }

    func checkSender(_ address: String?, user: String) -> EventLoopFuture<Bool> {
        // The store has no owner for the null sender.
        guard let address else { return rpc.channel.eventLoop.makeSucceededFuture(false) }
        // The "senders" map's value lists the users that own the address, comma-separated.
        return rpc.call(.lookup(map: "senders", key: address)).map { reply in
            guard case .lookupResult(true, let owners) = reply else { return false }
            return owners.split(separator: ",").contains { $0 == Substring(user) }
        }
    }

    func authenticate(user: String, password: String) -> EventLoopFuture<AuthOutcome> {
        rpc.call(.authenticate(user: user, password: password)).map { reply -> AuthOutcome in
            guard case .session(let sid, let canonical) = reply else { return .tempFail }
            return .success(canonical: canonical, storeSession: sid)
        }.flatMapErrorThrowing { error in
            guard let e = error as? RPCError, e.code == .denied else { throw error }
            return .failure
        }
    }

    func endSession(_ storeSession: UInt64) {
        _ = rpc.call(.sessionEnd(storeSession))
    }

    func deliver(sender: String, recipients: [String], body: ByteBuffer,
                 storeSession: UInt64) -> EventLoopFuture<[RecipientDeliveryStatus]> {
        rpc.deliver(sender: sender, recipients: recipients, body: body, session: storeSession).map { statuses in
            statuses.map {
                switch $0 {
                case .ok: return .delivered
                case .unknownUser: return .unknownUser
                case .notLocal: return .notLocal
                case .overQuota: return .overQuota
                case .tempFail: return .tempFail
                case .rejected: return .rejected
                }
            }
        }.flatMapErrorThrowing { error in
            if let e = error as? RPCError, e.code == .denied { throw SMTPServiceError.senderDenied("\(e)") }
            throw error
        }
    }
}
