// The pop3d worker process (RFC 1939, RFC 2449, RFC 2595, RFC 5034; RFC 8314 for pop3s):
// listeners by role — pop3 (110, STLS) and pop3s (995, implicit TLS). TLS keys are read in phase
// one as root; handshakes and every client byte come after the privilege drop.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailIPC
import MailPrivsep
import MailWorker
import MailTLS

public enum POP3DWorker {
    public static func run() -> Never {
        let (contract, config, logger) = SpawnedProcess.start("pop3d")
        // Phase one (root): the keys, and the ticket secret the master shares with every TLS worker.
        var tlsConfig = TLSSetup.configuration(config.tls)
        tlsConfig.sessionTicketKeys = ProcessInfo.processInfo.environment[FDContract.envTicketKeys].flatMap(TLSSetup.ticketKeys)
        let tls: TLSServerContext
        do { tls = try TLSServerContext(configuration: tlsConfig) } catch {
            logger.critical("TLS: \(error)"); exit(ExitStatus.config)
        }
        // Phase two.
        WorkerStart.dropPrivileges(config: config, logger: logger)

        let c = config.pop3
        let limiter = ClientLimiter(maxConnectionsPerClient: c.maxConnectionsPerClient, maxFailures: config.auth.failuresPerClient,
                                    window: config.auth.failureWindow, ipv6Prefix: c.ipv6ClientPrefix)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server = WorkerServer(group: group, logger: logger, maxConnections: c.service.maxConnections, grace: config.master.shutdownGrace,
                                  maxUnsentBytes: c.service.maxUnsentBytes)
        server.run(process: "pop3d", listeners: contract.listeners, refusal: POP3GlueReply.tooManyConnections,
                   unavailable: POP3GlueReply.unavailable, storeTimeout: config.store.answerTimeout,
                   readyMetadata: ["certificates": "\(tls.certificates.map(\.servedFor).joined(separator: ","))"],
                   implicitTLS: { role(of: $0) == .pop3s }) { rpc, name in
            guard let role = role(of: name) else { logger.critical("unknown listener \(name)"); exit(ExitStatus.config) }
            let settings = POP3ConnectionSettings(session: POP3SessionConfig(c, hostname: config.hostname, role: role), timers: POP3Timers(c),
                                                  tls: tls, implicitTLS: role == .pop3s, limiter: limiter, listener: name)
            // One per connection: its store session (and maildrop lock) is its login's (DESIGN §2).
            let services: () -> any POP3Services = { RPCPOP3Services(rpc: rpc) }
            return {
                let h = POP3SessionHandler(settings: settings, makeServices: services, logger: logger)
                return role == .pop3s ? [tls.makeHandler(logger: logger), h] : [h]
            }
        }
    }

    /// The role of a listener by its name in the fd contract ("pop3s@[::]:995").
    static func role(of listener: String) -> POP3ListenerRole? {
        POP3ListenerRole(rawValue: String(listener.prefix { $0 != "@" }))
    }
}
