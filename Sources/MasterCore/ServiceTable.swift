// The master's service table (cf. Postfix master.cf, Dovecot service { }): one ServiceSpec per
// worker service, built from the configuration by one pure function (no sockets), and the
// reload rule that keeps listeners by key. Binding keys to fds is the Master's separate step.
import MailCore
import MailIPC

/// One listening address of a service, under a stable key: "mta@127.0.0.1:2525". The key is
/// also the listener's name in the fd contract (POSTERN_LISTEN_FDNAMES) and matches a listener
/// across reloads.
public struct ListenerSpec: Sendable, Equatable {
    public var key: String
    public var address: ListenAddress
    public init(key: String, address: ListenAddress) { self.key = key; self.address = address }
}

/// A worker service: one line of the service table.
public struct ServiceSpec: Sendable, Equatable {
    public var name: String             // "lmtp"
    public var executable: String       // "lmtpd", in the master's directory
    public var role: Role               // the store connection's role, set by the master
    public var user: String             // the user the worker drops to
    public var processes: Int
    public var listeners: [ListenerSpec] // may be empty (an outbound agent has none)
    public var socketMode: UInt16        // for unix listeners
    public var socketOwner: String?
    public var socketGroup: String?
    public var tls: Bool                 // serves TLS: gets the shared session ticket keys
    public var grace: Double             // seconds the worker gets to finish its sessions

    public init(name: String, executable: String, role: Role, user: String, processes: Int, listeners: [ListenerSpec],
                socketMode: UInt16 = 0o666, socketOwner: String? = nil, socketGroup: String? = nil, tls: Bool = false, grace: Double) {
        self.name = name; self.executable = executable; self.role = role; self.user = user; self.processes = processes
        self.listeners = listeners; self.socketMode = socketMode; self.socketOwner = socketOwner; self.socketGroup = socketGroup
        self.tls = tls; self.grace = grace
    }
}

public enum ServiceTable {
    /// The store's executable; it is no table line (it is spawned first and stopped last).
    public static let storeExecutable = "store"
    /// The master's own executable.
    public static let masterExecutable = "master"
    /// Every worker executable a table can name, enabled or not (checked against the Makefile's
    /// install list and Package.swift by a test).
    public static let workerExecutables = ["lmtpd", "smtpd", "imapd", "pop3d", "lookupd", "outbound"]
    /// lookupd's own drain time (LookupWorker): its requests are single lines answered at once.
    public static let lookupGrace = 1.0

    /// The table from the configuration: lmtp always; smtp, imap, pop3 and lookup when they have
    /// listeners; outbound when enabled. Pure: nothing is bound or opened.
    public static func specs(from c: PosternConfig) -> [ServiceSpec] {
        func spec(_ name: String, _ exe: String, _ role: Role, _ s: ServiceConfig, _ listeners: [ListenerSpec],
                  tls: Bool = false, grace: Double) -> ServiceSpec {
            ServiceSpec(name: name, executable: exe, role: role, user: c.workerUser, processes: s.processes, listeners: listeners,
                        socketMode: s.socketMode, socketOwner: s.socketOwner, socketGroup: s.socketGroup, tls: tls, grace: grace)
        }
        func keyed(_ prefix: String, _ addrs: [ListenAddress]) -> [ListenerSpec] {
            addrs.map { ListenerSpec(key: "\(prefix)@\($0)", address: $0) }
        }
        let grace = c.master.shutdownGrace
        var table = [spec("lmtp", "lmtpd", .lmtpd, c.lmtp.service, keyed("lmtp", c.lmtp.service.listen), grace: grace)]
        let m = c.smtp
        if m.enabled {
            table.append(spec("smtp", "smtpd", .smtpd, m.service,
                              keyed("mta", m.mta) + keyed("submission", m.submission) + keyed("smtps", m.smtps), tls: true, grace: grace))
        }
        let i = c.imap
        if i.enabled {
            // Keyed "imap@127.0.0.1:143" / "imaps@[::]:993", in the order of [imap] listen; the
            // role prefix tells imapd which listeners speak TLS from the first byte. STARTTLS on
            // imap listeners makes the whole service a TLS one (ticket keys).
            table.append(spec("imap", "imapd", .imapd, i.service,
                              i.listeners.map { ListenerSpec(key: "\($0)", address: $0.address) }, tls: true, grace: grace))
        }
        let p = c.pop3
        if p.enabled {
            // Keyed "pop3@127.0.0.1:110" / "pop3s@[::]:995" as imap's: the prefix tells pop3d
            // which listeners speak TLS from the first byte; STLS makes it a TLS service.
            table.append(spec("pop3", "pop3d", .pop3d, p.service,
                              p.listeners.map { ListenerSpec(key: "\($0)", address: $0.address) }, tls: true, grace: grace))
        }
        let k = c.lookup
        if k.enabled {
            var listeners = keyed("socketmap", k.socketmap)
            for (map, list) in k.tcpTable.sorted(by: { $0.key < $1.key }) { listeners += keyed("tcp_table:\(map)", list) }
            table.append(spec("lookup", "lookupd", .lookupd, k.service, listeners, grace: lookupGrace))
        }
        if c.outbound.enabled {
            // No listener, one process (its queue leases make more safe, DESIGN §10, but one
            // process already runs `concurrency` connections). TLS as a client only: no ticket keys.
            table.append(ServiceSpec(name: "outbound", executable: "outbound", role: .outbound, user: c.workerUser, processes: 1,
                                     listeners: [], grace: grace))
        }
        return table
    }

    /// What a reload makes of the running table. Listeners are bound once, at start: a
    /// service keeps exactly the listeners it has, and a listener key added or removed (or a
    /// service added or removed) is reported to take effect at the next restart. Everything
    /// else in a running service's spec (process count, user, tls, grace) applies now.
    public static func reconcile(running: [ServiceSpec], new: [ServiceSpec]) -> (table: [ServiceSpec], deferred: [String]) {
        var deferred: [String] = []
        var table: [ServiceSpec] = []
        for old in running {
            guard var next = new.first(where: { $0.name == old.name }) else {
                deferred.append("service \(old.name) removed")
                table.append(old)
                continue
            }
            let oldKeys = old.listeners.map(\.key), newKeys = next.listeners.map(\.key)
            for k in newKeys where !oldKeys.contains(k) { deferred.append("listener \(k) added") }
            for k in oldKeys where !newKeys.contains(k) { deferred.append("listener \(k) removed") }
            if next.socketMode != old.socketMode || next.socketOwner != old.socketOwner || next.socketGroup != old.socketGroup {
                deferred.append("socket mode/owner/group of \(old.name) changed")
            }
            next.listeners = old.listeners
            next.socketMode = old.socketMode; next.socketOwner = old.socketOwner; next.socketGroup = old.socketGroup
            table.append(next)
        }
        for s in new where !running.contains(where: { $0.name == s.name }) { deferred.append("service \(s.name) added") }
        return (table, deferred)
    }
}
