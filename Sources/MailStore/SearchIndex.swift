// SEARCH's full-text index (issue 11 point 1): one FTS5 row per stored body (rowid = messages.id),
// holding exactly the folded texts SearchContent builds, so a content key's index answer is what a
// scan would find. The evaluator confirms each candidate, without the TEXT/BODY keys the index
// answered exactly (`withoutExactKeys`). Bodies not indexed are candidates, confirmed in full.
import Foundation
import GRDB
import MIME
import MailSyntax

/// What the index holds of one body: the texts the evaluator searches, computed by the evaluator's
/// own code (SearchContent) and folded by SearchFold, one FTS5 column each.
public struct SearchIndexText: Sendable, Equatable {
    /// The top-level header's field values, decoded and folded, one per line (HEADER, SUBJECT, FROM…).
    public var top: String
    /// Every header section as folded "name: value" lines (TEXT's header half): attachments' names too.
    public var headers: String
    /// The text of the text/* leaves, transfer-decoded, converted to UTF-8, folded (BODY, TEXT).
    public var body: String

    public init(top: String, headers: String, body: String) { self.top = top; self.headers = headers; self.body = body }

    /// The texts of `bytes`, whose parsed info is `info`. HTML stays as it is (tags included):
    /// the scan searches its source, so the index must hold it too to never miss a match.
    public init(_ bytes: [UInt8], info: MessageInfo) {
        var content = SearchContent(SearchableMessage(uid: 0, modSeq: 0, flags: [], keywords: [], internalDate: 0,
                                                      size: UInt64(bytes.count), info: info, body: { bytes }))
        // SearchContent throws only what `body` throws, and this one does not.
        let values = (try? content.topHeader().map(\.value)) ?? []
        top = Self.text(Array(values.joined(separator: [ASCII.lf])))
        headers = Self.text((try? content.allHeaders()) ?? [])
        body = Self.text((try? content.bodyText()) ?? [])
    }

    /// The texts of a message in memory (delivery, APPEND, reindex).
    public init(_ bytes: [UInt8]) { self.init(bytes, info: MessageParser.parse(bytes)) }

    /// Folded bytes as the column's text. SQLite's GLOB stops at a NUL, so NUL becomes U+FFFD: a
    /// needle (never with a NUL, see `SearchIndexPlan.pattern`) can then only gain matches.
    static func text(_ folded: [UInt8]) -> String {
        let s = String(decoding: folded, as: UTF8.self)
        return folded.contains(0) ? s.replacingOccurrences(of: "\0", with: "\u{FFFD}") : s
    }
}

/// The FTS5 columns (migration "v8-fts").
enum SearchIndexColumn: String, Sendable {
    case top, hdr, body
}

/// The part of a query the index answers: a set of bodies every match is among. Built from the
/// prepared query (its folded needles); nil where the index cannot narrow (NOT, short needles,
/// a field's mere presence, cheap-only keys): those leave every message a candidate.
indirect enum SearchIndexPlan: Sendable, Equatable {
    /// Bodies whose text in one of the columns contains the needle (a GLOB pattern).
    case contains([SearchIndexColumn], String)
    case and([SearchIndexPlan])
    case or(SearchIndexPlan, SearchIndexPlan)

    /// The trigram tokenizer indexes runs of three characters: a shorter needle has no trigram.
    static let minNeedleCharacters = 3

    init?(_ prepared: PreparedSearch) { self.init(prepared.root) }

    init?(_ node: SearchNode) {
        switch node {
        case .text(let n): guard let p = Self.pattern(n) else { return nil }; self = .contains([.hdr, .body], p)
        case .body(let n): guard let p = Self.pattern(n) else { return nil }; self = .contains([.body], p)
        case .header(_, let n): guard let p = Self.pattern(n) else { return nil }; self = .contains([.top], p)
        case .and(let children):
            let plans = children.compactMap(SearchIndexPlan.init)
            guard let first = plans.first else { return nil }
            self = plans.count == 1 ? first : .and(plans)
        case .or(let a, let b):
            guard let x = SearchIndexPlan(a), let y = SearchIndexPlan(b) else { return nil }
            self = .or(x, y)
        default: return nil
        }
    }

    /// `root` without the TEXT and BODY keys the index answers exactly, for a body that is
    /// indexed (not pending) and was selected by this plan's condition: such a key on the
    /// conjunction path from the root holds for every candidate, so it becomes `.all` and the
    /// candidate is not read or decoded. Exact because the index columns are the very texts
    /// the evaluator searches (SearchIndexText), folded alike, and GLOB '*needle*' is a
    /// substring test on the stored text (FTS5 rechecks trigram candidates against it). Not
    /// below OR or NOT (the condition does not say which side held), nor HEADER/SUBJECT/FROM…
    /// (the `top` column holds every field's value), nor a needle with U+FFFD, which the
    /// column has where the message had a NUL or invalid UTF-8.
    static func withoutExactKeys(_ root: SearchNode) -> SearchNode {
        switch root {
        case .text(let n) where isExact(n): return .all
        case .body(let n) where isExact(n): return .all
        case .and(let children): return .and(children.map(withoutExactKeys))
        default: return root
        }
    }

    private static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]

    private static func isExact(_ needle: [UInt8]) -> Bool {
        pattern(needle) != nil && !SearchFold.contains(needle, replacementCharacter)
    }

    /// The GLOB pattern "*needle*" for a folded needle (its `*`, `?` and `[` as one-character
    /// classes), or nil when the index cannot answer it: too short, or holding a NUL.
    static func pattern(_ folded: [UInt8]) -> String? {
        guard !folded.contains(0) else { return nil }
        let needle = String(decoding: folded, as: UTF8.self)
        guard needle.unicodeScalars.count >= minNeedleCharacters else { return nil }
        var p = "*"
        for c in needle.unicodeScalars {
            switch c {
            case "*", "?", "[": p += "[\(c)]"
            default: p.unicodeScalars.append(c)
            }
        }
        return p + "*"
    }

    /// An SQL condition on `mm.message_id` true for every body the plan keeps; `args` gets its patterns.
    func sql(_ args: inout [DatabaseValueConvertible]) -> String {
        switch self {
        case .contains(let columns, let pattern):
            return "(" + columns.map { c -> String in
                args.append(pattern)
                return "mm.message_id IN (SELECT rowid FROM search_index WHERE \(c.rawValue) GLOB ?)"
            }.joined(separator: " OR ") + ")"
        case .and(let plans): return "(" + plans.map { $0.sql(&args) }.joined(separator: " AND ") + ")"
        case .or(let a, let b): return "(" + a.sql(&args) + " OR " + b.sql(&args) + ")"
        }
    }
}

public enum SearchIndexLimits {
    /// Bodies indexed per write transaction by a reindex.
    public static let reindexBatch = 256
    /// A larger message is not indexed (its text is not even extracted): it stays pending.
    public static let maxIndexedMessage = 8 * 1024 * 1024
    /// Bytes of index text (all three columns) past which a body stays pending instead.
    public static let maxIndexedText = 1024 * 1024
}

/// A store that keeps SEARCH's full-text index: what `postern reindex` drives, batch by batch.
public protocol SearchIndexStore: AnyObject, Sendable {
    /// The bodies in `user`'s mailboxes, or every stored body (nil).
    func reindexTargets(user: Int64?) throws -> [Int64]
    /// Rewrites the index rows of `bodies` (at most `reindexBatch`) in one transaction.
    func reindex(_ bodies: ArraySlice<Int64>) throws
}

extension SQLiteMailStore: SearchIndexStore {}

extension SQLiteMailStore {

    /// The SQL condition of `plan` over `mm`, widened by the bodies not indexed yet (a store
    /// upgraded to v8, or running with `search_index = false`): they stay candidates.
    static func indexCondition(_ plan: SearchIndexPlan, _ args: inout [DatabaseValueConvertible]) -> String {
        "(\(plan.sql(&args)) OR mm.message_id IN (SELECT message_id FROM search_pending))"
    }

    /// The texts to index of a body in memory; nil when `search_index` is off or the body is
    /// too large to index (`SearchIndexLimits`): it then stays pending — a candidate of every
    /// SEARCH, checked by the scan — so answers stay exact and no delivery's transaction holds
    /// the writer for megabytes of trigrams.
    func searchText(_ bytes: @autoclosure () -> [UInt8], _ info: MessageInfo) -> SearchIndexText? {
        guard searchIndex, info.size <= SearchIndexLimits.maxIndexedMessage else { return nil }
        let t = SearchIndexText(bytes(), info: info)
        return t.top.utf8.count + t.headers.utf8.count + t.body.utf8.count <= SearchIndexLimits.maxIndexedText ? t : nil
    }

    /// Indexes body `id` (just inserted: its trigger left it pending) in the caller's
    /// transaction from `text`; without one (index off, body too large) it stays pending.
    func indexBody(_ db: Database, _ id: Int64, _ text: SearchIndexText?) throws {
        guard searchIndex, let text else { return }
        try Self.writeIndexRow(db, id, text)
    }

    /// Replaces body `id`'s row and takes it off the pending list.
    static func writeIndexRow(_ db: Database, _ id: Int64, _ t: SearchIndexText) throws {
        try db.cachedStatement(sql: "DELETE FROM search_index WHERE rowid = ?").execute(arguments: [id])
        try db.cachedStatement(sql: "INSERT INTO search_index (rowid, top, hdr, body) VALUES (?, ?, ?, ?)")
            .execute(arguments: [id, t.top, t.headers, t.body])
        try db.cachedStatement(sql: "DELETE FROM search_pending WHERE message_id = ?").execute(arguments: [id])
    }

    /// Rebuilds the index rows of every body `user` has in a mailbox (nil: every stored body),
    /// `reindexBatch` bodies per transaction, reporting (done, total) before and after each.
    public func reindex(user: Int64?, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> Int {
        let ids = try reindexTargets(user: user)
        progress(0, ids.count)
        for start in stride(from: 0, to: ids.count, by: SearchIndexLimits.reindexBatch) {
            let end = min(start + SearchIndexLimits.reindexBatch, ids.count)
            try reindex(ids[start..<end])
            progress(end, ids.count)
        }
        return ids.count
    }

    /// The bodies `reindex(user:)` goes through: those in `user`'s mailboxes, or every one.
    public func reindexTargets(user: Int64?) throws -> [Int64] {
        try pool.read { db in
            try user.map {
                try Int64.fetchAll(db, sql: """
                    SELECT DISTINCT mm.message_id FROM mailbox_messages mm JOIN mailboxes b ON b.id = mm.mailbox_id
                    WHERE b.user_id = ? ORDER BY mm.message_id
                    """, arguments: [$0])
            } ?? Int64.fetchAll(db, sql: "SELECT id FROM messages ORDER BY id")
        }
    }

    /// Rewrites the rows of `bodies` in one transaction. Their texts are computed before it,
    /// outside the writer; a body expunged meanwhile is skipped.
    public func reindex(_ bodies: ArraySlice<Int64>) throws {
        var texts: [(Int64, SearchIndexText)] = []
        for id in bodies {
            guard let bytes = try storedBody(id), let text = searchText(bytes, MessageParser.parse(bytes)) else { continue }
            texts.append((id, text))
        }
        try pool.write { db in
            for (id, t) in texts where try Bool.fetchOne(db, sql: "SELECT 1 FROM messages WHERE id = ?", arguments: [id]) ?? false {
                try Self.writeIndexRow(db, id, t)
            }
        }
    }

    /// Body `id`'s bytes, or nil when it is gone.
    private func storedBody(_ id: Int64) throws -> [UInt8]? {
        guard let row = try pool.read({ db in try Row.fetchOne(db, sql: "SELECT hash, body FROM messages WHERE id = ?", arguments: [id]) }) else {
            return nil
        }
        if let inline = row[1] as Data? { return [UInt8](inline) }
        let hash = [UInt8](row[0] as Data)
        guard blobs.exists(hash) else { return nil }
        return try blobs.read(hash)
    }

    /// Bodies indexed and bodies pending (`postern reindex` fills the second into the first).
    public func searchIndexCounts() throws -> (indexed: Int, pending: Int) {
        try pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM search_index")!, try Int.fetchOne(db, sql: "SELECT count(*) FROM search_pending")!)
        }
    }
}
