// The lmtpd worker process (RFC 2033): adopt the inherited listeners and store connection,
// drop privileges, serve sessions on NIO. Exits 75 when the store connection is lost (the
// master restarts it once the store is back), 0 after a graceful SIGTERM.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailIPC
import MailPrivsep
import MailWorker
import SMTPProtocol

public enum LMTPWorker {
    public static func run() -> Never {
        guard let contract = FDContract.inherited() else {
            FileHandle.standardError.write("lmtpd: must be started by the postern master\n".data(using: .utf8)!); exit(2)
        }
        // Phase one (root): read the configuration, look up our user.
        let config: PosternConfig
        do { config = try PosternConfig.load(path: contract.configPath) } catch {
            FileHandle.standardError.write("lmtpd: \(error)\n".data(using: .utf8)!); exit(78)
        }
        PosternLog.bootstrap(process: "lmtpd", level: config.logLevel)
        let logger = Logger(label: "lmtpd")
        _ = WorkerStart.dropPrivileges(config: config, logger: logger)

        let l = config.lmtp
        var limits = SMTPLimits()
        limits.maxMessageSize = l.maxMessageSize
        limits.maxRecipients = l.maxRecipients
        limits.maxTextLine = l.maxLineLength
        limits.maxErrors = l.maxErrors
        let settings = SessionSettings(
            config: SMTPSessionConfig(dialect: .lmtp, hostname: config.hostname, limits: limits,
                                      bareLinefeed: l.bareLinefeed == "normalize" ? .normalize : .reject,
                                      serviceName: "Postern LMTP"),
            commandTimeout: .seconds(Int64(l.commandTimeout)), dataTimeout: .seconds(Int64(l.dataTimeout)))

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server = WorkerServer(group: group, logger: logger, maxConnections: l.service.maxConnections, grace: config.master.shutdownGrace)
        do {
            let rpc = try RPCClient.connect(fd: FDContract.storeFD, group: group, client: "lmtpd[\(getpid())]",
                                            onClose: { server.storeLost() }).wait()
            for (fd, name) in contract.listeners {
                try server.listen(fd: fd, name: FDContract.decodeName(name), refusal: SMTPReply.tooManyConnections.encoded()) { [SMTPSessionHandler(settings: settings, rpc: rpc, logger: logger)] }
            }
        } catch {
            logger.critical("cannot start: \(error)"); exit(75)
        }
        logger.info("lmtpd ready", metadata: ["listeners": "\(contract.listeners.count)", "uid": "\(getuid())"])
        server.waitForever()
    }
}
