// A view kept from an earlier SELECT, brought up to date with the store's changes since its
// HIGHESTMODSEQ (DESIGN §9): the entries a fresh view would have (sizes kept), in UID order — or nil when the
// result disagrees with the mailbox's message count (then the whole view is read instead).
import MailModel

extension MailboxView {
    /// `changed`: the entries whose MODSEQ is above this view's (new messages and changed
    /// flags, in any order); `vanished`: UIDs expunged since; `summary`/`keywords`: as now.
    public func merging(summary: MailboxSummary, keywords: [String], changed: [ViewEntry], vanished: [UInt32]) -> MailboxView? {
        guard summary.id == self.summary.id, summary.uidValidity == self.summary.uidValidity else { return nil }
        if changed.isEmpty && vanished.isEmpty {
            return entries.count == Int(summary.messages) ? MailboxView(summary: summary, keywords: keywords, entries: entries) : nil
        }
        let gone = Set(vanished)
        let changes = changed.sorted { ($0.uid, $0.modSeq) < ($1.uid, $1.modSeq) }
        var out: [ViewEntry] = []
        out.reserveCapacity(Int(summary.messages))
        var i = 0, j = 0
        func add(_ e: ViewEntry) { if gone.isEmpty || !gone.contains(e.uid) { out.append(e) } }
        while i < entries.count || j < changes.count {
            if j == changes.count || (i < entries.count && entries[i].uid < changes[j].uid) {
                add(entries[i]); i += 1
            } else {
                let old = i < entries.count && entries[i].uid == changes[j].uid ? entries[i] : nil
                if old != nil { i += 1 }
                // One UID changed twice in the list: the later MODSEQ wins.
                while j + 1 < changes.count && changes[j + 1].uid == changes[j].uid { j += 1 }
                // Sizes never change for a UID: a change that came without one keeps the view's.
                add(old.map(changes[j].keepingSize) ?? changes[j]); j += 1
            }
        }
        guard out.count == Int(summary.messages) else { return nil }
        return MailboxView(summary: summary, keywords: keywords, entries: out)
    }
}
