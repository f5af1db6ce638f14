// The master's open-file limit (FileLimit): raised to the hard limit, never lowered, and what
// the configuration asks for; checked on this process's real limits too.
import Foundation
import XCTest
import Logging
import MailCore
@testable import MasterCore

final class FileLimitTests: XCTestCase {
    func testRaisedToTheHardLimitNeverLowered() {
        let cases: [(soft: UInt64, hard: UInt64, wanted: UInt64, expect: UInt64)] = [
            (1024, 524_288, 1088, 524_288),                 // systemd's default soft 1024, hard 512 Ki
            (20_000, 20_000, 10_164, 20_000),               // already at the hard limit
            (65_536, 65_536, 100_064, 65_536),              // the hard limit is below the wish: kept
            (4096, FileLimit.infinity, 10_164, 10_164),  // no hard limit: as much as wanted
            (50_000, FileLimit.infinity, 1088, 50_000),  // never lowered
        ]
        for c in cases {
            XCTAssertEqual(FileLimit.raised(soft: c.soft, hard: c.hard, wanted: c.wanted), c.expect, "\(c)")
        }
    }

    func testWantedFollowsTheLargestConnectionCap() {
        var c = PosternConfig.defaults(path: "/p.toml")
        XCTAssertEqual(FileLimit.wanted(c), 1024 + FileLimit.spare)
        c.imap.service.maxConnections = 10_100
        XCTAssertEqual(FileLimit.wanted(c), 10_100 + FileLimit.spare)
    }

    func testRaiseReachesTheHardLimit() {
        var before = rlimit()
        XCTAssertEqual(getrlimit(FileLimit.resource, &before), 0)
        FileLimit.raise(PosternConfig.defaults(path: "/p.toml"), logger: .init(label: "test"))
        var after = rlimit()
        XCTAssertEqual(getrlimit(FileLimit.resource, &after), 0)
        XCTAssertEqual(after.rlim_max, before.rlim_max)
        XCTAssertEqual(after.rlim_cur, UInt64(before.rlim_max) == FileLimit.infinity ? max(before.rlim_cur, rlim_t(FileLimit.wanted(PosternConfig.defaults(path: "/p.toml")))) : before.rlim_max)
    }
}
