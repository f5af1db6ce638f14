// Store-domain types to RPC wire types: the one place the store server translates, so
// MailStore never imports MailIPC (DESIGN §3).
import MailIPC
import MailStore

extension ErrorCode {
    init(_ kind: StoreErrorKind) {
        switch kind {
        case .notFound: self = .notFound
        case .exists: self = .exists
        case .invalid: self = .invalid
        case .denied: self = .denied
        case .temporary: self = .temporary
        case .overQuota: self = .overQuota
        }
    }
}

extension RecipientStatus {
    init(_ s: DeliveryStatus) {
        switch s {
        case .delivered: self = .ok
        case .unknownUser: self = .unknownUser
        case .notLocal: self = .notLocal
        case .tempFail: self = .tempFail
        case .overQuota: self = .overQuota
        }
    }
}

extension MailboxInfo {
    init(_ m: MailboxSummary) {
        self.init(name: m.name, specialUse: m.specialUse, uidValidity: m.uidValidity, uidNext: m.uidNext,
                  highestModSeq: m.highestModSeq, messages: m.messages, subscribed: m.subscribed)
    }
}

extension MailboxState {
    init(_ m: MailboxSummary) {
        self.init(uidValidity: m.uidValidity, uidNext: m.uidNext, highestModSeq: m.highestModSeq, messages: m.messages)
    }
}

extension ExportedMessage {
    init(_ m: StoredMessage) {
        self.init(mailbox: m.mailbox, uid: m.uid, internalDate: m.internalDate, sender: m.sender, size: m.size)
    }
}

extension QueueEntry {
    init(_ q: QueuedRecipient) {
        self.init(id: q.id, sender: q.sender, recipient: q.recipient, created: q.created, nextAttempt: q.nextAttempt,
                  attempts: UInt32(clamping: q.attempts), lastError: q.lastError)
    }
}

extension ErrorReply {
    /// The reply for an error thrown while serving a request.
    static func from(_ e: Error) -> ErrorReply? {
        switch e {
        case let e as ErrorReply: return e
        case let e as StoreError: return ErrorReply(ErrorCode(e.code), e.message)
        default: return nil
        }
    }
}
