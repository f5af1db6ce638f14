// RFC 3461 DSN parameters in the engine: advertised on the submission roles only, RET/ENVID on
// MAIL and NOTIFY/ORCPT on RCPT parsed strictly (501 5.5.4), refused where DSN is not offered
// (555 5.5.4), and carried in the envelope the glue delivers. Fed whole and byte by byte.
import Foundation
import SMTPProtocol
import XCTest

final class SMTPSessionDSNTests: XCTestCase {
    let alice = MailPath(localPart: "alice", domain: "example.org")
    let remote = MailPath(localPart: "x", domain: "remote.example")
    let auth = "EHLO c\r\nAUTH PLAIN \(base64("\0alice\0secret"))\r\n"

    func submit(_ lines: String, role: SMTPRole = .smtps, file: StaticString = #filePath, line: UInt = #line) -> ScriptedGlue {
        transcriptBothWays(smtpdConfig(role), [auth + lines], file: file, line: line) {
            $0.verdicts["x@remote.example"] = .acceptRemote
            $0.verdicts["y@remote.example"] = .acceptRemote
        }
    }

    /// The replies after AUTH's 235.
    func afterAuth(_ glue: ScriptedGlue) -> [String] { Array(glue.codes.drop { $0 != "235 2.7.0" }.dropFirst()) }

    func testAdvertisedOnTheSubmissionRolesOnly() {
        func keywords(_ config: SMTPSessionConfig, _ hello: String = "EHLO c\r\n") -> [String] {
            let glue = transcript(config, [hello])
            guard case .reply(let r)? = glue.actions.first else { return [] }
            return r.lines
        }
        XCTAssertTrue(keywords(smtpdConfig(.submission)).contains("DSN"))
        XCTAssertTrue(keywords(smtpdConfig(.smtps)).contains("DSN"))
        XCTAssertFalse(keywords(smtpdConfig(.mta)).contains("DSN"))
        XCTAssertFalse(keywords(lmtpConfig(), "LHLO c\r\n").contains("DSN"))
        let off = SMTPSessionConfig.smtpd(role: .submission, hostname: "mx.example.org", offerDSN: false)
        XCTAssertFalse(off.extensions.contains(.dsn))
    }

    func testParametersReachTheEnvelope() {
        let glue = submit("MAIL FROM:<alice@example.org> RET=HDRS ENVID=abc+2Bdef\r\n" +
                          "RCPT TO:<x@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40remote.example\r\n" +
                          "RCPT TO:<alice@example.org>\r\n" +
                          "RCPT TO:<y@remote.example> notify=never orcpt=RFC822;Y@Remote.Example\r\n" +
                          "DATA\r\nhi\r\n.\r\n")
        XCTAssertEqual(afterAuth(glue), ["250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.1.5", "354", "250 2.0.0"])
        let began = glue.actions.compactMap { if case .beginMessage(let e) = $0 { return e } else { return nil } }
        XCTAssertEqual(began.count, 1)
        guard let e = began.first else { return }
        XCTAssertEqual(e.dsn, MailDSNParameters(ret: .headers, envelopeID: "abc+def"))
        XCTAssertEqual(e.dsn(ofRecipient: 0), RcptDSNParameters(notify: [.success, .failure], originalRecipient: "rfc822;x@remote.example"))
        XCTAssertEqual(e.dsn(ofRecipient: 1), RcptDSNParameters(), "no parameters given")
        XCTAssertEqual(e.dsn(ofRecipient: 2), RcptDSNParameters(notify: [], originalRecipient: "RFC822;Y@Remote.Example"))
        XCTAssertEqual(e.dsn(ofRecipient: 2).notify?.rawValue, 0, "NEVER")
        XCTAssertEqual(RcptDSNParameters.Notify([.success, .failure, .delay]).rawValue, 7, "the queue's bits")
        XCTAssertEqual(e.remoteIndices, [0, 2])
    }

    func testRETFullAndNotifyDelayAlone() {
        let glue = submit("MAIL FROM:<alice@example.org> RET=full SIZE=10\r\nRCPT TO:<x@remote.example> NOTIFY=DELAY\r\n")
        XCTAssertEqual(afterAuth(glue), ["250 2.1.0", "250 2.1.5"])
        XCTAssertEqual(glue.session.envelope?.dsn.ret, .full)
        XCTAssertEqual(glue.session.envelope?.dsn(ofRecipient: 0).notify, [.delay])
    }

    /// RFC 3461 §4: malformed values, NEVER with others, over-long ENVID/ORCPT, duplicates.
    func testMalformedValuesAre501() {
        let longID = String(repeating: "a", count: 101), okID = String(repeating: "a", count: 100)
        let longOrcpt = "rfc822;" + String(repeating: "b", count: 494)   // 501 characters
        let okOrcpt = "rfc822;" + String(repeating: "b", count: 493)
        let mail: [(String, String)] = [
            ("RET=PARTIAL", "501 5.5.4"), ("RET", "501 5.5.4"), ("RET=FULL RET=HDRS", "501 5.5.4"),
            ("ENVID=a+2", "501 5.5.4"), ("ENVID=a+2b", "501 5.5.4"), ("ENVID=a+ZZ", "501 5.5.4"), ("ENVID", "501 5.5.4"),
            ("ENVID=a+0D+0A", "501 5.5.4"), ("ENVID=\(longID)", "501 5.5.4"), ("ENVID=x ENVID=y", "501 5.5.4"),
            ("ENVID=\(okID)", "250 2.1.0"), ("ENVID=+41+42", "250 2.1.0"),
        ]
        for (params, code) in mail {
            let glue = submit("MAIL FROM:<alice@example.org> \(params)\r\n")
            XCTAssertEqual(afterAuth(glue), [code], params)
        }
        let rcpt: [(String, String)] = [
            ("NOTIFY=NEVER,SUCCESS", "501 5.5.4"), ("NOTIFY=SUCCESS,NEVER", "501 5.5.4"), ("NOTIFY=SUCCESS,SUCCESS", "501 5.5.4"),
            ("NOTIFY=BOGUS", "501 5.5.4"), ("NOTIFY=SUCCESS,", "501 5.5.4"), ("NOTIFY", "501 5.5.4"),
            ("NOTIFY=DELAY NOTIFY=FAILURE", "501 5.5.4"),
            ("ORCPT=rfc822", "501 5.5.4"), ("ORCPT=;x@y", "501 5.5.4"), ("ORCPT=rfc822;", "501 5.5.4"),
            ("ORCPT=rfc 822;x", "501 5.5.4"), ("ORCPT=rfc822;x+4", "501 5.5.4"), ("ORCPT=rfc822;x+00", "501 5.5.4"),
            ("ORCPT=\(longOrcpt)", "501 5.5.4"), ("ORCPT=rfc822;a ORCPT=rfc822;b", "501 5.5.4"),
            ("ORCPT=\(okOrcpt)", "250 2.1.5"), ("NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+2Bt@remote.example", "250 2.1.5"),
            ("FOO=1", "555 5.5.4"),
        ]
        for (params, code) in rcpt {
            let glue = submit("MAIL FROM:<alice@example.org>\r\nRCPT TO:<x@remote.example> \(params)\r\n")
            XCTAssertEqual(afterAuth(glue), ["250 2.1.0", code], params)
            if code != "250 2.1.5" { XCTAssertEqual(glue.session.envelope?.recipients, [], params) }
        }
    }

    /// RFC 6533 §3: in an SMTPUTF8 transaction a "utf-8" ORCPT may carry UTF-8 as it is.
    func testUTF8OriginalRecipient() {
        let table: [(String, String, String?)] = [
            ("MAIL FROM:<alice@example.org> SMTPUTF8", "ORCPT=utf-8;jürgen@exämple.org", "utf-8;jürgen@exämple.org"),
            ("MAIL FROM:<alice@example.org> SMTPUTF8", "ORCPT=UTF-8;j\\x{FC}rgen@ü.example", "UTF-8;j\\x{FC}rgen@ü.example"),
            ("MAIL FROM:<alice@example.org> SMTPUTF8", "ORCPT=utf-8;jü+rgen@x.example", nil),
            ("MAIL FROM:<alice@example.org> SMTPUTF8", "ORCPT=utf-8;jü\\x{Z}@x.example", nil),
            ("MAIL FROM:<alice@example.org> SMTPUTF8", "ORCPT=rfc822;jürgen@x.example", nil),     // rfc822 stays xtext
            ("MAIL FROM:<alice@example.org>", "ORCPT=utf-8;jürgen@exämple.org", nil),            // not an SMTPUTF8 transaction
            ("MAIL FROM:<alice@example.org>", "ORCPT=utf-8;j\\x{FC}rgen@x.example", "utf-8;j\\x{FC}rgen@x.example"),
        ]
        for (mail, orcpt, expected) in table {
            let glue = submit("\(mail)\r\nRCPT TO:<x@remote.example> \(orcpt)\r\n")
            XCTAssertEqual(afterAuth(glue), ["250 2.1.0", expected == nil ? "501 5.5.4" : "250 2.1.5"], orcpt)
            XCTAssertEqual(glue.session.envelope?.dsn(ofRecipient: 0).originalRecipient, expected, orcpt)
        }
    }

    /// Where DSN is not advertised (port 25, LMTP, after HELO) the parameters stay unknown: 555.
    func testRefusedWithoutTheExtension() {
        let mta = transcriptBothWays(smtpdConfig(.mta), [
            "EHLO c\r\nMAIL FROM:<a@remote.example> RET=HDRS\r\nMAIL FROM:<a@remote.example> ENVID=x\r\n" +
            "MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org> NOTIFY=NEVER\r\nRCPT TO:<alice@example.org> ORCPT=rfc822;a@b\r\n",
        ])
        XCTAssertEqual(Array(mta.codes.dropFirst()), ["555 5.5.4", "555 5.5.4", "250 2.1.0", "555 5.5.4", "555 5.5.4"])
        let lmtp = transcriptBothWays(lmtpConfig(), ["LHLO c\r\nMAIL FROM:<a@remote.example> RET=FULL\r\n" +
                                                      "MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org> NOTIFY=SUCCESS\r\n"])
        XCTAssertEqual(Array(lmtp.codes.dropFirst()), ["555 5.5.4", "250 2.1.0", "555 5.5.4"])
        let helo = transcriptBothWays(smtpdConfig(.smtps), ["HELO c\r\nAUTH PLAIN x\r\n"])
        XCTAssertEqual(helo.codes, ["250", "503 5.5.1"], "AUTH needs EHLO, so DSN after HELO cannot arise on submission")
    }
}
