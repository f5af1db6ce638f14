// The learning addresses of [spam] in smtpd (issue 14, Citadel's way): mail from a local
// authenticated user to spam@DOMAIN / ham@DOMAIN (DOMAIN ours) is accepted at RCPT, learned and
// stored nowhere, its other recipients served as usual; and the session's spam-aware delivery.
import Logging
import NIOCore
import SMTPProtocol
import SpamFilter

struct SpamLearnHook {
    let addresses: SpamLearnAddresses
    let learner: SpamLearner
    /// [spam] max_size: past this the message is not learned (logged); the rest of the delivery
    /// is unaffected.
    let maxLearnBytes: Int

    init?(addresses: SpamLearnAddresses, learner: SpamLearner?, maxLearnBytes: Int) {
        guard !addresses.isEmpty, let learner else { return nil }
        self.addresses = addresses; self.learner = learner; self.maxLearnBytes = maxLearnBytes
    }

    /// RCPT: a learning address of one of our domains, from an authenticated user, is accepted
    /// as itself; nil when the store should be asked as usual.
    func lookup(_ address: String, user: String?, services: SMTPServices) -> EventLoopFuture<RecipientLookup>? {
        guard user != nil, addresses.kind(of: address) != nil, let at = address.lastIndex(of: "@") else { return nil }
        let domain = String(address[address.index(after: at)...])
        let isLocal = services.isLocalDomain(domain)
        return isLocal.flatMap { local in
            local ? isLocal.eventLoop.makeSucceededFuture(.ok(canonical: address.lowercased())) : services.checkRecipient(address)
        }
    }

    /// What each delivery address teaches (nil: a mailbox); nil when none is a learning address
    /// or the session is not authenticated.
    func kinds(_ env: SMTPEnvelope) -> [LearnKind?]? {
        guard env.authenticatedUser != nil else { return nil }
        let k = env.deliveryAddresses.map { addresses.kind(of: $0) }
        return k.contains { $0 != nil } ? k : nil
    }
}

/// Keeps a copy of the message for the learner and hands the bytes on to the delivery of the
/// other recipients (if any); their statuses come back in RCPT order with the learning
/// addresses' as `delivered`.
final class SpamLearningDelivery: SMTPDelivery {
    private let kinds: [LearnKind?]
    private let learner: SpamLearner
    private let inner: (any SMTPDelivery)?
    private let loop: EventLoop
    private let logger: Logger
    private let origin: String
    private let maxLearnBytes: Int
    private var held: ByteBuffer? = ByteBuffer()

    init(kinds: [LearnKind?], learner: SpamLearner, maxLearnBytes: Int, inner: (any SMTPDelivery)?, loop: EventLoop, logger: Logger, origin: String) {
        self.kinds = kinds; self.learner = learner; self.maxLearnBytes = maxLearnBytes; self.inner = inner; self.loop = loop
        self.logger = logger; self.origin = origin
    }

    func send(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        if var h = held {
            if h.readableBytes + bytes.readableBytes > maxLearnBytes {
                logger.notice("spam learn: message over \(maxLearnBytes) bytes not sent to rspamd")
                held = nil
            } else {
                h.writeImmutableBuffer(bytes)
                held = h
            }
        }
        return inner?.send(bytes) ?? loop.makeSucceededVoidFuture()
    }

    func end() -> EventLoopFuture<[RecipientDeliveryStatus]> {
        let others = inner?.end() ?? loop.makeSucceededFuture([])
        return others.map { [self] statuses in
            if let message = held {
                for kind in Set(kinds.compactMap { $0 }).sorted(by: { $0.rawValue > $1.rawValue }) {
                    learner.learn(kind, message: message, origin: origin)
                }
            }
            held = nil
            var rest = statuses.makeIterator()
            return kinds.map { $0 != nil ? .delivered : (rest.next() ?? .tempFail) }
        }
    }

    func abort() {
        held = nil
        inner?.abort()
    }
}

extension SMTPEnvelope {
    /// The envelope with only the recipients whose `keep` is true (RCPT order kept), the
    /// index-keyed fields (queue, canonical address, DSN) renumbered to match.
    func keepingRecipients(where keep: [Bool]) -> SMTPEnvelope {
        let kept = recipients.indices.filter { $0 < keep.count && keep[$0] }
        var e = self
        e.recipients = kept.map { recipients[$0] }
        e.remoteIndices = Set(kept.enumerated().filter { remoteIndices.contains($0.element) }.map(\.offset))
        e.canonicalAddresses = [:]
        e.recipientDSN = [:]
        for (n, i) in kept.enumerated() {
            e.canonicalAddresses[n] = canonicalAddresses[i]
            e.recipientDSN[n] = recipientDSN[i]
        }
        return e
    }
}

extension SMTPSessionHandler {
    /// The store delivery of `env`, wrapped by the spam hooks the settings have: the learning
    /// addresses' recipients taken out and learned, the message scanned before the store sees
    /// it. nil when only learning addresses are left (nothing reaches the store).
    func makeDelivery(_ context: ChannelHandlerContext, _ env: SMTPEnvelope, storeSession sid: UInt64) -> (any SMTPDelivery)? {
        let learnKinds = settings.spamLearn?.kinds(env)
        let stored = learnKinds.map { env.keepingRecipients(where: $0.map { $0 == nil }) } ?? env
        let begin: SpamScanningDelivery.Begin = { [services] junk in
            junk.map { services.beginDelivery(stored, storeSession: sid, mailbox: $0, specialUse: SpamHook.junkSpecialUse) }
                ?? services.beginDelivery(stored, storeSession: sid)
        }
        let delivery = stored.recipients.isEmpty ? nil : settings.spam.map {
            SpamScanningDelivery(hook: $0, envelope: SpamEnvelope(env, client: clientAddress, sessionID: sessionID),
                                 loop: context.eventLoop, logger: logger, begin: begin)
        } ?? begin(nil)
        guard let learnKinds, let hook = settings.spamLearn else { return delivery }
        let addresses = zip(env.deliveryAddresses, learnKinds).filter { $0.1 != nil }.map(\.0)
        return SpamLearningDelivery(kinds: learnKinds, learner: hook.learner, maxLearnBytes: hook.maxLearnBytes, inner: delivery, loop: context.eventLoop, logger: logger,
                                    origin: "smtp to \(addresses.joined(separator: ",")) user=\(env.authenticatedUser ?? "?")")
    }
}
