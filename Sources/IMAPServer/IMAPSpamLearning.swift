// Learning from Junk (issue 14): MOVE/COPY/APPEND into \Junk or $Junk teach spam; MOVE out of
// Junk (not into Trash) or $NotJunk teach ham. Pure decisions; the bytes are read through the
// session's store services in a task of their own, never in the command's latency.
import Logging
import MailCore
import MailModel
import NIOCore
import SpamFilter

public final class IMAPSpamLearning: Sendable {
    let learner: SpamLearner
    /// [spam] junk_folder: a mailbox by this name counts as Junk even without the special use.
    let junkFolder: String
    let logger: Logger
    /// [spam] max_size: larger messages are not sent.
    let maxLearnBytes: Int
    /// RFC 6154 §2.
    static let junkUse = "\\junk", trashUse = "\\trash"
    /// The IANA IMAP keywords registry (RFC 5788): what clients set for "this is spam" / "is not".
    static let junkKeyword = "$junk", notJunkKeyword = "$notjunk"

    public init(learner: SpamLearner, junkFolder: String, maxLearnBytes: Int = SpamConfig().maxSize, logger: Logger) {
        self.learner = learner; self.junkFolder = junkFolder; self.maxLearnBytes = maxLearnBytes; self.logger = logger
    }

    func isJunk(_ m: MailboxSummary) -> Bool {
        m.specialUse.lowercased().contains(Self.junkUse) || m.name == junkFolder
    }

    /// COPY/MOVE (and APPEND with no source): into Junk from elsewhere → spam; MOVE out of Junk
    /// into a mailbox that is neither Junk nor Trash → ham. A copy out of Junk teaches nothing
    /// (the message is still in Junk).
    func kind(from source: MailboxSummary?, to destination: MailboxSummary, move: Bool) -> LearnKind? {
        let fromJunk = source.map(isJunk) ?? false
        if isJunk(destination) { return fromJunk ? nil : .spam }
        if fromJunk && move && !destination.specialUse.lowercased().contains(Self.trashUse) { return .ham }
        return nil
    }

    /// STORE: adding $Junk → spam, adding $NotJunk → ham (both at once: nothing).
    static func kind(storing keywords: [String], operation: FlagOperation) -> LearnKind? {
        guard operation != .remove else { return nil }
        let k = Set(keywords.map { $0.lowercased() })
        switch (k.contains(junkKeyword), k.contains(notJunkKeyword)) {
        case (true, false): return .spam
        case (false, true): return .ham
        default: return nil
        }
    }

    // MARK: hooks (each returns at once)

    func copied(_ services: any IMAPServices, from source: String, to destination: String, uids: [UInt32], move: Bool, user: String?) {
        guard !uids.isEmpty else { return }
        Task {
            guard let boxes = await mailboxes(services),
                  let dst = boxes.first(where: { $0.name == destination }),
                  let kind = kind(from: boxes.first(where: { $0.name == source }), to: dst, move: move) else { return }
            await learn(kind, services, mailbox: dst.id, uids: uids, origin: "imap \(move ? "MOVE" : "COPY") \(source) to \(destination) user=\(user ?? "?")")
        }
    }

    func appended(_ services: any IMAPServices, to destination: String, body: [UInt8], user: String?) {
        Task {
            guard let boxes = await mailboxes(services), let dst = boxes.first(where: { $0.name == destination }),
                  let kind = kind(from: nil, to: dst, move: false), body.count <= self.maxLearnBytes else { return }
            learner.learn(kind, message: ByteBuffer(bytes: body), origin: "imap APPEND to \(destination) user=\(user ?? "?")")
        }
    }

    func stored(_ services: any IMAPServices, mailbox: Int64, uids: [UInt32], operation: FlagOperation, keywords: [String], user: String?) {
        guard !uids.isEmpty, let kind = Self.kind(storing: keywords, operation: operation) else { return }
        Task { await learn(kind, services, mailbox: mailbox, uids: uids, origin: "imap STORE \(kind == .spam ? "$Junk" : "$NotJunk") user=\(user ?? "?")") }
    }

    // MARK: reading

    private func mailboxes(_ services: any IMAPServices) async -> [MailboxSummary]? {
        do { return try await services.mailboxes() } catch {
            logger.notice("spam learn: cannot list mailboxes: \(error)")
            return nil
        }
    }

    private func learn(_ kind: LearnKind, _ services: any IMAPServices, mailbox: Int64, uids: [UInt32], origin: String) async {
        for uid in uids {
            do {
                guard let bytes = try await read(services, mailbox: mailbox, uid: uid) else {
                    logger.notice("spam learn: message over \(self.maxLearnBytes) bytes not sent: \(origin) uid=\(uid)")
                    continue
                }
                learner.learn(kind, message: ByteBuffer(bytes: bytes), origin: "\(origin) uid=\(uid)")
            } catch {
                logger.notice("spam learn: cannot read uid \(uid): \(error) (\(origin))")
            }
        }
    }

    /// The whole message in `maxReadChunk` ranges; nil past `maxLearnBytes`.
    private func read(_ services: any IMAPServices, mailbox: Int64, uid: UInt32) async throws -> [UInt8]? {
        var out: [UInt8] = []
        while true {
            let chunk = try await services.read(mailbox: mailbox, uid: uid, offset: out.count, length: maxReadChunk)
            out += chunk
            if out.count > self.maxLearnBytes { return nil }
            if chunk.count < maxReadChunk { return out }
        }
    }
}
