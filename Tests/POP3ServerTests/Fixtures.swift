// Shared by the POP3Server tests: a real store in-process with users, and delivery through its
// RPC as lmtpd does (so watchers are notified).
import NIOCore
import XCTest
import MailIPC
import MailStore
import MailTesting

extension InProcessStore {
    /// A store with the domain example.org and these users (password "secret").
    static func withUsers(_ users: [String]) throws -> InProcessStore {
        let s = try InProcessStore(maxDelivery: 4 << 20)
        try s.store.addDomain("example.org")
        for u in users { try s.store.addUser(u, password: "secret") }
        return s
    }

    func deliver(_ to: String, _ body: String) throws {
        let c = try connect(.lmtpd)
        let id = c.allocateID()
        try c.send(DeliverBegin(sender: "s@example.net", recipients: [to]), id: id)
        try c.send(DeliverChunk(ByteBuffer(string: body)), id: id)
        try c.send(DeliverEnd(), id: id)
        let (_, answer) = try c.receive()
        XCTAssertEqual((answer as? DeliverResult)?.statuses, [.ok])
    }

    /// Messages in the user's INBOX now.
    func inboxCount(_ user: String) throws -> UInt32? {
        guard let u = try store.user(named: user) else { return nil }
        return try store.mailbox(user: u.id, name: "INBOX")?.messages
    }
}
