// Fuzz entry points for the frame and message decoders (DESIGN §2): any input must end in
// a decoded message or a thrown error, never a crash or an unbounded allocation; a message
// that decodes re-encodes to the very payload it came from (the codec is canonical).
import NIOCore
import MailSyntax
import MailModel

public enum IPCFuzz {
    /// One input: split into frames with a small cap, decode each message, check re-encoding.
    public static func one(_ data: [UInt8]) -> (frames: Int, messages: Int, errors: Int) {
        var buf = ByteBuffer(bytes: data)
        let d = FrameDecoder(maxFrame: 1 << 16)
        var frames = 0, messages = 0, errors = 0
        while true {
            do {
                guard let f = try d.decode(&buf) else { break }
                frames += 1
                do {
                    let m = try decodeAnyMessage(f)
                    precondition(m.payload() == f.payload, "\(f.type) does not re-encode to its payload")
                    messages += 1
                } catch { errors += 1 }
            } catch { errors += 1; break }
        }
        return (frames, messages, errors)
    }

    /// One valid sample of every message type (the codec tests check that none is missing).
    public static let samples: [any RPCMessage] = [
        Hello(client: "x"), HelloOK(role: "lmtpd"), ErrorReply(.denied, "no"), OK(), StreamCredit(frames: 4),
        LookupRecipient("alice@example.org"), LookupRecipient("bob@example.org", size: 12345), RecipientReply(.notLocal, "x@y"),
        Lookup(map: .aliases, key: "a b@c"), LookupResult(found: true, value: "x@y,z@w"), SenderLogins("team@example.org"), LocalDomain("example.org"),
        DeliverBegin(sender: "a@b", recipients: ["c@d", "e@f"], session: 7), DeliverChunk(ByteBuffer(string: "Subject: x\r\n\r\nhi\r\n")),
        DeliverEnd(), DeliverAbort(), DeliverResult([.ok, .unknownUser]),
        Authenticate(user: "u@d", password: "p w", client: "192.0.2.1", service: "smtp"), SessionOpened(id: 42, user: "u@d"), SessionEnd(42),
        MailboxList(session: 1), Mailboxes([MailboxInfo(name: "INBOX", specialUse: "", uidValidity: 1, uidNext: 2, highestModSeq: 3, messages: 4, subscribed: true)]),
        DomainAdd("d"), DomainRemove("d"), DomainList(), Names(["a", "b"]),
        UserAdd("u@d", password: "x"), UserRemove("u@d"), UserPasswd("u@d", password: "y"), UserList(""), UserSpamJunk("u@d", on: false), UserQuota("u@d", storage: .set(2 << 30), messages: .remove), UserQuota("u@d"),
        AliasAdd("a@d", "b@d"), AliasRemove("a@d", ""), AliasList("d"), AliasPairs([AliasEntry(source: "a@d", target: "b@e")]),
        Export(user: "u@d", mailbox: "INBOX"),
        ExportMessage(ExportedMessage(mailbox: "INBOX", uid: 1, internalDate: 2, sender: "s@t", size: 3)),
        ExportChunk(ByteBuffer(bytes: [0, 1, 2, 255])), ExportEnd(count: 3),
        MailboxWatch(session: 9, mailbox: "INBOX"), Watching(watch: 3, state: MailboxState(uidValidity: 1, uidNext: 2, highestModSeq: 3, messages: 1)),
        MailboxUnwatch(watch: 3), MailboxChanged(watch: 3, highestModSeq: 17), MailboxChanges(watch: 3, sinceModSeq: 2, limit: 100),
        Changes(state: MailboxState(uidValidity: 1, uidNext: 3, highestModSeq: 4, messages: 2), messages: [ChangedMessage(uid: 2, modSeq: 4, flags: 1)], complete: true),
        Status(), StatusResult([ProcessStatus(service: "lmtp", instance: 0, pid: 1, startedAt: 2, restarts: 3, state: .running)]),
        Attach(role: .admin), Reload(),
        MailboxWatchByID(session: 9, mailbox: 12),
        Pop3Lock(session: 9), Pop3Delete(session: 9, mailbox: 12, uids: [1, 2, 3, 7]),
        Pop3Read(session: 9, mailbox: 12, uids: [4, 5], maxSize: 65536), Pop3Bodies([Pop3Body(uid: 4, bytes: ByteBuffer(string: "Subject: x\r\n\r\n.\r\n"))]),
        MailboxCreate(session: 1, name: "Archive/2026", specialUse: "\\Archive"), MailboxDelete(session: 1, name: "Trash"),
        MailboxRename(session: 1, from: "a", to: "b/c"), SubscriptionList(session: 1), SubscriptionSet(session: 1, name: "x", subscribed: true),
        MailboxStatusGet(session: 1, name: "INBOX"), MailboxSummaries(session: 1), SummaryList([sampleSummary]),
        MailboxStatusReply(MailboxStatus(summary: sampleSummary, unseen: 2, deleted: 1, size: 4096)), MailboxStatusReply(nil),
        MailboxSelect(session: 1, name: "INBOX"), ViewHeader(summary: sampleSummary, keywords: ["$Junk", "work"]),
        MailboxSelect(session: 1, name: "INBOX", known: ViewStamp(mailbox: 12, uidValidity: 77, highestModSeq: 40)),
        ViewHeader(summary: sampleSummary, keywords: ["a"], since: 40, vanished: [3, 4, 9]),
        ViewChunk([ViewEntry(uid: 1, modSeq: 5, flags: [.seen, .flagged], keywords: 3, size: 5120), ViewEntry(uid: 7, modSeq: 9, flags: [])]), ViewEnd(count: 2),
        MailboxDeltaGet(session: 1, mailbox: 12, since: 4, limit: 100, watch: 3),
        DeltaReply(MailboxDelta(summary: sampleSummary, keywords: ["a"], changed: [ViewEntry(uid: 9, modSeq: 11, flags: .deleted, keywords: 1)],
                                vanished: [2, 3, 4, 8], complete: false)),
        DetailsGet(session: 1, mailbox: 12, uids: [1, 2, 3, 10], want: [.header, .fields], prefixLimit: 8192, fields: ["from", "subject"]),
        DetailsReply([MessageDetails(uid: 1, internalDate: 1_700_000_000, size: 120, info: [1, 2, 3])], through: 3),
        MessageRead(session: 1, mailbox: 12, uid: 4, offset: 100, length: 2048), MessageBytes(ByteBuffer(string: "Subject: x\r\n")),
        FlagsStore(session: 1, mailbox: 12, uids: [1, 5, 6, 7], operation: .add, flags: [.seen], keywords: ["work"], unchangedSince: 40),
        FlagUpdateReply(FlagUpdate(changed: [ViewEntry(uid: 5, modSeq: 41, flags: .seen)], modified: [6], keywords: ["work"], highestModSeq: 41)),
        MessagesCopy(session: 1, mailbox: 12, uids: [3, 4], to: "Archive", move: true),
        CopyReply(CopyResult(uidValidity: 77, sourceUIDs: [3, 4], destinationUIDs: [10, 11])),
        MessagesExpunge(session: 1, mailbox: 12, uids: nil), MessagesExpunge(session: 1, mailbox: 12, uids: [5]), UIDList([1, 2, 3, 9]),
        SearchRun(session: 1, mailbox: 12, query: .and([.not(.flags(.seen, set: true)), .or(.header("Subject", "hi"), .text("x")),
                                                        .uids([1...5, 9...9]), .keyword("work", set: false), .internalDate(.since, day: 19_000),
                                                        .sentDate(.before, day: -3), .larger(10), .smaller(1 << 20), .body("b"), .modSeq(3), .all])),
        SortRun(session: 1, mailbox: 12, criteria: [SortCriterion(.subject), SortCriterion(.date, reverse: true), SortCriterion(.displayFrom)],
                query: .not(.flags(.deleted, set: true))),
        UIDList([9, 3, 4, 5, 1]),
        ThreadRun(session: 1, mailbox: 12, algorithm: .references, query: .all),
        ThreadReply(ThreadForest([.init(uid: 1, children: 2), .init(uid: 2, children: 0), .init(uid: 0, children: 2),
                                  .init(uid: 3, children: 0), .init(uid: 4, children: 0), .init(uid: 5, children: 0)])),
        AppendBegin(session: 1, mailbox: "Sent", flags: [.seen, .draft], keywords: ["$MDNSent"], internalDate: 1_700_000_000, size: 300),
        AppendReply(AppendResult(uidValidity: 77, uid: 12)),
        QuotaGet(session: 9), QuotaReply(QuotaUsage(bytes: 4097, messages: 3, storageLimit: 1 << 20, messageLimit: nil)), QuotaReply(QuotaUsage()),
        QueueList(), QueueEntries([QueueEntry(id: 1, sender: "a@b", recipient: "c@d", created: 5, nextAttempt: 6, attempts: 0, lastError: "")]),
        QueueClaimRequest(lease: 300, limit: 16),
        QueueJobs(QueueClaim(jobs: [QueueJob(message: 7, sender: "a@b", size: 1234, created: 1_700_000_000, origin: .forward,
                                             envelope: QueueEnvelopeDSN(ret: "HDRS", envid: "QQ314159"),
                                             recipients: [QueueRecipient(id: 3, address: "c@d"),
                                                          QueueRecipient(id: 4, address: "e@f", attempts: 2, firstAttempt: 1_700_000_100, lastReply: "451 4.3.0 later",
                                                                         warned: true, dsn: QueueRecipientDSN(notify: 6, orcpt: "rfc822;e@f"))],
                                             bounceRequested: true, leaseUntil: 1_700_000_400)], nextDue: 1_700_000_900)),
        QueueJobs(QueueClaim(jobs: [QueueJob(message: 8, sender: "", size: 6, created: 1_700_000_000, origin: .bounce,
                                             recipients: [QueueRecipient(id: 5, address: "g@h")], leaseUntil: 1_700_000_400,
                                             body: Array("Hi\r\n\r\n".utf8))], nextDue: nil)),
        QueueJobs(QueueClaim(jobs: [], nextDue: nil)),
        QueueRead(message: 7, offset: 65536, length: 4096),
        QueueReport(results: [QueueResult(recipient: 3, outcome: .delivered(reply: "250 2.0.0 ok")),
                              QueueResult(recipient: 4, outcome: .deferred(reply: "421 busy", nextAttempt: 1_700_001_000, warned: true)),
                              QueueResult(recipient: 5, outcome: .failed(reply: "550 5.1.1 unknown"))],
                    notice: QueueNotice(recipient: "a@b", body: Array("Subject: Undelivered\r\n\r\nx\r\n".utf8))),
        QueueReport(results: [], notice: nil),
        QueueWatch(), QueueChanged(), QueueEntriesGet(after: 12, limit: 100),
        QueueEntryList([QueueEntryInfo(id: 3, message: 7, sender: "", recipient: "c@d", created: 5, nextAttempt: 6, attempts: 1, lastReply: "421",
                                       held: true, bounceRequested: false, leaseUntil: 9, size: 100, origin: .bounce)], complete: false),
        QueueAdminRequest(.hold, message: 7), QueueAdminRequest(.flush, message: nil), QueueAdminReply(rows: 2),
        Reindex(user: "u@d"), ReindexProgress(done: 256, total: 1000),
    ]

    static let sampleSummary = MailboxSummary(id: 12, name: "INBOX", specialUse: "", uidValidity: 77, uidNext: 10,
                                              highestModSeq: 41, messages: 3, subscribed: true)

    /// A deterministic mutation loop over valid frames: bit flips, truncation, length lies, splices.
    public static func run(iterations: Int, seed: UInt64) -> (frames: Int, messages: Int, errors: Int) {
        var rng = SplitMix(seed: seed)
        var total = (frames: 0, messages: 0, errors: 0)
        let encoded: [[UInt8]] = samples.map { m in var b = ByteBuffer(); m.frame(requestID: 7, flags: []).write(into: &b); return Array(b.readableBytesView) }
        for _ in 0..<iterations {
            var input = encoded[Int(rng.next() % UInt64(encoded.count))]
            if rng.next() % 3 == 0 { input += encoded[Int(rng.next() % UInt64(encoded.count))] }
            switch rng.next() % 6 {
            case 0: for _ in 0..<(1 + rng.next() % 4) { let i = Int(rng.next() % UInt64(input.count)); input[i] ^= UInt8(1 << (rng.next() % 8)) }
            case 1: input = Array(input.prefix(Int(rng.next() % UInt64(input.count))))
            case 2: let i = Int(rng.next() % UInt64(min(4, input.count))); input[i] = UInt8(truncatingIfNeeded: rng.next())
            case 3: input = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 4: if input.count > 13 { let i = 12 + Int(rng.next() % UInt64(input.count - 12)); input[i] = 0xff }
            default: input.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(input.count + 1)))
            }
            let r = one(input)
            total.frames += r.frames; total.messages += r.messages; total.errors += r.errors
        }
        return total
    }
}

/// libFuzzer entry point (build with -sanitize=fuzzer and link the fuzz-ipc target's object).
@_cdecl("PosternFuzzIPC")
public func posternFuzzIPC(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = IPCFuzz.one(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
