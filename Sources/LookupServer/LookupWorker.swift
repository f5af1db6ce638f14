// The lookupd worker process: Postfix tcp_table and socketmap lookups against the store,
// read-only, with role lookupd (no mailbox access). Same start as every worker: phase one
// as root, the privilege drop, then inherited listeners on NIO.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailIPC
import MailPrivsep
import MailWorker
import LookupProtocol

public enum LookupWorker {
    public static func run() -> Never {
        guard let contract = FDContract.inherited() else {
            FileHandle.standardError.write("lookupd: must be started by the postern master\n".data(using: .utf8)!); exit(2)
        }
        let config: PosternConfig
        do { config = try PosternConfig.load(path: contract.configPath) } catch {
            FileHandle.standardError.write("lookupd: \(error)\n".data(using: .utf8)!); exit(78)
        }
        PosternLog.bootstrap(process: "lookupd", level: config.logLevel)
        let logger = Logger(label: "lookupd")
        let user = WorkerStart.dropPrivileges(config: config, logger: logger)
        _ = user
        let l = config.lookup
        let settings = LookupSettings(limits: LookupLimits(maxKeyLength: l.maxKeyLength, maxRequestLength: l.maxRequestLength),
                                      requestTimeout: .milliseconds(Int64(l.requestTimeout * 1000)), idleTimeout: .seconds(Int64(l.idleTimeout)))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = WorkerServer(group: group, logger: logger, maxConnections: l.service.maxConnections, grace: 1)
        do {
            let rpc = try RPCClient.connect(fd: FDContract.storeFD, group: group, client: "lookupd[\(getpid())]",
                                            onClose: { server.storeLost() }).wait()
            for (fd, raw) in contract.listeners {
                let name = FDContract.decodeName(raw)
                guard let kind = LookupListenerKind(listenerName: name) else { logger.critical("unknown listener \(name)"); exit(78) }
                try server.listen(fd: fd, name: name, refusal: []) { [LookupHandler(kind: kind, settings: settings, rpc: rpc, logger: logger)] }
            }
        } catch {
            logger.critical("cannot start: \(error)"); exit(75)
        }
        logger.info("lookupd ready", metadata: ["listeners": "\(contract.listeners.count)", "uid": "\(getuid())"])
        server.waitForever()
    }
}
