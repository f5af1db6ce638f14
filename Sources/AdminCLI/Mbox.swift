// mboxrd output (RFC 4155 and the "mboxrd" convention): a "From " separator line, body bytes
// unchanged except that lines matching ^>*From  get one more ">", and an empty line after each
// message. Line ends inside the body are kept exactly as stored (CRLF).
import Foundation
import MailIPC

public struct MboxWriter {
    var message: [UInt8] = []
    var header: [UInt8] = []
    var open = false
    let out = FileHandle.standardOutput

    public init() {}

    /// The asctime-style date of a "From " line, in UTC.
    static let fromLineDate: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE MMM dd HH:mm:ss yyyy"
        return f
    }()

    public mutating func begin(_ meta: ExportedMessage) {
        end()
        let f = Self.fromLineDate
        let sender = meta.sender.isEmpty ? "MAILER-DAEMON" : meta.sender
        header = Array("From \(sender) \(f.string(from: Date(timeIntervalSince1970: TimeInterval(meta.internalDate))))\n".utf8)
        message = []
        open = true
    }

    public mutating func body(_ bytes: [UInt8]) { message += bytes }

    /// Writes the message begun last, if any.
    public mutating func end() {
        guard open else { return }
        out.write(Data(Self.escape(header: header, body: message)))
        open = false; message = []; header = []
    }

    /// The mboxrd form of one message.
    public static func escape(header: [UInt8], body: [UInt8]) -> [UInt8] {
        var out = header
        out.reserveCapacity(header.count + body.count + 64)
        let from = Array("From ".utf8)
        var i = 0
        while i < body.count {
            var j = i
            while j < body.count && body[j] == UInt8(ascii: ">") { j += 1 }
            if body.count - j >= from.count && Array(body[j..<j + from.count]) == from { out.append(UInt8(ascii: ">")) }
            let nl = body[i...].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? body.count
            out += body[i..<nl]
            i = nl
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }
}
