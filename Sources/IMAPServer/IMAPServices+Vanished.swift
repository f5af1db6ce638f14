// VANISHED (EARLIER) for QRESYNC SELECT and UID FETCH ... (CHANGEDSINCE m VANISHED): every UID
// expunged since the client's MODSEQ, however many other messages changed meanwhile.
import MailModel

public enum VanishedPaging {
    /// Changed entries per delta page while collecting tombstones (the entries themselves are
    /// not used: the session's view already has them).
    public static let deltaPage = 2000
}

extension IMAPServices {
    /// UIDs expunged from `mailbox` with a tombstone MODSEQ above `since`, ascending, each once.
    /// The store cuts an incomplete delta's tombstones at its last MODSEQ, so the delta is read
    /// page by page to its end: one page alone loses every expunge that came after the first
    /// `page` changes (mutt's header cache then paired sequence numbers with the wrong UIDs).
    public func vanishedUIDs(mailbox: Int64, since: UInt64, page: Int = VanishedPaging.deltaPage) async throws -> [UInt32] {
        var from = since, gone: [UInt32] = []
        while true {
            let d = try await delta(mailbox: mailbox, since: from, limit: max(1, page))
            gone += d.vanished
            guard !d.complete, let last = d.changed.last?.modSeq, last > from else { break }
            from = last
        }
        return gone.sorted()
    }
}
