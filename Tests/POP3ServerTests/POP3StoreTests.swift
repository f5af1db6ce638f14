// pop3d's store side over the real store service (InProcessStore, the NIO client a worker uses):
// the maildrop lock (IN-USE, released by SessionEnd and by the connection's close), the snapshot
// and reads, Pop3Delete whatever the flags, and the role's confinement to its user's INBOX.
import Foundation
import NIOCore
import XCTest
import MailIPC
import MailModel
import MailStore
import MailTesting
import POP3Protocol
@testable import POP3Server

final class POP3StoreTests: XCTestCase {
    var instance: InProcessStore!

    override func setUpWithError() throws { instance = try .withUsers(["alice@example.org", "bob@example.org"]) }

    func deliver(_ to: String, _ body: String) throws { try instance.deliver(to, body) }

    func services(_ user: String = "alice@example.org") async throws -> RPCPOP3Services {
        let s = RPCPOP3Services(rpc: try instance.nioClient(.pop3d))
        let outcome = await s.authenticate(user: user, password: "secret", client: "127.0.0.1")
        XCTAssertEqual(outcome, .success(canonical: user))
        return s
    }

    func testLockSnapshotReadAndDelete() async throws {
        let body = "Subject: one\r\n\r\n.dot\r\nline\r\n"
        try deliver("alice@example.org", body)
        try deliver("alice@example.org", "Subject: two\r\n\r\nx\r\n")
        let a = try await services()
        let drop = try await a.openMaildrop()
        XCTAssertEqual(drop.messages.count, 2)
        XCTAssertEqual(drop.messages[0].size, body.utf8.count)
        let bytes = try await a.read(mailbox: drop.mailbox, uid: drop.messages[0].uid, offset: 0, length: 1000)
        XCTAssertEqual(bytes, Array(body.utf8))
        let headerSize = try await a.headerSize(mailbox: drop.mailbox, uid: drop.messages[0].uid)
        XCTAssertEqual(headerSize, "Subject: one\r\n\r\n".utf8.count)

        // Read-ahead: whole bodies in one round trip, those over maxSize left out.
        let all = try await a.readAhead(mailbox: drop.mailbox, uids: drop.messages.map(\.uid), maxSize: 1000)
        XCTAssertEqual(all[drop.messages[0].uid].map { Array($0.readableBytesView) }, Array(body.utf8))
        XCTAssertEqual(all.count, 2)
        let small = try await a.readAhead(mailbox: drop.mailbox, uids: drop.messages.map(\.uid) + [999], maxSize: 20)
        XCTAssertEqual(Array(small.keys), [drop.messages[1].uid])

        // A second session of the same user (another worker connection) is refused: IN-USE.
        let b = try await services()
        do { _ = try await b.openMaildrop(); XCTFail("second lock granted") } catch let e as POP3ServiceError { XCTAssertEqual(e.kind, .inUse) }

        // UPDATE: both go, whatever their flags, in one call.
        let gone = try await a.delete(mailbox: drop.mailbox, uids: drop.messages.map(\.uid))
        XCTAssertEqual(gone, drop.messages.map(\.uid))
        XCTAssertEqual(try instance.inboxCount("alice@example.org"), 0)
        // SessionEnd frees the lock.
        a.close()
        try await Task.sleep(nanoseconds: 100_000_000)
        _ = try await b.openMaildrop()
    }

    /// Read-ahead of a body kept in a blob file (over the store's inline limit, under maxSize)
    /// comes whole, beside inline ones, in UID order.
    func testReadAheadOfBlobFileAndInlineBodies() async throws {
        let big = "Subject: big\r\n\r\n" + String(repeating: ".line of a blob-file body\r\n", count: 4000)
        XCTAssertGreaterThan(big.utf8.count, instance.store.inlineMax)
        try deliver("alice@example.org", "Subject: small\r\n\r\nx\r\n")
        try deliver("alice@example.org", big)
        let a = try await services()
        let drop = try await a.openMaildrop()
        let got = try await a.readAhead(mailbox: drop.mailbox, uids: drop.messages.map(\.uid), maxSize: pop3ReadChunk)
        XCTAssertEqual(got.count, 2)
        XCTAssertEqual(got[drop.messages[1].uid].map { Array($0.readableBytesView) }, Array(big.utf8))
        XCTAssertEqual(got[drop.messages[0].uid].map { Array($0.readableBytesView) }, Array("Subject: small\r\n\r\nx\r\n".utf8))
    }

    /// SQLiteMailStore.pop3Bodies: ascending UIDs are read in one range scan that hands over
    /// exactly the UIDs asked for (not one between them, not one gone, not one over maxSize);
    /// any other order goes UID by UID, in the order given; returning false stops.
    func testPop3BodiesRangeAndOrder() throws {
        for i in 1...5 { try deliver("alice@example.org", "Subject: \(i)\r\n\r\n" + String(repeating: "x", count: i == 4 ? 500 : 1) + "\r\n") }
        let store = instance.store
        let user = try XCTUnwrap(try store.user(named: "alice@example.org")).id
        let inbox = try XCTUnwrap(try store.mailbox(user: user, name: "INBOX")).id
        func bodies(_ uids: [UInt32], maxSize: Int = 100, stopAfter: Int = .max) throws -> [UInt32: String] {
            var got: [(UInt32, String)] = []
            try store.pop3Bodies(user: user, mailbox: inbox, uids: uids, maxSize: maxSize) { uid, bytes in
                got.append((uid, String(decoding: bytes, as: UTF8.self)))
                return got.count < stopAfter
            }
            XCTAssertEqual(got.map(\.0), uids.filter { got.map(\.0).contains($0) }, "in the order asked")
            return Dictionary(uniqueKeysWithValues: got)
        }
        XCTAssertEqual(try bodies([1, 3, 5]).keys.sorted(), [1, 3, 5])
        XCTAssertEqual(try bodies([1, 3, 5])[3], "Subject: 3\r\n\r\nx\r\n")
        XCTAssertEqual(try bodies([2, 3, 4, 5]).keys.sorted(), [2, 3, 5], "4 is over maxSize")
        XCTAssertEqual(try bodies([2, 3, 4, 5], maxSize: 1000).keys.sorted(), [2, 3, 4, 5])
        XCTAssertEqual(try bodies([5, 1, 3]).keys.sorted(), [1, 3, 5], "any order")
        XCTAssertEqual(try bodies([1, 2, 3], stopAfter: 2).keys.sorted(), [1, 2])
        XCTAssertEqual(try bodies([3, 2, 1], stopAfter: 2).keys.sorted(), [2, 3])
        XCTAssertEqual(try bodies([6, 7]).count, 0)
        _ = try store.expunge(user: user, mailbox: inbox, uids: [2], force: true)
        XCTAssertEqual(try bodies([1, 2, 3]).keys.sorted(), [1, 3], "2 is gone")
        // Another user's mailbox is not found.
        let bob = try XCTUnwrap(try store.user(named: "bob@example.org")).id
        XCTAssertThrowsError(try store.pop3Bodies(user: bob, mailbox: inbox, uids: [1], maxSize: 100) { _, _ in true })
    }

    func testClosedConnectionFreesTheLock() async throws {
        let rpc = try instance.nioClient(.pop3d)
        let a = RPCPOP3Services(rpc: rpc)
        _ = await a.authenticate(user: "alice@example.org", password: "secret", client: "127.0.0.1")
        _ = try await a.openMaildrop()
        try await rpc.channel.close().get()
        try await Task.sleep(nanoseconds: 200_000_000)
        let b = try await services()
        _ = try await b.openMaildrop()
    }

    /// DESIGN §2: role pop3d reaches the INBOX of its session's user only.
    func testPop3dRoleIsConfinedToItsUsersInbox() throws {
        try deliver("bob@example.org", "Subject: bob's\r\n\r\nsecret\r\n")
        let alice = try XCTUnwrap(try instance.store.user(named: "alice@example.org")).id
        let bob = try XCTUnwrap(try instance.store.user(named: "bob@example.org")).id
        let bobInbox = try XCTUnwrap(try instance.store.mailbox(user: bob, name: "INBOX"))
        let aliceSent = try XCTUnwrap(try instance.store.mailbox(user: alice, name: "Sent"))
        let c = try instance.connect(.pop3d)
        let session = try c.call(Authenticate(user: "alice@example.org", password: "secret", client: "127.0.0.1", service: "pop3")).id
        func refused<R: RPCRequest>(_ r: R) {
            XCTAssertThrowsError(try c.call(r), "\(r)") { XCTAssertNotNil(($0 as? RPCError)?.code, "\($0)") }
        }
        refused(MessageRead(session: session, mailbox: bobInbox.id, uid: 1, offset: 0, length: 100))
        refused(DetailsGet(session: session, mailbox: bobInbox.id, uids: [1]))
        refused(Pop3Delete(session: session, mailbox: bobInbox.id, uids: [1]))
        refused(MessagesExpunge(session: session, mailbox: bobInbox.id, uids: nil))
        refused(DetailsGet(session: session, mailbox: aliceSent.id, uids: [1]))
        XCTAssertThrowsError(try c.stream(MailboxSelect(session: session, name: "Sent")) { _ in }) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
        refused(Pop3Delete(session: 12345, mailbox: bobInbox.id, uids: [1]))
        refused(FlagsStore(session: session, mailbox: bobInbox.id, uids: [1], operation: .add, flags: .deleted, keywords: [], unchangedSince: nil))
        XCTAssertEqual(try instance.store.mailbox(user: bob, name: "INBOX")?.messages, 1, "bob's mail is untouched")
        // An imapd connection may not use the POP3 family.
        let imap = try instance.connect(.imapd)
        XCTAssertThrowsError(try imap.call(Pop3Lock(session: 1))) { XCTAssertEqual(($0 as? RPCError)?.code, .denied) }
    }
}
