// Events family handlers (DESIGN §2 "notify, then pull"): watch a mailbox of a session of this
// connection, stop watching, and pull what changed since a MODSEQ (which re-arms the watch).
import NIOCore
import MailIPC
import MailStore

extension StoreConnectionHandler {
    func watch(_ m: MailboxWatch) throws -> () throws -> Watching {
        let u = try requireSession(m.session)
        let store = self.store, hub = self.hub, channel = context.channel, owner = self.owner
        return {
            guard let mb = try store.mailbox(user: u.id, name: m.mailbox) else { throw StoreError(.notFound, "no such mailbox: \(m.mailbox)") }
            let w = hub.add(channel: channel, owner: owner, session: m.session, mailboxID: mb.id)
            return Watching(watch: w, state: MailboxState(mb))
        }
    }

    func unwatch(_ m: MailboxUnwatch) throws -> () throws -> OK {
        guard hub.watch(m.watch, owner: owner) != nil else { throw ErrorReply(.notFound, "no such watch on this connection") }
        hub.remove(m.watch)
        return { OK() }
    }

    func changes(_ m: MailboxChanges) throws -> () throws -> Changes {
        guard let w = hub.watch(m.watch, owner: owner) else { throw ErrorReply(.notFound, "no such watch on this connection") }
        _ = try requireSession(w.session)
        hub.pulled(m.watch)
        let store = self.store, limit = Int(min(m.limit, MailboxChanges.maxLimit))
        return {
            guard let c = try store.changes(mailbox: w.mailboxID, since: m.sinceModSeq, limit: limit) else {
                throw StoreError(.notFound, "the mailbox is gone")
            }
            return Changes(state: MailboxState(c.summary), messages: c.messages.map { ChangedMessage(uid: $0.uid, modSeq: $0.modSeq, flags: $0.flags) },
                           complete: c.complete)
        }
    }
}
