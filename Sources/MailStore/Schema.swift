// The store's SQLite schema, as GRDB migrations (never edit a shipped migration; add one).
// Migrations never call live code: what one needs is frozen here, so its meaning never changes.
import Foundation
import GRDB

enum Schema {
    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
            CREATE TABLE domains (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,              -- lowercase
                created INTEGER NOT NULL
            );
            CREATE TABLE users (
                id INTEGER PRIMARY KEY,
                domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
                local TEXT NOT NULL,                    -- lowercase local part
                password TEXT NOT NULL,                 -- crypt(3) string
                quota INTEGER NOT NULL DEFAULT 0,       -- bytes, 0 = unlimited
                created INTEGER NOT NULL,
                UNIQUE(domain_id, local)
            );
            -- local = '' is the domain's catch-all; target is a full address (local or remote)
            CREATE TABLE aliases (
                id INTEGER PRIMARY KEY,
                domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
                local TEXT NOT NULL,
                target TEXT NOT NULL,
                UNIQUE(domain_id, local, target)
            );
            CREATE TABLE mailboxes (
                id INTEGER PRIMARY KEY,
                user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                special_use TEXT NOT NULL DEFAULT '',   -- RFC 6154: \\Drafts \\Sent \\Junk \\Trash \\Archive
                uidvalidity INTEGER NOT NULL,
                uidnext INTEGER NOT NULL DEFAULT 1,
                highestmodseq INTEGER NOT NULL DEFAULT 1,
                exists_count INTEGER NOT NULL DEFAULT 0,
                subscribed INTEGER NOT NULL DEFAULT 1,
                UNIQUE(user_id, name)
            );
            -- one row per distinct body (content-addressed blob); info = MIME.MessageInfo.encoded()
            CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                hash BLOB NOT NULL UNIQUE,
                size INTEGER NOT NULL,
                info BLOB NOT NULL,
                created INTEGER NOT NULL
            );
            CREATE TABLE mailbox_messages (
                mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
                uid INTEGER NOT NULL,
                message_id INTEGER NOT NULL REFERENCES messages(id),
                flags INTEGER NOT NULL DEFAULT 0,       -- bitmask: \\Seen 1 \\Answered 2 \\Flagged 4 \\Deleted 8 \\Draft 16
                keywords TEXT NOT NULL DEFAULT '',
                modseq INTEGER NOT NULL,
                internal_date INTEGER NOT NULL,
                sender TEXT NOT NULL DEFAULT '',        -- envelope sender, for mbox export / Return-Path
                PRIMARY KEY (mailbox_id, uid)
            ) WITHOUT ROWID;
            CREATE INDEX mailbox_messages_message ON mailbox_messages(message_id);
            -- outbound queue: remote recipients of submitted or aliased mail
            CREATE TABLE queue (
                id INTEGER PRIMARY KEY,
                message_id INTEGER NOT NULL REFERENCES messages(id),
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                created INTEGER NOT NULL,
                next_attempt INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT NOT NULL DEFAULT ''
            );
            CREATE INDEX queue_message ON queue(message_id);
            """)
        }
        // Local parts match by full Unicode case folding (Postfix folds before it asks us).
        m.registerMigration("v2-local-keys") { db in
            try db.execute(sql: """
                ALTER TABLE users ADD COLUMN local_key TEXT NOT NULL DEFAULT '';
                ALTER TABLE aliases ADD COLUMN local_key TEXT NOT NULL DEFAULT '';
                """)
            for table in ["users", "aliases"] {
                for row in try Row.fetchAll(db, sql: "SELECT id, local FROM \(table)") {
                    let local: String = row[1]
                    try db.execute(sql: "UPDATE \(table) SET local_key = ? WHERE id = ?", arguments: [foldV2(local), row[0] as Int64])
                }
            }
            try db.execute(sql: """
                CREATE UNIQUE INDEX users_local_key ON users(domain_id, local_key);
                CREATE INDEX aliases_local_key ON aliases(domain_id, local_key);
                """)
        }
        // Small bodies live in the row itself: one WAL fsync makes them durable, instead of a
        // blob sync plus the WAL fsync. NULL: the body is a blob file.
        m.registerMigration("v3-inline-bodies") { db in
            try db.execute(sql: "ALTER TABLE messages ADD COLUMN body BLOB")
        }
        // The pull half of DESIGN §2's events: changes since a MODSEQ, per mailbox.
        m.registerMigration("v4-modseq-index") { db in
            try db.execute(sql: "CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq)")
        }
        // IMAP state (DESIGN §3): keywords as small per-mailbox ids (bit i of keyword_bits is
        // keyword id i; the old free-text `keywords` column stays unused), expunge tombstones for
        // QRESYNC's VANISHED (RFC 7162 §3.2.10), subscriptions as names apart from mailboxes
        // (RFC 9051 §6.3.7; the old `subscribed` column stays unused), and the highest
        // UIDVALIDITY a user's mailboxes ever had, so a re-created name never gets an old one
        // (RFC 9051 §2.3.1.1).
        m.registerMigration("v5-imap") { db in
            try db.execute(sql: """
                CREATE TABLE mailbox_keywords (
                    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
                    id INTEGER NOT NULL CHECK (id >= 0 AND id < 64),
                    name TEXT NOT NULL,
                    UNIQUE(mailbox_id, id),
                    UNIQUE(mailbox_id, name COLLATE NOCASE)
                );
                ALTER TABLE mailbox_messages ADD COLUMN keyword_bits INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE expunged (
                    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
                    uid INTEGER NOT NULL,
                    modseq INTEGER NOT NULL,
                    PRIMARY KEY (mailbox_id, uid)
                ) WITHOUT ROWID;
                CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
                CREATE TABLE subscriptions (
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    PRIMARY KEY (user_id, name)
                ) WITHOUT ROWID;
                INSERT INTO subscriptions (user_id, name) SELECT user_id, name FROM mailboxes WHERE subscribed != 0;
                ALTER TABLE users ADD COLUMN last_uidvalidity INTEGER NOT NULL DEFAULT 0;
                UPDATE users SET last_uidvalidity = coalesce((SELECT max(uidvalidity) FROM mailboxes WHERE user_id = users.id), 0);
                """)
        }
        // The outbound agent's queue (DESIGN §4): leases (a claim holds rows until lease_until;
        // a killed agent's rows come back when it runs out), administrator hold/bounce, the
        // first attempt (for max_queue_lifetime) and delay-warning mark, how the message came in
        // (QueueOrigin: 0 submission, 1 forward, 2 bounce), and RFC 3461 parameters
        // (dsn_notify NULL: not given; bits 1 SUCCESS 2 FAILURE 4 DELAY, 0 NEVER).
        m.registerMigration("v6-queue") { db in
            try db.execute(sql: """
                ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE queue ADD COLUMN bounce_requested INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE queue ADD COLUMN first_attempt INTEGER;
                ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE queue ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE queue ADD COLUMN dsn_notify INTEGER;
                ALTER TABLE queue ADD COLUMN dsn_orcpt TEXT NOT NULL DEFAULT '';
                ALTER TABLE queue ADD COLUMN dsn_ret TEXT NOT NULL DEFAULT '';
                ALTER TABLE queue ADD COLUMN dsn_envid TEXT NOT NULL DEFAULT '';
                CREATE INDEX queue_due ON queue(next_attempt);
                """)
        }
        // Per-user spam setting (issue 14): mail rspamd marks goes to Junk (1, the default) or
        // stays in INBOX (0).
        m.registerMigration("v7-user-spam") { db in
            try db.execute(sql: "ALTER TABLE users ADD COLUMN spam_to_junk INTEGER NOT NULL DEFAULT 1")
        }
        // SEARCH's full-text index (issue 11 point 1; SearchIndex.swift). One row per body, rowid =
        // messages.id, the texts folded as SearchEvaluator folds needles; trigram (substring
        // matching, RFC 9051 §6.4.4) case-sensitive because the text is folded already. A regular
        // table, not contentless: SQLite 3.40 has no contentless_delete, and GLOB over detail=none
        // (half the size of detail=full) rechecks each trigram candidate against the stored text.
        // Bodies not indexed are listed in search_pending (every body at this migration: `postern
        // reindex`); triggers keep both in step with `messages` in the same transaction.
        m.registerMigration("v8-fts") { db in
            try db.execute(sql: """
                CREATE VIRTUAL TABLE search_index USING fts5(top, hdr, body, tokenize = 'trigram case_sensitive 1',
                                                             detail = none, columnsize = 0);
                CREATE TABLE search_pending (message_id INTEGER PRIMARY KEY);
                INSERT INTO search_pending (message_id) SELECT id FROM messages;
                CREATE TRIGGER messages_search_pending AFTER INSERT ON messages BEGIN
                    INSERT OR IGNORE INTO search_pending (message_id) VALUES (new.id);
                END;
                CREATE TRIGGER messages_search_drop AFTER DELETE ON messages BEGIN
                    DELETE FROM search_index WHERE rowid = old.id;
                    DELETE FROM search_pending WHERE message_id = old.id;
                END;
                """)
        }
        // Quota (RFC 9208, issue 11): per-user limits (NULL: none; the v1 `quota` column, never
        // set by any command, becomes the storage limit where it is not 0) and usage counters.
        // Triggers keep the counters in the same transaction as every mailbox_messages row that
        // comes, goes or changes mailbox (delivery, APPEND, COPY/MOVE, EXPUNGE, POP3, mailbox
        // and user removal, anything later): exact after any crash. Bytes are `messages.size`,
        // the stored size that RFC822.SIZE and STATUS SIZE report, counted once per copy.
        m.registerMigration("v9-quota") { db in
            try db.execute(sql: """
                ALTER TABLE users ADD COLUMN quota_storage INTEGER;
                ALTER TABLE users ADD COLUMN quota_messages INTEGER;
                ALTER TABLE users ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE users ADD COLUMN used_messages INTEGER NOT NULL DEFAULT 0;
                UPDATE users SET quota_storage = quota WHERE quota > 0;
                UPDATE users SET
                    used_bytes = coalesce((SELECT sum(m.size) FROM mailboxes b JOIN mailbox_messages mm ON mm.mailbox_id = b.id
                                           JOIN messages m ON m.id = mm.message_id WHERE b.user_id = users.id), 0),
                    used_messages = (SELECT count(*) FROM mailboxes b JOIN mailbox_messages mm ON mm.mailbox_id = b.id
                                     WHERE b.user_id = users.id);
                CREATE TRIGGER quota_add AFTER INSERT ON mailbox_messages BEGIN
                    UPDATE users SET used_bytes = used_bytes + (SELECT size FROM messages WHERE id = NEW.message_id),
                                     used_messages = used_messages + 1
                    WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
                END;
                CREATE TRIGGER quota_remove AFTER DELETE ON mailbox_messages BEGIN
                    UPDATE users SET used_bytes = used_bytes - (SELECT size FROM messages WHERE id = OLD.message_id),
                                     used_messages = used_messages - 1
                    WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
                END;
                CREATE TRIGGER quota_move AFTER UPDATE OF mailbox_id, message_id ON mailbox_messages
                WHEN OLD.mailbox_id != NEW.mailbox_id OR OLD.message_id != NEW.message_id BEGIN
                    UPDATE users SET used_bytes = used_bytes - (SELECT size FROM messages WHERE id = OLD.message_id),
                                     used_messages = used_messages - 1
                    WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
                    UPDATE users SET used_bytes = used_bytes + (SELECT size FROM messages WHERE id = NEW.message_id),
                                     used_messages = used_messages + 1
                    WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
                END;
                """)
        }
        // HEADER.FIELDS listings (SQLiteMailStore+HeaderFields.swift): per body, the fields clients
        // list (HeaderFieldFilter.keptFields) kept at delivery, with the body's size, in a table
        // narrow enough that a listing of 10,000 messages reads a few hundred pages, not one wide
        // `messages` row each. `fields` NULL: too long to keep. Rows for the bodies stored before
        // are made by the store at start (live code: SQLiteMailStore.fillHeaderFields).
        m.registerMigration("v10-header-fields") { db in
            try db.execute(sql: """
                CREATE TABLE header_fields (message_id INTEGER PRIMARY KEY, size INTEGER NOT NULL, fields BLOB);
                CREATE TRIGGER messages_header_fields_drop AFTER DELETE ON messages BEGIN
                    DELETE FROM header_fields WHERE message_id = old.id;
                END;
                """)
        }
        // Queue row ids are never reused (AUTOINCREMENT): the outbound agent tells a row it is
        // still delivering (a claim that renewed the lease of a long delivery) from a new one by
        // its id, and a new submission took the id of a row just reported while the agent still
        // held it — so it was skipped, and stayed leased with nobody sending it until the lease
        // ran out.
        m.registerMigration("v11-queue-ids") { db in
            try db.execute(sql: """
                CREATE TABLE queue_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    message_id INTEGER NOT NULL REFERENCES messages(id),
                    sender TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    created INTEGER NOT NULL,
                    next_attempt INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT NOT NULL DEFAULT '',
                    lease_until INTEGER NOT NULL DEFAULT 0,
                    held INTEGER NOT NULL DEFAULT 0,
                    bounce_requested INTEGER NOT NULL DEFAULT 0,
                    first_attempt INTEGER,
                    warned INTEGER NOT NULL DEFAULT 0,
                    origin INTEGER NOT NULL DEFAULT 0,
                    dsn_notify INTEGER,
                    dsn_orcpt TEXT NOT NULL DEFAULT '',
                    dsn_ret TEXT NOT NULL DEFAULT '',
                    dsn_envid TEXT NOT NULL DEFAULT ''
                );
                INSERT INTO queue_new (id, message_id, sender, recipient, created, next_attempt, attempts, last_error, lease_until, held,
                                       bounce_requested, first_attempt, warned, origin, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid)
                    SELECT id, message_id, sender, recipient, created, next_attempt, attempts, last_error, lease_until, held,
                           bounce_requested, first_attempt, warned, origin, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid FROM queue;
                DROP TABLE queue;
                ALTER TABLE queue_new RENAME TO queue;
                CREATE INDEX queue_message ON queue(message_id);
                CREATE INDEX queue_due ON queue(next_attempt);
                """)
        }
        return m
    }

    /// The local-part key as migration v2 computed it (a frozen copy of SQLiteMailStore.fold).
    static func foldV2(_ s: String) -> String { s.folding(options: [.caseInsensitive], locale: nil) }
}
