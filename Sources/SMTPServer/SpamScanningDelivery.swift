// Spam scanning in smtpd/lmtpd (issue 14): holds the message (up to [spam] max_size), asks
// rspamd at the end of DATA/BDAT, then starts the store delivery (X-Spam-* fields, Junk) or refuses
// with the verdict's reply (SpamRefusal), nothing stored. Larger messages go unscanned.
import Logging
import MailCore
import NIOCore
import SMTPProtocol
import SpamFilter

/// What a session needs to scan: the scanner ([spam] url, timeout, on_failure) and the folder.
struct SpamHook {
    let scanner: SpamScanner
    let junkFolder: String
    /// [spam] max_size: a message past this is delivered unscanned (logged), so a session never
    /// holds more than this.
    let maxScanBytes: Int
    /// RFC 6154 §2: the mailbox junk goes to is the user's one marked so (junk_folder names it
    /// when the user has none, and it is created).
    static let junkSpecialUse = "\\Junk"

    /// smtpd's mta role always, lmtpd when scan_lmtp, submission/smtps when scan_submission.
    init?(_ config: SpamConfig, group: EventLoopGroup, scans: Bool) {
        guard config.enabled, scans, let s = SpamScanner(group: group, config: config) else { return nil }
        scanner = s; junkFolder = config.junkFolder; maxScanBytes = config.maxSize
    }
}

/// The end of a message rspamd refused (reject) or deferred (soft reject, greylist, or no
/// answer with on_failure = tempfail): every recipient gets `reply`; nothing was stored.
struct SpamRefusal: Error {
    let reply: SMTPReply
}

final class SpamScanningDelivery: SMTPDelivery {
    /// Starts the store delivery into the named mailbox (nil: INBOX).
    typealias Begin = (_ mailbox: String?) -> any SMTPDelivery
    private let begin: Begin
    private let hook: SpamHook
    private let envelope: SpamEnvelope
    private let loop: EventLoop
    private let logger: Logger
    private var held: ByteBuffer? = ByteBuffer()
    private var inner: (any SMTPDelivery)?

    init(hook: SpamHook, envelope: SpamEnvelope, loop: EventLoop, logger: Logger, begin: @escaping Begin) {
        self.hook = hook; self.envelope = envelope; self.loop = loop; self.logger = logger; self.begin = begin
    }

    func send(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        if let inner { return inner.send(bytes) }
        guard var h = held else { return loop.makeSucceededVoidFuture() }
        if h.readableBytes + bytes.readableBytes > hook.maxScanBytes {
            logger.notice("spam: message over \(hook.maxScanBytes) bytes, delivered unscanned")
            held = nil
            let d = begin(nil)
            inner = d
            return sendChunked(d, h).flatMap { d.send(bytes) }
        }
        h.writeImmutableBuffer(bytes)
        held = h
        return loop.makeSucceededVoidFuture()
    }

    func end() -> EventLoopFuture<[RecipientDeliveryStatus]> {
        if let inner { return inner.end() }
        guard let message = held else { return loop.makeFailedFuture(SpamRefusal(reply: .spamDeferred)) }
        held = nil
        return hook.scanner.scan(message, envelope).hop(to: loop).flatMap { [self] scan in
            logger.info("spam: \(scan.logDescription)")
            switch scan.verdict {
            case .reject(let reply), .tempfail(let reply):
                return loop.makeFailedFuture(SpamRefusal(reply: reply))
            case .deliver(let d):
                let bytes = SpamHeaders.apply(d, to: Array(message.readableBytesView))
                let delivery = begin(d.toJunk ? hook.junkFolder : nil)
                inner = delivery
                return sendChunked(delivery, ByteBuffer(bytes: bytes)).flatMap { delivery.end() }
            }
        }
    }

    func abort() {
        held = nil
        inner?.abort()
    }

    /// The held message in store-RPC-sized pieces, one after another.
    private func sendChunked(_ d: any SMTPDelivery, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        var rest = buffer
        guard rest.readableBytes > 0 else { return loop.makeSucceededVoidFuture() }
        let piece = rest.readSlice(length: min(rest.readableBytes, SMTPSessionHandler.deliveryChunkSize))!
        return d.send(piece).flatMap { self.sendChunked(d, rest) }
    }
}

extension SpamEnvelope {
    /// The scan's request fields from the SMTP envelope and the session.
    init(_ env: SMTPEnvelope, client: String, sessionID: String) {
        self.init(sender: env.sender?.address ?? "", recipients: env.recipients.map(\.address), clientIP: client,
                  helo: env.helo, user: env.authenticatedUser, queueID: sessionID)
    }
}
