// STARTTLS / STLS upgrade for line protocols (SMTP RFC 3207, IMAP RFC 9051 §6.2.1, POP3 RFC
// 2595 §4). Guarantee: no byte read after the command line is ever taken as plaintext by the
// pipeline once the reply is on the wire; the protocol must drop what it already holds.
import NIOCore
import Logging

/// Upgrades a plaintext connection to TLS after the protocol accepted STARTTLS.
///
/// In order: turns autoRead off, writes and flushes `reply` ("220 2.0.0 Ready to start TLS")
/// as plaintext, and only once that write has completed puts a server `TLSHandler` first in
/// the pipeline and turns autoRead back on. From then on every byte from the socket goes
/// through TLS. The future completes when the handler is in place (not when the handshake
/// is done: watch for `TLSEvent.handshakeCompleted`); it fails with `TLSError.alreadyActive`
/// if TLS is already on, and with the write's error if the reply could not be sent.
///
/// The protocol handler's part, which this function cannot do for it:
/// - RFC 3207 §4.2 (CVE-2011-0411): discard every byte it received after the STARTTLS line —
///   the rest of the buffer that carried the command and anything in its own line buffer —
///   and ignore input until the handshake completes. A client that pipelines
///   `STARTTLS\r\nNOOP\r\n` must get no reply to that NOOP, in plaintext or in TLS.
/// - RFC 3207 §4.2: forget what it learned before TLS (EHLO argument, AUTH state) and expect a
///   fresh EHLO; RFC 9051 §6.2.1 and RFC 2595 §4 say the same for IMAP and POP3.
/// - Refuse a second STARTTLS: `isTLSActive(_:)` tells whether TLS is already on.
/// - If it manages autoRead itself, not turn it off again while the upgrade is running.
///
/// Call on the channel's event loop (from the protocol handler). `handlerContext` variant:
/// the reply enters the pipeline at that handler, so outbound handlers above it (encoders of
/// other types) are skipped; prefer it from inside a handler.
public func startTLS(from handlerContext: ChannelHandlerContext, context: TLSServerContext, reply: ByteBuffer,
                     logger: Logger? = nil) -> EventLoopFuture<Void> {
    upgrade(channel: handlerContext.channel, reply: reply, write: { handlerContext.writeAndFlush(NIOAny($0)) },
            makeHandler: { context.makeHandler(logger: logger) })
}

/// As `startTLS(from:context:reply:)`, writing the reply from the tail of the pipeline. Must
/// run on the channel's event loop; every outbound handler must accept `ByteBuffer`.
public func startTLS(on channel: Channel, context: TLSServerContext, reply: ByteBuffer,
                     logger: Logger? = nil) -> EventLoopFuture<Void> {
    upgrade(channel: channel, reply: reply, write: { channel.writeAndFlush($0) },
            makeHandler: { context.makeHandler(logger: logger) })
}

/// Client side (outbound SMTP after the server's `220` to our STARTTLS): puts a client
/// `TLSHandler` first and returns the handshake's outcome.
public func startTLS(on channel: Channel, client: TLSClientContext, serverName: String?,
                     logger: Logger? = nil) -> EventLoopFuture<TLSSessionInfo> {
    channel.eventLoop.preconditionInEventLoop()
    if isTLSActive(channel) { return channel.eventLoop.makeFailedFuture(TLSError.alreadyActive) }
    let handler = client.makeHandler(serverName: serverName, logger: logger)
    let done = channel.eventLoop.makePromise(of: TLSSessionInfo.self)
    handler.handshakePromise = done
    do {
        try channel.pipeline.syncOperations.addHandler(handler, position: .first)
    } catch {
        handler.handshakePromise = nil
        done.fail(error)
    }
    return done.futureResult
}

/// Whether a `TLSHandler` is in the channel's pipeline. Call on the channel's event loop.
public func isTLSActive(_ channel: Channel) -> Bool {
    channel.eventLoop.preconditionInEventLoop()
    return (try? channel.pipeline.syncOperations.handler(type: TLSHandler.self)) != nil
}

/// The negotiated session of the channel's `TLSHandler`, once its handshake completed (for
/// `Received:` and session logs). Call on the channel's event loop.
public func tlsSessionInfo(_ channel: Channel) -> TLSSessionInfo? {
    channel.eventLoop.preconditionInEventLoop()
    return (try? channel.pipeline.syncOperations.handler(type: TLSHandler.self))?.sessionInfo
}

private func upgrade(channel: Channel, reply: ByteBuffer, write: (ByteBuffer) -> EventLoopFuture<Void>,
                     makeHandler: @escaping () -> TLSHandler) -> EventLoopFuture<Void> {
    let loop = channel.eventLoop
    loop.preconditionInEventLoop()
    if isTLSActive(channel) { return loop.makeFailedFuture(TLSError.alreadyActive) }
    setAutoRead(channel, false)
    let promise = loop.makePromise(of: Void.self)
    write(reply).assumeIsolated().whenComplete { result in
        switch result {
        case .failure(let error):
            promise.fail(error)
        case .success:
            guard channel.isActive else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return
            }
            if isTLSActive(channel) {
                promise.fail(TLSError.alreadyActive)
                return
            }
            do {
                try channel.pipeline.syncOperations.addHandler(makeHandler(), position: .first)
                setAutoRead(channel, true)
                promise.succeed(())
            } catch {
                promise.fail(error)
                channel.close(promise: nil)
            }
        }
    }
    return promise.futureResult
}

private func setAutoRead(_ channel: Channel, _ on: Bool) {
    if let sync = channel.syncOptions {
        try? sync.setOption(ChannelOptions.autoRead, value: on)
    } else {
        channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
    }
}
