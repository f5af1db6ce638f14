// Where a delivered message goes in a local user's mail: INBOX, or the mailbox a delivery names
// (spam filtering's Junk, issue 14) — found by its special use (RFC 6154) first, then by name,
// and created with that special use when the user has neither. Runs inside the group commit.
import GRDB

/// A delivery into another mailbox than INBOX: `name`, or the user's mailbox marked
/// `specialUse` ("\\Junk") when there is one.
public struct DeliveryMailbox: Sendable, Equatable {
    public var name: String
    public var specialUse: String
    public init(name: String, specialUse: String) { self.name = name; self.specialUse = specialUse }
}

extension SQLiteMailStore {
    /// RFC 6154's Junk special use: the mailbox spam filtering delivers into.
    static let junkSpecialUse = "\\Junk"

    /// The name of the mailbox `user`'s copy goes to (creating it when missing).
    static func deliveryMailbox(_ db: Database, user: Int64, _ target: DeliveryMailbox?, now: Int64) throws -> String {
        guard let t = target, t.name != inbox else { return inbox }
        // The user's setting: marked mail stays in INBOX (its X-Spam-* fields still added).
        if t.specialUse == junkSpecialUse,
           try Bool.fetchOne(db, sql: "SELECT spam_to_junk FROM users WHERE id = ?", arguments: [user]) == false {
            return inbox
        }
        if !t.specialUse.isEmpty, let byUse = try String.fetchOne(db, sql: """
            SELECT name FROM mailboxes WHERE user_id = ? AND special_use = ? ORDER BY id LIMIT 1
            """, arguments: [user, t.specialUse]) {
            return byUse
        }
        if try namedMailbox(db, user: user, name: t.name) != nil { return t.name }
        let validity = try newUIDValidity(db, user: user, now: now)
        try db.execute(sql: "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)",
                       arguments: [user, t.name, t.specialUse, validity])
        try db.execute(sql: "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)", arguments: [user, t.name])
        return t.name
    }
}
