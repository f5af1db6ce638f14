// Receiving MTAs on loopback for the runner's tests: Postfix's smtp-sink (a real MTA's
// receiving side, dumping each transaction with -d) and, where smtp-sink cannot do it, a tiny
// Python SMTP server: per-recipient replies (smtp-sink rejects a command for every recipient
// alike), STARTTLS with a self-signed certificate (smtp-sink has no TLS), and a server that
// never answers. Both run as subprocesses killed at deinit.
import Foundation
import MailTesting
import XCTest

/// A free TCP port on 127.0.0.1 (bound and released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    a.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw FixtureError("no free port") }
    return Int(UInt16(bigEndian: a.sin_port))
}

/// Waits until something accepts on 127.0.0.1:port.
func waitForListener(_ port: Int, _ process: Process, timeout: Double = 10) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        close(fd)
        if ok { return }
        guard process.isRunning else { throw FixtureError("receiver exited with \(process.terminationStatus)") }
        usleep(50_000)
    }
    throw FixtureError("nothing listens on \(port)")
}

/// Kills a receiver. Not `waitUntilExit`: it never returns when called from a task of an async
/// test (it runs the calling thread's run loop).
func stopProcess(_ process: Process) {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)     // Foundation reaps it
}

/// A receiver subprocess and the directory it dumps messages into.
final class Receiver {
    let port: Int
    let dir = TempDir()
    let process = Process()

    /// Postfix's smtp-sink dumping every transaction into its own file (`-d`); `options` more
    /// flags, e.g. ["-r", "RCPT"] for 4xx to every RCPT, ["-8"] for no 8BITMIME.
    static func smtpSink(_ options: [String] = []) throws -> Receiver {
        let r = try Receiver()
        let user = getuid() == 0 ? ["-u", "nobody"] : []
        if getuid() == 0 { chown(r.dir.path, 65534, 65534) }
        try r.start("/usr/sbin/smtp-sink", ["-c"] + user + ["-d", r.dir.path + "/msg."] + options + ["127.0.0.1:\(r.port)", "100"])
        return r
    }

    /// The Python server below: `mode` "normal" or "silent" (accepts, never answers); `tls`
    /// offers STARTTLS with this certificate and key.
    static func python(mode: String = "normal", tls: (cert: String, key: String)? = nil, extensions: [String] = ["PIPELINING", "8BITMIME", "DSN"]) throws -> Receiver {
        let r = try Receiver()
        let script = r.dir.file("server.py")
        try writeFile(script, pythonServer)
        try r.start("/usr/bin/python3", [script, "\(r.port)", r.dir.path, mode, tls?.cert ?? "", tls?.key ?? "", extensions.joined(separator: ",")])
        return r
    }

    private init() throws { port = try freePort() }

    private func start(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try waitForListener(port, process)
    }

    deinit { stopProcess(process) }

    /// The messages received so far: smtp-sink's dump files, or the Python server's `*.eml`
    /// (then `envelope` is its JSON sidecar: mail, rcpts, tls, conn: the connection's number).
    func messages() -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix("msg.") && !$0.hasSuffix(".json") }
        return names.sorted().compactMap { try? String(contentsOfFile: dir.file($0), encoding: .utf8) }
    }

    func envelopes() -> [[String: Any]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".json") }
        return names.sorted().compactMap { n in
            (try? Data(contentsOf: URL(fileURLWithPath: dir.file(n)))).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
    }

    /// The raw message files of the Python server.
    func rawMessages() -> [Data] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".eml") }
        return names.sorted().compactMap { try? Data(contentsOf: URL(fileURLWithPath: dir.file($0))) }
    }
}

/// Replies per recipient by local part: "reject…" 550 5.1.1, "defer…" 451 4.2.0, else 250.
let pythonServer = #"""
import socket, ssl, sys, threading, json, os, time
port, outdir, mode, cert, key, exts = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
extensions = [e for e in exts.split(",") if e]
counter = [0]
lock = threading.Lock()

def serve(conn, cid):
    f = conn.makefile("rb")
    def send(line):
        conn.sendall((line + "\r\n").encode())
    if mode == "silent":
        time.sleep(60); return
    send("220 test ESMTP")
    tls, mail, rcpts = False, None, []
    while True:
        line = f.readline()
        if not line: return
        cmd = line.decode("utf-8", "replace").rstrip("\r\n")
        verb = cmd.split(" ")[0].upper()
        if verb in ("EHLO", "HELO"):
            offered = list(extensions) + (["STARTTLS"] if cert and not tls else [])
            lines = ["test"] + offered
            for i, l in enumerate(lines):
                send(("250 " if i == len(lines) - 1 else "250-") + l)
        elif verb == "STARTTLS" and cert and not tls:
            send("220 2.0.0 go ahead")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            conn = ctx.wrap_socket(conn, server_side=True)
            f = conn.makefile("rb")
            tls = True
        elif verb == "MAIL":
            mail, rcpts = cmd, []
            send("250 2.1.0 ok")
        elif verb == "RCPT":
            addr = cmd.split("<", 1)[1].split(">", 1)[0]
            local = addr.split("@")[0]
            if local.startswith("reject"):
                send("550 5.1.1 <%s>: no such user" % addr)
            elif local.startswith("defer"):
                send("451 4.2.0 <%s>: try later" % addr)
            else:
                rcpts.append(cmd); send("250 2.1.5 ok")
        elif verb == "DATA":
            if not rcpts:
                send("554 5.5.1 no valid recipients"); continue
            send("354 go")
            parts = []
            while True:
                l = f.readline()
                if not l or l == b".\r\n": break
                parts.append(l[1:] if l.startswith(b"..") else l)
            data = b"".join(parts)
            with lock:
                counter[0] += 1; n = counter[0]
            open(os.path.join(outdir, "m%04d.eml" % n), "wb").write(data)
            json.dump({"mail": mail, "rcpts": rcpts, "tls": tls, "conn": cid}, open(os.path.join(outdir, "m%04d.json" % n), "w"))
            send("250 2.0.0 queued as %d" % n)
        elif verb == "RSET":
            mail, rcpts = None, []; send("250 2.0.0 ok")
        elif verb == "QUIT":
            send("221 2.0.0 bye"); conn.close(); return
        else:
            send("502 5.5.2 unknown")

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(50)
cid = 0
while True:
    c, _ = s.accept()
    cid += 1
    threading.Thread(target=serve, args=(c, cid), daemon=True).start()
"""#
