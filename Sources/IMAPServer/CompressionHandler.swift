// COMPRESS=DEFLATE in the channel (RFC 4978): one handler, put right before IMAPSessionHandler
// once `tag OK DEFLATE active` has been written, inflates what comes in and deflates what goes
// out, below the session and above TLS (RFC 4978 §3: compress first, then encrypt). Guarantees:
// inflated bytes reach the session one chunk at a time and only while it reads (a held read
// holds the inflating too, and the socket stays unread while inflated input is pending); each
// flush is a sync flush; the compressor's state is released while nothing is sent, and all of
// zlib's state is freed when the handler leaves the pipeline.
import NIOCore
import MailWorker

/// Sent up the pipeline when the client's compressed data cannot be inflated (corrupt, past
/// `maxExpansion`, data after the final block): the glue says BYE and closes.
struct DeflateFailure {
    var error: DeflateError

    /// What the BYE says.
    var byeText: String {
        if case .expansion = error { return "Compressed data expands too much" }
        return "Invalid compressed data"
    }
}

final class DeflateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Nothing sent for this long: the compressor's ~256 KiB go back (an IDLE client waits for
    /// minutes; the inflater's 32 KiB window must stay, the client may refer into it).
    static let releaseAfter = TimeAmount.seconds(5)

    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var compressor: Compressor
    private var decompressor: Decompressor
    /// What the session asked last (SessionReading): it holds the inflating.
    private var sessionPaused: Bool
    /// What this handler told OutboundBackPressure last.
    private var pausedBelow: Bool
    private var drainScheduled = false
    private var failed = false
    /// Promises of writes whose bytes go out with the next flush.
    private var waiting: [EventLoopPromise<Void>] = []
    private var lastFlush = NIODeadline.now()
    private var releaseTask: Scheduled<Void>?

    /// `readingPaused`: whether the session holds reads now (OutboundBackPressure holds them
    /// too, since it was the session that said so); `pending`: compressed bytes the client sent
    /// after COMPRESS that were already read.
    init(parameters: DeflateParameters = DeflateParameters(), readingPaused: Bool, pending: [UInt8]) throws {
        compressor = try Compressor(parameters)
        decompressor = try Decompressor(parameters)
        sessionPaused = readingPaused
        pausedBelow = readingPaused
        decompressor.feed(pending)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        updateBelow(context)
        if decompressor.hasPending && !sessionPaused { scheduleDrain(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        releaseTask?.cancel()
        releaseTask = nil
        compressor.close()
        decompressor.close()
        let w = waiting
        waiting = []
        w.forEach { $0.fail(ChannelError.ioOnClosedChannel) }
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let bytes = unwrapInboundIn(data)
        bytes.withUnsafeReadableBytes { decompressor.feed($0) }
        drain(context)
    }

    /// Hands inflated chunks to the session while it reads; then holds or releases the socket.
    private func drain(_ context: ChannelHandlerContext) {
        while !sessionPaused && !failed {
            let chunk: [UInt8]?
            do { chunk = try decompressor.next() } catch {
                failed = true
                decompressor.close()
                context.fireUserInboundEventTriggered(DeflateFailure(error: error))
                break
            }
            guard let chunk else { break }
            var b = context.channel.allocator.buffer(capacity: chunk.count)
            b.writeBytes(chunk)
            // May pause the session (its queue is full): the loop then stops with input kept.
            context.fireChannelRead(wrapInboundOut(b))
        }
        updateBelow(context)
    }

    private func scheduleDrain(_ context: ChannelHandlerContext) {
        guard !drainScheduled else { return }
        drainScheduled = true
        // Not from inside the session's own call (its refill): on the next loop tick.
        context.eventLoop.execute { [self] in
            drainScheduled = false
            guard context.channel.isActive, !failed else { return }
            drain(context)
        }
    }

    /// The socket is read only while the session reads and no inflated input is pending. After
    /// a failure input is read and dropped until the session has said BYE and closed: a close
    /// with unread input would be a reset, which can destroy the BYE on its way.
    private func updateBelow(_ context: ChannelHandlerContext) {
        let hold = !failed && (sessionPaused || decompressor.hasPending)
        guard hold != pausedBelow else { return }
        pausedBelow = hold
        context.triggerUserOutboundEvent(hold ? SessionReading.pause : SessionReading.resume, promise: nil)
    }

    // MARK: outbound

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let e = event as? SessionReading else { return context.triggerUserOutboundEvent(event, promise: promise) }
        sessionPaused = e == .pause
        promise?.succeed(())
        if !sessionPaused && decompressor.hasPending { scheduleDrain(context) }
        updateBelow(context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        if let promise { waiting.append(promise) }
        deflate(context, bytes, flush: false)
    }

    /// RFC 4978 §4: every flush of imapd is a sync flush, so the client can read all it was sent.
    func flush(context: ChannelHandlerContext) {
        deflate(context, context.channel.allocator.buffer(capacity: 0), flush: true)
    }

    private func deflate(_ context: ChannelHandlerContext, _ bytes: ByteBuffer, flush: Bool) {
        var pieces: [ByteBuffer] = []
        let allocator = context.channel.allocator
        do {
            try bytes.withUnsafeReadableBytes { raw in
                try compressor.compress(raw, flush: flush) { out in
                    var b = allocator.buffer(capacity: out.count)
                    b.writeBytes(out)
                    pieces.append(b)
                }
            }
        } catch {
            let w = waiting
            waiting = []
            w.forEach { $0.fail(error) }
            context.close(promise: nil)
            return
        }
        for p in pieces { context.write(wrapOutboundOut(p), promise: nil) }
        guard flush else { return }
        if !waiting.isEmpty {
            // Written in order: the writes are done when an empty write behind them is.
            let done = context.eventLoop.makePromise(of: Void.self)
            let w = waiting
            waiting = []
            w.forEach { done.futureResult.cascade(to: $0) }
            context.write(wrapOutboundOut(allocator.buffer(capacity: 0)), promise: done)
        }
        context.flush()
        lastFlush = .now()
        if releaseTask == nil && compressor.isLive { armRelease(context, at: lastFlush + Self.releaseAfter) }
    }

    /// Releases the compressor `releaseAfter` past the last flush (one timer, moved on as
    /// flushes come).
    private func armRelease(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        releaseTask = context.eventLoop.scheduleTask(deadline: deadline) { [self] in
            releaseTask = nil
            let due = lastFlush + Self.releaseAfter
            if due > .now() { return armRelease(context, at: due) }
            compressor.release()
        }
    }
}
