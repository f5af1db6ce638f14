// Socket activation as values: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES read with sd_listen_fds(3)
// semantics, passed sockets matched to listener keys by address and name; and, on real sockets
// (socketpair/bind on loopback, no daemon), what `inspect` reads from a descriptor.
import Foundation
import XCTest
import MailCore
import MailPrivsep
@testable import MasterCore

final class SocketActivationTests: XCTestCase {
    typealias SA = SocketActivation
    static func tcp(_ host: String, _ port: Int) -> ListenAddress { ListenAddress(.tcp(host: host, port: port)) }
    static func unix(_ path: String) -> ListenAddress { ListenAddress(.unix(path: path)) }

    func testParse() {
        let me: pid_t = 4242
        let table: [([String: String], SA.Environment)] = [
            ([:], .none),
            (["LISTEN_FDS": "2"], .none),                                          // no LISTEN_PID: not for us
            (["LISTEN_PID": "17", "LISTEN_FDS": "2"], .none),                      // another process's
            (["LISTEN_PID": "4242", "LISTEN_FDS": "0"], .passed([])),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "2"],
             .passed([SA.Passed(fd: 3, name: "unknown"), SA.Passed(fd: 4, name: "unknown")])),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "smtp:imaps:postern.socket"],
             .passed([SA.Passed(fd: 3, name: "smtp"), SA.Passed(fd: 4, name: "imaps"), SA.Passed(fd: 5, name: "postern.socket")])),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": ""], .passed([SA.Passed(fd: 3, name: "")])),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "smtp"],
             .invalid("LISTEN_FDNAMES has 1 names for 2 descriptors")),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"],
             .invalid("LISTEN_FDNAMES has 2 names for 1 descriptors")),
            (["LISTEN_PID": "4242"], .invalid("LISTEN_FDS= is not a count of 0 to 1024 descriptors")),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "-1"], .invalid("LISTEN_FDS=-1 is not a count of 0 to 1024 descriptors")),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "1025"], .invalid("LISTEN_FDS=1025 is not a count of 0 to 1024 descriptors")),
            (["LISTEN_PID": "4242", "LISTEN_FDS": "x"], .invalid("LISTEN_FDS=x is not a count of 0 to 1024 descriptors")),
            (["LISTEN_PID": "0", "LISTEN_FDS": "1"], .invalid("LISTEN_PID=0 is not a process id")),
            (["LISTEN_PID": "abc", "LISTEN_FDS": "1"], .invalid("LISTEN_PID=abc is not a process id")),
        ]
        for (env, expected) in table {
            XCTAssertEqual(SA.parse(environment: env, pid: me), expected, "\(env)")
        }
    }

    func testNamesOfListenerKeys() {
        let table: [(String, String)] = [
            ("mta@0.0.0.0:25", "smtp"), ("submission@[::]:587", "submission"), ("smtps@0.0.0.0:465", "smtps"),
            ("lmtp@unix:/run/postern/lmtp", "lmtp"), ("imap@127.0.0.1:143", "imap"), ("imaps@[::]:993", "imaps"),
            ("pop3@0.0.0.0:110", "pop3"), ("pop3s@[::]:995", "pop3s"), ("socketmap@127.0.0.1:10030", "socketmap"),
            ("tcp_table:aliases@127.0.0.1:10031", "tcp_table.aliases"),
        ]
        for (key, name) in table {
            XCTAssertEqual(SA.fdName(forKey: key), name, key)
            XCTAssertTrue(SA.isRoleName(name), name)
        }
        for other in ["postern.socket", "unknown", "", "tcp_table.", "mta", "SMTP"] { XCTAssertFalse(SA.isRoleName(other), other) }
    }

    static let listeners: [ListenerSpec] = [
        ListenerSpec(key: "mta@0.0.0.0:25", address: tcp("0.0.0.0", 25)),
        ListenerSpec(key: "mta@[::]:25", address: tcp("::", 25)),
        ListenerSpec(key: "lmtp@unix:/run/postern/lmtp", address: unix("/run/postern/lmtp")),
        ListenerSpec(key: "imap@127.0.0.1:143", address: tcp("127.0.0.1", 143)),
        ListenerSpec(key: "imaps@[0:0::1]:993", address: tcp("0:0::1", 993)),
        ListenerSpec(key: "tcp_table:aliases@127.0.0.1:10031", address: tcp("127.0.0.1", 10031)),
    ]

    func testMatchByAddressAndName() {
        let passed = [
            SA.Passed(fd: 3, name: "smtp", address: Self.tcp("0.0.0.0", 25)),
            SA.Passed(fd: 4, name: "smtp", address: Self.tcp("::", 25)),
            SA.Passed(fd: 5, name: "lmtp", address: Self.unix("/run/postern/lmtp")),
            SA.Passed(fd: 6, name: "postern.socket", address: Self.tcp("127.0.0.1", 143)),   // a unit's default name: by address
            SA.Passed(fd: 7, name: "imaps", address: Self.tcp("::1", 993)),                  // "0:0::1" in the config is ::1
            SA.Passed(fd: 8, name: "tcp_table.aliases", address: Self.tcp("127.0.0.1", 10031)),
        ]
        let plan = SA.match(passed, listeners: Self.listeners)
        XCTAssertEqual(plan.refused, [])
        XCTAssertEqual(plan.adopted, ["mta@0.0.0.0:25": 3, "mta@[::]:25": 4, "lmtp@unix:/run/postern/lmtp": 5,
                                      "imap@127.0.0.1:143": 6, "imaps@[0:0::1]:993": 7, "tcp_table:aliases@127.0.0.1:10031": 8])
    }

    func testRefusals() {
        let passed = [
            SA.Passed(fd: 3, name: "smtp", address: Self.tcp("0.0.0.0", 2525)),                // nobody listens there
            SA.Passed(fd: 4, name: "imaps", address: Self.tcp("127.0.0.1", 143)),              // named for another role
            SA.Passed(fd: 5, name: "imap", address: Self.tcp("127.0.0.1", 143)),               // this one is right
            SA.Passed(fd: 6, name: "imap", address: Self.tcp("127.0.0.1", 143)),               // a second one for the same key
            SA.Passed(fd: 7, name: "lmtp", address: nil),                                      // abstract/unknown family
            SA.Passed(fd: 8, name: "smtp", address: Self.tcp("0.0.0.0", 25), listening: false), // UDP or not listening
            SA.Passed(fd: 9, name: "lmtp", address: Self.unix("/run/other/lmtp")),
        ]
        let plan = SA.match(passed, listeners: Self.listeners)
        XCTAssertEqual(plan.adopted, ["imap@127.0.0.1:143": 5])
        XCTAssertEqual(plan.refused.map(\.fd), [3, 4, 6, 7, 8, 9])
        XCTAssertEqual(plan.refused.map(\.reason), [
            "no listener of the configuration is at 0.0.0.0:2525",
            "named imaps, but the configuration's listener at 127.0.0.1:143 is imap@127.0.0.1:143 (name imap)",
            "a second socket for imap@127.0.0.1:143",
            "not a listening stream socket on an address",
            "not a listening stream socket on an address",
            "no listener of the configuration is at unix:/run/other/lmtp",
        ])
    }

    /// What a real descriptor looks like to `inspect`: a listening TCP socket on loopback, a
    /// listening unix socket, a UDP socket and a connected (not listening) socketpair end.
    func testInspectRealSockets() throws {
        let tcp = try Listeners.bindTCP("127.0.0.1", 0, backlog: 4)
        defer { close(tcp) }
        var sin = sockaddr_in(); var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(tcp, $0, &len) } }
        let port = Int(UInt16(bigEndian: sin.sin_port))
        let t = SA.inspect(SA.Passed(fd: tcp, name: "smtp"))
        XCTAssertEqual(t.address, Self.tcp("127.0.0.1", port))
        XCTAssertTrue(t.listening)

        let dir = NSTemporaryDirectory() + "sa-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ux = try Listeners.bindUnix(dir + "/lmtp", mode: 0o600, owner: nil, group: nil, backlog: 4)
        defer { close(ux) }
        let u = SA.inspect(SA.Passed(fd: ux, name: "lmtp"))
        XCTAssertEqual(u.address, Self.unix(dir + "/lmtp"))
        XCTAssertTrue(u.listening)

        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        XCTAssertFalse(SA.inspect(SA.Passed(fd: udp, name: "smtp")).listening)

        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        defer { close(pair[0]); close(pair[1]) }
        let p = SA.inspect(SA.Passed(fd: pair[0], name: "lmtp"))
        XCTAssertFalse(p.listening)
        XCTAssertNil(p.address)   // unnamed
    }
}
