// The config is the one source of the SMTP engine's defaults: SMTPLimits built from the
// default [smtp] and [lmtp] sections equal the engine's own defaults, but where documented.
import MailCore
import SMTPProtocol
import SMTPServer
import XCTest

final class SMTPLimitsConfigTests: XCTestCase {
    let defaults = PosternConfig.defaults(path: "/etc/postern/postern.toml")

    func testSMTPDefaultsAreTheEngineDefaults() {
        var fromConfig = SMTPLimits(defaults.smtp)
        // The one difference, documented at SMTPConfig.maxLineLength: the engine keeps RFC 5321's 1000.
        XCTAssertEqual(fromConfig.maxTextLine, 65_536)
        XCTAssertEqual(SMTPLimits().maxTextLine, 1000)
        fromConfig.maxTextLine = SMTPLimits().maxTextLine
        XCTAssertEqual(fromConfig, SMTPLimits())
    }

    func testLMTPDefaultsAreTheEngineLMTPDefaults() {
        XCTAssertEqual(SMTPLimits(defaults.lmtp), SMTPLimits.lmtp)
    }

    func testConfiguredValuesReachTheEngine() throws {
        let c = try PosternConfig.parse("""
            [smtp]
            max_command_line = 1024
            max_line_length = 2000
            max_message_size = 2048
            max_recipients = 7
            max_errors = 3
            max_auth_failures = 2
            bare_linefeed = "normalize"
            """, path: "/etc/postern/postern.toml")
        XCTAssertEqual(SMTPLimits(c.smtp), SMTPLimits(maxCommandLine: 1024, maxTextLine: 2000, maxMessageSize: 2048,
                                                       maxRecipients: 7, maxErrors: 3, maxAuthFailures: 2))
        XCTAssertEqual(BareLinefeedPolicy(c.smtp.bareLinefeed), .normalize)
        XCTAssertEqual(BareLinefeedPolicy(c.lmtp.bareLinefeed), .reject)
    }
}
