// SMTPServices answered from tables, for driving SMTPSessionHandler on an EmbeddedChannel:
// no store, no sockets. Records what the glue asked so tests can check it, deliveries chunk
// by chunk as the glue streams them.
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
    /// Deliveries the glue gave up (`abort`), with the body they had received.
    private(set) var abortedDeliveries: [Delivery] = []
    /// The delivery whose body is in transfer, if any.
    private(set) var inTransfer: FakeDelivery? = nil
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

    func isLocalDomain(_ domain: String) -> EventLoopFuture<Bool> {
        lookups.append("domain " + domain)
        return loop.makeSucceededFuture(localDomains.contains(domain.lowercased()))
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

    func beginDelivery(sender: String, recipients: [String], storeSession: UInt64) -> any SMTPDelivery {
        let d = FakeDelivery(services: self, delivery: Delivery(sender: sender, recipients: recipients, body: "", storeSession: storeSession))
        inTransfer = d
        return d
    }

    /// The body bytes of the delivery in transfer, as the glue handed them on so far.
    var received: String { inTransfer.map { $0.delivery.body } ?? "" }

    fileprivate func ended(_ d: FakeDelivery) -> EventLoopFuture<[RecipientDeliveryStatus]> {
        if inTransfer === d { inTransfer = nil }
        deliveries.append(d.delivery)
        if let deliveryError { return loop.makeFailedFuture(deliveryError) }
        let statuses = d.delivery.recipients.map { deliveryStatuses[$0] ?? .delivered }
        guard holdDeliveries else { return loop.makeSucceededFuture(statuses) }
        let promise = loop.makePromise(of: [RecipientDeliveryStatus].self)
        pendingDelivery = promise
        return promise.futureResult
    }

    fileprivate func aborted(_ d: FakeDelivery) {
        if inTransfer === d { inTransfer = nil }
        abortedDeliveries.append(d.delivery)
    }
}

/// A delivery in transfer: records each `send` as it comes (`sends`) and the body so far.
final class FakeDelivery: SMTPDelivery {
    unowned let services: FakeSMTPServices
    var delivery: FakeSMTPServices.Delivery
    private(set) var sends: [Int] = []          // bytes per send, in order
    private var done = false

    init(services: FakeSMTPServices, delivery: FakeSMTPServices.Delivery) { self.services = services; self.delivery = delivery }

    func send(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        precondition(!done, "send after end or abort")
        sends.append(bytes.readableBytes)
        delivery.body += String(buffer: bytes)
        return services.loop.makeSucceededVoidFuture()
    }

    func end() -> EventLoopFuture<[RecipientDeliveryStatus]> {
        precondition(!done, "end after end or abort")
        done = true
        return services.ended(self)
    }

    func abort() {
        guard !done else { return }
        done = true
        services.aborted(self)
    }
}
