// SORT and THREAD in the store (DESIGN §9): the search program picks the messages (the same
// evaluation as SEARCH), their envelopes from the info kept at delivery give the keys, and
// REFERENCES threading reads only the References: field from each message's header bytes.
import Foundation
import GRDB
import MIME
import MailModel

extension SQLiteMailStore {
    /// Header bytes read per message for References: (a longer header is cut here).
    static let maxThreadHeader = 64 * 1024

    public func sort(user: Int64, mailbox: Int64, criteria: [SortCriterion], query: SearchQuery) throws -> [UInt32] {
        SortKeys.sort(try sortable(user: user, mailbox: mailbox, query: query, envelope: SortKeys.needsEnvelope(criteria), headers: false).map(\.0),
                      by: criteria)
    }

    public func thread(user: Int64, mailbox: Int64, algorithm: ThreadAlgorithm, query: SearchQuery) throws -> ThreadForest {
        let found = try sortable(user: user, mailbox: mailbox, query: query, envelope: true, headers: algorithm == .references)
        return Threading.thread(found.map { m, header in
            var references: String?
            if let header {
                SearchHeaders.forEachField(header, 0, header.count) { name, value in
                    if references == nil, name.count == 10, String(decoding: name, as: UTF8.self).lowercased() == "references" { references = value }
                }
            }
            return ThreadableMessage(m, references: references)
        }, algorithm)
    }

    /// The messages matching `query` with what SORT looks at (without `envelope`, an empty
    /// envelope: the info is not decoded), and with `headers` the bytes of their top-level header
    /// (up to `maxThreadHeader`).
    func sortable(user: Int64, mailbox: Int64, query: SearchQuery, envelope: Bool, headers: Bool) throws -> [(SortableMessage, [UInt8]?)] {
        let matching: Set<UInt32>? = query == .all ? nil : Set(try search(user: user, mailbox: mailbox, query: query))
        typealias Found = (SortableMessage, inline: [UInt8]?, file: (hash: [UInt8], length: Int)?)
        let rows: [Found] = try pool.read { db in
            _ = try Self.ownedMailbox(db, user: user, id: mailbox)
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT mm.uid, mm.internal_date, m.size, \(envelope || headers ? "m.info" : "NULL"), \(headers ? "m.hash, \(Self.bodyInFile), substr(m.body, 1, \(Self.maxThreadHeader))" : "NULL, 0, NULL")
                FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                WHERE mm.mailbox_id = ? ORDER BY mm.uid
                """, arguments: [mailbox])
            var out: [Found] = []
            while let r = try cursor.next() {
                let uid = UInt32(truncatingIfNeeded: r[0] as Int64)
                if let matching, !matching.contains(uid) { continue }
                guard envelope || headers else {
                    out.append((SortableMessage(uid: uid, internalDate: r[1], size: UInt64(r[2] as Int64), envelope: Envelope()), nil, nil))
                    continue
                }
                let info = try MessageInfo.envelope(encoded: [UInt8](r[3] as Data))
                let m = SortableMessage(uid: uid, internalDate: r[1], size: UInt64(r[2] as Int64), envelope: info.envelope)
                let length = min(info.headerSize, Self.maxThreadHeader)
                if !headers { out.append((m, nil, nil)) }
                else if r[5] as Bool { out.append((m, nil, ([UInt8](r[4] as Data), length))) }
                else { out.append((m, (r[6] as Data?).map { [UInt8]($0.prefix(length)) } ?? [], nil)) }
            }
            return out
        }
        // Files are read after the transaction; one expunged meanwhile has no header to give.
        return rows.map { m, inline, file in
            guard headers else { return (m, nil) }
            if let file { return (m, (try? blobs.read(file.hash, offset: 0, length: file.length)) ?? []) }
            return (m, inline)
        }
    }
}
