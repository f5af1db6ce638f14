// The store process (DESIGN §1, §3): phase one as root prepares the data dir for the store
// user; phase two drops privileges, opens the database, sweeps orphans, then adopts the RPC
// connections the master passes over the control channel (fd 3) with their roles.
import Foundation
import NIOCore
import NIOPosix
import Logging
import MailCore
import MailIPC
import MailPrivsep
import MailStore
import CMailShims

public enum StoreMain {
    public static func run() -> Never {
        let (_, config, logger) = SpawnedProcess.start("store")

        // Phase one (root): the data dir belongs to the store user, mode 0700 (DESIGN §1).
        guard let user = Privileges.targetUser(configured: config.storeUser) else {
            logger.critical("no such system user: \(config.storeUser)"); exit(ExitStatus.noUser)
        }
        do { try prepareDataDir(config.dataDir, owner: user) } catch {
            logger.critical("cannot prepare data dir \(config.dataDir): \(error)"); exit(ExitStatus.cantCreate)
        }
        do { try Privileges.drop(to: user, logger: logger) } catch {
            logger.critical("privilege drop failed: \(error)"); exit(ExitStatus.noPerm)
        }
        ControlPipe.followMaster()
        umask(0o077)

        let store: SQLiteMailStore
        do {
            store = try SQLiteMailStore(dataDir: config.dataDir, fsync: config.store.fsync, groupCommitMax: config.store.groupCommitMax,
                                        inlineMax: config.store.inlineMax, authCacheTTL: config.auth.cacheTTL,
                                        searchIndex: config.store.searchIndex)
            // SRS (postsrsd's job): the key is made by the store user on first start (0600).
            let srsKey = try SRSKey.loadOrCreate(path: config.dataDir + "/" + SRSKey.fileName)
            if srsKey.created { logger.notice("made a new SRS key", metadata: ["file": "\(config.dataDir)/\(SRSKey.fileName)"]) }
            store.configureSRS(.store(key: srsKey.key, domain: config.srsDomain))
            let swept = try store.sweep()
            Thread.detachNewThread {   // bodies stored before v10-header-fields, beside the service
                do {
                    let kept = try store.fillHeaderFields()
                    if kept > 0 { logger.notice("kept the listed header fields of stored messages", metadata: ["messages": "\(kept)"]) }
                } catch { logger.error("keeping the listed header fields failed: \(error)") }
            }
            let unindexed = try store.searchIndexCounts().pending
            if unindexed > 0 { logger.notice("messages not in the search index (SEARCH scans them): postern reindex --all", metadata: ["messages": "\(unindexed)"]) }
            logger.info("store ready", metadata: ["data": "\(config.dataDir)", "swept_messages": "\(swept.rows)", "swept_blobs": "\(swept.blobs)", "fsync": "\(config.store.fsync)", "srs_domain": "\(config.srsDomain)"])
        } catch {
            logger.critical("cannot open store: \(error)"); exit(ExitStatus.ioErr)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(2, System.coreCount))
        let pool = NIOThreadPool(numberOfThreads: max(4, System.coreCount * 2))
        pool.start()
        let service = StoreService(store: store, group: group, pool: pool,
                                   maxDelivery: max(config.lmtp.maxMessageSize, config.smtp.maxMessageSize) + (1 << 20),
                                   maxFrame: config.store.maxFrame,
                                   authBudget: AuthBudget(maxFailures: config.auth.failuresPerClient, window: config.auth.failureWindow),
                                   logger: logger)

        signal(SIGPIPE, SIG_IGN)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        signal(SIGTERM, SIG_IGN)
        term.setEventHandler { logger.info("SIGTERM: store stopping"); exit(ExitStatus.ok) }
        term.resume()

        var ready = FDContract.storeReadyByte
        _ = write(FDContract.controlFD, &ready, 1)
        // The control channel: each message is a role name with one connected socket attached.
        var buf = [UInt8](repeating: 0, count: 256)
        while true {
            var fd: Int32 = -1
            let n = buf.withUnsafeMutableBytes { mail_recv_fd(FDContract.controlFD, &fd, $0.baseAddress, 256) }
            if n <= 0 {
                logger.info("control channel closed: master is gone, store exiting")
                exit(ExitStatus.ok)
            }
            let name = String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard fd >= 0, let role = Role(rawValue: name) else {
                if fd >= 0 { close(fd) }
                logger.error("bad control message \(name.debugDescription)")
                continue
            }
            service.adopt(fd: fd, role: role)
        }
    }

    static func prepareDataDir(_ dir: String, owner: SystemUser) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        guard Privileges.isRoot else { chmod(dir, 0o700); return }
        var st = stat()
        if stat(dir, &st) == 0 && (st.st_uid != owner.uid || st.st_gid != owner.gid) {
            // First start, or a dir made by someone else: hand the whole tree to the store user.
            let e = FileManager.default.enumerator(atPath: dir)
            while let rel = e?.nextObject() as? String { lchown(dir + "/" + rel, owner.uid, owner.gid) }
        }
        chown(dir, owner.uid, owner.gid)
        chmod(dir, 0o700)
    }
}
