// The config is the one source of the lookup decoders' defaults: LookupLimits built from the
// default [lookup] section equal LookupLimits().
import LookupProtocol
import LookupServer
import MailCore
import XCTest

final class LookupLimitsConfigTests: XCTestCase {
    func testDefaultsAreTheDecoderDefaults() {
        XCTAssertEqual(LookupLimits(PosternConfig.defaults(path: "/etc/postern/postern.toml").lookup), LookupLimits())
    }

    func testConfiguredValuesReachTheDecoders() throws {
        let c = try PosternConfig.parse("[lookup]\nmax_key_length = 100\nmax_request_length = 200\n", path: "/etc/p.toml")
        XCTAssertEqual(LookupLimits(c.lookup), LookupLimits(maxKeyLength: 100, maxRequestLength: 200))
    }
}
