// The POP3 state machine as a transcript: lines in, actions out, no sockets and no store.
import Foundation
import XCTest
@testable import POP3Protocol

final class POP3EngineTests: XCTestCase {
    let drop = POP3Maildrop(mailbox: 5, uidValidity: 1700, messages: [POP3Message(uid: 3, size: 100), POP3Message(uid: 9, size: 20),
                                                                     POP3Message(uid: 10, size: 7)])

    func engine(tls: Bool = false, loopback: Bool = false, stls: Bool = true) -> POP3Engine {
        POP3Engine(config: POP3EngineConfig(hostname: "mx.example.org", limits: POP3Limits(maxBadCommands: 5), startTLSAvailable: stls),
                   tlsActive: tls, clientIsLoopback: loopback)
    }

    func say(_ e: inout POP3Engine, _ line: String) -> [POP3Action] { e.receive(.line(Array(line.utf8))) }
    func text(_ a: [POP3Action]) -> String {
        a.map { a -> String in
            switch a {
            case .reply(let r): return String(decoding: r.bytes, as: UTF8.self)
            case .replyLines(let r, let l): return String(decoding: r.multiline(l), as: UTF8.self)
            default: return "\(a)\n"
            }
        }.joined()
    }

    func loggedIn() -> POP3Engine {
        var e = engine(tls: true)
        XCTAssertEqual(say(&e, "USER alice"), [.reply(POP3Reply.userAccepted)])
        XCTAssertEqual(say(&e, "PASS se cret"), [.login(user: "alice", password: "se cret", mechanism: "user")])
        XCTAssertEqual(e.phase, .checking)
        XCTAssertEqual(say(&e, "STAT"), [], "no input is taken while the login is checked")
        _ = e.loginSucceeded(drop)
        return e
    }

    func testPlaintextRefusedWithoutTLSExceptLoopback() {
        var e = engine()
        XCTAssertEqual(say(&e, "USER alice"), [.reply(POP3Reply.plaintextDisallowed)])
        XCTAssertEqual(say(&e, "AUTH PLAIN AGEAYg=="), [.reply(POP3Reply.plaintextDisallowed)])
        XCTAssertFalse(e.capabilities().contains("USER"))
        XCTAssertTrue(e.capabilities().contains("STLS"))
        XCTAssertEqual(say(&e, "STLS"), [.reply(POP3Reply.beginTLS), .startTLS])
        e.tlsStarted()
        XCTAssertFalse(e.capabilities().contains("STLS"))
        XCTAssertTrue(e.capabilities().contains("SASL PLAIN LOGIN"))
        XCTAssertEqual(say(&e, "STLS"), [.reply(POP3Reply.tlsUnavailable)])
        var l = engine(loopback: true)
        XCTAssertEqual(say(&l, "USER alice"), [.reply(POP3Reply.userAccepted)])
    }

    func testTransactionCommands() {
        var e = loggedIn()
        XCTAssertEqual(text(say(&e, "STAT")), "+OK 3 127\r\n")
        XCTAssertEqual(text(say(&e, "LIST")), "+OK 3 messages\r\n1 100\r\n2 20\r\n3 7\r\n.\r\n")
        XCTAssertEqual(text(say(&e, "UIDL 2")), "+OK 2 1700.9\r\n")
        XCTAssertEqual(say(&e, "RETR 1"), [.send(uid: 3, size: 100, lines: nil)])
        XCTAssertEqual(say(&e, "TOP 3 2"), [.send(uid: 10, size: 7, lines: 2)])
        XCTAssertEqual(text(say(&e, "DELE 2")), "+OK Message 2 deleted\r\n")
        XCTAssertEqual(say(&e, "DELE 2"), [.reply(POP3Reply.alreadyDeleted)])
        XCTAssertEqual(say(&e, "RETR 2"), [.reply(POP3Reply.alreadyDeleted)])
        XCTAssertEqual(say(&e, "RETR 4"), [.reply(POP3Reply.noSuchMessage)])
        XCTAssertEqual(say(&e, "LIST 0"), [.reply(POP3Reply.noSuchMessage)])
        XCTAssertEqual(text(say(&e, "STAT")), "+OK 2 107\r\n")
        XCTAssertEqual(text(say(&e, "UIDL")), "+OK\r\n1 1700.3\r\n3 1700.10\r\n.\r\n")
        XCTAssertEqual(say(&e, "USER bob"), [.reply(POP3Reply.notNow)])
        XCTAssertEqual(text(say(&e, "RSET")), "+OK 3 messages\r\n")
        XCTAssertEqual(text(say(&e, "STAT")), "+OK 3 127\r\n")
        _ = say(&e, "DELE 1"); _ = say(&e, "DELE 3")
        XCTAssertEqual(say(&e, "QUIT"), [.update(mailbox: 5, uids: [3, 10])])
        XCTAssertEqual(e.phase, .update)
        XCTAssertEqual(e.updated(ok: true), [.reply(POP3Reply.bye), .close])
    }

    func testQuitWithoutDeletionsAndBeforeLogin() {
        var e = loggedIn()
        XCTAssertEqual(say(&e, "QUIT"), [.reply(POP3Reply.bye), .close])
        var a = engine()
        XCTAssertEqual(say(&a, "STAT"), [.reply(POP3Reply.notNow)])
        XCTAssertEqual(say(&a, "QUIT"), [.reply(POP3Reply.bye), .close])
    }

    func testSASL() {
        var e = engine(tls: true)
        // PLAIN with an initial response (RFC 5034 §4).
        XCTAssertEqual(say(&e, "AUTH PLAIN AGFsaWNlAHB3"), [.login(user: "alice", password: "pw", mechanism: "plain")])
        XCTAssertEqual(e.loginFailed(.credentials), [.reply(POP3Reply.authFailed)])
        // PLAIN by continuation; then cancelled.
        XCTAssertEqual(say(&e, "AUTH PLAIN"), [.continuation("")])
        XCTAssertEqual(say(&e, "*"), [.reply(POP3Reply.authCancelled)])
        // LOGIN: user, then password.
        XCTAssertEqual(say(&e, "AUTH LOGIN"), [.continuation("VXNlcm5hbWU6")])
        XCTAssertEqual(say(&e, "Ym9i"), [.continuation("UGFzc3dvcmQ6")])
        XCTAssertEqual(say(&e, "c2VjcmV0"), [.login(user: "bob", password: "secret", mechanism: "login")])
        XCTAssertEqual(e.loginFailed(.inUse), [.reply(POP3Reply.inUse)])
        XCTAssertEqual(say(&e, "AUTH PLAIN !!!"), [.reply(POP3Reply.authMalformed)])
        XCTAssertEqual(say(&e, "AUTH CRAM-MD5"), [.reply(POP3Reply.unsupportedMechanism)])
        XCTAssertEqual(say(&e, "AUTH PLAIN eABhbGljZQBwdw=="), [.reply(POP3Reply.authzRefused)], "authzid x for alice")
        // A third credential failure ends the session.
        _ = say(&e, "AUTH PLAIN AGFsaWNlAHB3"); _ = e.loginFailed(.credentials)
        _ = say(&e, "AUTH PLAIN AGFsaWNlAHB3")
        XCTAssertEqual(e.loginFailed(.credentials), [.reply(POP3Reply.authFailed), .close])
    }

    func testBadCommandsEndTheSession() {
        var e = engine()
        for _ in 0..<4 { XCTAssertEqual(say(&e, "XYZZY"), [.reply(POP3Reply.unknownCommand)]) }
        XCTAssertEqual(e.receive(.lineTooLong), [.reply(POP3Reply.tooManyErrors), .close])
        XCTAssertEqual(e.phase, .closed)
    }

    func testTimeoutDeletesNothing() {
        var e = loggedIn()
        _ = say(&e, "DELE 1")
        XCTAssertEqual(e.timeout(), [.reply(POP3Reply.autologout), .close])
    }

    func testHostileLinesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var e = Bool.random(using: &rng) ? loggedIn() : engine(tls: true)
            for _ in 0..<20 {
                let n = Int.random(in: 0...30, using: &rng)
                let words = ["RETR ", "TOP ", "DELE ", "LIST ", "AUTH LOGIN ", "USER ", "PASS ", "QUIT", "RSET", "UIDL "]
                let line = Array(words.randomElement(using: &rng)!.utf8) + (0..<n).map { _ in UInt8.random(in: 0x20...0x39, using: &rng) }
                for a in e.receive(.line(line)) {
                    if case .login = a { _ = e.loginSucceeded(drop) }
                    if case .update = a { _ = e.updated(ok: true) }
                }
            }
        }
    }
}

/// The fuzz entry point's invariants over the committed seeds and random inputs.
final class POP3FuzzTests: XCTestCase {
    func testSeedsAndRandomInputsKeepTheInvariants() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz/corpus/fuzz-pop3")
        let seeds = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
        XCTAssertFalse(seeds.isEmpty)
        for s in seeds { POP3Fuzz.run(Array(try Data(contentsOf: s))) }
        var rng = SystemRandomNumberGenerator()
        let words = Array("RETR TOP 1 2 DELE LIST UIDL USER PASS AUTH PLAIN LOGIN * . .. \r\n \n STLS QUIT RSET NOOP CAPA =".utf8)
        for _ in 0..<500 {
            let n = Int.random(in: 2...300, using: &rng)
            POP3Fuzz.run((0..<n).map { _ in Bool.random(using: &rng) ? words.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng) })
        }
    }
}
