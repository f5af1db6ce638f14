// [lookup]: lookupd (DESIGN §4), Postfix tcp_table listeners, one map each, and socketmap
// listeners serving every map by name. No listener configured: the service does not run.

public struct LookupConfig: Sendable, Equatable {
    public var service = ServiceConfig()
    public var tcpTable: [String: [ListenAddress]] = [:]   // map name → listeners
    public var socketmap: [ListenAddress] = []
    public var idleTimeout = 60                            // seconds without a request
    public var requestTimeout = 5.0                        // seconds to wait for the store; then TEMP/400
    public var maxKeyLength = 1024
    public var maxRequestLength = 4096
    public static let maps = ["recipients", "aliases", "domains", "senders"]
    public var enabled: Bool { !socketmap.isEmpty || tcpTable.values.contains { !$0.isEmpty } }

    public init() {}
}

extension LookupConfig: ConfigSection {
    mutating func read(_ l: TableReader, _ context: ConfigContext) throws {
        service = try l.service(default: service, runDir: context.runDir, listen: false)
        socketmap = try l.addresses("socketmap", runDir: context.runDir) ?? socketmap
        idleTimeout = try l.int("idle_timeout", 1...86_400) ?? idleTimeout
        requestTimeout = try l.seconds("request_timeout") ?? requestTimeout
        maxKeyLength = try l.int("max_key_length", 16...65_536) ?? maxKeyLength
        maxRequestLength = try l.int("max_request_length", 64...1_048_576) ?? maxRequestLength
        if let t = try l.table("tcp_table") {
            for map in LookupConfig.maps {
                if let a = try t.addresses(map, runDir: context.runDir) { tcpTable[map] = a }
            }
            try t.finish()
        }
    }
}
