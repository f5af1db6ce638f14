// The outbound agent process (DESIGN §1, §4): no listener, one store connection with role
// outbound. Phase one as root reads what only root may (DKIM keys, the relay password, the CA
// file for TLS verification); then the privilege drop; then the resolver, the event loops and
// the queue runner. SIGTERM stops claiming and lets deliveries finish within the grace time;
// whatever is cut short stays leased in the queue and is sent again after the lease.
import Foundation
import DKIM
import Logging
import MailCore
import MailDNS
import MailIPC
import MailPrivsep
import MailWorker
import NIOCore
import NIOPosix

/// The store's unsolicited events (request id 0), for the queue implementation to watch with;
/// set before the first event can matter (the runner watches right after start).
public final class RPCEventTap: @unchecked Sendable {
    private let lock = NSLock()
    private var handler: (@Sendable (any RPCMessage) -> Void)?
    public init() {}
    public func set(_ h: @escaping @Sendable (any RPCMessage) -> Void) { lock.lock(); handler = h; lock.unlock() }
    public func route(_ m: any RPCMessage) { lock.lock(); let h = handler; lock.unlock(); h?(m) }
}

public enum OutboundWorker {
    /// `makeQueue`: the OutboundQueue over the store connection (RPCOutboundQueue).
    public static func run(makeQueue: @escaping (RPCClient, RPCEventTap) -> (any OutboundQueue)?) -> Never {
        let (_, config, logger) = SpawnedProcess.start("outbound")
        let o = config.outbound
        // Phase one (root): secrets and trust anchors.
        var password: String?
        if !o.relayPasswordFile.isEmpty {
            guard let text = try? String(contentsOfFile: o.relayPasswordFile, encoding: .utf8) else {
                logger.critical("cannot read relay_password_file \(o.relayPasswordFile)"); exit(ExitStatus.config)
            }
            password = text.trimmingCharacters(in: .newlines)
        }
        let tls: TLSClientContexts
        do { tls = try TLSClientContexts(caFile: o.caFile) } catch {
            logger.critical("TLS client: \(error)"); exit(ExitStatus.config)
        }
        let dkim = o.dkim ? DKIMKeys.load(DKIMKeyDirectory(configFile: config.path), selector: o.dkimSelector, logger: logger) : DKIMKeys([:])
        // Phase two: no thread exists yet, so the drop covers the whole process.
        WorkerStart.dropPrivileges(config: config, logger: logger)

        let resolver: UnboundResolver
        do { resolver = try UnboundResolver(forwarder: o.resolver.isEmpty ? nil : o.resolver) } catch {
            logger.critical("resolver: \(error)"); exit(ExitStatus.config)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let tap = RPCEventTap()
        let rpc: RPCClient
        do {
            let timeout: TimeAmount? = config.store.answerTimeout > 0 ? .nanoseconds(Int64(config.store.answerTimeout * 1e9)) : nil
            rpc = try RPCClient.connect(fd: FDContract.storeFD, group: group, client: "outbound[\(getpid())]", timeout: timeout,
                                        onEvent: { tap.route($0) },
                                        onClose: { logger.error("store connection lost"); exit(ExitStatus.tempFail.rawValue) }).wait()
        } catch {
            logger.critical("cannot start: \(error)"); exit(ExitStatus.tempFail)
        }
        let settings = OutboundSettings(config, relayPassword: password)
        let router = Router(resolver: resolver, relayhost: o.relayhost, smtpPort: o.smtpPort,
                            localNames: [config.hostname.lowercased(), settings.heloName.lowercased()])
        let dkimDomains = dkim.keys.keys.sorted().joined(separator: ",")
        let route = o.relayhost.map { "relayhost \($0)" } ?? "MX"
        if let queue = makeQueue(rpc, tap) {
            let runner = OutboundRunner(queue: queue, settings: settings, router: router, tls: tls, dkim: dkim, group: group, logger: logger)
            let runTask = Task(executorPreference: EventLoopTaskExecutor(rpc.channel.eventLoop)) { await runner.run() }
            stopOnSIGTERM(grace: config.master.shutdownGrace, logger: logger) {
                runTask.cancel()
                await runner.drained()
            }
        } else {
            logger.error("no queue implementation over the store connection: nothing will be sent")
            stopOnSIGTERM(grace: 0, logger: logger) {}
        }
        logger.info("outbound ready", metadata: ["uid": "\(getuid())", "route": "\(route)", "dkim": "\(dkimDomains)"])
        dispatchMain()
    }

    /// SIGTERM: `finish` (stop claiming, wait for open deliveries) for at most `grace` seconds, then exit 0.
    static func stopOnSIGTERM(grace: Double, logger: Logger, finish: @escaping @Sendable () async -> Void) {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler {
            logger.notice("SIGTERM: no new claims, finishing open deliveries (up to \(grace)s)")
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { logger.info("exiting"); exit(0) }
            Task { await finish(); logger.info("exiting"); exit(0) }
        }
        source.resume()
        signalSources.append(source)
    }

    nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []
}
