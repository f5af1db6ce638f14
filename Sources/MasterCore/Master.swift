// The master (DESIGN §1): binds every listener, spawns the store and the workers with
// posix_spawn and the fd contract, gives each worker a store connection whose role the store
// learns from us, supervises (backoff, crash throttle), and owns the root-only control socket.
// One thread runs the poll loop over a signalfd; control clients get a thread each.
import Foundation
import Logging
import MailCore
import MailIPC
import MailPrivsep
import CMailShims
import MailTLS
import MailWorker

/// A worker service: one line of the service table (cf. Postfix master.cf).
struct ServiceSpec {
    var name: String            // "lmtp"
    var executable: String      // "lmtpd"
    var role: Role
    var processes: Int
    var listeners: [(fd: Int32, name: String)]
}

final class ProcessSlot {
    let service: String, instance: Int
    var pid: pid_t = 0
    var startedAt = 0.0
    var restarts = 0
    var restartAt: Double? = 0           // when to (re)start; nil while running
    var policy: RestartPolicy
    var expectedExit = false             // we asked it to stop (reload)
    init(service: String, instance: Int, policy: RestartPolicy) { self.service = service; self.instance = instance; self.policy = policy }
}

public final class Master {
    var config: PosternConfig
    let binDir: String
    let logger: Logger
    let lock = NSLock()                  // guards slots and storeControl for control threads
    var services: [ServiceSpec] = []
    var slots: [ProcessSlot] = []
    let storeSlot: ProcessSlot
    var storeControl: Int32 = -1         // our end of the store's control channel
    var storeReady = false
    var stopping = false
    var stopDeadline = 0.0
    var controlFD: Int32 = -1
    var signalFD: Int32 = -1
    let startedAt = Date().timeIntervalSince1970
    var unixPaths: [String] = []
    var retiring = Set<pid_t>()          // old workers finishing their sessions after a reload
    /// TLS session ticket keys shared by every smtpd process, so a ticket issued by one is
    /// accepted by all (RFC 8446 §4.6.1). Drawn once per master run.
    let ticketKeys: String = (0..<80).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()

    static func now() -> Double { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }

    public init(config: PosternConfig, binDir: String, logger: Logger) {
        self.config = config; self.binDir = binDir; self.logger = logger
        storeSlot = ProcessSlot(service: "store", instance: 0, policy: Self.policy(config))
    }

    static func policy(_ c: PosternConfig) -> RestartPolicy {
        RestartPolicy(initialDelay: c.master.restartDelay, maxDelay: c.master.restartDelayMax,
                      throttleCount: c.master.throttleRestarts, window: c.master.throttleWindow)
    }

    // MARK: start

    public func run() throws -> Never {
        signalFD = mail_signalfd_setup()
        guard signalFD >= 0 else { throw PrivilegeError(step: "signalfd", errno: errno) }
        signal(SIGPIPE, SIG_IGN)
        if !Privileges.isRoot {
            logger.notice("development mode: master runs as uid \(getuid()); workers and store keep this uid, privileges are not dropped")
        } else {
            for u in [config.workerUser, config.storeUser] where SystemUser.lookup(u) == nil {
                throw ConfigError(file: config.path, line: nil, key: "users", reason: "system user \(u) does not exist (create it: useradd --system --no-create-home --shell /usr/sbin/nologin \(u))")
            }
        }
        for exe in ["store"] where access(binDir + "/" + exe, X_OK) != 0 {
            throw ConfigError(file: config.path, line: nil, key: "", reason: "missing executable \(binDir)/\(exe)")
        }
        try FileManager.default.createDirectory(atPath: config.runDir, withIntermediateDirectories: true)
        chmod(config.runDir, 0o755)
        try bindAll()
        try openControlSocket()
        logger.info("master started", metadata: ["config": "\(config.path)", "pid": "\(getpid())"])
        loop()
    }

    /// The service table from the configuration (cf. Postfix master.cf): lmtpd always,
    /// lookupd when it has listeners.
    func bindAll() throws {
        func bind(_ service: String, _ s: ServiceConfig, _ addrs: [(ListenAddress, String)]) throws -> [(Int32, String)] {
            try addrs.map { a, name in
                let fd = try Listeners.bind(a, mode: s.socketMode, owner: s.socketOwner, group: s.socketGroup)
                if case .unix(let p) = a.kind { unixPaths.append(p) }
                logger.info("listening", metadata: ["service": "\(service)", "address": "\(a)", "name": "\(name)"])
                return (fd, name)
            }
        }
        let l = config.lmtp.service
        services = [ServiceSpec(name: "lmtp", executable: "lmtpd", role: .lmtpd, processes: l.processes,
                                listeners: try bind("lmtp", l, l.listen.map { ($0, "lmtp@\($0)") }))]
        let m = config.smtp
        if m.enabled {
            try prepareTLS()
            let addrs = m.mta.map { ($0, "mta@\($0)") } + m.submission.map { ($0, "submission@\($0)") } + m.smtps.map { ($0, "smtps@\($0)") }
            services.append(ServiceSpec(name: "smtp", executable: "smtpd", role: .smtpd, processes: m.service.processes,
                                        listeners: try bind("smtp", m.service, addrs)))
        }
        let k = config.lookup
        if k.enabled {
            var addrs = k.socketmap.map { ($0, "socketmap@\($0)") }
            for (map, list) in k.tcpTable.sorted(by: { $0.key < $1.key }) { addrs += list.map { ($0, "tcp_table:\(map)@\($0)") } }
            services.append(ServiceSpec(name: "lookup", executable: "lookupd", role: .lookupd, processes: k.service.processes,
                                        listeners: try bind("lookup", k.service, addrs)))
        }
        for s in services where access(binDir + "/" + s.executable, X_OK) != 0 {
            throw ConfigError(file: config.path, line: nil, key: "", reason: "missing executable \(binDir)/\(s.executable)")
        }
        slots = services.flatMap { s in (0..<s.processes).map { ProcessSlot(service: s.name, instance: $0, policy: Self.policy(config)) } }
    }

    /// DESIGN §5: with no certificate configured, the first start makes a self-signed one
    /// (SAN = hostname) next to the configuration, key 0600 root, and warns; then the
    /// configured certificates must load, or the start stops with the reason.
    func prepareTLS() throws {
        let t = config.tls
        let fm = FileManager.default
        if !fm.fileExists(atPath: t.certificate) && !fm.fileExists(atPath: t.key) {
            try fm.createDirectory(atPath: (t.certificate as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if try TLSServerContext.ensureSelfSigned(certPath: t.certificate, keyPath: t.key, hostname: config.hostname) {
                logger.warning("no TLS certificate configured: generated a self-signed one for \(config.hostname) in \(t.certificate); replace it with a real one")
            }
        }
        for c in try TLSSetup.check(t) {
            logger.info("TLS certificate", metadata: ["for": "\(c.servedFor)", "subject": "\(c.subject)", "expires": "\(c.notAfterString)"])
        }
    }

    func processCount(_ service: String, in c: PosternConfig) -> Int {
        switch service {
        case "lmtp": return c.lmtp.service.processes
        case "lookup": return c.lookup.service.processes
        case "smtp": return c.smtp.service.processes
        default: return 1
        }
    }

    func openControlSocket() throws {
        // Root-only (DESIGN §6): mode 0600, and every client's uid is checked with SO_PEERCRED.
        controlFD = try Listeners.bindUnix(config.master.controlSocket, mode: 0o600, owner: nil, group: nil, backlog: 64)
        unixPaths.append(config.master.controlSocket)
        let fd = controlFD
        let t = Thread { [self] in acceptControl(fd) }
        t.name = "control"
        t.start()
    }

    // MARK: the loop

    func loop() -> Never {
        SystemdNotify.send("STATUS=starting store")
        var notifiedReady = false
        while true {
            let now = Self.now()
            if stopping {
                if allWorkersGone() {
                    if storeSlot.pid > 0 { if now > stopDeadline + 5 { kill(storeSlot.pid, SIGKILL) } else if storeSlot.restartAt == nil { kill(storeSlot.pid, SIGTERM); storeSlot.restartAt = .infinity } }
                    else { finish() }
                } else if now > stopDeadline {
                    for s in slots where s.pid > 0 { kill(s.pid, SIGKILL) }
                    for pid in retiring { kill(pid, SIGKILL) }
                }
            } else {
                if storeSlot.pid == 0, let at = storeSlot.restartAt, now >= at { startStore() }
                if storeReady {
                    for s in slots where s.pid == 0 { if let at = s.restartAt, now >= at { startWorker(s) } }
                    if !notifiedReady && slots.allSatisfy({ $0.pid > 0 }) {
                        notifiedReady = true
                        SystemdNotify.send("READY=1\nSTATUS=running: store + \(slots.count) worker(s)")
                        logger.info("ready", metadata: ["workers": "\(slots.count)"])
                    }
                }
            }
            // Sleep until a signal or the next timer.
            var next = Self.now() + 1
            for s in slots + [storeSlot] where s.pid == 0 { if let at = s.restartAt, at.isFinite { next = min(next, at) } }
            let timeout = max(0, Int32((next - Self.now()) * 1000) + 1)
            var pfd = pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, stopping ? 100 : timeout)
            while true {
                let sig = mail_signalfd_read(signalFD)
                if sig <= 0 { break }
                handleSignal(sig)
            }
        }
    }

    func handleSignal(_ sig: Int32) {
        switch sig {
        case SIGCHLD: reap()
        case SIGTERM, SIGINT: beginStop()
        case SIGHUP: reload()
        default: break
        }
    }

    func allWorkersGone() -> Bool { slots.allSatisfy { $0.pid == 0 } && retiring.isEmpty }

    /// Replaces a running worker: its successor starts at once, the old one gets SIGTERM and
    /// finishes its open sessions (no gap in service, no dropped connection).
    func retire(_ s: ProcessSlot, replace: Bool) {
        guard s.pid > 0 else { return }
        retiring.insert(s.pid)
        kill(s.pid, SIGTERM)
        s.pid = 0
        s.restartAt = replace ? Self.now() : nil
    }

    func beginStop() {
        guard !stopping else { return }
        stopping = true
        stopDeadline = Self.now() + config.master.shutdownGrace
        SystemdNotify.send("STOPPING=1\nSTATUS=stopping")
        logger.info("stopping: waiting up to \(config.master.shutdownGrace)s for sessions to finish")
        for s in slots where s.pid > 0 { kill(s.pid, SIGTERM) }
        for pid in retiring { kill(pid, SIGTERM) }
    }

    func finish() -> Never {
        for p in unixPaths { unlink(p) }
        logger.info("master stopped")
        exit(0)
    }

    func reload() {
        SystemdNotify.send("RELOADING=1\nSTATUS=reloading")
        do {
            let new = try PosternConfig.load(path: config.path)
            // Workers load certificates when they start: check them first, so a bad new
            // certificate keeps the running workers (and their old certificate) in place.
            if new.smtp.enabled { _ = try TLSSetup.check(new.tls) }
            if new.lmtp.service.listen != config.lmtp.service.listen || new.lookup.socketmap != config.lookup.socketmap
                || new.smtp.mta != config.smtp.mta || new.smtp.submission != config.smtp.submission || new.smtp.smtps != config.smtp.smtps
                || new.lookup.tcpTable != config.lookup.tcpTable || new.master.controlSocket != config.master.controlSocket
                || new.dataDir != config.dataDir || new.runDir != config.runDir {
                logger.warning("reload: listener, control socket and directory changes take effect at the next restart")
            }
            lock.lock()
            var kept = new
            kept.lmtp.service.listen = config.lmtp.service.listen
            kept.lookup.socketmap = config.lookup.socketmap; kept.lookup.tcpTable = config.lookup.tcpTable
            kept.smtp.mta = config.smtp.mta; kept.smtp.submission = config.smtp.submission; kept.smtp.smtps = config.smtp.smtps
            kept.master.controlSocket = config.master.controlSocket
            kept.dataDir = config.dataDir; kept.runDir = config.runDir
            config = kept
            // Resize the service table to the new process counts.
            for i in services.indices { services[i].processes = processCount(services[i].name, in: new) }
            var keptSlots: [ProcessSlot] = []
            for s in services {
                for i in 0..<s.processes {
                    keptSlots.append(slots.first { $0.service == s.name && $0.instance == i } ?? ProcessSlot(service: s.name, instance: i, policy: Self.policy(new)))
                }
            }
            for s in slots where !keptSlots.contains(where: { $0 === s }) { retire(s, replace: false) }
            slots = keptSlots
            lock.unlock()
            // Workers re-read the configuration when they start: replace them gracefully. The store stays.
            lock.lock()
            for s in slots { retire(s, replace: true) }
            lock.unlock()
            logger.info("configuration reloaded", metadata: ["config": "\(config.path)"])
        } catch {
            logger.error("reload refused, keeping the running configuration: \(error)")
        }
        SystemdNotify.send("READY=1\nSTATUS=running")
    }

    // MARK: processes

    func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            let now = Self.now()
            let exited = (status & 0x7f) == 0, code = (status >> 8) & 0xff, sig = status & 0x7f
            let how = exited ? "exit status \(code)" : "signal \(sig)"
            lock.lock()
            if pid == storeSlot.pid {
                storeSlot.pid = 0; storeReady = false
                if storeControl >= 0 { close(storeControl); storeControl = -1 }
                lock.unlock()
                if stopping { logger.info("store stopped (\(how))"); continue }
                let d = storeSlot.policy.crashed(now: now, lifetime: now - storeSlot.startedAt)
                storeSlot.restartAt = now + d
                logger.error("store died (\(how)); restarting in \(String(format: "%.1f", storeSlot.restartAt! - now))s\(storeSlot.policy.throttled ? " (throttled: too many crashes)" : "")")
                continue
            }
            if retiring.remove(pid) != nil {
                lock.unlock()
                logger.info("retired worker \(pid) exited (\(how))")
                continue
            }
            guard let s = slots.first(where: { $0.pid == pid }) else { lock.unlock(); continue }
            s.pid = 0
            lock.unlock()
            if stopping { logger.info("\(s.service)[\(s.instance)] stopped (\(how))"); continue }
            // 75 (EX_TEMPFAIL): the worker lost the store; a reload stop is expected too.
            if s.expectedExit || (exited && code == 75) || (exited && code == 0) {
                s.expectedExit = false; s.policy.reset(); s.restartAt = now
                logger.info("\(s.service)[\(s.instance)] exited (\(how)); restarting")
            } else {
                let d = s.policy.crashed(now: now, lifetime: now - s.startedAt)
                s.restartAt = now + d
                logger.error("\(s.service)[\(s.instance)] died (\(how)); restarting in \(String(format: "%.1f", d))s\(s.policy.throttled ? " (throttled: too many crashes)" : "")")
            }
        }
    }

    func baseEnv(service: String, instance: Int) -> [String: String] {
        var env: [String: String] = [
            FDContract.envConfig: config.path, FDContract.envService: service, FDContract.envInstance: String(instance),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        for k in ["POSTERN_LOG_TIME", "LANG", "TZ"] { if let v = ProcessInfo.processInfo.environment[k] { env[k] = v } }
        return env
    }

    func startStore() {
        var pair: [Int32] = [-1, -1]
        guard mail_socketpair(&pair) == 0 else { logger.error("socketpair: \(String(cString: strerror(errno)))"); storeSlot.restartAt = Self.now() + 1; return }
        do {
            let pid = try Spawner.spawn(path: binDir + "/store", args: [], env: baseEnv(service: "store", instance: 0), fds: [FDContract.controlFD: pair[1]])
            close(pair[1])
            if storeSlot.startedAt > 0 { storeSlot.restarts += 1 }
            storeSlot.pid = pid; storeSlot.startedAt = Self.now(); storeSlot.restartAt = nil
            // Wait for the ready byte (migrations + orphan sweep), at most 60 s.
            var p = pollfd(fd: pair[0], events: Int16(POLLIN), revents: 0)
            var byte: UInt8 = 0
            if poll(&p, 1, 60_000) == 1, read(pair[0], &byte, 1) == 1, byte == FDContract.storeReadyByte {
                lock.lock(); storeControl = pair[0]; storeReady = true; lock.unlock()
                logger.info("store running", metadata: ["pid": "\(pid)"])
                SystemdNotify.send("STATUS=store running")
            } else {
                logger.error("store did not become ready; killing it")
                close(pair[0]); kill(pid, SIGKILL)
            }
        } catch {
            close(pair[0]); close(pair[1])
            logger.error("\(error)")
            storeSlot.restartAt = Self.now() + storeSlot.policy.crashed(now: Self.now(), lifetime: 0)
        }
    }

    /// Makes a connection to the store with `role`: one end goes to the store over the control
    /// channel (so the store learns the role from us), the other is returned.
    func storeConnection(role: Role) -> Int32? {
        var pair: [Int32] = [-1, -1]
        guard mail_socketpair(&pair) == 0 else { return nil }
        lock.lock(); defer { lock.unlock() }
        let name = Array(role.rawValue.utf8)
        guard storeControl >= 0, mail_send_fd(storeControl, pair[1], name, name.count) == 0 else {
            close(pair[0]); close(pair[1]); return nil
        }
        close(pair[1])
        return pair[0]
    }

    func startWorker(_ s: ProcessSlot) {
        guard let spec = services.first(where: { $0.name == s.service }) else { return }
        guard let conn = storeConnection(role: spec.role) else { logger.error("no store connection for \(s.service)"); s.restartAt = Self.now() + 1; return }
        defer { close(conn) }
        var fds: [Int32: Int32] = [FDContract.storeFD: conn]
        for (i, l) in spec.listeners.enumerated() { fds[FDContract.firstListenFD + Int32(i)] = l.fd }
        var env = baseEnv(service: s.service, instance: s.instance)
        if spec.role == .smtpd { env[FDContract.envTicketKeys] = ticketKeys }
        env[FDContract.envListenFDs] = String(spec.listeners.count)
        env[FDContract.envListenNames] = spec.listeners.map { FDContract.encodeName($0.name) }.joined(separator: ":")
        do {
            let pid = try Spawner.spawn(path: binDir + "/" + spec.executable, args: [], env: env, fds: fds)
            lock.lock()
            if s.startedAt > 0 { s.restarts += 1 }
            s.pid = pid; s.startedAt = Self.now(); s.restartAt = nil
            lock.unlock()
            logger.info("started \(s.service)[\(s.instance)]", metadata: ["pid": "\(pid)"])
        } catch {
            logger.error("\(error)")
            s.restartAt = Self.now() + s.policy.crashed(now: Self.now(), lifetime: 0)
        }
    }

    func statusSnapshot() -> [ProcessStatus] {
        lock.lock(); defer { lock.unlock() }
        let wall = Date().timeIntervalSince1970, mono = Self.now()
        func st(_ s: ProcessSlot) -> ProcessStatus {
            let state: ProcessState = s.pid > 0 ? .running : (s.policy.throttled ? .throttled : .restarting)
            return ProcessStatus(service: s.service, instance: UInt32(s.instance), pid: Int64(s.pid),
                                 startedAt: s.pid > 0 ? Int64(wall - (mono - s.startedAt)) : 0, restarts: UInt32(s.restarts), state: state)
        }
        return [ProcessStatus(service: "master", instance: 0, pid: Int64(getpid()), startedAt: Int64(startedAt), restarts: 0, state: stopping ? .stopping : .running),
                st(storeSlot)] + slots.map(st)
    }
}
