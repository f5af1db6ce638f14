// The master's control socket (DESIGN §6): root-only (mode 0600 and SO_PEERCRED uid 0, or the
// master's own uid in development mode). Speaks the RPC framing: status, reload, and attach,
// which hands the very socket to the store as an admin (or, for tests, any-role) connection.
import Foundation
import MailIPC
import CMailShims

extension Master {
    func acceptControl(_ listenFD: Int32) {
        while true {
            let fd = mail_accept_cloexec(listenFD)
            if fd < 0 { if errno == EINTR || errno == ECONNABORTED { continue }; return }
            var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
            guard mail_peer_cred(fd, &pid, &uid, &gid) == 0, uid == 0 || uid == geteuid() else {
                logger.warning("control: refused connection from uid \(uid) pid \(pid)")
                close(fd); continue
            }
            let t = Thread { [self] in serveControl(fd, peerPID: pid) }
            t.start()
        }
    }

    func serveControl(_ fd: Int32, peerPID: pid_t) {
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let c = BlockingRPCConnection(fd: dup(fd), maxFrame: 64 * 1024)
        defer { close(fd) }
        var greeted = false
        while true {
            guard let (id, m) = try? c.receive() else { return }
            if !greeted {
                guard let h = m as? Hello, h.major == ProtocolVersion.major else {
                    try? c.send(ErrorReply(.invalid, "expected hello, protocol \(ProtocolVersion.major)"), id: id); return
                }
                greeted = true
                try? c.send(HelloOK(role: "control"), id: id)
                continue
            }
            switch m {
            case is Status:
                try? c.send(StatusResult(statusSnapshot()), id: id)
            case is Reload:
                kill(getpid(), SIGHUP)
                try? c.send(OK(), id: id)
            case let a as Attach:
                let role = a.role
                lock.lock()
                let up = storeControl >= 0
                lock.unlock()
                guard up else { try? c.send(ErrorReply(.temporary, "the store is not running"), id: id); continue }
                try? c.send(OK(), id: id)
                // From here on the client talks to the store; we pass the socket and forget it.
                lock.lock()
                let name = Array(role.rawValue.utf8)
                let sent = storeControl >= 0 && mail_send_fd(storeControl, fd, name, name.count) == 0
                lock.unlock()
                if !sent { logger.error("control: could not pass connection to the store") }
                else { logger.info("control: attached pid \(peerPID) to the store as \(role.rawValue)") }
                return
            default:
                try? c.send(ErrorReply(.invalid, "not a control request: \(m.type)"), id: id)
            }
        }
    }
}
