// One connection's worth of work for one destination: route it once, then deliver unit after
// unit of the destination over one connection (RFC 5321 §5.1: the next address or MX host on a
// connection failure or a host-level 4xx; an opportunistic STARTTLS that fails is retried in
// plaintext on the same address). When no host can be reached, every unit still waiting for the
// destination is deferred with the same reply instead of timing out one by one.
import Foundation
import Logging
import MailModel
import MailWorker
import NIOCore
import OutboundProtocol
import SMTPProtocol

struct DestinationWorker {
    let destination: Destination
    let runner: OutboundRunner
    /// The executor this worker's task prefers: its connections are made on its loop too.
    let executor: EventLoopTaskExecutor

    func run(first: DeliveryUnit) async {
        switch await runner.router.route(destination) {
        case .permanent(let reply):
            await failRest(first, .permanent, reply)
        case .temporary(let reply):
            await failRest(first, .temporary, reply)
        case .targets(let targets):
            var state = State(targets: targets)
            var unit: DeliveryUnit? = first
            while let u = unit {
                let attempts = await deliver(u, &state)
                // The report (a durable commit) goes on while the connection carries the next unit.
                Task(executorPreference: executor) { await u.tracker.unitDone(attempts) }
                if let dead = state.unreachable {
                    for w in await runner.dispatcher.takeAll(destination) {
                        await w.tracker.unitDone(w.all(.temporary, dead))
                    }
                    break
                }
                unit = await runner.dispatcher.next(destination, linger: state.connection == nil ? .zero : runner.settings.connectionCacheTime)
            }
            state.connection?.quit()
        }
        await runner.dispatcher.workerEnded(destination, runner: runner)
    }

    /// Fails `unit` and every unit waiting for the destination with one reply.
    func failRest(_ unit: DeliveryUnit, _ status: RecipientResult.Status, _ reply: SMTPReply) async {
        await unit.tracker.unitDone(unit.all(status, reply))
        for w in await runner.dispatcher.takeAll(destination) {
            await w.tracker.unitDone(w.all(status, reply))
        }
    }

    struct State {
        let targets: [RouteTarget]
        var index = 0
        var connection: SMTPClientConnection?
        /// Set when every target failed: the reply the rest of the destination is deferred with.
        var unreachable: SMTPReply?
        init(targets: [RouteTarget]) { self.targets = targets }
    }

    func deliver(_ unit: DeliveryUnit, _ state: inout State) async -> [RecipientAttempt] {
        let settings = runner.settings
        do { try await unit.body.prepare() } catch {
            runner.logger.warning("\(unit.job.message): \(error)")
            return unit.all(.temporary, .bodyUnavailable)
        }
        let envelope = await Self.envelope(unit)
        let (policy, implicitTLS) = settings.clientPolicy(for: destination)

        // A kept connection first; if the server dropped it meanwhile, a fresh one.
        if let c = state.connection {
            state.connection = nil
            if await c.isReusable, let done = await c.deliver(envelope, config: settings.clientConfig(for: destination, policy: policy, implicitTLS: implicitTLS), body: unit.body),
               !done.outcome.tryNextHost, !Self.lostBeforeAnswer(done.outcome) {
                if await c.isReusable { state.connection = c } else { c.close() }
                return Self.attempts(unit, done, c.target)
            }
            c.close()
        }

        var tlsPolicy = policy
        var last: (ConnectionDelivery, RouteTarget)?
        var lastError = SMTPReply.noAnswer
        while state.index < state.targets.count {
            let target = state.targets[state.index]
            let connection: SMTPClientConnection
            do {
                connection = try await SMTPClientConnection.connect(to: target, group: executor.loop, timeout: .seconds(Int64(settings.connectTimeout)),
                                                                    tls: runner.tls, logger: runner.logger)
            } catch {
                runner.logger.info("connect to \(target): \(error)")
                lastError = SMTPReply(451, "4.4.1", "connect to \(target): \(error)")
                state.index += 1
                tlsPolicy = policy
                continue
            }
            let config = settings.clientConfig(for: destination, policy: tlsPolicy, implicitTLS: implicitTLS)
            guard let done = await connection.deliver(envelope, config: config, body: unit.body) else {
                connection.close()
                state.index += 1
                continue
            }
            if done.outcome.tryNextHost {
                connection.close()
                if done.outcome.retryWithoutTLS && tlsPolicy == .opportunistic {
                    // RFC 7435 §4: opportunistic security falls back to cleartext.
                    runner.logger.info("\(target): TLS failed, trying again without STARTTLS")
                    tlsPolicy = .disabled
                    continue
                }
                runner.logger.info("\(target): \(DeliveryReport.replyText(done.outcome.results.first?.reply ?? .noAnswer)); trying the next host")
                last = (done, target)
                state.index += 1
                tlsPolicy = policy
                continue
            }
            if await connection.isReusable { state.connection = connection } else { connection.close() }
            return Self.attempts(unit, done, target)
        }
        if let (done, target) = last {
            state.unreachable = done.outcome.results.first?.reply ?? lastError
            return Self.attempts(unit, done, target)
        }
        state.unreachable = lastError
        return unit.all(.temporary, lastError)
    }

    /// The connection broke before any reply to this message: the server closed a kept
    /// connection; worth a fresh one rather than a deferral.
    static func lostBeforeAnswer(_ outcome: SMTPClientOutcome) -> Bool {
        outcome.results.allSatisfy { !$0.remote && $0.reply == .connectionLost }
    }

    static func attempts(_ unit: DeliveryUnit, _ done: ConnectionDelivery, _ target: RouteTarget) -> [RecipientAttempt] {
        zip(unit.recipients, done.outcome.results).map {
            RecipientAttempt(recipient: $0, result: $1, target: target, serverSpeaksDSN: done.serverSpeaksDSN)
        }
    }

    /// The envelope of a unit: its recipients with their RFC 3461 parameters.
    static func envelope(_ unit: DeliveryUnit) async -> OutboundEnvelope {
        let job = unit.job
        let sender = job.sender.isEmpty ? nil : OutboundRunner.path(job.sender)
        let recipients = unit.recipients.map {
            OutboundRecipient(OutboundRunner.path($0.address), notify: $0.dsn.notify.map(DSNNotify.init(rawValue:)),
                              originalRecipient: DeliveryReport.originalRecipient($0.dsn.orcpt))
        }
        // RFC 6531 §3.2: a non-ASCII address, or UTF-8 in the header section (RFC 6532),
        // needs SMTPUTF8 all the way.
        let utf8Headers = await unit.body.utf8Headers
        let utf8 = utf8Headers || ([job.sender] + unit.recipients.map(\.address)).contains { $0.utf8.contains { $0 >= 0x80 } }
        let ret: DSNReturn? = job.envelope.ret == "HDRS" ? .headers : job.envelope.ret == "FULL" ? .full : nil
        return OutboundEnvelope(sender: sender, recipients: recipients, size: await unit.body.size(sevenBit: false),
                                bodyType: await unit.body.eightBit ? .eightBitMIME : .sevenBit, requiresSMTPUTF8: utf8,
                                downgradable: true, ret: ret, envelopeID: job.envelope.envid.isEmpty ? nil : job.envelope.envid)
    }
}

/// A wake-up signal that is never lost: a signal with nobody waiting is kept for the next wait.
final class Wakeup: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    func signal() {
        lock.lock()
        if let w = waiter {
            waiter = nil
            lock.unlock()
            w.resume()
        } else {
            pending = true
            lock.unlock()
        }
    }

    /// Returns on a signal or after `timeout`.
    func wait(timeout: Duration) async {
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: timeout) } catch { return }
            self?.signal()
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock {
                if pending { pending = false; return true }
                waiter = c
                return false
            }
            if now { c.resume() }
        }
        timer.cancel()
    }
}
