// DKIM signatures checked by a verifier nobody here wrote: Python's dkimpy (Debian python3-dkim,
// installed by `make test`), run as a subprocess with its DNS lookup answering our TXT record.
import XCTest
import Foundation
@testable import DKIM

final class DKIMSignerTests: XCTestCase {
    static let message = Array("""
    Received: from client.example.org by mx.example.com; Sun, 6 Dec 2026 03:00:00 +0000\r
    From: Joe SixPack <joe@football.example.com>\r
    To: Suzie Q <suzie@shopping.example.net>\r
    Subject: Is dinner ready?\r
    \tfolded  subject  \r
    Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r
    Message-ID: <20030712040037.46341.5F8J@football.example.com>\r
    List-Id: <dinner.example.com>\r
    List-Unsubscribe: <mailto:leave@example.com>\r
    X-Unsigned: not in h=\r
    \r
    Hi.\r
    \r
    We lost the game.  Are you hungry yet?\t \r
    \r
    Joe.\r
    \r
    \r

    """.utf8)

    static var verifierAvailable: Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", "import dkim, nacl"]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// dkimpy's verdict on `message` (the signature prepended), with `record` as the only TXT
    /// record of `selector._domainkey.domain`: (verified, dkimpy's log).
    func dkimpy(_ message: [UInt8], record: String, name: String) throws -> (Bool, String) {
        guard Self.verifierAvailable else { throw XCTSkip("python3-dkim / python3-nacl not installed (make test installs them)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dkim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("msg.eml")
        try Data(message).write(to: file)
        let script = """
        import sys, logging, io, dkim
        log = io.StringIO()
        logger = logging.getLogger("dkim"); logger.addHandler(logging.StreamHandler(log)); logger.setLevel(logging.DEBUG)
        want, record = sys.argv[2].encode(), sys.argv[3].encode()
        def dns(name, timeout=5):
            print("lookup", name, file=log)
            return record if name.rstrip(b".") == want else None
        ok = dkim.DKIM(open(sys.argv[1], "rb").read(), logger=logger).verify(dnsfunc=dns)
        sys.stdout.write(("PASS\\n" if ok else "FAIL\\n") + log.getvalue())
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script, file.path, name, record]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (text.hasPrefix("PASS"), text)
    }

    func signAndVerify(_ kind: DKIMKey.Kind, chunk: Int) throws -> String {
        let key = try DKIMKey.generate(kind)
        let signer = try DKIMSigner(domain: "Football.Example.com", selector: "brisbane", key: key)
        var i = 0
        while i < Self.message.count {
            try signer.update(Array(Self.message[i..<min(i + chunk, Self.message.count)]))
            i += chunk
        }
        let field = try signer.finish()
        let (ok, log) = try dkimpy(Array(field.utf8) + Self.message, record: try key.txtRecord(), name: "brisbane._domainkey.football.example.com")
        XCTAssertTrue(ok, "dkimpy rejected the \(kind) signature:\n\(field)\n\(log)")
        return field
    }

    func testRSASignatureVerifiesWithDkimpy() throws {
        let field = try signAndVerify(.rsa2048, chunk: 1 << 16)
        XCTAssertTrue(field.contains("a=rsa-sha256;"))
    }

    func testEd25519SignatureVerifiesWithDkimpy() throws {
        let field = try signAndVerify(.ed25519, chunk: 1 << 16)
        XCTAssertTrue(field.contains("a=ed25519-sha256;"))
    }

    func testOneByteChunksVerify() throws {
        _ = try signAndVerify(.ed25519, chunk: 1)
        _ = try signAndVerify(.rsa2048, chunk: 7)
    }

    func testTamperedBodyAndHeaderFailWithDkimpy() throws {
        let key = try DKIMKey.generate(.ed25519)
        let field = Array(try DKIMSigner.sign(Self.message, domain: "example.com", selector: "s", key: key).utf8)
        let record = try key.txtRecord()
        let text = String(decoding: Self.message, as: UTF8.self)
        for tampered in [text.replacingOccurrences(of: "We lost", with: "We won"),
                         text.replacingOccurrences(of: "Subject: Is dinner", with: "Subject: Was dinner"),
                         // An added second From is caught by over-signing (RFC 6376 §8.15).
                         "From: mallory@evil.example\r\n" + text] {
            let (ok, _) = try dkimpy(field + Array(tampered.utf8), record: record, name: "s._domainkey.example.com")
            XCTAssertFalse(ok)
        }
        // Whitespace changes that relaxed canonicalisation forgives still verify.
        let relaxed = text.replacingOccurrences(of: "Subject: Is dinner ready?", with: "subject:   Is  dinner ready?")
            .replacingOccurrences(of: "Joe.\r\n", with: "Joe.   \r\n\r\n")
        let (ok, log) = try dkimpy(field + Array(relaxed.utf8), record: record, name: "s._domainkey.example.com")
        XCTAssertTrue(ok, log)
    }

    func testLargeBodyStreamsAndVerifies() throws {
        let key = try DKIMKey.generate(.rsa2048)
        let signer = try DKIMSigner(domain: "example.com", selector: "big", key: key)
        var whole = Array("From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\n\r\n".utf8)
        try signer.update(whole)
        let line = Array(String(repeating: "0123456789 \t", count: 6).utf8) + [13, 10]
        var chunk = [UInt8]()
        for _ in 0..<1000 { chunk += line }
        for _ in 0..<40 { try signer.update(chunk); whole += chunk }      // ~3 MB
        let field = try signer.finish()
        let (ok, log) = try dkimpy(Array(field.utf8) + whole, record: try key.txtRecord(), name: "big._domainkey.example.com")
        XCTAssertTrue(ok, log)
    }

    func testSignatureFieldShape() throws {
        let key = try DKIMKey.generate(.rsa2048)
        let field = try DKIMSigner.sign(Self.message, domain: "example.com", selector: "sel", key: key, timestamp: 1_700_000_000)
        XCTAssertTrue(field.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;"))
        XCTAssertTrue(field.hasSuffix("\r\n"))
        XCTAssertTrue(field.contains("t=1700000000;"))
        let lines = field.dropLast(2).components(separatedBy: "\r\n")
        XCTAssertGreaterThan(lines.count, 3)
        for l in lines {
            XCTAssertLessThanOrEqual(l.utf8.count, DKIMLimits.foldColumn, l)
            XCTAssertFalse(l.isEmpty)
        }
        for l in lines.dropFirst() { XCTAssertTrue(l.hasPrefix("\t"), l) }
        // h=: every present listed field bottom-up, List-* expanded, From over-signed; no
        // unlisted field (Received, X-Unsigned).
        let unfolded = field.replacingOccurrences(of: "\r\n\t", with: "")
        let h = unfolded.components(separatedBy: "h=")[1].components(separatedBy: ";")[0]
        XCTAssertEqual(h, "from:to:subject:date:message-id:list-id:list-unsubscribe:from")
    }

    func testMultipleInstancesAreSignedBottomUp() throws {
        let key = try DKIMKey.generate(.ed25519)
        let msg = Array("From: a@example.com\r\nTo: one@example.org\r\nTo: two@example.org\r\n\r\nbody\r\n".utf8)
        let field = try DKIMSigner.sign(msg, domain: "example.com", selector: "s", key: key, headers: ["to"])
        XCTAssertTrue(field.replacingOccurrences(of: "\r\n\t", with: "").contains("h=from:to:to:from;"))
        let (ok, log) = try dkimpy(Array(field.utf8) + msg, record: try key.txtRecord(), name: "s._domainkey.example.com")
        XCTAssertTrue(ok, log)
    }

    func testEd25519IsDeterministicAcrossChunkings() throws {
        let key = try DKIMKey.generate(.ed25519)
        let whole = try DKIMSigner.sign(Self.message, domain: "example.com", selector: "s", key: key, timestamp: 1)
        let s = try DKIMSigner(domain: "example.com", selector: "s", key: key)
        for b in Self.message { try s.update([b]) }
        XCTAssertEqual(try s.finish(timestamp: 1), whole)
    }

    func testMissingFromIsRefused() throws {
        let key = try DKIMKey.generate(.ed25519)
        XCTAssertThrowsError(try DKIMSigner.sign(Array("To: b@example.org\r\n\r\nx\r\n".utf8), domain: "example.com", selector: "s", key: key)) {
            XCTAssertEqual($0 as? DKIMError, .missingFrom)
        }
    }

    func testHeaderOnlyMessageAndEmptyBody() throws {
        let key = try DKIMKey.generate(.ed25519)
        for msg in ["From: a@example.com\r\nSubject: x\r\n", "From: a@example.com\r\n\r\n"] {
            let field = try DKIMSigner.sign(Array(msg.utf8), domain: "example.com", selector: "s", key: key)
            // RFC 6376 §3.4.4 (errata 3192): the relaxed empty body hashes as nothing.
            XCTAssertTrue(field.replacingOccurrences(of: "\r\n\t", with: "").contains("bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"), field)
        }
        let (ok, log) = try dkimpy(Array(try DKIMSigner.sign(Array("From: a@example.com\r\n\r\n".utf8), domain: "example.com", selector: "s", key: key).utf8)
                                    + Array("From: a@example.com\r\n\r\n".utf8), record: try key.txtRecord(), name: "s._domainkey.example.com")
        XCTAssertTrue(ok, log)
    }

    func testOversizedHeaderIsRefused() throws {
        let key = try DKIMKey.generate(.ed25519)
        let s = try DKIMSigner(domain: "example.com", selector: "s", key: key)
        let line = Array("X-Filler: \(String(repeating: "x", count: 1000))\r\n".utf8)
        XCTAssertThrowsError(try { for _ in 0..<(DKIMLimits.maximumHeaderBytes / line.count + 2) { try s.update(line) } }()) {
            XCTAssertEqual($0 as? DKIMError, .headerTooLarge)
        }
    }

    func testInvalidDomainSelectorAndAlgorithm() throws {
        let key = try DKIMKey.generate(.ed25519)
        XCTAssertThrowsError(try DKIMSigner(domain: "../etc", selector: "s", key: key))
        XCTAssertThrowsError(try DKIMSigner(domain: "example.com", selector: "a b", key: key))
        XCTAssertThrowsError(try DKIMSigner(domain: "example.com", selector: "s", key: key, algorithm: .rsaSHA256)) {
            XCTAssertEqual($0 as? DKIMError, .algorithmMismatch(.rsaSHA256))
        }
    }
}
