// The master (DESIGN §1): binds every listener of the service table, spawns the store and the
// workers with posix_spawn and the fd contract, gives each worker a store connection whose role
// the store learns from us, and owns the root-only control socket. Children are signalled through
// their control pipes (ControlPipes), so no CAP_KILL is needed. What to do and when is the
// Supervisor's (a value); this class only makes the syscalls: one thread polls a signalfd and
// the store's control channel, and carries out the supervisor's actions. Control clients get a
// thread each.
import Foundation
import Logging
import MailCore
import MailIPC
import MailPrivsep
import CMailShims
import MailTLS
import MailWorker

public final class Master {
    var config: PosternConfig
    let binDir: String
    let logger: Logger
    let lock = NSLock()                  // guards supervisor and storeControl for control threads
    var supervisor: Supervisor
    var listenerFDs: [String: Int32] = [:]   // listener key → bound socket, for the master's lifetime
    var storeControl: Int32 = -1         // our end of the store's control channel, once it is ready
    var storePending: Int32 = -1         // our end while we wait for the ready byte (in the poll set)
    var controlFD: Int32 = -1
    var signalFD: Int32 = -1
    var controlPipes = ControlPipes()    // loop thread only: spawn, .kill, reap
    let startedAt = Date().timeIntervalSince1970
    var unixPaths: [String] = []

    /// Bytes of TLS session ticket secret (hex-encoded into POSTERN_TLS_TICKET_KEYS).
    static let ticketKeyBytes = 80
    /// The secret every process of a TLS service derives the same rotating ticket keys from
    /// ([tls] ticket_key_lifetime), so a ticket issued by one is accepted by all (RFC 8446
    /// §4.6.1) and no key is used longer than its lifetime. Drawn once per master run.
    let ticketKeys: String = (0..<Master.ticketKeyBytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    /// The loop wakes at least this often (seconds), even with no timer due.
    static let maxPollWait = 1.0
    static let millisecondsPerSecond = 1000.0
    /// listen(2) backlog of the control socket (a handful of admin clients at most).
    static let controlBacklog: Int32 = 64
    /// The environment a child gets besides the fd contract: a fixed PATH, and these passed through.
    static let childPath = "/usr/sbin:/usr/bin:/sbin:/bin"
    /// JOURNAL_STREAM: children share our stderr, so under journald they log with priorities too.
    static let passedEnvironment = ["POSTERN_LOG_TIME", LogFormat.envJournalStream, "LANG", "TZ"]

    static func now() -> Double { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }

    public init(config: PosternConfig, binDir: String, logger: Logger) {
        self.config = config; self.binDir = binDir; self.logger = logger
        supervisor = Supervisor(specs: [], settings: Self.settings(config))
    }

    static func settings(_ c: PosternConfig) -> Supervisor.Settings {
        Supervisor.Settings(policy: RestartPolicy(initialDelay: c.master.restartDelay, maxDelay: c.master.restartDelayMax,
                                                  throttleCount: c.master.throttleRestarts, window: c.master.throttleWindow),
                            shutdownGrace: c.master.shutdownGrace)
    }

    // MARK: start

    public func run() throws -> Never {
        signalFD = mail_signalfd_setup()
        guard signalFD >= 0 else { throw PrivilegeError(step: "signalfd", errno: errno) }
        signal(SIGPIPE, SIG_IGN)
        FileLimit.raise(config, logger: logger)
        if !Privileges.isRoot {
            logger.notice("development mode: master runs as uid \(getuid()); workers and store keep this uid, privileges are not dropped")
        } else {
            for u in [config.workerUser, config.storeUser] where SystemUser.lookup(u) == nil {
                throw ConfigError(file: config.path, line: nil, key: "users", reason: "system user \(u) does not exist (create it: useradd --system --no-create-home --shell /usr/sbin/nologin \(u))")
            }
        }
        for exe in [ServiceTable.storeExecutable] where access(binDir + "/" + exe, X_OK) != 0 {
            throw ConfigError(file: config.path, line: nil, key: "", reason: "missing executable \(binDir)/\(exe)")
        }
        try FileManager.default.createDirectory(atPath: config.runDir, withIntermediateDirectories: true)
        chmod(config.runDir, 0o755)
        try bindAll()
        try openControlSocket()
        logger.info("master started", metadata: ["config": "\(config.path)", "pid": "\(getpid())"])
        loop()
    }

    /// Builds the service table from the configuration, then gives each listener key one
    /// socket: the one systemd passed for its address (SocketActivation), else one bound here.
    func bindAll() throws {
        let specs = ServiceTable.specs(from: config)
        if specs.contains(where: \.tls) { try prepareTLS() }
        let passed = try adoptPassedSockets(specs.flatMap(\.listeners))
        for s in specs {
            // lmtpd's socket without socket_group: the worker user's group (LMTPConfig).
            let group = s.socketGroup ?? (s.role == .lmtpd && Privileges.isRoot ? config.workerUser : nil)
            for l in s.listeners {
                if let fd = passed[l.key] {
                    // The socket unit owns the node of a unix socket: never unlinked by us.
                    logger.info("listening (socket activation)", metadata: ["service": "\(s.name)", "address": "\(l.address)", "name": "\(l.key)"])
                    listenerFDs[l.key] = fd
                    continue
                }
                let fd = try Listeners.bind(l.address, mode: s.socketMode, owner: s.socketOwner, group: group)
                if case .unix(let p) = l.address.kind { unixPaths.append(p) }
                logger.info("listening", metadata: ["service": "\(s.name)", "address": "\(l.address)", "name": "\(l.key)"])
                listenerFDs[l.key] = fd
            }
        }
        for s in specs where access(binDir + "/" + s.executable, X_OK) != 0 {
            throw ConfigError(file: config.path, line: nil, key: "", reason: "missing executable \(binDir)/\(s.executable)")
        }
        supervisor = Supervisor(specs: specs, settings: Self.settings(config))
    }

    /// The sockets systemd passed (LISTEN_FDS), by listener key; the ones no listener wants are
    /// logged and closed. A LISTEN_* environment meant for us but unreadable stops the start.
    func adoptPassedSockets(_ listeners: [ListenerSpec]) throws -> [String: Int32] {
        switch SocketActivation.adopt() {
        case .none: return [:]
        case .invalid(let reason):
            throw ConfigError(file: config.path, line: nil, key: "", reason: "socket activation: \(reason)")
        case .passed(let sockets):
            let plan = SocketActivation.match(sockets, listeners: listeners)
            for r in plan.refused {
                logger.warning("socket activation: passed socket closed", metadata: ["fd": "\(r.fd)", "fdname": "\(r.name)", "reason": "\(r.reason)"])
                close(r.fd)
            }
            return plan.adopted
        }
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

    func openControlSocket() throws {
        // Root-only (DESIGN §6): mode 0600, and every client's uid is checked with SO_PEERCRED.
        controlFD = try Listeners.bindUnix(config.master.controlSocket, mode: 0o600, owner: nil, group: nil, backlog: Self.controlBacklog)
        unixPaths.append(config.master.controlSocket)
        let fd = controlFD
        let t = Thread { [self] in acceptControl(fd) }
        t.name = "control"
        t.start()
    }

    // MARK: the loop

    /// Polls the signalfd and, while the store is starting, its control channel; everything
    /// else is a timer the supervisor asks for. Nothing in here blocks.
    func loop() -> Never {
        SystemdNotify.send("STATUS=starting store")
        apply(.tick)
        while true {
            let now = Self.now()
            lock.lock(); let wake = supervisor.nextWake; lock.unlock()
            let wait = max(0, min(wake ?? .infinity, now + Self.maxPollWait) - now)
            let timeout = Int32((wait * Self.millisecondsPerSecond).rounded(.up))
            var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            let pending = storePending
            if pending >= 0 { fds.append(pollfd(fd: pending, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), timeout)
            while true {
                let sig = mail_signalfd_read(signalFD)
                if sig <= 0 { break }
                handleSignal(sig)
            }
            if pending >= 0, fds[1].revents != 0, pending == storePending { readStoreReady() }
            apply(.tick)
        }
    }

    func handleSignal(_ sig: Int32) {
        switch sig {
        case SIGCHLD: reap()
        case SIGTERM, SIGINT: apply(.terminate)
        case SIGHUP: reload()
        default: break
        }
    }

    /// The store writes one byte when its migrations and orphan sweep are done.
    func readStoreReady() {
        var byte: UInt8 = 0
        let n = recv(storePending, &byte, 1, Int32(MSG_DONTWAIT))   // never blocks the loop
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
        if n == 1 && byte == FDContract.storeReadyByte {
            lock.lock(); storeControl = storePending; storePending = -1; lock.unlock()
            apply(.storeReady)
        } else {
            apply(.storeFailed(n == 0 ? "control channel closed" : n < 0 ? String(cString: strerror(errno)) : "unexpected byte \(byte)"))
        }
    }

    /// Hands `event` to the supervisor and carries out its actions in order; a spawn's result
    /// goes back to it at once, and what that yields runs before the next action.
    func apply(_ event: Supervisor.Event) {
        lock.lock()
        var queue = supervisor.handle(event, now: Self.now())
        lock.unlock()
        var i = 0
        while i < queue.count {
            let result = perform(queue[i])
            i += 1
            if let result {
                lock.lock()
                let more = supervisor.handle(result, now: Self.now())
                lock.unlock()
                queue.insert(contentsOf: more, at: i)
            }
        }
    }

    func perform(_ action: Supervisor.Action) -> Supervisor.Event? {
        switch action {
        case .spawnStore: return startStore()
        case .spawnWorker(let service, let instance): return startWorker(service: service, instance: instance)
        case .kill(let pid, let sig): signalChild(pid, sig)
        case .closeStoreChannel:
            lock.lock()
            for fd in [storeControl, storePending] where fd >= 0 { close(fd) }
            storeControl = -1; storePending = -1
            lock.unlock()
        case .notify(let text): SystemdNotify.send(text)
        case .log(let level, let message): logger.log(level: level, "\(message)")
        case .exit(let status): finish(status)
        }
        return nil
    }

    func finish(_ status: ExitStatus) -> Never {
        for p in unixPaths { unlink(p) }
        logger.info("master stopped")
        exit(status)
    }

    /// SIGHUP: reload the configuration; the service table is reconciled (listeners keep their
    /// sockets by key; new or removed ones wait for the next restart) and the workers replaced.
    func reload() {
        SystemdNotify.send("RELOADING=1\nSTATUS=reloading")
        do {
            let new = try PosternConfig.load(path: config.path)
            let newSpecs = ServiceTable.specs(from: new)
            // Workers load certificates when they start: check them first, so a bad new
            // certificate keeps the running workers (and their old certificate) in place.
            if newSpecs.contains(where: \.tls) { _ = try TLSSetup.check(new.tls) }
            lock.lock(); let running = supervisor.specs; lock.unlock()
            var (table, deferred) = ServiceTable.reconcile(running: running, new: newSpecs)
            var kept = new
            if new.master.controlSocket != config.master.controlSocket { deferred.append("control socket changed"); kept.master.controlSocket = config.master.controlSocket }
            if new.dataDir != config.dataDir { deferred.append("data_dir changed"); kept.dataDir = config.dataDir }
            if new.runDir != config.runDir { deferred.append("run_dir changed"); kept.runDir = config.runDir }
            if !deferred.isEmpty {
                logger.warning("reload: \(deferred.joined(separator: "; ")): listener, control socket and directory changes take effect at the next restart")
            }
            config = kept
            apply(.reload(table, Self.settings(kept)))
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
            controlPipes.remove(pid)
            apply(.childExited(pid, WaitStatus(raw: status)))
        }
    }

    func baseEnv(service: String, instance: Int) -> [String: String] {
        var env: [String: String] = [
            FDContract.envConfig: config.path, FDContract.envService: service, FDContract.envInstance: String(instance),
            "PATH": Self.childPath,
        ]
        for k in Self.passedEnvironment { if let v = ProcessInfo.processInfo.environment[k] { env[k] = v } }
        return env
    }

    /// Spawns the store with its control channel on fd 3; our end joins the poll set until the
    /// ready byte arrives.
    func startStore() -> Supervisor.Event {
        var pair: [Int32] = [-1, -1]
        guard mail_socketpair(&pair) == 0 else { return .spawnDeferred(.store, "socketpair: \(String(cString: strerror(errno)))") }
        do {
            let pid = try spawnChild(path: binDir + "/" + ServiceTable.storeExecutable, env: baseEnv(service: ServiceTable.storeExecutable, instance: 0),
                                     fds: [FDContract.controlFD: pair[1]])
            close(pair[1])
            lock.lock(); storePending = pair[0]; lock.unlock()
            return .spawned(.store, pid)
        } catch {
            close(pair[0]); close(pair[1])
            return .spawnFailed(.store, "\(error)")
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

    func startWorker(service: String, instance: Int) -> Supervisor.Event {
        let id = Supervisor.SlotID.worker(service: service, instance: instance)
        lock.lock(); let found = supervisor.spec(named: service); lock.unlock()
        guard let spec = found else { return .spawnFailed(id, "no service \(service) in the table") }
        guard let conn = storeConnection(role: spec.role) else { return .spawnDeferred(id, "no store connection for \(service)") }
        defer { close(conn) }
        let (env, fds) = workerContract(spec, instance: instance, storeConnection: conn)
        do {
            return .spawned(id, try spawnChild(path: binDir + "/" + spec.executable, env: env, fds: fds))
        } catch {
            return .spawnFailed(id, "\(error)")
        }
    }

    /// The fd contract for one worker of `spec` (FDContract): its store connection on fd 3, the
    /// sockets bound for its listener keys from fd 4 on, named in the environment; the TLS
    /// ticket keys if the service serves TLS.
    func workerContract(_ spec: ServiceSpec, instance: Int, storeConnection: Int32) -> (env: [String: String], fds: [Int32: Int32]) {
        let listeners = spec.listeners.compactMap { l in listenerFDs[l.key].map { (key: l.key, fd: $0) } }
        var fds: [Int32: Int32] = [FDContract.storeFD: storeConnection]
        for (i, l) in listeners.enumerated() { fds[FDContract.firstListenFD + Int32(i)] = l.fd }
        var env = baseEnv(service: spec.name, instance: instance)
        if spec.tls { env[FDContract.envTicketKeys] = ticketKeys }
        env[FDContract.envListenFDs] = String(listeners.count)
        env[FDContract.envListenNames] = listeners.map { FDContract.encodeName($0.key) }.joined(separator: ":")
        return (env, fds)
    }

    /// Spawns `path` with the contract `fds` plus a new control pipe on the next number
    /// (FDContract.controlPipeFD, named in POSTERN_CONTROL_FD); keeps the pipe's write end
    /// until the child is reaped.
    func spawnChild(path: String, env: [String: String], fds: [Int32: Int32]) throws -> pid_t {
        guard let pipe = ControlPipes.make() else { throw PrivilegeError(step: "control pipe for \(path)", errno: errno) }
        defer { close(pipe.read) }
        let target = FDContract.controlPipeFD(listeners: Int(env[FDContract.envListenFDs] ?? "") ?? 0)
        var env = env, fds = fds
        env[FDContract.envControlPipe] = String(target)
        fds[target] = pipe.read
        do {
            let pid = try Spawner.spawn(path: path, args: [], env: env, fds: fds)
            controlPipes.adopt(pipe.write, for: pid)
            return pid
        } catch {
            close(pipe.write)
            throw error
        }
    }

    /// The supervisor's `.kill`: one byte down the child's control pipe. kill(2), which needs
    /// CAP_KILL across uids, only for a child without a pipe or whose pipe is full (wedged).
    func signalChild(_ pid: pid_t, _ sig: Int32) {
        switch controlPipes.send(sig, to: pid) {
        case .written, .gone: return      // gone: it has exited and its reap is on the way
        case .noPipe: break
        case .full, .failed:
            logger.warning("control pipe of pid \(pid) not writable; trying kill(2)", metadata: ["signal": "\(sig)"])
        }
        if kill(pid, sig) != 0 && errno != ESRCH {
            logger.warning("kill(\(pid), \(sig)) failed: \(String(cString: strerror(errno)))")
        }
    }

    func statusSnapshot() -> [ProcessStatus] {
        lock.lock(); let sup = supervisor; lock.unlock()
        let wall = Date().timeIntervalSince1970, mono = Self.now()
        func st(_ s: Supervisor.Slot) -> ProcessStatus {
            ProcessStatus(service: s.id.service, instance: UInt32(s.id.instance), pid: Int64(s.pid),
                          startedAt: s.pid > 0 ? Int64(wall - (mono - s.startedAt)) : 0, restarts: UInt32(s.restarts), state: s.state)
        }
        return [ProcessStatus(service: "master", instance: 0, pid: Int64(getpid()), startedAt: Int64(startedAt), restarts: 0,
                              state: sup.stopping ? .stopping : .running),
                st(sup.store)] + sup.slots.map(st)
    }
}
