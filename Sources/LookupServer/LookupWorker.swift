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
        let (contract, config, logger) = SpawnedProcess.start("lookupd")
        WorkerStart.dropPrivileges(config: config, logger: logger)
        let l = config.lookup
        let settings = LookupSettings(limits: LookupLimits(l), idleTimeout: .seconds(Int64(l.idleTimeout)))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = WorkerServer(group: group, logger: logger, maxConnections: l.service.maxConnections, grace: 1,
                                  maxUnsentBytes: l.service.maxUnsentBytes)
        // request_timeout is the store client's deadline: no answer in time, Postfix gets a temporary failure.
        server.run(process: "lookupd", listeners: contract.listeners, refusal: [], storeTimeout: l.requestTimeout) { rpc, name in
            guard let kind = LookupListenerKind(listenerName: name) else { logger.critical("unknown listener \(name)"); exit(ExitStatus.config) }
            return { [LookupHandler(kind: kind, settings: settings, rpc: rpc, logger: logger)] }
        }
    }
}
