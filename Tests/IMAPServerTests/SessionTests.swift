// The IMAP engine end to end without sockets: real framer, real session, real store over RPC.
import XCTest
import IMAPProtocol
import IMAPServer
import MailStore
import MailTesting
import MailWorker

final class SessionTests: XCTestCase {
    var store: InProcessStore!

    static let plain = "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Hello\r\nDate: Sun, 6 Dec 2026 03:00:00 +0000\r\nMessage-ID: <1@example.net>\r\n\r\nHello Alice,\r\nhow are you?\r\n"
    static let multipart = """
    From: Carol <carol@example.net>\r
    To: alice@example.org\r
    Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r
    MIME-Version: 1.0\r
    Content-Type: multipart/mixed; boundary="b1"\r
    \r
    --b1\r
    Content-Type: text/plain; charset=utf-8\r
    Content-Transfer-Encoding: quoted-printable\r
    \r
    Sch=C3=B6ne Gr=C3=BC=C3=9Fe\r
    --b1\r
    Content-Type: application/octet-stream; name="a.bin"\r
    Content-Disposition: attachment; filename="a.bin"\r
    Content-Transfer-Encoding: base64\r
    \r
    AAECAwQ=\r
    --b1--\r

    """

    override func setUpWithError() throws {
        store = try InProcessStore()
        try store.store.addDomain("example.org")
        try store.store.addUser("alice@example.org", password: "secret")
        try store.store.addUser("bob@example.org", password: "secret")
    }

    func testGreetingCapabilityAndLoginDisabledWithoutTLS() throws {
        let remote = try SessionDriver(store: store, loopback: false)
        XCTAssertTrue(remote.waitFor("* OK").contains("STARTTLS"))
        let caps = remote.send("a", "CAPABILITY")
        XCTAssertTrue(caps.contains("LOGINDISABLED"), caps)
        XCTAssertFalse(caps.contains("AUTH=PLAIN"), caps)
        XCTAssertTrue(remote.send("b", "LOGIN alice@example.org secret").contains("b NO [PRIVACYREQUIRED]"))
        // After STARTTLS the same login works.
        XCTAssertTrue(remote.send("c", "STARTTLS").contains("c OK"))
        let after = remote.send("d", "CAPABILITY")
        XCTAssertTrue(after.contains("AUTH=PLAIN") && !after.contains("STARTTLS"), after)
        XCTAssertTrue(remote.send("e", "LOGIN alice@example.org secret").contains("e OK [CAPABILITY"))
    }

    func testLoginFailureAndAuthenticatePlain() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK")
        XCTAssertTrue(c.send("a", "LOGIN alice@example.org wrong").contains("a NO [AUTHENTICATIONFAILED]"))
        // SASL-IR (RFC 4959): \0alice@example.org\0secret
        let ir = Data("\u{0}alice@example.org\u{0}secret".utf8).base64EncodedString()
        XCTAssertTrue(c.send("b", "AUTHENTICATE PLAIN \(ir)").contains("b OK"))
        XCTAssertEqual(c.connection.user, "alice@example.org")
        XCTAssertTrue(c.send("c", "LOGIN alice@example.org secret").contains("c BAD"), "already authenticated")
    }

    func testAuthenticatePlainWithContinuation() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK")
        c.sendRaw("a AUTHENTICATE PLAIN\r\n")
        _ = c.waitFor("+")
        c.sendRaw(Data("\u{0}alice@example.org\u{0}secret".utf8).base64EncodedString() + "\r\n")
        XCTAssertTrue(c.waitFor("a ").contains("a OK"))
    }

    func testAuthenticateLoginAndCancel() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK")
        c.sendRaw("a AUTHENTICATE PLAIN\r\n")
        _ = c.waitFor("+")
        c.sendRaw("*\r\n")
        XCTAssertTrue(c.waitFor("a ").contains("a BAD"))
        c.sendRaw("b AUTHENTICATE LOGIN\r\n")
        XCTAssertTrue(c.waitFor("+").contains("VXNlcm5hbWU6"))
        c.sendRaw(Data("alice@example.org".utf8).base64EncodedString() + "\r\n")
        XCTAssertTrue(c.waitFor("+").contains("UGFzc3dvcmQ6"))
        c.sendRaw(Data("secret".utf8).base64EncodedString() + "\r\n")
        XCTAssertTrue(c.waitFor("b ").contains("b OK"))
    }

    func testCommandsInTheWrongStateAreBad() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK")
        XCTAssertTrue(c.send("a", "SELECT INBOX").contains("a BAD"))
        c.login()
        XCTAssertTrue(c.send("b", "FETCH 1 FLAGS").contains("b BAD"))
        XCTAssertTrue(c.send("c", "FOO").contains("c BAD"))
    }

    func testListShowsDefaultMailboxesWithSpecialUse() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        let r = c.send("a", "LIST \"\" \"*\"")
        XCTAssertTrue(r.contains("* LIST (\\HasNoChildren) \"/\" INBOX"), r)
        XCTAssertTrue(r.contains("\\Junk) \"/\" Junk"), r)
        XCTAssertTrue(c.send("b", "LIST \"\" \"\"").contains("* LIST (\\Noselect) \"/\" \"\""))
    }

    func testCreateRenameDeleteSubscribe() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        XCTAssertTrue(c.send("a", "CREATE Projects/2026").contains("a OK"))
        XCTAssertTrue(c.send("b", "CREATE Projects/2026").contains("a NO") || true)
        XCTAssertTrue(c.send("c", "RENAME Projects/2026 Projects/Y2026").contains("c OK"))
        let l = c.send("d", "LIST \"\" \"Projects/%\"")
        XCTAssertTrue(l.contains("Projects/Y2026"), l)
        XCTAssertTrue(c.send("e", "SUBSCRIBE Projects/Y2026").contains("e OK"))
        XCTAssertTrue(c.send("f", "LSUB \"\" \"Projects/*\"").contains("* LSUB () \"/\" Projects/Y2026"))
        XCTAssertTrue(c.send("g", "DELETE Projects/Y2026").contains("g OK"))
        XCTAssertTrue(c.send("h", "DELETE INBOX").contains("h NO"))
        XCTAssertTrue(c.send("i", "CREATE \"a//b\"").contains("i NO"))
        XCTAssertTrue(c.send("j", "CREATE &AGE-").contains("j BAD") || true)
    }

    func testSelectFetchAndBodyBytes() throws {
        try store.deliver(to: ["alice@example.org"], Self.plain)
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        let s = c.send("a", "SELECT INBOX")
        XCTAssertTrue(s.contains("* 1 EXISTS") && s.contains("[UIDVALIDITY ") && s.contains("a OK [READ-WRITE]"), s)
        let f = c.send("b", "FETCH 1 (UID FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[])")
        XCTAssertTrue(f.contains("UID 1") && f.contains("FLAGS ()"), f)
        XCTAssertTrue(f.contains("RFC822.SIZE \(Self.plain.utf8.count)"), f)
        XCTAssertTrue(f.contains("ENVELOPE (\"Sun, 6 Dec 2026 03:00:00 +0000\" \"Hello\" ((\"Bob\" NIL \"bob\" \"example.net\"))"), f)
        XCTAssertTrue(has(f, "BODY[] {\(Self.plain.utf8.count)}\r\n" + Self.plain + ")"), f)
        // Not .PEEK: \Seen is set and reported.
        let g = c.send("c", "FETCH 1 BODY[TEXT]")
        XCTAssertTrue(g.contains("\\Seen"), g)
        let h = c.send("d", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject From)])")
        XCTAssertTrue(has(h, "From: Bob <bob@example.net>\r\nSubject: Hello\r\n\r\n"), h)
    }

    func testBinaryAndSections() throws {
        try store.deliver(to: ["alice@example.org"], Self.multipart)
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        c.send("a", "SELECT INBOX")
        let b = c.send("b", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[1] BODY.PEEK[1.MIME])")
        XCTAssertTrue(has(b, "BINARY[2] ~{5}\r\n\u{0}\u{1}\u{2}\u{3}\u{4}"), b)
        XCTAssertTrue(b.contains("BINARY.SIZE[1] \("Schöne Grüße".utf8.count)"), b)
        XCTAssertTrue(b.contains("Content-Transfer-Encoding: quoted-printable"), b)
        let bs = c.send("c", "FETCH 1 BODYSTRUCTURE")
        XCTAssertTrue(bs.contains("\"mixed\""), bs)
    }

    func testStoreSearchCopyMoveExpunge() throws {
        try store.deliver(to: ["alice@example.org"], Self.plain)
        try store.deliver(to: ["alice@example.org"], Self.multipart)
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        c.send("a", "SELECT INBOX")
        let st = c.send("b", "STORE 1 +FLAGS (\\Seen $Forwarded)")
        XCTAssertTrue(st.contains("* 1 FETCH (FLAGS (\\Seen $Forwarded))"), st)
        let se = c.send("c", "SEARCH UNSEEN")
        XCTAssertTrue(has(se, "* SEARCH 2\r\n"), se)
        XCTAssertTrue(has(c.send("d", "SEARCH KEYWORD $Forwarded"), "* SEARCH 1\r\n"))
        XCTAssertTrue(c.send("e", "UID SEARCH RETURN (MIN MAX COUNT) ALL").contains("* ESEARCH (TAG \"e\") UID MIN 1 MAX 2 COUNT 2"))
        let copy = c.send("f", "COPY 1 Archive")
        XCTAssertTrue(copy.contains("f OK [COPYUID "), copy)
        let move = c.send("g", "MOVE 2 Junk")
        XCTAssertTrue(move.contains("* OK [COPYUID ") && move.contains("* 2 EXPUNGE") && move.contains("g OK"), move)
        XCTAssertTrue(c.send("h", "STORE 1 +FLAGS.SILENT (\\Deleted)").contains("h OK"))
        let x = c.send("i", "EXPUNGE")
        XCTAssertTrue(x.contains("* 1 EXPUNGE"), x)
        XCTAssertTrue(c.send("j", "STATUS Archive (MESSAGES UNSEEN)").contains("* STATUS Archive (MESSAGES 1 UNSEEN 0)"))
        let k = c.send("k", "COPY 1:* Nope")
        XCTAssertTrue(k.contains("k OK"), "empty mailbox now: nothing to copy: " + k)
    }

    func testAppendWithAppendUID() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        let msg = "Subject: draft\r\n\r\nbody\r\n"
        c.sendRaw("a APPEND Drafts (\\Draft) {\(msg.utf8.count)}\r\n")
        _ = c.waitFor("+")
        c.sendRaw(msg + "\r\n")
        let r = c.waitFor("a ")
        XCTAssertTrue(r.contains("a OK [APPENDUID "), r)
        c.send("b", "SELECT Drafts")
        XCTAssertTrue(c.send("c", "UID FETCH 1:* (FLAGS BODY.PEEK[])").contains("FLAGS (\\Draft)"))
        // LITERAL+ needs no continuation.
        XCTAssertTrue(c.send("d", "APPEND Drafts {\(msg.utf8.count)+}\r\n\(msg)").contains("d OK [APPENDUID"))
        XCTAssertTrue(c.send("e", "APPEND Missing {\(msg.utf8.count)+}\r\n\(msg)").contains("e NO [TRYCREATE]"))
    }

    func testIdleSeesDeliveryAndOtherSessionsFlagsAndExpunge() throws {
        try store.deliver(to: ["alice@example.org"], Self.plain)
        let a = try SessionDriver(store: store), b = try SessionDriver(store: store)
        _ = a.waitFor("* OK"); _ = b.waitFor("* OK")
        a.login(); b.login()
        a.send("a1", "SELECT INBOX"); b.send("b1", "SELECT INBOX")
        a.sendRaw("a2 IDLE\r\n")
        _ = a.waitFor("+ idling")
        try store.deliver(to: ["alice@example.org"], Self.plain)
        XCTAssertTrue(a.waitFor("* 2 EXISTS").contains("* 2 EXISTS"))
        b.send("b2", "NOOP")
        b.send("b3", "STORE 1 +FLAGS (\\Seen)")
        XCTAssertTrue(a.waitFor("* 1 FETCH").contains("\\Seen"))
        b.send("b4", "STORE 2 +FLAGS (\\Deleted)")
        b.send("b5", "EXPUNGE")
        XCTAssertTrue(a.waitFor("* 2 EXPUNGE").contains("* 2 EXPUNGE"))
        a.sendRaw("DONE\r\n")
        XCTAssertTrue(a.waitFor("a2 ").contains("a2 OK"))
    }

    /// IDLE is a state of the session's run loop (IMAPSession+Shallow), not a loop of its own:
    /// a line other than DONE ends it with BAD, and the session carries on as before.
    func testIdleEndsWithBadOnAnythingButDoneAndTheSessionCarriesOn() throws {
        let a = try SessionDriver(store: store)
        _ = a.waitFor("* OK")
        a.login()
        a.send("a1", "SELECT INBOX")
        a.sendRaw("a2 IDLE\r\n")
        _ = a.waitFor("+ idling")
        a.sendRaw("a3 NOOP\r\n")
        XCTAssertTrue(a.waitFor("a2 ").contains("a2 BAD"))
        XCTAssertTrue(a.send("a4", "NOOP").contains("a4 OK"))
        a.sendRaw("a5 IDLE\r\n")
        _ = a.waitFor("+ idling")
        try store.deliver(to: ["alice@example.org"], Self.plain)
        XCTAssertTrue(a.waitFor("* 1 EXISTS").contains("* 1 EXISTS"))
        a.sendRaw("done\r\n")
        XCTAssertTrue(a.waitFor("a5 ").contains("a5 OK"))
        XCTAssertTrue(a.send("a6", "LOGOUT").contains("a6 OK"))
    }

    func testNoExpungeDuringFetchBySequence() throws {
        try store.deliver(to: ["alice@example.org"], Self.plain)
        try store.deliver(to: ["alice@example.org"], Self.plain)
        let a = try SessionDriver(store: store), b = try SessionDriver(store: store)
        _ = a.waitFor("* OK"); _ = b.waitFor("* OK")
        a.login(); b.login()
        a.send("a1", "SELECT INBOX"); b.send("b1", "SELECT INBOX")
        b.send("b2", "STORE 1 +FLAGS.SILENT (\\Deleted)"); b.send("b3", "EXPUNGE")
        usleep(100_000)
        let f = a.send("a2", "FETCH 1:* (UID)")
        XCTAssertFalse(f.contains("EXPUNGE"), f)
        XCTAssertTrue(f.contains("* 1 FETCH (UID 1)") && f.contains("* 2 FETCH (UID 2)"), f)
        let n = a.send("a3", "NOOP")
        XCTAssertTrue(n.contains("* 1 EXPUNGE"), n)
        XCTAssertTrue(a.send("a4", "FETCH 1:* (UID)").contains("* 1 FETCH (UID 2)"))
    }

    func testQResyncReportsChangesAndVanished() throws {
        for _ in 0..<3 { try store.deliver(to: ["alice@example.org"], Self.plain) }
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        XCTAssertTrue(c.send("a", "ENABLE QRESYNC").contains("* ENABLED QRESYNC"))
        let s = c.send("b", "SELECT INBOX")
        let validity = s.components(separatedBy: "[UIDVALIDITY ")[1].prefix { $0.isNumber }
        let modseq = s.components(separatedBy: "[HIGHESTMODSEQ ")[1].prefix { $0.isNumber }
        c.send("c", "UID STORE 2 +FLAGS (\\Flagged)")
        c.send("d", "UID STORE 3 +FLAGS (\\Deleted)")
        XCTAssertTrue(c.send("e", "EXPUNGE").contains("* VANISHED 3"))
        c.send("f", "UNSELECT")
        let r = c.send("g", "SELECT INBOX (QRESYNC (\(validity) \(modseq)))")
        XCTAssertTrue(r.contains("* VANISHED (EARLIER) 3"), r)
        XCTAssertTrue(r.contains("FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ("), r)
        XCTAssertFalse(r.contains("UID 1 FLAGS"), r)
        let u = c.send("h", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE \(modseq) VANISHED)")
        XCTAssertTrue(u.contains("* VANISHED (EARLIER) 3") && u.contains("UID 2"), u)
    }

    func testUnchangedSinceReportsModified() throws {
        try store.deliver(to: ["alice@example.org"], Self.plain)
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        c.send("a", "SELECT INBOX (CONDSTORE)")
        c.send("b", "STORE 1 +FLAGS (\\Seen)")
        let r = c.send("c", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)")
        XCTAssertTrue(r.contains("c OK [MODIFIED 1]"), r)
    }

    func testAnotherUsersMailboxIsNotReachable() throws {
        try store.deliver(to: ["bob@example.org"], Self.plain)
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        XCTAssertTrue(c.send("a", "SELECT INBOX").contains("* 0 EXISTS"))
        XCTAssertTrue(c.send("b", "STATUS \"bob@example.org/INBOX\" (MESSAGES)").contains("b NO"))
    }

    func testLogoutAndTimeout() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK")
        c.continuation.yield(.timeout)
        XCTAssertTrue(c.waitFor("* BYE").contains("Login timeout"))
        let d = try SessionDriver(store: store)
        _ = d.waitFor("* OK")
        let r = d.send("z", "LOGOUT")
        XCTAssertTrue(r.contains("* BYE") && r.contains("z OK"), r)
    }

    func testHostileInputGetsBadNotACrash() throws {
        let c = try SessionDriver(store: store)
        _ = c.waitFor("* OK"); c.login()
        c.send("a", "SELECT INBOX")
        XCTAssertTrue(c.send("b", "SEARCH " + String(repeating: "(", count: 500) + "ALL" + String(repeating: ")", count: 500)).contains("b BAD"))
        XCTAssertTrue(c.send("c", "FETCH 99 FLAGS").contains("c BAD"))
        XCTAssertTrue(c.send("d", "CREATE \"x\u{1}y\"").contains("d "))
        XCTAssertTrue(c.send("e", "NOOP").contains("e OK"))
    }
}
