// Implicit TLS (RFC 8314 §3) against real peers: openssl s_client and Python's ssl, version
// floor, SNI, bulk transfers both ways, 200 concurrent handshakes, resumption, close_notify.
import Foundation
import NIOCore
import NIOPosix
import MailTesting
import XCTest
@testable import MailTLS

final class ImplicitTLSTests: XCTestCase {
    var fixture: TLSFixture!
    var server: TestServer!
    var config: TLSConfiguration!

    override func setUpWithError() throws {
        fixture = TLSFixture()
        config = try fixture.configuration(host: "default.test", name: "default",
                                           domains: ["mail.example.org": "mail", "*.example.net": "wild"])
        server = try fixture.start(TLSServerContext(configuration: config))
    }

    override func tearDown() {
        fixture?.stop()
        fixture = nil
    }

    func testOpenSSLClientHandshakeAndEcho() throws {
        let r = try sClient(server.port, ["-brief", "-ign_eof"], stdin: ["hello\r\n", "QUIT\r\n"])
        XCTAssertTrue(r.output.contains("Protocol version: TLSv1.3"), r.output)
        XCTAssertTrue(r.stdout.contains("hello"), r.output)
        XCTAssertTrue(r.stdout.contains("BYE"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 1 })
        let s = server.recorder.sessions[0]
        XCTAssertEqual(s.protocolVersion, "TLSv1.3")
        XCTAssertEqual(s.cipher, "TLS_AES_128_GCM_SHA256", "server preference: first of TLSDefaults.cipherSuites")
        XCTAssertFalse(s.resumed)
        XCTAssertEqual(s.receivedClause, "tls \(s.cipherStandardName)")
    }

    func testOpenSSLClientTLS12PinnedCipher() throws {
        let r = try sClient(server.port, ["-brief", "-ign_eof", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
                            stdin: ["over 1.2\r\n", "QUIT\r\n"])
        XCTAssertTrue(r.output.contains("Protocol version: TLSv1.2"), r.output)
        XCTAssertTrue(r.output.contains("ECDHE-ECDSA-AES128-GCM-SHA256"), r.output)
        XCTAssertTrue(r.stdout.contains("over 1.2"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 1 })
        XCTAssertEqual(server.recorder.sessions[0].protocolVersion, "TLSv1.2")
        XCTAssertEqual(server.recorder.sessions[0].cipherStandardName, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    }

    func testPythonClientHandshakeEchoAndCleanClose() throws {
        let script = """
        import socket, ssl, sys
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), suppress_ragged_eofs=False)
        print(s.version(), s.cipher()[0])
        s.sendall(b"ping\\r\\n")
        f = b""
        while not f.endswith(b"\\r\\n"): f += s.recv(100)
        print(f.decode().strip())
        s.sendall(b"QUIT\\r\\n")
        data = b""
        while True:
            d = s.recv(100)   # raises SSLEOFError if the server skipped close_notify
            if not d: break
            data += d
        print(data.decode().strip(), "clean-eof")
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("TLSv1.3"), r.output)
        XCTAssertTrue(r.stdout.contains("ping"), r.output)
        XCTAssertTrue(r.stdout.contains("BYE clean-eof"), r.output)
    }

    func testPeerCloseNotifyIsEOFAndAnswered() throws {
        // unwrap() sends close_notify and waits for ours: it only returns if we answer.
        let script = """
        import socket, ssl, sys
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), suppress_ragged_eofs=False)
        s.settimeout(5)
        s.sendall(b"x\\r\\n"); s.recv(10)
        raw = s.unwrap()
        print("unwrapped", raw.recv(10) == b"")
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("unwrapped True"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 1 })
        usleep(100_000)
        XCTAssertFalse(server.recorder.tlsErrors.contains(.uncleanShutdown), "\(server.recorder.errors)")
    }

    func testTLS10And11Refused() throws {
        for flag in ["-tls1", "-tls1_1"] {
            // SECLEVEL=0 so the client really offers the old version; the refusal is the server's.
            let r = try sClient(server.port, [flag, "-cipher", "DEFAULT:@SECLEVEL=0"], stdin: ["x\r\n"])
            XCTAssertNotEqual(r.status, 0, r.output)
            XCTAssertFalse(r.output.contains("Protocol version: TLSv1"), r.output)
        }
        XCTAssertTrue(server.recorder.wait { $0.tlsErrors.count >= 2 })
        for e in server.recorder.tlsErrors {
            guard case .handshakeFailed(let reason) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("unsupported protocol"), reason)
        }
        XCTAssertEqual(server.recorder.sessions.count, 0)
    }

    func testSNIPicksCertificate() throws {
        let cases = [("mail.example.org", "CN = mail.example.org"), ("MAIL.Example.org", "CN = mail.example.org"),
                     ("imap.example.net", "CN = *.example.net"), ("a.b.example.net", "CN = default.test"),
                     ("unknown.test", "CN = default.test")]
        for (name, subject) in cases {
            let r = try sClient(server.port, ["-servername", name, "-ign_eof"], stdin: ["QUIT\r\n"])
            XCTAssertTrue(r.stdout.contains("subject=O = Postern self-signed, \(subject)"), "\(name): \(r.stdout)")
        }
        let r = try sClient(server.port, ["-noservername", "-ign_eof"], stdin: ["QUIT\r\n"])
        XCTAssertTrue(r.stdout.contains("CN = default.test"), r.stdout)
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == cases.count + 1 })
        XCTAssertEqual(Set(server.recorder.sessions.compactMap(\.serverName)), Set(cases.map(\.0)))
        // The SAN list is what the chosen certificate carries.
        let infos = server.tls.certificates
        XCTAssertEqual(infos.map(\.servedFor), ["default", "*.example.net", "mail.example.org"])
        XCTAssertEqual(infos.map(\.subjectAlternativeNames), [["default.test"], ["*.example.net"], ["mail.example.org"]])
    }

    func testTenMegabytesEachWayNIOClient() throws {
        let size = 10 * 1_024 * 1_024
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let c = try connectClient(group: group, port: server.port, expected: size)
        var out = ByteBuffer(string: "RAWECHO\r\n")
        out.writeBytes(pattern(size))
        try c.channel.writeAndFlush(out).wait()
        let back = try c.received.wait()
        XCTAssertEqual(back.readableBytes, size)
        XCTAssertNil(back.withUnsafeReadableBytes { patternMismatch($0, offset: 0) }, "echoed bytes differ")
        try c.channel.close().wait()
    }

    func testTenMegabytesEachWayPython() throws {
        let script = """
        import socket, ssl, sys
        N = 10 * 1024 * 1024
        pat = (bytes(range(251)) * (N // 251 + 1))[:N]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        def conn():
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), suppress_ragged_eofs=False)
            s.settimeout(20); return s
        s = conn(); s.sendall(b"SINK %d\\r\\n" % N); s.sendall(pat)
        line = b""
        while not line.endswith(b"\\r\\n"): line += s.recv(100)
        print("upload", line.decode().strip()); s.close()
        s = conn(); s.sendall(b"SOURCE %d\\r\\n" % N)
        got = bytearray()
        while True:
            d = s.recv(1 << 20)
            if not d: break
            got += d
        print("download", len(got), bytes(got) == pat)
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("upload OK 10485760"), r.output)
        XCTAssertTrue(r.stdout.contains("download 10485760 True"), r.output)
    }

    func testTwoHundredConcurrentHandshakes() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let client = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: false))
        let connections = try (0..<200).map { i in
            try connectClient(group: group, port: server.port, serverName: i % 2 == 0 ? "mail.example.org" : nil,
                              expected: 8, client: client)
        }
        for c in connections { c.channel.writeAndFlush(ByteBuffer(string: "hello!\r\n"), promise: nil) }
        for c in connections {
            let info = try c.handshake.wait()
            XCTAssertEqual(info.protocolVersion, "TLSv1.3")
            XCTAssertEqual(String(buffer: try c.received.wait()), "hello!\r\n")
        }
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 200 })
        XCTAssertEqual(server.recorder.errors.count, 0, "\(server.recorder.errors)")
        for c in connections { c.channel.close(promise: nil) }
    }

    func testSessionResumption() throws {
        let script = """
        import socket, ssl, sys
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx.maximum_version = version
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
            s.sendall(b"x\\r\\n"); s.recv(10)   # TLS 1.3 tickets arrive after the handshake
            sess = s.session; s.close()
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), session=sess)
            print(s.version(), "reused", s.session_reused); s.close()
        """
        let r = try python(script, ["\(server.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("TLSv1.3 reused True"), r.output)
        XCTAssertTrue(r.stdout.contains("TLSv1.2 reused True"), r.output)
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 4 })
        XCTAssertEqual(server.recorder.sessions.map(\.resumed), [false, true, false, true])
    }

    func testClientVerification() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let mail = config.domainCertificates["mail.example.org"]!.cert
        let verifying = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: true, caFile: mail))
        let good = try connectClient(group: group, port: server.port, serverName: "mail.example.org", client: verifying)
        let info = try good.handshake.wait()
        XCTAssertTrue(info.peerVerified)
        XCTAssertEqual(info.peerCertificateSubject, "CN=mail.example.org,O=Postern self-signed")
        try good.channel.close().wait()

        // Trusted certificate, wrong name: RFC 6125 host name check refuses it. (An unknown SNI
        // name gets the default certificate, so trust that one too.)
        let bundle = fixture.dir.file("bundle.pem")
        try writeFile(bundle, String(contentsOfFile: mail, encoding: .utf8) + String(contentsOfFile: config.certificatePath, encoding: .utf8))
        let both = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: true, caFile: bundle))
        let wrongName = try connectClient(group: group, port: server.port, serverName: "other.example.org", client: both)
        XCTAssertThrowsError(try wrongName.handshake.wait()) { e in
            guard case TLSError.certificateVerificationFailed(let reason)? = e as? TLSError else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("mismatch"), reason)
        }
        // Untrusted issuer (system store does not know our self-signed certificate).
        let system = try TLSClientContext(configuration: TLSClientConfiguration(verifyPeer: true))
        let untrusted = try connectClient(group: group, port: server.port, serverName: "mail.example.org", client: system)
        XCTAssertThrowsError(try untrusted.handshake.wait()) { e in
            guard case TLSError.certificateVerificationFailed? = e as? TLSError else { return XCTFail("\(e)") }
        }
    }

    func testRenegotiationRefused() throws {
        // s_client's "R" command asks for a TLS 1.2 renegotiation; the server must not do one.
        let r = try sClient(server.port, ["-tls1_2"], stdin: ["R\n", "after\n"], timeout: 5)
        XCTAssertTrue(r.output.contains("RENEGOTIATING"), r.output)
        XCTAssertTrue(r.output.contains("no renegotiation"), r.output)   // our no_renegotiation alert
        XCTAssertTrue(server.recorder.wait { $0.sessions.count == 1 })
        XCTAssertEqual(server.recorder.sessions.count, 1, "a second handshake completed")
    }
}
