// One line per event to stderr: "<process>[<pid>] <level> [session] message key=value".
// Under journald (JOURNAL_STREAM names our stderr) each line starts with its sd-daemon(3)
// priority ("<3>") and carries no time of its own; POSTERN_LOG_TIME=1 adds one for foreground
// runs. Every line is escaped here (LogEscape), so no client-chosen text can split it or forge a pair.
import Foundation
import Logging

/// How lines are framed for their reader: decided once per process from the environment and
/// stderr (`detect`), injectable for tests.
public struct LogFormat: Sendable, Equatable {
    /// Lines start with "<N>", the syslog priority journald reads (sd-daemon(3)).
    public var journald: Bool
    /// Lines start with an ISO 8601 time (never under journald: it stamps every line itself).
    public var withTime: Bool
    public init(journald: Bool, withTime: Bool) { self.journald = journald; self.withTime = withTime && !journald }

    /// Plain lines, no priority, no time.
    public static let plain = LogFormat(journald: false, withTime: false)
    public static let envJournalStream = "JOURNAL_STREAM"
    public static let envLogTime = "POSTERN_LOG_TIME"

    /// systemd.exec(5) JOURNAL_STREAM: "DEVICE:INODE" (decimal) of the stream stdout/stderr is
    /// connected to. It counts only while it names our stderr (`stderr`: fstat's st_dev, st_ino):
    /// a process whose stderr was redirected elsewhere keeps the variable but must not use prefixes.
    public static func detect(environment env: [String: String], stderr: (dev: UInt64, ino: UInt64)?) -> LogFormat {
        var journald = false
        if let v = env[envJournalStream], let st = stderr {
            let parts = v.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) { journald = dev == st.dev && ino == st.ino }
        }
        return LogFormat(journald: journald, withTime: env[envLogTime] == "1")
    }

    /// This process's format: its environment and fstat(2) of fd 2.
    public static func current() -> LogFormat {
        var st = stat()
        let id: (dev: UInt64, ino: UInt64)? = fstat(2, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
        return detect(environment: ProcessInfo.processInfo.environment, stderr: id)
    }

    /// sd-daemon(3) / syslog(3) priorities: 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: return 2
        case .error: return 3
        case .warning: return 4
        case .notice: return 5
        case .info: return 6
        case .debug, .trace: return 7
        }
    }
}

public struct PosternLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let process: String
    /// Where finished lines go: standard error, unless a test captures them.
    let sink: @Sendable (String) -> Void
    let format: LogFormat
    public static let processFormat = LogFormat.current()   // made once
    nonisolated(unsafe) static let timeFormat = ISO8601DateFormatter()   // thread-safe; made once
    private static let lock = NSLock()

    public init(process: String, level: Logger.Level, format: LogFormat = PosternLogHandler.processFormat,
                sink: @escaping @Sendable (String) -> Void = PosternLogHandler.standardError) {
        self.process = process; self.logLevel = level; self.format = format; self.sink = sink
    }
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] } set { metadata[key] = newValue }
    }
    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        sink(self.line(level: level, message: message, metadata: extra))
    }

    /// The whole line, newline included: every piece the caller gave goes through LogEscape, so
    /// the line holds exactly one "\n" (its end) and one " key=value" per metadata entry.
    public func line(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?) -> String {
        var all = metadata
        if let extra { all.merge(extra) { $1 } }
        var out = ""
        if format.journald {
            out += "<\(LogFormat.priority(level))>"
        } else if format.withTime {
            out += Self.timeFormat.string(from: Date()) + " "
        }
        out += "\(process)[\(getpid())] \(level): "
        if let sid = all.removeValue(forKey: "session") { out += "[\(LogEscape.text("\(sid)"))] " }
        out += LogEscape.text(message.description)
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { out += " \(LogEscape.text(k))=\(LogEscape.value("\(v)"))" }
        return out + "\n"
    }

    @Sendable public static func standardError(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardError.write(line.data(using: .utf8)!)
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

/// The escaping every log line goes through (PosternLogHandler applies it to the message, the
/// session id, each metadata key and value), so no call site can forget it and no client-chosen
/// text (HELO, addresses, AUTH names, SNI, lookup keys, command text) can start a line of its own
/// or add a `key=value` pair:
/// - `\` → `\\`, so every backslash in a line starts an escape and the escapes are unambiguous;
/// - LF, CR, TAB → `\n`, `\r`, `\t`; the other C0 controls and DEL → `\xNN` (two lower-case hex
///   digits, e.g. NUL `\x00`, ESC `\x1b`);
/// - C1 controls (U+0080–U+009F, incl. NEL), the line and paragraph separators U+2028/U+2029 and
///   the bidirectional and invisible format controls (U+200B–U+200F, U+202A–U+202E,
///   U+2060–U+2069, U+FEFF) → `\uXXXX`;
/// - a metadata value holding any whitespace (after the above: a space or a Unicode space such as
///   U+00A0), `=` or `"` is put in double quotes, with `"` inside written `\"`. Other values,
///   the empty one included, are written bare, as before.
/// Everything else (printable ASCII, other Unicode) is kept as it is.
public enum LogEscape {
    /// Message text and keys: escapes, no quoting.
    public static func text(_ s: String) -> String {
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C }) { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for u in s.unicodeScalars { append(u, to: &out, quoting: false) }
        return out
    }

    /// A metadata value: escaped as `text`, then quoted when it holds whitespace, `=` or `"`.
    public static func value(_ s: String) -> String {
        let quote = s.unicodeScalars.contains { $0 == "=" || $0 == "\"" || $0.properties.isWhitespace }
        guard quote else { return text(s) }
        var out = "\""
        out.reserveCapacity(s.utf8.count + 10)
        for u in s.unicodeScalars { append(u, to: &out, quoting: true) }
        return out + "\""
    }

    private static let hex = Array("0123456789abcdef")

    private static func append(_ u: Unicode.Scalar, to out: inout String, quoting: Bool) {
        switch u.value {
        case 0x5C: out += "\\\\"
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0x22 where quoting: out += "\\\""
        case 0x00...0x1F, 0x7F:
            out += "\\x" + String(hex[Int(u.value >> 4)]) + String(hex[Int(u.value & 15)])
        case 0x80...0x9F, 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2069, 0xFEFF:
            out += "\\u"
            for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[Int((u.value >> UInt32(shift)) & 15)]) }
        default: out.unicodeScalars.append(u)
        }
    }
}
