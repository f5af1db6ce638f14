// The lmtpd worker process (RFC 2033): adopt the inherited listeners and store connection,
// drop privileges, serve sessions on NIO. Exits 75 when the store connection is lost (the
// master restarts it once the store is back), 0 after a graceful SIGTERM.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailPrivsep
import MailWorker
import SMTPProtocol

public enum LMTPWorker {
    public static func run() -> Never {
        // Phase one (root): the contract and the configuration; then the drop.
        let (contract, config, logger) = SpawnedProcess.start("lmtpd")
        WorkerStart.dropPrivileges(config: config, logger: logger)

        let l = config.lmtp
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var session = SMTPSessionConfig(dialect: .lmtp, hostname: config.hostname, limits: SMTPLimits(l),
                                        bareLinefeed: BareLinefeedPolicy(l.bareLinefeed), serviceName: "Postern LMTP")
        session.overQuotaReply = .mailboxFull(temporary: config.quota.fullTempfail)
        let settings = SessionSettings(
            config: session,
            commandTimeout: .seconds(Int64(l.commandTimeout)), dataTimeout: .seconds(Int64(l.dataTimeout)),
            maxSessionTime: .seconds(Int64(l.maxSessionTime)),
            spam: SpamHook(config.spam, group: group, scans: config.spam.scanLMTP))
        let server = WorkerServer(group: group, logger: logger, maxConnections: l.service.maxConnections, grace: config.master.shutdownGrace,
                                  maxUnsentBytes: l.service.maxUnsentBytes)
        server.run(process: "lmtpd", listeners: contract.listeners, refusal: SMTPReply.tooManyConnections.encoded(),
                   unavailable: SMTPReply.storeUnavailable.encoded(), storeTimeout: config.store.answerTimeout) { rpc, _ in
            { [SMTPSessionHandler(settings: settings, services: RPCSMTPServices(rpc), logger: logger)] }
        }
    }
}
