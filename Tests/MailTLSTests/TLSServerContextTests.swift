// Loading, refusing and reloading certificates: key modes, mismatches, missing and garbled
// files, bad settings, SIGHUP-style reload (new sessions see the new certificate, old ones
// continue; a bad reload keeps the old one), self-signed generation, SNI name matching.
import Foundation
import NIOCore
import NIOPosix
import MailTesting
import XCTest
@testable import MailTLS
import CMailTLS

final class TLSServerContextTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir = nil }

    func mode(_ path: String) -> UInt32 {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        return UInt32(st.st_mode) & 0o7777
    }

    func error(of body: () throws -> Void) -> TLSConfigurationError? {
        do { try body() } catch { return error as? TLSConfigurationError }
        return nil
    }

    // MARK: self-signed

    func testSelfSignedGeneration() throws {
        let cert = dir.file("tls/sub/cert.pem"), key = dir.file("tls/sub/key.pem")
        XCTAssertTrue(try TLSServerContext.ensureSelfSigned(certPath: cert, keyPath: key, hostname: "mail.example.org"))
        XCTAssertEqual(mode(key), 0o600)
        XCTAssertEqual(mode(cert), 0o644)
        let info = try CertificateInfo.read(path: cert)
        XCTAssertEqual(info.subjectAlternativeNames, ["mail.example.org"])
        XCTAssertEqual(info.subject, "CN=mail.example.org,O=Postern self-signed")
        XCTAssertTrue(info.isSelfSigned)
        XCTAssertEqual(info.keyType, "EC P-256")
        XCTAssertEqual(info.notAfter - info.notBefore, Int64(825 * 86_400 + 300))
        XCTAssertLessThan(abs(info.notBefore + 300 - Int64(time(nil))), 60)
        XCTAssertTrue(info.notAfterString.hasSuffix(" UTC"))
        XCTAssertEqual(info.sha256Fingerprint.count, 64)

        // It loads, and a second call leaves the pair alone.
        let ctx = try TLSServerContext(configuration: TLSConfiguration(certificatePath: cert, privateKeyPath: key))
        XCTAssertEqual(ctx.certificates.first?.sha256Fingerprint, info.sha256Fingerprint)
        XCTAssertFalse(try TLSServerContext.ensureSelfSigned(certPath: cert, keyPath: key, hostname: "mail.example.org"))
        XCTAssertEqual(try CertificateInfo.read(path: cert).sha256Fingerprint, info.sha256Fingerprint)

        // Half a pair is an error, never silently replaced.
        unlink(key)
        XCTAssertEqual(error { try TLSServerContext.ensureSelfSigned(certPath: cert, keyPath: key, hostname: "x.test") },
                       .incompleteCertificatePair(existing: cert, missing: key))
    }

    func testSelfSignedOwnerAndIPAddress() throws {
        let cert = dir.file("ip.crt"), key = dir.file("ip.key")
        let owner: FileOwner? = getuid() == 0 ? FileOwner(uid: 65_534, gid: 65_534) : nil
        XCTAssertTrue(try TLSServerContext.ensureSelfSigned(certPath: cert, keyPath: key, hostname: "127.0.0.1", owner: owner))
        XCTAssertEqual(try CertificateInfo.read(path: cert).subjectAlternativeNames, ["127.0.0.1"])
        if let owner {
            var st = stat()
            stat(key, &st)
            XCTAssertEqual(st.st_uid, owner.uid)
            XCTAssertEqual(st.st_gid, owner.gid)
            stat(cert, &st)
            XCTAssertEqual(st.st_uid, owner.uid)
        }
        XCTAssertNotNil(error { try TLSServerContext.ensureSelfSigned(certPath: dir.file("a"), keyPath: dir.file("b"), hostname: "bad name") })
    }

    // MARK: refusals

    func testKeyReadableByGroupOrOthersRefused() throws {
        let p = try dir.pair("k", host: "k.test")
        for m in [0o644, 0o640, 0o604, 0o660] {
            chmod(p.key, mode_t(m))
            let e = error { _ = try TLSServerContext(configuration: TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key)) }
            XCTAssertEqual(e, .insecureKeyFile(path: p.key, mode: UInt32(m)))
            XCTAssertTrue("\(e!)".contains(p.key) && "\(e!)".contains(octal(UInt32(m))), "\(e!)")
        }
        chmod(p.key, 0o400)
        XCTAssertNoThrow(try TLSServerContext(configuration: TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key)))
    }

    func testKeyNotMatchingCertificateRefused() throws {
        let a = try dir.pair("a", host: "a.test"), b = try dir.pair("b", host: "b.test")
        let e = error { _ = try TLSServerContext(configuration: TLSConfiguration(certificatePath: a.cert, privateKeyPath: b.key)) }
        XCTAssertEqual(e, .keyDoesNotMatchCertificate(certificate: a.cert, key: b.key))
        // An RSA key against an EC certificate is a mismatch too.
        let rsa = dir.file("rsa.key")
        XCTAssertEqual(try runPeer(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa]).status, 0)
        chmod(rsa, 0o600)
        let e2 = error { _ = try TLSServerContext(configuration: TLSConfiguration(certificatePath: a.cert, privateKeyPath: rsa)) }
        XCTAssertEqual(e2, .keyDoesNotMatchCertificate(certificate: a.cert, key: rsa))
    }

    func testMissingAndGarbledFiles() throws {
        let p = try dir.pair("p", host: "p.test")
        func load(_ cert: String, _ key: String, domains: [String: (cert: String, key: String)] = [:]) -> TLSConfigurationError? {
            error { _ = try TLSServerContext(configuration: TLSConfiguration(certificatePath: cert, privateKeyPath: key, domainCertificates: domains)) }
        }
        XCTAssertEqual(load(dir.file("nope.crt"), p.key), .missingFile(path: dir.file("nope.crt"), what: "certificate"))
        XCTAssertEqual(load(p.cert, dir.file("nope.key")), .missingFile(path: dir.file("nope.key"), what: "private key"))
        XCTAssertEqual(load(dir.path, p.key), .notARegularFile(path: dir.path, what: "certificate"))

        let garbled = dir.file("garbled.crt")
        try writeFile(garbled, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
        guard case .invalidCertificate(let path, let reason)? = load(garbled, p.key) else { return XCTFail() }
        XCTAssertEqual(path, garbled)
        XCTAssertFalse(reason.isEmpty)
        try writeFile(dir.file("empty.crt"), "")
        guard case .invalidCertificate? = load(dir.file("empty.crt"), p.key) else { return XCTFail() }

        let badKey = dir.file("garbled.key")
        try writeFile(badKey, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", mode: 0o600)
        guard case .invalidPrivateKey(let kp, _)? = load(p.cert, badKey) else { return XCTFail() }
        XCTAssertEqual(kp, badKey)

        // An encrypted key is refused at once, never by prompting for a passphrase.
        let enc = dir.file("enc.key")
        XCTAssertEqual(try runPeer(["openssl", "pkey", "-in", p.key, "-aes256", "-passout", "pass:secret", "-out", enc]).status, 0)
        chmod(enc, 0o600)
        guard case .invalidPrivateKey? = load(p.cert, enc) else { return XCTFail() }

        // A broken SNI certificate fails the whole load, naming its file.
        XCTAssertEqual(load(p.cert, p.key, domains: ["x.test": (dir.file("gone.crt"), p.key)]),
                       .missingFile(path: dir.file("gone.crt"), what: "certificate"))
        XCTAssertEqual(load(p.cert, p.key, domains: ["bad domain": p]), .invalidDomain("bad domain"))
        XCTAssertEqual(load(p.cert, p.key, domains: ["*.com": p]), .invalidDomain("*.com"))
    }

    func testBadSettingsRefused() throws {
        let p = try dir.pair("s", host: "s.test")
        func load(_ edit: (inout TLSConfiguration) -> Void) -> TLSConfigurationError? {
            var c = TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key)
            edit(&c)
            return error { _ = try TLSServerContext(configuration: c) }
        }
        XCTAssertNil(load { _ in })
        guard case .invalidSetting("cipher_suites", _, _)? = load({ $0.cipherSuites = "TLS_BOGUS" }) else { return XCTFail() }
        guard case .invalidSetting("cipher_list", _, _)? = load({ $0.cipherList = "NOTHING-REAL" }) else { return XCTFail() }
        guard case .invalidSetting("groups", _, _)? = load({ $0.groups = "P-999" }) else { return XCTFail() }
        guard case .invalidSetting("max_version", _, _)? = load({ $0.minimumVersion = .tls13; $0.maximumVersion = .tls12 }) else { return XCTFail() }
        guard case .invalidSetting("session_ticket_keys", _, _)? = load({ $0.sessionTicketKeys = [1, 2, 3] }) else { return XCTFail() }
        XCTAssertEqual(TLSVersion(parsing: "TLSv1.2"), .tls12)
        XCTAssertEqual(TLSVersion(parsing: "1.3"), .tls13)
        XCTAssertNil(TLSVersion(parsing: "1.1"))
    }

    // MARK: credentials read before the privilege drop

    func testContextBuiltFromCredentialsReadEarlier() throws {
        let p = try dir.pair("early", host: "early.test")
        let config = TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key)
        let creds = try TLSCredentials.read(config)
        unlink(p.key)   // as unreadable as a root-only key after setuid
        let ctx = try TLSServerContext(configuration: config, credentials: creds)
        XCTAssertEqual(ctx.certificates.first?.subjectAlternativeNames, ["early.test"])
        XCTAssertEqual(error { try ctx.reload(config) }, .missingFile(path: p.key, what: "private key"))
        XCTAssertNoThrow(try ctx.reload(config, credentials: creds))
    }

    // MARK: reload

    func testReloadNewConnectionsSeeNewCertificateOldSessionsContinue() throws {
        let live = (cert: dir.file("live.crt"), key: dir.file("live.key"))
        XCTAssertTrue(try TLSServerContext.ensureSelfSigned(certPath: live.cert, keyPath: live.key, hostname: "old.test"))
        let config = TLSConfiguration(certificatePath: live.cert, privateKeyPath: live.key)
        let server = try TestServer(tls: TLSServerContext(configuration: config))
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }

        let first = try connectClient(group: group, port: server.port, expected: 6)
        XCTAssertEqual(try first.handshake.wait().peerCertificateSubject, "CN=old.test,O=Postern self-signed")
        try first.channel.writeAndFlush(ByteBuffer(string: "RAWECHO\r\nbef")).wait()

        // Replace the files the way certbot does (new files renamed over the old), then reload.
        let next = try dir.pair("next", host: "new.test")
        XCTAssertEqual(rename(next.cert, live.cert), 0)
        XCTAssertEqual(rename(next.key, live.key), 0)
        try server.tls.reload(config)
        XCTAssertEqual(server.tls.certificates.first?.subjectAlternativeNames, ["new.test"])

        let second = try connectClient(group: group, port: server.port)
        XCTAssertEqual(try second.handshake.wait().peerCertificateSubject, "CN=new.test,O=Postern self-signed")
        try first.channel.writeAndFlush(ByteBuffer(string: "ore")).wait()
        XCTAssertEqual(String(buffer: try first.received.wait()), "before", "the session from before the reload continues")

        // A bad certificate: reload throws, the loaded one stays.
        try writeFile(live.cert, "garbage\n")
        guard case .invalidCertificate(let path, _)? = error(of: { try server.tls.reload(config) }) else { return XCTFail() }
        XCTAssertEqual(path, live.cert)
        chmod(live.key, 0o644)
        XCTAssertEqual(error { try server.tls.reload(TLSConfiguration(certificatePath: next.cert, privateKeyPath: live.key)) },
                       .missingFile(path: next.cert, what: "certificate"))
        XCTAssertEqual(server.tls.certificates.first?.subjectAlternativeNames, ["new.test"])
        let third = try connectClient(group: group, port: server.port)
        XCTAssertEqual(try third.handshake.wait().peerCertificateSubject, "CN=new.test,O=Postern self-signed")
        for c in [first, second, third] { try c.channel.close().wait() }
    }

    func testSharedTicketKeysResumeAcrossProcesses() throws {
        // Two contexts stand for two worker processes sharing one listener.
        let p = try dir.pair("t", host: "t.test")
        let keys = (0..<80).map { UInt8($0) }
        var c = TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key, sessionTicketKeys: keys)
        let a = try TestServer(tls: TLSServerContext(configuration: c))
        let b = try TestServer(tls: TLSServerContext(configuration: c))
        c.sessionTicketKeys = nil
        let lone = try TestServer(tls: TLSServerContext(configuration: c))
        defer { a.stop(); b.stop(); lone.stop() }
        let script = """
        import socket, ssl, sys
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        def conn(port, session=None):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), session=session)
            s.sendall(b"x\\r\\n"); s.recv(10); return s
        s = conn(int(sys.argv[1])); sess = s.session; s.close()
        print("b", conn(int(sys.argv[2]), sess).session_reused)
        print("lone", conn(int(sys.argv[3]), sess).session_reused)
        """
        let r = try python(script, ["\(a.port)", "\(b.port)", "\(lone.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("b True"), r.output)
        XCTAssertTrue(r.stdout.contains("lone False"), r.output)
    }

    /// RFC 5077 §5.5: the ticket keys rotate every sessionTicketKeyLifetime. Servers with the
    /// same secret, their clocks one and two lifetimes later: a ticket from the previous key
    /// still resumes; one two keys old falls back to a full handshake. No sleeping: the clock
    /// offset steps through the epochs.
    func testTicketKeysRotateAndThePreviousKeyStillDecrypts() throws {
        let p = try dir.pair("r", host: "r.test")
        var c = TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key, sessionTicketKeys: (0..<80).map { UInt8($0) },
                                 sessionTicketKeyLifetime: 86_400)
        c.sessionCache = false                          // TLS 1.2 must resume by ticket alone
        let now = try TestServer(tls: TLSServerContext(configuration: c))
        c.ticketClockOffset = 86_400
        let next = try TestServer(tls: TLSServerContext(configuration: c))
        c.ticketClockOffset = 2 * 86_400
        let later = try TestServer(tls: TLSServerContext(configuration: c))
        defer { now.stop(); next.stop(); later.stop() }
        let script = """
        import socket, ssl, sys
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            ctx.maximum_version = version
            def conn(port, session=None):
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), session=session)
                s.sendall(b"x\\r\\n"); s.recv(10); return s
            s = conn(int(sys.argv[1])); sess = s.session; s.close()
            print(version.name, "next", conn(int(sys.argv[2]), sess).session_reused)
            print(version.name, "later", conn(int(sys.argv[3]), sess).session_reused)
        """
        let r = try python(script, ["\(now.port)", "\(next.port)", "\(later.port)"])
        XCTAssertEqual(r.status, 0, r.output)
        for version in ["TLSv1_3", "TLSv1_2"] {
            XCTAssertTrue(r.stdout.contains("\(version) next True"), r.output)
            XCTAssertTrue(r.stdout.contains("\(version) later False"), r.output)
        }
    }

    /// The derived keys: the same secret and epoch give the same 80 bytes, another epoch or
    /// secret other ones (the key name is the first 16).
    func testTicketKeyDerivation() {
        func key(_ secret: [UInt8], _ epoch: Int64) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 80)
            XCTAssertEqual(mtls_ticket_key_for_epoch(secret, secret.count, epoch, &out), 1)
            return out
        }
        let secret = (0..<80).map { UInt8($0) }
        XCTAssertEqual(key(secret, 7), key(secret, 7))
        XCTAssertNotEqual(key(secret, 7).prefix(16), key(secret, 8).prefix(16))
        XCTAssertNotEqual(key(secret, 7), key(secret.map { $0 ^ 1 }, 7))
        XCTAssertFalse(key(secret, 7).allSatisfy { $0 == 0 })
    }

    // MARK: SNI names

    func testSNINameMatching() throws {
        let p = try dir.pair("n", host: "n.test")
        let creds = try TLSCredentials.read(TLSConfiguration(certificatePath: p.cert, privateKeyPath: p.key,
                                                             domainCertificates: ["Mail.Example.ORG.": p, "*.example.net": p]))
        let set = try ServerContextSet(configuration: TLSConfiguration(), credentials: creds)
        XCTAssertNotNil(set.context(forServerName: "mail.example.org"))
        XCTAssertNotNil(set.context(forServerName: "MAIL.example.org."))
        XCTAssertNil(set.context(forServerName: "example.org"))
        XCTAssertNotNil(set.context(forServerName: "imap.example.net"))
        XCTAssertNil(set.context(forServerName: "example.net"), "a wildcard needs one more label")
        XCTAssertNil(set.context(forServerName: "a.b.example.net"), "a wildcard covers one label only")
        XCTAssertNil(set.context(forServerName: ".example.net"))
        XCTAssertEqual(try normalizedDomain("Mail.Example.ORG."), "mail.example.org")
        XCTAssertThrowsError(try normalizedDomain("*.*.example.org"))
        XCTAssertThrowsError(try normalizedDomain("a..b"))
        XCTAssertThrowsError(try normalizedDomain("-a.b"))
    }
}
