// The outbound agent's line of the service table: spawned only when [outbound] enabled, one
// process, role outbound, the worker user, no listener, no TLS ticket keys.
import XCTest
import MailCore
import MailIPC
@testable import MasterCore

final class ServiceTableOutboundTests: XCTestCase {
    func testSpawnedWhenEnabledWithoutListeners() throws {
        var c = try PosternConfig.parse("[users]\nworker = \"mailer\"\nstore = \"mailstore\"\n[outbound]\nconcurrency = 40\n", path: "/p.toml")
        let spec = try XCTUnwrap(ServiceTable.specs(from: c).first { $0.name == "outbound" })
        XCTAssertEqual(spec, ServiceSpec(name: "outbound", executable: "outbound", role: .outbound, user: "mailer", processes: 1,
                                         listeners: [], tls: false, grace: c.master.shutdownGrace))
        XCTAssertTrue(ServiceTable.workerExecutables.contains("outbound"))
        c.outbound.enabled = false
        XCTAssertNil(ServiceTable.specs(from: c).first { $0.name == "outbound" })
    }
}
