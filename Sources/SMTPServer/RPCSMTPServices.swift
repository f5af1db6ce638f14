// SMTPServices over the store RPC (MailIPC.RPCClient): the only file in SMTPServer that speaks
// the store's wire messages, so a change of the RPC layer is ported here and nowhere else.
import NIOCore
import MailIPC
import MailModel
import SMTPProtocol

struct RPCSMTPServices: SMTPServices {
    let rpc: RPCClient

    init(_ rpc: RPCClient) { self.rpc = rpc }

    func checkRecipient(_ address: String) -> EventLoopFuture<RecipientLookup> {
        checkRecipient(address, declaredSize: nil)
    }

    func checkRecipient(_ address: String, declaredSize: Int?) -> EventLoopFuture<RecipientLookup> {
        rpc.call(LookupRecipient(address, size: UInt64(max(0, declaredSize ?? 0)))).map { reply in
            switch reply.status {
            case .ok: return .ok(canonical: reply.canonical)
            case .unknownUser: return .unknownUser
            case .notLocal: return .notLocal
            case .overQuota: return .overQuota
            case .tempFail, .rejected: return .tempFail
            }
        }
    }

    func checkPostmaster() -> EventLoopFuture<RecipientLookup> {
        checkRecipient("postmaster")      // the store resolves the bare local part
    }

    func checkSender(_ address: String?, user: String) -> EventLoopFuture<Bool> {
        // The store has no owner for the null sender.
        guard let address else { return rpc.channel.eventLoop.makeSucceededFuture(false) }
        return rpc.call(SenderLogins(address)).map { $0.names.contains(user) }
    }

    func isLocalDomain(_ domain: String) -> EventLoopFuture<Bool> {
        rpc.call(LocalDomain(domain)).map(\.found)
    }

    func authenticate(user: String, password: String, client: String) -> EventLoopFuture<AuthOutcome> {
        rpc.call(Authenticate(user: user, password: password, client: client, service: "smtp")).map { reply -> AuthOutcome in
            .success(canonical: reply.user, storeSession: reply.id)
        }.flatMapErrorThrowing { error in
            switch (error as? RPCError)?.code {
            case .denied?: return .failure
            case .throttled?: return .blocked
            default: throw error
            }
        }
    }

    func endSession(_ storeSession: UInt64) {
        _ = rpc.call(SessionEnd(storeSession))
    }

    func beginDelivery(sender: String, recipients: [String], storeSession: UInt64) -> any SMTPDelivery {
        RPCSMTPDelivery(rpc.beginDelivery(DeliverBegin(sender: sender, recipients: recipients, session: storeSession)))
    }

    /// With the envelope's RFC 3461 parameters in the queue's terms (MailModel).
    func beginDelivery(_ envelope: SMTPEnvelope, storeSession: UInt64) -> any SMTPDelivery {
        beginDelivery(envelope, storeSession: storeSession, mailbox: "", specialUse: "")
    }

    /// The same into a mailbox other than INBOX ("": INBOX).
    func beginDelivery(_ envelope: SMTPEnvelope, storeSession: UInt64, mailbox: String, specialUse: String) -> any SMTPDelivery {
        let recipients = envelope.deliveryAddresses
        let dsn = QueueEnvelopeDSN(ret: envelope.dsn.ret?.rawValue ?? "", envid: envelope.dsn.envelopeID ?? "")
        let perRecipient = recipients.indices.map { i -> QueueRecipientDSN in
            let r = envelope.dsn(ofRecipient: i)
            return QueueRecipientDSN(notify: r.notify?.rawValue, orcpt: r.originalRecipient ?? "")
        }
        return RPCSMTPDelivery(rpc.beginDelivery(DeliverBegin(sender: envelope.sender?.address ?? "", recipients: recipients,
                                                              session: storeSession, envelopeDSN: dsn, recipientDSN: perRecipient,
                                                              mailbox: mailbox, mailboxSpecialUse: specialUse)))
    }
}

/// SMTPDelivery over the store RPC's streamed delivery: statuses and errors in SMTP terms.
final class RPCSMTPDelivery: SMTPDelivery {
    let delivery: RPCDelivery

    init(_ delivery: RPCDelivery) { self.delivery = delivery }

    func send(_ bytes: ByteBuffer) -> EventLoopFuture<Void> { delivery.send(bytes) }

    func end() -> EventLoopFuture<[RecipientDeliveryStatus]> {
        delivery.end().map { statuses in
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

    func abort() { delivery.abort() }
}
