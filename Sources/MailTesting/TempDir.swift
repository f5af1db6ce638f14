// Temporary directories and files for tests: each TempDir is a fresh mkdtemp directory,
// removed with everything in it when the value goes away.
import Foundation
import MailTLS

/// A temporary directory removed at deinit.
public final class TempDir {
    public let path: String
    public init() {
        var template = Array("/tmp/postern-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    public func file(_ name: String) -> String { "\(path)/\(name)" }

    /// A self-signed pair for `host` at `<name>.crt` / `<name>.key` (our own generator).
    public func pair(_ name: String, host: String) throws -> (cert: String, key: String) {
        let c = file("\(name).crt"), k = file("\(name).key")
        guard try TLSServerContext.ensureSelfSigned(certPath: c, keyPath: k, hostname: host) else {
            throw FixtureError("\(c) existed already: no new pair generated")
        }
        return (c, k)
    }
}

public func writeFile(_ path: String, _ text: String, mode: Int = 0o644) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

/// A fixture that could not be set up.
public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
