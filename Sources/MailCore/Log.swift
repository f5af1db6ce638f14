// One line per event to stderr: "<process>[<pid>] <level> [session] message key=value".
// journald adds timestamps under systemd; POSTERN_LOG_TIME=1 adds them for foreground runs.
import Foundation
import Logging

public struct PosternLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let process: String
    static let withTime = ProcessInfo.processInfo.environment["POSTERN_LOG_TIME"] == "1"
    nonisolated(unsafe) static let timeFormat = ISO8601DateFormatter()   // thread-safe; made once
    private static let lock = NSLock()

    public init(process: String, level: Logger.Level) { self.process = process; self.logLevel = level }
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] } set { metadata[key] = newValue }
    }
    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var all = metadata
        if let extra { all.merge(extra) { $1 } }
        var out = ""
        if Self.withTime {
            out += Self.timeFormat.string(from: Date()) + " "
        }
        out += "\(process)[\(getpid())] \(level): "
        if let sid = all.removeValue(forKey: "session") { out += "[\(sid)] " }
        out += message.description
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { out += " \(k)=\(v)" }
        out += "\n"
        Self.lock.lock(); defer { Self.lock.unlock() }
        FileHandle.standardError.write(out.data(using: .utf8)!)
    }
}

public enum PosternLog {
    private static let once = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false
    /// Call once at process start.
    public static func bootstrap(process: String, level: Logger.Level) {
        once.lock(); defer { once.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { _ in PosternLogHandler(process: process, level: level) }
    }
}

/// Short random session ids for log correlation ("1JEOCJF37B": base 36, upper case — the
/// fail2ban filter in docs/fail2ban.md matches [0-9A-Z]+).
public func newSessionID() -> String {
    String(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff, radix: 36).uppercased()
}
