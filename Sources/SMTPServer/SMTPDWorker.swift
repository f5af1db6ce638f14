// The smtpd worker process (RFC 5321, RFC 6409, RFC 8314): listeners by role — mta (local
// recipients only, never a relay), submission (STARTTLS then AUTH), smtps (implicit TLS,
// AUTH). TLS keys are read in phase one as root; handshakes run after the privilege drop.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailPrivsep
import MailWorker
import MailTLS
import SMTPProtocol
import SpamFilter

public enum SMTPDWorker {
    public static func run() -> Never {
        let (contract, config, logger) = SpawnedProcess.start("smtpd")
        // Phase one (root): the keys.
        let tls: TLSServerContext
        var tlsConfig = TLSSetup.configuration(config.tls)
        if let hex = ProcessInfo.processInfo.environment[FDContract.envTicketKeys], hex.count == 160 {
            tlsConfig.sessionTicketKeys = stride(from: 0, to: 160, by: 2).compactMap { i in
                UInt8(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 2)], radix: 16)
            }
        }
        do { tls = try TLSServerContext(configuration: tlsConfig) } catch {
            logger.critical("TLS: \(error)"); exit(ExitStatus.config)
        }
        // The rspamd controller's password file may be root's alone.
        let spamPassword = SpamLearnerSetup.password(config.spam, logger: logger)
        // Phase two.
        WorkerStart.dropPrivileges(config: config, logger: logger)

        let s = config.smtp
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let spamLearn = SpamLearnHook(addresses: SpamLearnAddresses(config.spam),
                                      learner: SpamLearnerSetup.learner(config.spam, password: spamPassword, loop: group.next(), logger: logger),
                                      maxLearnBytes: config.spam.maxSize)
        let limits = SMTPLimits(s)
        // Connections per client here; the AUTH budget is the store's, and this one only counts
        // failures for the log line (`failures=`).
        let limiter = ClientLimiter(maxConnectionsPerClient: s.maxConnectionsPerClient, maxFailures: config.auth.failuresPerClient,
                                    window: config.auth.failureWindow, ipv6Prefix: s.ipv6ClientPrefix)
        func settings(_ role: SMTPRole, _ name: String) -> SessionSettings {
            var c = SMTPSessionConfig.smtpd(role: role, hostname: config.hostname, limits: limits,
                                            bareLinefeed: BareLinefeedPolicy(s.bareLinefeed), tlsAvailable: true)
            // RFC 4954 §4 / DESIGN §5: plaintext AUTH only over TLS, or on loopback if allowed.
            c.requireTLSForAuth = true
            c.localSenderRequiresAuth = role == .mta && s.localSenderRequiresAuth
            c.overQuotaReply = .mailboxFull(temporary: config.quota.fullTempfail)
            return SessionSettings(config: c, commandTimeout: .seconds(Int64(s.commandTimeout)), dataTimeout: .seconds(Int64(s.dataTimeout)),
                                   maxSessionTime: .seconds(Int64(s.maxSessionTime)),
                                   tls: tls, implicitTLS: role == .smtps, submission: role != .mta, showAuthUser: s.receivedShowsAuthUser,
                                   limiter: limiter, listener: name, loopbackIsTrusted: s.plaintextAuthOnLoopback,
                                   stressCommandTimeout: .milliseconds(Int64(s.stressCommandTimeout * 1000)),
                                   trustedNetworks: s.trustedNetworks,
                                   spam: SpamHook(config.spam, group: group, scans: role == .mta || config.spam.scanSubmission),
                                   spamLearn: spamLearn)
        }
        let server = WorkerServer(group: group, logger: logger, maxConnections: s.service.maxConnections, grace: config.master.shutdownGrace,
                                  maxUnsentBytes: s.service.maxUnsentBytes, roleCaps: s.roleMaxConnections,
                                  stress: StressPolicy(threshold: s.stressThreshold))
        server.run(process: "smtpd", listeners: contract.listeners, refusal: SMTPReply.tooManyConnections.encoded(),
                   unavailable: SMTPReply.storeUnavailable.encoded(), storeTimeout: config.store.answerTimeout,
                   readyMetadata: ["certificates": "\(tls.certificates.map(\.servedFor).joined(separator: ","))"],
                   implicitTLS: { SMTPRole(rawValue: String($0.prefix { $0 != "@" })) == .smtps }) { rpc, name in
            guard let role = SMTPRole(rawValue: String(name.prefix { $0 != "@" })) else { logger.critical("unknown listener \(name)"); exit(ExitStatus.config) }
            let st = settings(role, name)
            return {
                let h = SMTPSessionHandler(settings: st, services: RPCSMTPServices(rpc), logger: logger)
                return role == .smtps ? [tls.makeHandler(logger: logger), h] : [h]
            }
        }
    }
}
