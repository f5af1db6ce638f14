// The imapd worker process (RFC 9051, RFC 3501; RFC 8314 for imaps): listeners by role — imap
// (143, STARTTLS) and imaps (993, implicit TLS). TLS keys are read in phase one as root;
// handshakes and every client byte come after the privilege drop.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailIPC
import MailPrivsep
import MailWorker
import MailTLS
import SpamFilter

public enum IMAPDWorker {
    public static func run() -> Never {
        let (contract, config, logger) = SpawnedProcess.start("imapd")
        // Phase one (root): the keys, and the ticket secret the master shares with every TLS worker.
        var tlsConfig = TLSSetup.configuration(config.tls)
        tlsConfig.sessionTicketKeys = ProcessInfo.processInfo.environment[FDContract.envTicketKeys].flatMap(ticketKeys)
        let tls: TLSServerContext
        do { tls = try TLSServerContext(configuration: tlsConfig) } catch {
            logger.critical("TLS: \(error)"); exit(ExitStatus.config)
        }
        // The rspamd controller's password file may be root's alone.
        let spamPassword = SpamLearnerSetup.password(config.spam, logger: logger)
        // Phase two.
        WorkerStart.dropPrivileges(config: config, logger: logger)

        let c = config.imap
        let limiter = ClientLimiter(maxConnectionsPerClient: c.maxConnectionsPerClient, maxFailures: config.auth.failuresPerClient,
                                    window: config.auth.failureWindow, ipv6Prefix: c.ipv6ClientPrefix)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server = WorkerServer(group: group, logger: logger, maxConnections: c.service.maxConnections, grace: config.master.shutdownGrace,
                                  maxUnsentBytes: c.service.maxUnsentBytes)
        let spamLearning = SpamLearnerSetup.learner(config.spam, password: spamPassword, loop: group.next(), logger: logger)
            .map { IMAPSpamLearning(learner: $0, junkFolder: config.spam.junkFolder, maxLearnBytes: config.spam.maxSize, logger: logger) }
        let memo = ViewMemo()   // one per process: its connections share the views of recent SELECTs
        server.run(process: "imapd", listeners: contract.listeners, refusal: IMAPGlueReply.tooManyConnections,
                   unavailable: IMAPGlueReply.unavailable, storeTimeout: config.store.answerTimeout,
                   readyMetadata: ["certificates": "\(tls.certificates.map(\.servedFor).joined(separator: ","))"],
                   implicitTLS: { role(of: $0) == .imaps }) { rpc, name in
            guard let role = role(of: name) else { logger.critical("unknown listener \(name)"); exit(ExitStatus.config) }
            var sessionConfig = IMAPSessionConfig(c, hostname: config.hostname, role: role)
            sessionConfig.spamLearning = spamLearning
            let settings = IMAPConnectionSettings(session: sessionConfig, timers: IMAPTimers(c),
                                                  tls: tls, implicitTLS: role == .imaps, limiter: limiter, listener: name)
            // One per connection: its store session is its login's (DESIGN §2).
            let services: () -> any IMAPServices = { RPCIMAPServices(rpc: rpc, events: server.events, service: "imap", memo: memo) }
            return {
                let h = IMAPSessionHandler(settings: settings, makeServices: services, logger: logger)
                return role == .imaps ? [tls.makeHandler(logger: logger), h] : [h]
            }
        }
    }

    /// The role of a listener by its name in the fd contract ("imaps@[::]:993").
    static func role(of listener: String) -> IMAPListenerRole? {
        IMAPListenerRole(rawValue: String(listener.prefix { $0 != "@" }))
    }

    /// POSTERN_TLS_TICKET_KEYS: the master's secret as hex (Master.ticketKeyBytes bytes); nil if malformed.
    static func ticketKeys(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 160 else { return nil }
        let bytes = (0..<80).compactMap { i in UInt8(String(decoding: digits[2 * i...2 * i + 1], as: UTF8.self), radix: 16) }
        return bytes.count == 80 ? bytes : nil
    }
}
