// A SwiftNIO duplex handler running OpenSSL over two memory BIOs: ciphertext in from the
// network, plaintext up to the protocol, and back. Guarantees: every failure is a typed error
// on this connection only (never a crash), close_notify is sent on close and the peer's is EOF,
// plaintext held here stays under one record before it is encrypted and counted by NIO.
import NIOCore
import Logging
import CMailTLS

/// TLS for one connection, server or client mode (RFC 8446 for TLS 1.3, RFC 5246 for TLS 1.2).
///
/// Put it first in the pipeline: for implicit TLS (RFC 8314 §3) in the channel initializer,
/// for STARTTLS through `startTLS(...)`. Writes made before the handshake completes are held
/// and sent once it does. `TLSEvent.handshakeCompleted` is fired when it completes; the same
/// `TLSSessionInfo` stays available as `sessionInfo`.
///
/// Renegotiation is refused (SSL_OP_NO_RENEGOTIATION; TLS 1.3 has none, RFC 8446 §4.1.2).
public final class TLSHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public enum Role: Sendable { case server, client }

    public let role: Role
    /// Set when the handshake completes.
    public private(set) var sessionInfo: TLSSessionInfo?
    public var isHandshakeComplete: Bool { sessionInfo != nil }

    private enum State { case idle, handshaking, active, closing, closed }

    private struct PendingWrite {
        var data: ByteBuffer
        var promise: EventLoopPromise<Void>?
    }

    /// Plaintext is encrypted once this much is waiting (one full TLS record), so at most one
    /// record's worth sits outside NIO's writability accounting.
    static let coalesceBytes = 16_384
    /// Ciphertext is handed to NIO in chunks of about this size.
    static let chunkBytes = 65_536

    private var state: State = .idle
    let connection: SSLConnection?
    private let setupFailure: String?
    private let handshakeTimeout: TimeAmount
    private let shutdownTimeout: TimeAmount
    private let logger: Logger?
    private var handshakeTimer: Scheduled<Void>?
    private var shutdownTimer: Scheduled<Void>?
    private var pending = CircularBuffer<PendingWrite>(initialCapacity: 4)
    private var pendingBytes = 0
    private var flushRequested = false
    private var readRequested = false
    private var deliveredSinceReadComplete = false
    private var receivedCloseNotify = false
    private var outputClosed = false
    private var closeIssued = false
    private var closePromise: EventLoopPromise<Void>?
    private var errorReported = false
    private var transportErrorSeen = false
    private var peer = "unknown"
    /// Completed with the handshake's outcome (client STARTTLS helper).
    var handshakePromise: EventLoopPromise<TLSSessionInfo>?

    init(role: Role, context ctx: OpaquePointer, owner: AnyObject, serverName: String?, verifyHost: Bool,
         verifying: Bool, releaseBuffers: Bool, handshakeTimeout: TimeAmount, shutdownTimeout: TimeAmount,
         logger: Logger?) {
        self.role = role
        self.handshakeTimeout = handshakeTimeout
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
        mtls_clear_errors()
        var rbio: OpaquePointer? = nil
        var wbio: OpaquePointer? = nil
        if let ssl = mtls_ssl_new(ctx, role == .server ? 1 : 0, releaseBuffers ? 1 : 0, &rbio, &wbio), let rbio, let wbio {
            let c = SSLConnection(ssl: ssl, rbio: rbio, wbio: wbio, owner: owner, verifying: verifying)
            if let serverName, mtls_ssl_set_server_name(ssl, serverName, verifyHost ? 1 : 0) != 1 {
                connection = nil
                setupFailure = "cannot set server name \(serverName): \(drainOpenSSLErrors())"
            } else {
                connection = c
                setupFailure = nil
            }
        } else {
            connection = nil
            setupFailure = drainOpenSSLErrors()
        }
    }

    // MARK: lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshake(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        handshakePromise?.fail(ChannelError.ioOnClosedChannel)
        handshakePromise = nil
        failPending(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        startHandshake(context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let previous = state
        state = .closed
        cancelTimers()
        if !closeIssued, let p = closePromise {
            closeIssued = true
            p.succeed(())
        }
        failPending(ChannelError.ioOnClosedChannel)
        if !errorReported && !transportErrorSeen {
            switch previous {
            case .handshaking:
                report(context, .closedDuringHandshake)
            case .active where !receivedCloseNotify:
                report(context, .uncleanShutdown)
            default:
                break
            }
        }
        context.fireChannelInactive()
    }

    private func startHandshake(_ context: ChannelHandlerContext) {
        guard state == .idle else { return }
        if let a = context.channel.remoteAddress { peer = a.ipAddress ?? "\(a)" }
        state = .handshaking
        guard connection != nil else {
            fail(context, .setupFailed(reason: setupFailure ?? "unknown"))
            return
        }
        if handshakeTimeout.nanoseconds > 0 {
            let timeout = handshakeTimeout
            handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                guard state == .handshaking else { return }
                fail(context, .handshakeTimeout(milliseconds: timeout.nanoseconds / 1_000_000))
            }
        }
        doHandshake(context)
    }

    // MARK: inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let c = connection else { return }
        let buffer = unwrapInboundIn(data)
        switch state {
        case .idle:
            c.feed(buffer)
            startHandshake(context)
        case .handshaking:
            c.feed(buffer)
            doHandshake(context)
        case .active:
            c.feed(buffer)
            readPlaintext(context)
        case .closing, .closed:
            // After our close_notify nothing more is delivered (RFC 8446 §6.1).
            break
        }
    }

    /// Errors from below (ECONNRESET, ...) pass through; the connection then needs no second,
    /// TLS-level report when it goes inactive.
    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        transportErrorSeen = true
        handshakePromise?.fail(error)
        handshakePromise = nil
        context.fireErrorCaught(error)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        let delivered = deliveredSinceReadComplete
        deliveredSinceReadComplete = false
        context.fireChannelReadComplete()
        // A read the protocol asked for produced no plaintext (only part of a record arrived):
        // ask for more, or a protocol reading with autoRead off would stall.
        if state == .active && !delivered && readRequested { context.read() }
    }

    private func doHandshake(_ context: ChannelHandlerContext) {
        guard let c = connection, state == .handshaking else { return }
        mtls_clear_errors()
        let rc = SSL_do_handshake(c.ssl)
        if rc == 1 {
            handshakeTimer?.cancel()
            handshakeTimer = nil
            state = .active
            let info = TLSSessionInfo(ssl: c.ssl, verifying: c.verifying)
            sessionInfo = info
            writeCiphertext(context)
            if flushRequested {
                flushRequested = false
                encryptPending(context)
            }
            context.flush()
            logger?.debug("TLS established with \(peer): \(info)")
            handshakePromise?.succeed(info)
            handshakePromise = nil
            context.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(info))
            readPlaintext(context)  // application data that arrived with the peer's Finished
            return
        }
        let code = SSL_get_error(c.ssl, rc)
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            if writeCiphertext(context) { context.flush() }
            context.read()
        default:
            var reason = drainOpenSSLErrors()
            if reason.isEmpty { reason = "SSL error \(code)" }
            var buf = [CChar](repeating: 0, count: 256)
            if role == .client && c.verifying && mtls_ssl_verify_result(c.ssl, &buf, buf.count) != 0 {
                let v = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                fail(context, .certificateVerificationFailed(reason: v))
            } else {
                fail(context, .handshakeFailed(reason: reason))
            }
        }
    }

    private func readPlaintext(_ context: ChannelHandlerContext) {
        guard let c = connection, state == .active else { return }
        let available = BIO_ctrl_pending(c.rbio)
        var out = context.channel.allocator.buffer(capacity: max(4_096, available + 1_024))
        var failure: TLSError? = nil
        var closeNotify = false
        loop: while true {
            mtls_clear_errors()
            var rc: Int32 = 0
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4_096) { p in
                var n = 0
                rc = SSL_read_ex(c.ssl, p.baseAddress, p.count, &n)
                return rc == 1 ? n : 0
            }
            if rc == 1 { continue }
            let code = SSL_get_error(c.ssl, rc)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                break loop
            case SSL_ERROR_ZERO_RETURN:
                closeNotify = true   // RFC 8446 §6.1: the peer's close_notify is our EOF
                break loop
            default:
                let r = drainOpenSSLErrors()
                failure = .protocolError(reason: r.isEmpty ? "SSL error \(code)" : r)
                break loop
            }
        }
        if writeCiphertext(context) { context.flush() }   // alerts, KeyUpdate replies
        c.trim()
        if out.readableBytes > 0 {
            readRequested = false
            deliveredSinceReadComplete = true
            context.fireChannelRead(wrapInboundOut(out))
        }
        if let failure {
            fail(context, failure)
            return
        }
        if closeNotify && state == .active {
            receivedCloseNotify = true
            let halfClosure = (try? context.channel.syncOptions?.getOption(ChannelOptions.allowRemoteHalfClosure)) ?? false
            if halfClosure == true && !outputClosed {
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else {
                beginClose(context, promise: nil)
            }
        }
    }

    // MARK: outbound

    public func read(context: ChannelHandlerContext) {
        readRequested = true
        context.read()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        case .idle, .handshaking, .active:
            break
        }
        if outputClosed {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let buffer = unwrapOutboundIn(data)
        pending.append(PendingWrite(data: buffer, promise: promise))
        pendingBytes += buffer.readableBytes
        if state == .active && pendingBytes >= TLSHandler.coalesceBytes { encryptPending(context) }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .active:
            encryptPending(context)
            context.flush()
            connection?.trim()
        case .idle, .handshaking:
            flushRequested = true
        case .closing, .closed:
            context.flush()
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            context.close(mode: .input, promise: promise)
            return
        case .output:
            guard state == .active, !outputClosed else {
                context.close(mode: .output, promise: promise)
                return
            }
            outputClosed = true
            failPending(ChannelError.outputClosed)
            sendCloseNotify(context).assumeIsolated().whenComplete { _ in
                context.close(mode: .output, promise: promise)
            }
            return
        case .all:
            break
        }
        switch state {
        case .closed:
            context.close(mode: .all, promise: promise)
        case .closing:
            if let promise, let closePromise { closePromise.futureResult.cascade(to: promise) }
            else if let promise { promise.succeed(()) }
        case .idle, .handshaking:
            state = .closed
            cancelTimers()
            failPending(ChannelError.ioOnClosedChannel)
            closeIssued = true
            context.close(mode: .all, promise: promise)
        case .active:
            beginClose(context, promise: promise)
        }
    }

    /// Sends close_notify (unless our output is already shut), then closes the channel once it
    /// is written or after the shutdown timeout. We do not wait for the peer's close_notify:
    /// RFC 8446 §6.1 lets the closing side drop the connection after sending its own.
    private func beginClose(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard state == .active else { return }
        state = .closing
        cancelTimers()
        failPending(ChannelError.ioOnClosedChannel)
        let p = promise ?? context.eventLoop.makePromise(of: Void.self)
        closePromise = p
        let finish: () -> Void = { [self] in
            guard !closeIssued else { return }
            closeIssued = true
            shutdownTimer?.cancel()
            shutdownTimer = nil
            // The peer may have closed first; closing an already closed channel is success here.
            let inner = context.eventLoop.makePromise(of: Void.self)
            inner.futureResult.whenComplete { result in
                if case .failure(let e) = result, let ce = e as? ChannelError, ce == .alreadyClosed {
                    p.succeed(())
                } else {
                    p.completeWith(result)
                }
            }
            context.close(mode: .all, promise: inner)
        }
        if outputClosed {
            finish()
            return
        }
        shutdownTimer = context.eventLoop.assumeIsolated().scheduleTask(in: shutdownTimeout) { finish() }
        sendCloseNotify(context).assumeIsolated().whenComplete { _ in finish() }
    }

    private func sendCloseNotify(_ context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        let p = context.eventLoop.makePromise(of: Void.self)
        guard let c = connection else {
            p.succeed(())
            return p.futureResult
        }
        mtls_clear_errors()
        _ = SSL_shutdown(c.ssl)   // 0: ours sent, the peer's not yet seen; that is enough
        mtls_clear_errors()
        writeCiphertext(context, promise: p)
        context.flush()
        return p.futureResult
    }

    /// Encrypts every pending write, handing ciphertext to NIO in ~64 KB chunks. The promise of
    /// each write completes with the chunk holding its last byte.
    private func encryptPending(_ context: ChannelHandlerContext) {
        guard let c = connection, state == .active, !pending.isEmpty else { return }
        var promises: [EventLoopPromise<Void>] = []
        while let item = pending.popFirst() {
            var data = item.data
            while data.readableBytes > 0 {
                let slice = min(data.readableBytes, TLSHandler.chunkBytes)
                mtls_clear_errors()
                var written = 0
                let rc = data.withUnsafeReadableBytes { SSL_write_ex(c.ssl, $0.baseAddress, slice, &written) }
                guard rc == 1 else {
                    let code = SSL_get_error(c.ssl, rc)
                    let r = drainOpenSSLErrors()
                    let error = TLSError.protocolError(reason: r.isEmpty ? "SSL_write error \(code)" : r)
                    item.promise?.fail(error)
                    for p in promises { p.fail(error) }
                    pendingBytes = 0
                    fail(context, error)
                    return
                }
                data.moveReaderIndex(forwardBy: written)
                if BIO_ctrl_pending(c.wbio) >= TLSHandler.chunkBytes { writeCiphertext(context) }
            }
            if let p = item.promise { promises.append(p) }
        }
        pendingBytes = 0
        switch promises.count {
        case 0:
            writeCiphertext(context)
        case 1:
            writeCiphertext(context, promise: promises[0])
        default:
            let all = context.eventLoop.makePromise(of: Void.self)
            let waiting = promises
            all.futureResult.whenComplete { result in for p in waiting { p.completeWith(result) } }
            writeCiphertext(context, promise: all)
        }
    }

    /// Moves everything OpenSSL wrote to the outgoing memory BIO into one NIO write (no flush).
    /// With a promise and nothing to send, an empty write carries it, to keep the order.
    @discardableResult
    private func writeCiphertext(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) -> Bool {
        guard let c = connection else {
            promise?.succeed(())
            return false
        }
        let n = BIO_ctrl_pending(c.wbio)
        guard n > 0 else {
            if let promise { context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise) }
            return false
        }
        c.draining(n)
        var out = context.channel.allocator.buffer(capacity: n)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { p in
            Int(max(0, BIO_read(c.wbio, p.baseAddress, Int32(n))))
        }
        context.write(wrapOutboundOut(out), promise: promise)
        return true
    }

    // MARK: failure

    /// Ends this connection: sends any alert OpenSSL queued, reports `error` once, closes.
    private func fail(_ context: ChannelHandlerContext, _ error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        cancelTimers()
        if writeCiphertext(context) { context.flush() }
        failPending(error)
        report(context, error)
        if !closeIssued {
            closeIssued = true
            context.close(mode: .all, promise: closePromise)
        }
    }

    private func report(_ context: ChannelHandlerContext, _ error: TLSError) {
        handshakePromise?.fail(error)
        handshakePromise = nil
        guard !errorReported else { return }
        errorReported = true
        switch error {
        case .uncleanShutdown, .closedDuringHandshake:
            logger?.debug("TLS connection from \(peer): \(error)")
        default:
            logger?.notice("TLS connection from \(peer): \(error)")
        }
        context.fireErrorCaught(error)
    }

    private func failPending(_ error: Error) {
        pendingBytes = 0
        while let item = pending.popFirst() { item.promise?.fail(error) }
    }

    private func cancelTimers() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        shutdownTimer?.cancel()
        shutdownTimer = nil
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}

/// Owns the SSL object (and through it both memory BIOs) and keeps its SSL_CTX set alive.
/// A memory BIO keeps the buffer it grew to (one large FETCH: 64 KiB and more); `trim` swaps
/// a drained BIO that grew past `idleBIOBytes` for an empty one, so an idle connection holds
/// no more than that per BIO (issue 11 point 5, with SSL_MODE_RELEASE_BUFFERS for OpenSSL's own).
final class SSLConnection {
    let ssl: OpaquePointer
    /// Network → OpenSSL.
    private(set) var rbio: OpaquePointer
    /// OpenSSL → network.
    private(set) var wbio: OpaquePointer
    let owner: AnyObject
    let verifying: Bool
    /// A drained BIO that held more than this since it was made is replaced by `trim`.
    static let idleBIOBytes = 1_024
    /// The most each BIO held since it was made (its buffer is at least that big).
    private(set) var rbioPeak = 0
    private(set) var wbioPeak = 0
    /// BIOs replaced so far (tests).
    private(set) var renewed = 0

    init(ssl: OpaquePointer, rbio: OpaquePointer, wbio: OpaquePointer, owner: AnyObject, verifying: Bool) {
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        self.owner = owner
        self.verifying = verifying
    }

    deinit { SSL_free(ssl) }

    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { p in
            var off = 0
            while off < p.count {
                let n = BIO_write(rbio, p.baseAddress! + off, Int32(min(p.count - off, Int(Int32.max))))
                if n <= 0 { break }
                off += Int(n)
            }
        }
        rbioPeak = max(rbioPeak, BIO_ctrl_pending(rbio))
    }

    /// Called with what the write BIO holds before it is drained.
    func draining(_ pending: Int) { wbioPeak = max(wbioPeak, pending) }

    /// Replaces each drained BIO whose buffer grew past `idleBIOBytes` by an empty one.
    func trim() {
        if rbioPeak > Self.idleBIOBytes, let b = mtls_ssl_renew_bio(ssl, 1) {
            rbio = b; rbioPeak = 0; renewed += 1
        }
        if wbioPeak > Self.idleBIOBytes, let b = mtls_ssl_renew_bio(ssl, 0) {
            wbio = b; wbioPeak = 0; renewed += 1
        }
    }
}
