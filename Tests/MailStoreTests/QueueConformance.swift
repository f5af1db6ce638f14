// The queue conformance suite (DESIGN §3, §4): what every QueueStore must do for the outbound
// agent and the administrator, written against the protocols only, with real submissions
// queuing the rows. SQLite runs it below, with bodies as files and inline.
import XCTest
import Foundation
import MailStore

func reportSync(_ s: any QueueStore, _ results: [QueueResult], notice: QueueNotice? = nil, now: Int64) throws -> QueueReportOutcome {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var out: Result<QueueReportOutcome, Error>!
    s.commitQueueReport(results, notice: notice, now: now) { out = $0; sem.signal() }
    sem.wait()
    return try out.get()
}

final class QueueConformance {
    let store: any MailStore
    let reopen: () throws -> any MailStore
    let alice: UserRef
    /// The store's clock (every row's `created`).
    let t0 = Int64(conformanceNow.timeIntervalSince1970)

    init(_ store: any MailStore, reopen: @escaping () throws -> any MailStore) throws {
        self.store = store
        self.reopen = reopen
        _ = try StoreConformance(store)
        alice = try XCTUnwrap(try store.user(named: "alice@example.org"))
    }

    static let returnPath = "Return-Path: <alice@example.org>\r\n"
    static func body(_ i: Int) -> String { "From: alice@example.org\r\nSubject: out \(i)\r\n\r\nbody \(i)\r\n" }

    /// alice submits message `i` to `rcpts` (remote ones are queued); its queue id.
    @discardableResult
    func submit(_ i: Int, _ rcpts: [String], body: String? = nil) throws -> Int64 {
        let before = Set(try store.queueEntries().map(\.message))
        let o = try deliverSync(store, "alice@example.org", rcpts, body ?? Self.body(i), submitter: alice)
        XCTAssertEqual(o.statuses, Array(repeating: .delivered, count: rcpts.count))
        let added = Set(try store.queueEntries().map(\.message)).subtracting(before)
        return try XCTUnwrap(added.first, "message \(i) queued")
    }

    func claim(at now: Int64, lease: Int64 = 60, limit: Int = 10) throws -> QueueClaim {
        try store.claimQueue(now: now, lease: lease, limit: limit)
    }

    func all(_ message: Int64) throws -> [UInt8] { try store.queueBody(message: message, offset: 0, length: 1 << 20) }

    // MARK: claim

    /// Oldest first, at most `limit` messages, each with its recipients in queue order; the rest
    /// makes `nextDue`.
    func claimGroupsOrdersAndLimits() throws {
        let m1 = try submit(1, ["x@remote.test", "y@remote.test"])
        let m2 = try submit(2, ["z@remote.test"])
        let m3 = try submit(3, ["w@remote.test", "alice@example.org"])
        var c = try claim(at: t0, limit: 2)
        XCTAssertEqual(c.jobs.map(\.message), [m1, m2])
        XCTAssertEqual(c.jobs[0].recipients.map(\.address), ["x@remote.test", "y@remote.test"])
        XCTAssertEqual(c.jobs[0].sender, "alice@example.org")
        XCTAssertEqual(c.jobs[0].origin, .submission)
        XCTAssertEqual(c.jobs[0].created, t0)
        XCTAssertEqual(c.jobs[0].leaseUntil, t0 + 60)
        XCTAssertEqual(c.jobs[0].recipients[0].attempts, 0)
        XCTAssertNil(c.jobs[0].recipients[0].firstAttempt)
        XCTAssertEqual(c.jobs[1].recipients.map(\.address), ["z@remote.test"])
        XCTAssertEqual(c.nextDue, t0, "message 3 is due and was left out")
        c = try claim(at: t0 + 1)
        XCTAssertEqual(c.jobs.map(\.message), [m3])
        XCTAssertEqual(c.jobs[0].recipients.map(\.address), ["w@remote.test"], "the local recipient was delivered, not queued")
        XCTAssertEqual(c.nextDue, t0 + 60, "the first claim's lease runs out then")
        XCTAssertEqual(try claim(at: t0 + 2).jobs, [])
        XCTAssertEqual(try store.claimQueue(now: t0 + 2, lease: 60, limit: 0).jobs, [])
    }

    /// A second claim within the lease gets nothing; after it, the same rows again.
    func leaseExcludesUntilItRunsOut() throws {
        let m = try submit(1, ["x@remote.test"])
        let first = try claim(at: t0, lease: 300)
        XCTAssertEqual(first.jobs.map(\.message), [m])
        XCTAssertNil(first.nextDue)
        let during = try claim(at: t0 + 299)
        XCTAssertEqual(during.jobs, [])
        XCTAssertEqual(during.nextDue, t0 + 300)
        let after = try claim(at: t0 + 300)
        XCTAssertEqual(after.jobs.map(\.message), [m])
        XCTAssertEqual(after.jobs[0].recipients.map(\.id), first.jobs[0].recipients.map(\.id))
        XCTAssertEqual(after.jobs[0].leaseUntil, t0 + 360)
    }

    // MARK: body

    /// The leading Return-Path (folded lines too) is not sent; `size` is what is served.
    func bodyWithoutReturnPath() throws {
        let plain = Self.body(1)
        let folded = "return-path:\r\n <alice@example.org>\r\n" + plain
        let m1 = try submit(1, ["x@remote.test"], body: Self.returnPath + plain)
        let m2 = try submit(2, ["x@remote.test"], body: folded + "more\r\n")
        let m3 = try submit(3, ["x@remote.test"], body: "X-Return-Path: <a@b>\r\n" + plain)
        let jobs = try claim(at: t0).jobs
        XCTAssertEqual(try all(m1), Array(plain.utf8))
        XCTAssertEqual(try all(m2), Array((plain + "more\r\n").utf8))
        XCTAssertEqual(try all(m3), Array(("X-Return-Path: <a@b>\r\n" + plain).utf8), "only a leading Return-Path field goes")
        for j in jobs {
            XCTAssertEqual(j.size, try all(j.message).count, "size of \(j.message)")
            // A body that came with the claim is exactly what a read by range serves.
            if let b = j.body { XCTAssertEqual(b, try all(j.message), "body of \(j.message)") }
        }
        // by range, cut at the end
        XCTAssertEqual(try store.queueBody(message: m1, offset: 0, length: 4), Array("From".utf8))
        XCTAssertEqual(try store.queueBody(message: m1, offset: plain.utf8.count - 2, length: 100), Array("\r\n".utf8))
        XCTAssertEqual(try store.queueBody(message: m1, offset: plain.utf8.count, length: 100), [])
        XCTAssertEqual(try store.queueBody(message: m1, offset: 1 << 40, length: 100), [])
        assertStoreError(.notFound, nil, try self.store.queueBody(message: 999_999, offset: 0, length: 10))
    }

    // MARK: report

    /// A recipient's id is never given to another, even once the queue has emptied: the agent
    /// tells a row it is still delivering from a new one by its id (OutboundRunner.delivering).
    func recipientIDsAreNeverReused() throws {
        var seen = Set<Int64>()
        for i in 1...3 {
            try submit(i, ["x\(i)@remote.test"])
            let rcpts = try claim(at: t0 + Int64(i) * 100).jobs.flatMap(\.recipients)
            XCTAssertEqual(rcpts.count, 1)
            for r in rcpts { XCTAssertTrue(seen.insert(r.id).inserted, "id \(r.id) given again") }
            _ = try reportSync(store, rcpts.map { QueueResult(recipient: $0.id, outcome: .delivered(reply: "250 2.0.0 ok")) }, now: t0 + Int64(i) * 100)
            XCTAssertEqual(try store.queueEntries(), [], "the queue is empty again")
        }
        _ = try reopen()
    }

    /// Delivered and failed rows leave; deferred rows carry the attempt; once no row is left
    /// the body is gone for the agent.
    func reportEachOutcome() throws {
        let m = try submit(1, ["a@remote.test", "b@remote.test", "c@remote.test"])
        let rcpts = try claim(at: t0).jobs[0].recipients
        let o = try reportSync(store, [
            QueueResult(recipient: rcpts[0].id, outcome: .delivered(reply: "250 2.0.0 ok")),
            QueueResult(recipient: rcpts[1].id, outcome: .failed(reply: "550 5.1.1 no such user")),
            QueueResult(recipient: rcpts[2].id, outcome: .deferred(reply: "451 4.3.0 try later", nextAttempt: t0 + 300, warned: false)),
        ], now: t0 + 5)
        XCTAssertEqual(o, QueueReportOutcome())
        let left = try store.queueEntries()
        XCTAssertEqual(left.map(\.recipient), ["c@remote.test"])
        XCTAssertEqual(left[0].attempts, 1)
        XCTAssertEqual(left[0].lastReply, "451 4.3.0 try later")
        XCTAssertEqual(left[0].nextAttempt, t0 + 300)
        XCTAssertEqual(left[0].leaseUntil, 0, "a report ends the lease")
        XCTAssertEqual(try claim(at: t0 + 299).jobs, [])
        let again = try claim(at: t0 + 300).jobs
        XCTAssertEqual(again[0].recipients[0].firstAttempt, t0 + 5)
        XCTAssertEqual(again[0].recipients[0].attempts, 1)
        XCTAssertEqual(again[0].recipients[0].lastReply, "451 4.3.0 try later")
        // a second deferral keeps the first attempt and records the warning
        _ = try reportSync(store, [QueueResult(recipient: rcpts[2].id, outcome: .deferred(reply: "452 full", nextAttempt: t0 + 900, warned: true))],
                           now: t0 + 310)
        let r = try XCTUnwrap(try claim(at: t0 + 900).jobs.first?.recipients.first)
        XCTAssertEqual(r.firstAttempt, t0 + 5)
        XCTAssertEqual(r.attempts, 2)
        XCTAssertTrue(r.warned)
        // a result for a row that is gone is ignored
        _ = try reportSync(store, [QueueResult(recipient: rcpts[0].id, outcome: .delivered(reply: "250"))], now: t0 + 901)
        _ = try reportSync(store, [QueueResult(recipient: rcpts[2].id, outcome: .delivered(reply: "250 ok"))], now: t0 + 901)
        XCTAssertEqual(try store.queueEntries(), [])
        assertStoreError(.notFound, nil, try self.all(m))
        // a result for a row nobody claimed (or one already reported) is ignored
        _ = try submit(2, ["d@remote.test"])
        let unclaimed = try XCTUnwrap(try store.queueEntries().first)
        _ = try reportSync(store, [QueueResult(recipient: unclaimed.id, outcome: .delivered(reply: "250"))], now: t0 + 902)
        _ = try reportSync(store, [QueueResult(recipient: unclaimed.id, outcome: .deferred(reply: "4xx", nextAttempt: t0 + 9999, warned: true))],
                           now: t0 + 902)
        XCTAssertEqual(try store.queueEntries(), [unclaimed])
    }

    /// A notice to a local sender lands in its INBOX (and says which mailbox changed), in the
    /// same transaction as the failure it reports.
    func noticeToALocalSenderGoesToItsInbox() throws {
        _ = try submit(1, ["x@remote.test"])
        let rcpt = try claim(at: t0).jobs[0].recipients[0]
        let inbox = try XCTUnwrap(try store.mailbox(user: alice.id, name: "INBOX"))
        let dsn = "From: MAILER-DAEMON@example.org\r\nSubject: Undelivered Mail\r\n\r\nx@remote.test: 550 no\r\n"
        let o = try reportSync(store, [QueueResult(recipient: rcpt.id, outcome: .failed(reply: "550 no"))],
                               notice: QueueNotice(recipient: "alice@example.org", body: Array(dsn.utf8)), now: t0 + 1)
        XCTAssertEqual(o.queued, 0)
        XCTAssertEqual(o.changes.map(\.mailboxID), [inbox.id])
        XCTAssertEqual(o.changes.first?.exists, inbox.messages + 1)
        let after = try store.view(user: alice.id, mailbox: inbox.id)
        XCTAssertEqual(after.entries.count, Int(inbox.messages) + 1)
        let uid = try XCTUnwrap(after.entries.last?.uid)
        XCTAssertEqual(try store.read(user: alice.id, mailbox: inbox.id, uid: uid, offset: 0, length: 1 << 20), Array(dsn.utf8))
        XCTAssertEqual(try store.queueEntries(), [])
    }

    /// A notice to a remote sender (here: mail forwarded by an alias) is queued with the null
    /// sender and origin bounce, due now.
    func noticeToARemoteSenderIsQueuedAsABounce() throws {
        // team@example.org forwards to carol@elsewhere.net: queued with the remote sender
        _ = try deliverSync(store, "someone@remote.test", ["team@example.org"], Self.body(1))
        let job = try XCTUnwrap(try claim(at: t0).jobs.first)
        XCTAssertEqual(job.sender, "someone@remote.test")
        let dsn = "From: MAILER-DAEMON@example.org\r\nSubject: failure notice\r\n\r\ncarol: 550\r\n"
        let o = try reportSync(store, [QueueResult(recipient: job.recipients[0].id, outcome: .failed(reply: "550 5.1.1 unknown"))],
                               notice: QueueNotice(recipient: "someone@remote.test", body: Array(dsn.utf8)), now: t0 + 10)
        XCTAssertEqual(o.queued, 1)
        XCTAssertEqual(o.changes, [])
        let bounce = try XCTUnwrap(try claim(at: t0 + 10).jobs.first)
        XCTAssertEqual(bounce.sender, "")
        XCTAssertEqual(bounce.origin, .bounce)
        XCTAssertEqual(bounce.created, t0 + 10)
        XCTAssertEqual(bounce.recipients.map(\.address), ["someone@remote.test"])
        XCTAssertEqual(try all(bounce.message), Array(dsn.utf8))
        XCTAssertEqual(bounce.size, dsn.utf8.count)
        XCTAssertEqual(try store.queueEntries().map(\.origin), [.bounce])
    }

    /// What a report recorded is there after the store is opened again.
    func reportIsDurable() throws {
        _ = try submit(1, ["a@remote.test", "b@remote.test"])
        let rcpts = try claim(at: t0).jobs[0].recipients
        _ = try reportSync(store, [
            QueueResult(recipient: rcpts[0].id, outcome: .failed(reply: "550 no")),
            QueueResult(recipient: rcpts[1].id, outcome: .deferred(reply: "421 busy", nextAttempt: t0 + 60, warned: false)),
        ], notice: QueueNotice(recipient: "alice@example.org", body: Array("Subject: bounce\r\n\r\nno\r\n".utf8)), now: t0 + 1)
        let again = try reopen()
        let left = try again.queueEntries()
        XCTAssertEqual(left.map(\.recipient), ["b@remote.test"])
        XCTAssertEqual(left.map(\.lastReply), ["421 busy"])
        let inbox = try XCTUnwrap(try again.mailbox(user: alice.id, name: "INBOX"))
        XCTAssertEqual(inbox.messages, 1, "the bounce is in alice's INBOX")
    }

    // MARK: administration

    func adminActions() throws {
        let m1 = try submit(1, ["a@remote.test", "b@remote.test"])
        let m2 = try submit(2, ["c@remote.test"])
        let e = try store.queueEntries()
        XCTAssertEqual(e.map(\.message), [m1, m1, m2])
        XCTAssertEqual(e[0].size, Self.body(1).utf8.count)
        XCTAssertEqual(e[0].sender, "alice@example.org")
        XCTAssertFalse(e[0].held)
        // pages in queue order
        XCTAssertEqual(try store.queueEntries(after: e[0].id, limit: 1), [e[1]])
        XCTAssertEqual(try store.queueEntries(after: e[1].id, limit: 5), [e[2]])
        XCTAssertEqual(try store.queueEntries(after: e[2].id, limit: 5), [])
        // hold: never claimed, not in nextDue
        XCTAssertEqual(try store.queueAdmin(.hold, message: m1, now: t0), 2)
        XCTAssertEqual(try store.queueEntries().map(\.held), [true, true, false])
        var c = try claim(at: t0)
        XCTAssertEqual(c.jobs.map(\.message), [m2])
        XCTAssertEqual(c.nextDue, nil)
        // release: due now again
        XCTAssertEqual(try store.queueAdmin(.release, message: m1, now: t0 + 1), 2)
        c = try claim(at: t0 + 1)
        XCTAssertEqual(c.jobs.map(\.message), [m1])
        // flush after a deferral: due at once (the lease is kept)
        _ = try reportSync(store, c.jobs[0].recipients.map { QueueResult(recipient: $0.id, outcome: .deferred(reply: "451", nextAttempt: t0 + 3600, warned: false)) },
                           now: t0 + 2)
        XCTAssertEqual(try claim(at: t0 + 100).jobs.map(\.message), [m2], "m1 deferred; m2's lease ran out")
        XCTAssertEqual(try store.queueAdmin(.flush, message: nil, now: t0 + 100), 3)
        XCTAssertEqual(try claim(at: t0 + 100).jobs.map(\.message), [m1], "m2 is leased again")
        // bounce: marked and due now
        XCTAssertEqual(try store.queueAdmin(.bounce, message: m2, now: t0 + 200), 1)
        let b = try XCTUnwrap(try claim(at: t0 + 200).jobs.first { $0.message == m2 })
        XCTAssertTrue(b.bounceRequested)
        // delete: rows gone, the body with them
        XCTAssertEqual(try store.queueAdmin(.delete, message: m2, now: t0 + 201), 1)
        assertStoreError(.notFound, nil, try self.all(m2))
        XCTAssertEqual(try store.queueEntries().map(\.message), [m1, m1])
        // unknown messages: nothing touched
        XCTAssertEqual(try store.queueAdmin(.hold, message: 999_999, now: t0), 0)
        XCTAssertEqual(try store.queueAdmin(.delete, message: 999_999, now: t0), 0)
        assertStoreError(.invalid, nil, try self.store.queueAdmin(.hold, message: nil, now: self.t0))
    }

    // MARK: bodies shared with mailboxes

    /// The same body in a mailbox and in the queue: expunge, mailbox delete, POP3 delete and
    /// the start-up sweep leave it for the queue; the last queue row takes it.
    func bodyKeptWhileAQueueRowReferencesIt() throws {
        let body = Self.body(7)
        let m = try submit(7, ["alice@example.org", "x@remote.test"], body: body)
        let inbox = try XCTUnwrap(try store.mailbox(user: alice.id, name: "INBOX"))
        let uid = try XCTUnwrap(try store.view(user: alice.id, mailbox: inbox.id).entries.last?.uid)
        // a copy in another mailbox, deleted with it
        _ = try store.createMailbox(user: alice.id, name: "Keep", specialUse: "")
        let keep = try XCTUnwrap(try store.mailbox(user: alice.id, name: "Keep"))
        _ = try store.copy(user: alice.id, from: inbox.id, uids: [uid], to: keep.id, move: false)
        try store.deleteMailbox(user: alice.id, name: "Keep")
        XCTAssertEqual(try all(m), Array(body.utf8), "after DELETE")
        // IMAP expunge
        _ = try store.storeFlags(user: alice.id, mailbox: inbox.id, uids: [uid], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil)
        XCTAssertEqual(try store.expunge(user: alice.id, mailbox: inbox.id, uids: nil).0, [uid])
        XCTAssertEqual(try all(m), Array(body.utf8), "after EXPUNGE")
        // POP3 delete of a second local copy
        _ = try deliverSync(store, "s@x.org", ["alice@example.org"], body)
        let uid2 = try XCTUnwrap(try store.view(user: alice.id, mailbox: inbox.id).entries.last?.uid)
        XCTAssertEqual(try store.expunge(user: alice.id, mailbox: inbox.id, uids: [uid2], force: true).0, [uid2])
        XCTAssertEqual(try all(m), Array(body.utf8), "after POP3 DELE/QUIT")
        // the start-up sweep, on the store opened again
        let again = try reopen()
        try again.sweep()
        XCTAssertEqual(try again.queueBody(message: m, offset: 0, length: 1 << 20), Array(body.utf8), "after the sweep")
        let r = try XCTUnwrap(try again.claimQueue(now: t0, lease: 60, limit: 1).jobs.first?.recipients.first)
        _ = try reportSync(again, [QueueResult(recipient: r.id, outcome: .delivered(reply: "250"))], now: t0)
        assertStoreError(.notFound, nil, try again.queueBody(message: m, offset: 0, length: 10))
    }
}

/// The suite on SQLite, every body a file; and with bodies inline in their rows.
final class SQLiteQueueConformanceTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = tempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }
    func open(inlineMax: Int) throws -> SQLiteMailStore { try SQLiteMailStore(dataDir: dir, fsync: false, inlineMax: inlineMax, clock: { conformanceNow }) }
    func suite(inlineMax: Int = 0) throws -> QueueConformance {
        try QueueConformance(open(inlineMax: inlineMax), reopen: { try self.open(inlineMax: inlineMax) })
    }

    func testClaimGroupsOrdersAndLimits() throws { try suite().claimGroupsOrdersAndLimits() }
    func testLeaseExcludesUntilItRunsOut() throws { try suite().leaseExcludesUntilItRunsOut() }
    func testBodyWithoutReturnPath() throws { try suite().bodyWithoutReturnPath() }
    func testBodyWithoutReturnPathInline() throws { try suite(inlineMax: 1 << 20).bodyWithoutReturnPath() }
    func testReportEachOutcome() throws { try suite().reportEachOutcome() }
    func testRecipientIDsAreNeverReused() throws { try suite().recipientIDsAreNeverReused() }
    func testNoticeToALocalSenderGoesToItsInbox() throws { try suite().noticeToALocalSenderGoesToItsInbox() }
    func testNoticeToARemoteSenderIsQueuedAsABounce() throws { try suite().noticeToARemoteSenderIsQueuedAsABounce() }
    func testNoticeToARemoteSenderInline() throws { try suite(inlineMax: 1 << 20).noticeToARemoteSenderIsQueuedAsABounce() }
    func testReportIsDurable() throws { try suite().reportIsDurable() }
    func testAdminActions() throws { try suite().adminActions() }
    func testBodyKeptWhileAQueueRowReferencesIt() throws { try suite().bodyKeptWhileAQueueRowReferencesIt() }
    func testBodyKeptWhileAQueueRowReferencesItInline() throws { try suite(inlineMax: 1 << 20).bodyKeptWhileAQueueRowReferencesIt() }

    /// Bodies in their rows ride with the claim until QueueClaim.bodyBudget is spent, Return-Path
    /// removed as a read gives it; a body in a file never does (it is read by range).
    func testClaimCarriesRowBodiesWithinItsBudget() throws {
        let s = try suite(inlineMax: 1 << 20)
        let third = QueueClaim.bodyBudget / 3 + 1      // two fit, the third does not
        let filler = String(repeating: "x", count: third)
        let ids = try (1...3).map { try s.submit($0, ["x@remote.test"], body: QueueConformance.returnPath + QueueConformance.body($0) + filler) }
        let small = try s.submit(4, ["x@remote.test"])
        let jobs = try s.claim(at: s.t0).jobs
        XCTAssertEqual(jobs.map(\.message), ids + [small])
        XCTAssertEqual(jobs[0].body, try s.all(ids[0]))
        XCTAssertEqual(jobs[1].body, try s.all(ids[1]))
        XCTAssertNil(jobs[2].body, "over the budget")
        XCTAssertEqual(jobs[3].body, Array(QueueConformance.body(4).utf8), "a small one still fits what is left")
        XCTAssertFalse(jobs[0].body!.starts(with: Array("Return-Path".utf8)))

        let files = try SQLiteMailStore(dataDir: tempDir(), fsync: false, inlineMax: 0, clock: { conformanceNow })
        let f = try QueueConformance(files, reopen: { files })
        let m = try f.submit(1, ["x@remote.test"])
        XCTAssertEqual(try f.claim(at: f.t0).jobs.map(\.message), [m])
        XCTAssertNil(try f.claim(at: f.t0 + 3600).jobs.first?.body)
    }
}
