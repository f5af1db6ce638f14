// The IMAP connection states (RFC 9051 §3) and the command table whose entries drive the
// session's guards: which state a command needs, whether it may run in a read-only (EXAMINE)
// mailbox, and whether it numbers messages by sequence (RFC 9051 §7.5.1: no EXPUNGE then).

public enum IMAPState: Sendable, Equatable {
    case notAuthenticated
    case authenticated
    /// A mailbox is selected; `readOnly` after EXAMINE (or SELECT of a mailbox we cannot write).
    case selected(readOnly: Bool)
    case logout
}

public struct CommandRule: Sendable, Equatable {
    public enum Needs: Sendable, Equatable { case any, notAuthenticated, authenticated, selected }
    public var needs: Needs
    /// Refused with NO in a read-only mailbox (RFC 9051 §6.3.3 EXAMINE).
    public var writes = false
    /// Message numbers are sequence numbers: expunges must not be announced while it runs
    /// (RFC 9051 §7.5.1 — FETCH, STORE and SEARCH; their UID forms may announce them).
    public var bySequence = false
}

public enum CommandTable {
    /// The rule for a command (the UID forms are passed with `uid` true).
    public static func rule(_ kind: IMAPCommand.Kind) -> CommandRule {
        switch kind {
        case .capability, .noop, .logout, .id: return CommandRule(needs: .any)
        case .starttls, .login, .authenticate: return CommandRule(needs: .notAuthenticated)
        case .compress: return CommandRule(needs: .authenticated)   // RFC 4978 §5: command-auth
        case .enable, .select, .examine, .create, .delete, .rename, .subscribe, .unsubscribe, .list, .lsub,
             .namespace, .status, .append, .idle, .getQuota, .getQuotaRoot, .setQuota:
            return CommandRule(needs: .authenticated)
        case .check, .close, .unselect: return CommandRule(needs: .selected)
        case .expunge, .uidExpunge: return CommandRule(needs: .selected, writes: true)
        case .search(_, let uid), .sort(_, let uid), .thread(_, let uid): return CommandRule(needs: .selected, bySequence: !uid)
        case .fetch(_, let uid): return CommandRule(needs: .selected, bySequence: !uid)
        case .store(_, let uid): return CommandRule(needs: .selected, writes: true, bySequence: !uid)
        case .copy(_, _, let uid): return CommandRule(needs: .selected, bySequence: !uid)
        case .move(_, _, let uid): return CommandRule(needs: .selected, writes: true, bySequence: !uid)
        }
    }

    /// Whether a command with `rule` may run in `state` (authenticated commands also run with a
    /// mailbox selected, RFC 9051 §3.3).
    public static func allows(_ rule: CommandRule, in state: IMAPState) -> Bool {
        switch (rule.needs, state) {
        case (_, .logout): return false
        case (.any, _): return true
        case (.notAuthenticated, .notAuthenticated): return true
        case (.authenticated, .authenticated), (.authenticated, .selected): return true
        case (.selected, .selected): return true
        default: return false
        }
    }
}
