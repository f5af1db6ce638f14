// The views of mailboxes an imapd process selected lately, shared by its connections (Dovecot's
// index files play this part): the next SELECT of one asks the store only for the changes since
// its HIGHESTMODSEQ. Keyed by the logged-in user and the mailbox name; the store still checks
// the mailbox is that user's and the same one (id, UIDVALIDITY). Bounded in entries.
import Foundation
import MailIPC
import MailModel

public final class ViewMemo: @unchecked Sendable {
    /// Smaller views are read whole each time (cheap enough).
    public static let minEntries = 256
    /// Entries held in all (24 bytes each; shared with the sessions that have them selected).
    public static let maxEntries = 1 << 20

    struct Key: Hashable { var user: String, mailbox: String }
    private let lock = NSLock()
    private var views: [Key: MailboxView] = [:]
    private var held = 0

    public init() {}

    /// The last view of `mailbox` kept for `user`.
    public func view(user: String, mailbox: String) -> MailboxView? {
        lock.withLock { views[Key(user: user, mailbox: mailbox)] }
    }

    public func keep(user: String, mailbox: String, _ v: MailboxView) {
        let key = Key(user: user, mailbox: mailbox)
        lock.withLock {
            if let old = views.removeValue(forKey: key) { held -= old.entries.count }
            guard v.entries.count >= Self.minEntries, v.entries.count <= Self.maxEntries else { return }
            while held + v.entries.count > Self.maxEntries, let victim = views.keys.first {
                held -= views.removeValue(forKey: victim)!.entries.count
            }
            views[key] = v
            held += v.entries.count
        }
    }

    /// Forgets one view (it could not be brought up to date).
    public func forget(user: String, mailbox: String) {
        lock.withLock { if let old = views.removeValue(forKey: Key(user: user, mailbox: mailbox)) { held -= old.entries.count } }
    }

    var count: Int { lock.withLock { views.count } }
}

extension MailboxView {
    /// What the store is told of this view on the next SELECT.
    var stamp: ViewStamp { ViewStamp(mailbox: summary.id, uidValidity: summary.uidValidity, highestModSeq: summary.highestModSeq) }
}
