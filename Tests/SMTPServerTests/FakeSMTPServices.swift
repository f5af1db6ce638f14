// SMTPServices answered from tables, for driving SMTPSessionHandler on an EmbeddedChannel:
// no store, no sockets. Records what the glue asked so tests can check it.
import NIOCore
import SMTPProtocol
@testable import SMTPServer

final class FakeSMTPServices: SMTPServices {
    let loop: EventLoop
    /// Mail domains: an address there that `recipients` does not list is an unknown user;
    /// any other domain is not local.
    var localDomains: Set<String> = ["example.org"]
    /// Recipients the store knows: address → canonical address.
    var recipients: [String: String] = ["alice@example.org": "alice@example.org", "bob@example.org": "bob@example.org",
                                        "carol@example.org": "carol@example.org"]
    /// The answer for the bare "postmaster" (RFC 5321 §4.5.1).
    var postmaster: RecipientLookup = .ok(canonical: "admin@example.org")
    /// Answer every recipient lookup with `.tempFail`.
    var lookupsFail = false
    /// user → (password, canonical name, store session).
    var users: [String: (password: String, canonical: String, session: UInt64)] = [
        "alice": ("secret", "alice@example.org", 42),
    ]
    /// Envelope sender → the users that own it.
    var senderOwners: [String: Set<String>] = ["alice@example.org": ["alice@example.org"]]
    /// Per-recipient delivery status (by the address handed to the store); default delivered.
    var deliveryStatuses: [String: RecipientDeliveryStatus] = [:]
    /// Fail every delivery with this error.
    var deliveryError: Error? = nil
    /// Keep deliveries pending until the test completes `pendingDelivery`.
    var holdDeliveries = false
    private(set) var pendingDelivery: EventLoopPromise<[RecipientDeliveryStatus]>? = nil

    struct Delivery: Equatable {
        var sender: String, recipients: [String], body: String, storeSession: UInt64
    }
    private(set) var lookups: [String] = []
    private(set) var deliveries: [Delivery] = []
    private(set) var endedSessions: [UInt64] = []

    init(loop: EventLoop) { self.loop = loop }

    func checkRecipient(_ address: String) -> EventLoopFuture<RecipientLookup> {
        lookups.append(address)
        if lookupsFail { return loop.makeSucceededFuture(.tempFail) }
        if let canonical = recipients[address.lowercased()] { return loop.makeSucceededFuture(.ok(canonical: canonical)) }
        let domain = address.split(separator: "@").last.map { $0.lowercased() } ?? ""
        return loop.makeSucceededFuture(localDomains.contains(domain) ? .unknownUser : .notLocal)
    }

    func checkPostmaster() -> EventLoopFuture<RecipientLookup> {
        lookups.append("postmaster")
        return loop.makeSucceededFuture(postmaster)
    }

    func checkSender(_ address: String?, user: String) -> EventLoopFuture<Bool> {
        loop.makeSucceededFuture(senderOwners[address?.lowercased() ?? ""]?.contains(user) ?? false)
    }

    /// Client addresses the store's budget refuses outright.
    var blockedClients: Set<String> = []
    private(set) var authClients: [String] = []

    func authenticate(user: String, password: String, client: String) -> EventLoopFuture<AuthOutcome> {
        authClients.append(client)
        if blockedClients.contains(client) { return loop.makeSucceededFuture(.blocked) }
        guard let entry = users[user], entry.password == password else { return loop.makeSucceededFuture(.failure) }
        return loop.makeSucceededFuture(.success(canonical: entry.canonical, storeSession: entry.session))
    }

    func endSession(_ storeSession: UInt64) { endedSessions.append(storeSession) }

    func deliver(sender: String, recipients: [String], body: ByteBuffer,
                 storeSession: UInt64) -> EventLoopFuture<[RecipientDeliveryStatus]> {
        deliveries.append(Delivery(sender: sender, recipients: recipients, body: String(buffer: body), storeSession: storeSession))
        if let deliveryError { return loop.makeFailedFuture(deliveryError) }
        let statuses = recipients.map { deliveryStatuses[$0] ?? .delivered }
        guard holdDeliveries else { return loop.makeSucceededFuture(statuses) }
        let promise = loop.makePromise(of: [RecipientDeliveryStatus].self)
        pendingDelivery = promise
        return promise.futureResult
    }
}
