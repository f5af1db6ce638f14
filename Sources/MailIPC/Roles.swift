// Connection roles and what each may ask the store (DESIGN §2). The store learns a
// connection's role from the master, never from the worker; anything else is refused.
public enum Role: String, Sendable, CaseIterable {
    case lmtpd, smtpd, imapd, pop3d, lookupd, admin

    public var allowedRequests: Set<MessageType> {
        switch self {
        case .lmtpd: return [.lookupRecipient, .deliverBegin, .deliverChunk, .deliverEnd]
        case .smtpd: return [.lookupRecipient, .lookup, .deliverBegin, .deliverChunk, .deliverEnd, .authenticate, .sessionEnd]
        case .imapd, .pop3d: return [.authenticate, .sessionEnd, .mailboxList]
        case .lookupd: return [.lookupRecipient, .lookup]
        case .admin: return [.domainAdd, .domainRemove, .domainList, .userAdd, .userRemove, .userPasswd, .userList,
                             .aliasAdd, .aliasRemove, .aliasList, .mailboxList, .export, .queueList, .lookupRecipient, .lookup]
        }
    }
    public func may(_ t: MessageType) -> Bool { t == .hello || allowedRequests.contains(t) }
}
