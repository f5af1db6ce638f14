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
import MailModel

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
        // Phase two.
        WorkerStart.dropPrivileges(config: config, logger: logger)

        let c = config.imap
        let limiter = ClientLimiter(maxConnectionsPerClient: c.maxConnectionsPerClient, maxFailures: config.auth.failuresPerClient,
                                    window: config.auth.failureWindow, ipv6Prefix: c.ipv6ClientPrefix)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server = WorkerServer(group: group, logger: logger, maxConnections: c.service.maxConnections, grace: config.master.shutdownGrace,
                                  maxUnsentBytes: c.service.maxUnsentBytes)
        server.run(process: "imapd", listeners: contract.listeners, refusal: IMAPGlueReply.tooManyConnections,
                   unavailable: IMAPGlueReply.unavailable, storeTimeout: config.store.answerTimeout,
                   readyMetadata: ["certificates": "\(tls.certificates.map(\.servedFor).joined(separator: ","))"],
                   implicitTLS: { role(of: $0) == .imaps }) { rpc, name in
            guard let role = role(of: name) else { logger.critical("unknown listener \(name)"); exit(ExitStatus.config) }
            let settings = IMAPConnectionSettings(session: IMAPSessionConfig(c, hostname: config.hostname, role: role), timers: IMAPTimers(c),
                                                  tls: tls, implicitTLS: role == .imaps, limiter: limiter, listener: name)
            // UNTIL imap-rpc IS MERGED: `{ RPCIMAPServices(rpc: rpc, events: server.events, service: "imap") }`.
            let services: () -> any IMAPServices = { StoreNotConnected() }
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

/// PLACEHOLDER until RPCIMAPServices (branch imap-rpc) is merged: every login is a temporary
/// failure and every mailbox call fails with `.temporary` ([UNAVAILABLE]). Not a mock: it is
/// what imapd can honestly say while it has no store client for IMAP.
final class StoreNotConnected: IMAPServices, @unchecked Sendable {
    private static let error = IMAPServiceError(.temporary, "the IMAP store client is not built yet")
    func authenticate(user: String, password: String, client: String) async -> IMAPAuthOutcome { .tempFail }
    func close() {}
    func mailboxes() async throws -> [MailboxSummary] { throw Self.error }
    func subscriptions() async throws -> [String] { throw Self.error }
    func setSubscribed(_ name: String, _ subscribed: Bool) async throws { throw Self.error }
    func createMailbox(_ name: String, specialUse: String) async throws { throw Self.error }
    func deleteMailbox(_ name: String) async throws { throw Self.error }
    func renameMailbox(from: String, to: String) async throws { throw Self.error }
    func status(_ name: String) async throws -> MailboxStatus? { throw Self.error }
    func select(_ name: String) async throws -> MailboxView { throw Self.error }
    func watch(mailbox: Int64, onChange: @escaping @Sendable (UInt64) -> Void) async throws -> any IMAPWatch { throw Self.error }
    func delta(mailbox: Int64, since: UInt64, limit: Int) async throws -> MailboxDelta { throw Self.error }
    func details(mailbox: Int64, uids: [UInt32]) async throws -> [MessageDetails] { throw Self.error }
    func read(mailbox: Int64, uid: UInt32, offset: Int, length: Int) async throws -> [UInt8] { throw Self.error }
    func storeFlags(mailbox: Int64, uids: [UInt32], operation: FlagOperation, flags: SystemFlags,
                    keywords: [String], unchangedSince: UInt64?) async throws -> FlagUpdate { throw Self.error }
    func copy(mailbox: Int64, uids: [UInt32], to: String, move: Bool) async throws -> CopyResult { throw Self.error }
    func expunge(mailbox: Int64, uids: [UInt32]?) async throws -> [UInt32] { throw Self.error }
    func append(to: String, flags: SystemFlags, keywords: [String], internalDate: Int64?, body: [UInt8]) async throws -> AppendResult { throw Self.error }
    func search(mailbox: Int64, query: SearchQuery) async throws -> [UInt32] { throw Self.error }
}
