// 8-bit to 7-bit MIME for a server without 8BITMIME (RFC 6152 §3: convert, or bounce; never
// send 8-bit data raw): every leaf part with 8-bit content is re-encoded quoted-printable
// (base64 for CTE binary) and relabelled; multipart and message parts labelled 8bit become
// 7bit. Pure; nil when the message cannot be converted (8-bit bytes in a header, or anywhere the
// conversion does not reach), and then it must bounce.
import MailSyntax
import MIME

public enum MIMEDowngrade {
    /// RFC 2045 §6.7 (5): encoded lines at most 76 characters.
    static let maxEncodedLine = 76

    /// Whether `message` holds any 8-bit byte (then a server without 8BITMIME needs `sevenBit`).
    public static func needsDowngrade(_ message: [UInt8]) -> Bool { message.contains { $0 >= 0x80 } }

    /// `message` as 7-bit MIME, or nil when it cannot be converted. A message without 8-bit bytes
    /// comes back unchanged. A top-level 8-bit text without MIME headers gains `MIME-Version` and
    /// a text/plain Content-Type (charset utf-8 when it is valid UTF-8, else unknown-8bit, RFC 1428).
    public static func sevenBit(_ message: [UInt8]) -> [UInt8]? {
        guard needsDowngrade(message) else { return message }
        let info = MessageParser.parse(message)
        var edits: [(range: Range<Int>, bytes: [UInt8])] = []
        guard convert(info.body, message, top: true, &edits) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 3)
        var at = 0
        for edit in edits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
            guard edit.range.lowerBound >= at else { return nil }
            out += message[at..<edit.range.lowerBound]
            out += edit.bytes
            at = edit.range.upperBound
        }
        out += message[at...]
        return needsDowngrade(out) ? nil : out
    }

    static func convert(_ part: BodyPart, _ m: [UInt8], top: Bool, _ edits: inout [(range: Range<Int>, bytes: [UInt8])]) -> Bool {
        let header = part.headerStart..<part.bodyStart
        if needsDowngrade(Array(m[header])) { return false }      // would need RFC 2047; not done
        if !part.parts.isEmpty || part.message != nil {
            for child in part.parts where !convert(child, m, top: false, &edits) { return false }
            if let inner = part.message, !convert(inner.body, m, top: true, &edits) { return false }
            if part.encoding == "8bit" || part.encoding == "binary" {
                edits.append((header, relabel(m, header, encoding: "7bit", addMIMEHeaders: nil)))   // RFC 2045 §6.4
            }
            return true
        }
        let body = Array(m[part.bodyStart..<part.bodyEnd])
        guard needsDowngrade(body) else { return true }
        // 8-bit bytes under base64 or quoted-printable: a broken part, not ours to repair.
        guard ["7bit", "8bit", "binary"].contains(part.encoding) else { return false }
        let base64 = part.encoding == "binary"
        var mimeHeaders: [String]? = nil
        if top {
            let charset = ASCII.isValidUTF8(body[...]) ? "utf-8" : "unknown-8bit"
            mimeHeaders = ["MIME-Version: 1.0", "Content-Type: text/plain; charset=\(charset)"]
        }
        edits.append((header, relabel(m, header, encoding: base64 ? "base64" : "quoted-printable", addMIMEHeaders: mimeHeaders)))
        edits.append((part.bodyStart..<part.bodyEnd, base64 ? encodeBase64(body) : quotedPrintable(body)))
        return true
    }

    /// The header `range` without its Content-Transfer-Encoding field, with a new one (and, for a
    /// top-level part, those of `addMIMEHeaders` whose field is missing) before the empty line.
    static func relabel(_ m: [UInt8], _ range: Range<Int>, encoding: String, addMIMEHeaders: [String]?) -> [UInt8] {
        m.withUnsafeBytes { buf in
            var it = HeaderFieldIterator(buf, from: range.lowerBound, to: range.upperBound)
            var out: [UInt8] = []
            var present: Set<String> = []
            while let field = it.next() {
                let name = String(decoding: m[field.name], as: UTF8.self).lowercased()
                present.insert(name)
                if name == "content-transfer-encoding" { continue }
                out += m[field.start..<field.end]
            }
            for line in addMIMEHeaders ?? [] {
                let name = String(line.prefix { $0 != ":" }).lowercased()
                if !present.contains(name) { out += Array("\(line)\r\n".utf8) }
            }
            out += Array("Content-Transfer-Encoding: \(encoding)\r\n".utf8)
            if case .emptyLine = it.end {
                out += m[it.position - (it.position >= 2 && m[it.position - 2] == ASCII.cr ? 2 : 1)..<range.upperBound]
            } else {
                out += [ASCII.cr, ASCII.lf]
            }
            return out
        }
    }

    /// RFC 2045 §6.7: line breaks (CRLF or a bare LF) stay hard breaks; "=", controls and 8-bit
    /// bytes become =XX; a space or tab before a break is encoded; soft breaks keep lines ≤ 76.
    static func quotedPrintable(_ body: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 3 / 2)
        var lineLength = 0
        func emit(_ token: [UInt8]) {
            if lineLength + token.count > maxEncodedLine - 1 {
                out += [ASCII.equals, ASCII.cr, ASCII.lf]
                lineLength = 0
            }
            out += token
            lineLength += token.count
        }
        var i = 0
        while i < body.count {
            let b = body[i]
            if b == ASCII.cr, i + 1 < body.count, body[i + 1] == ASCII.lf { out += [ASCII.cr, ASCII.lf]; lineLength = 0; i += 2; continue }
            if b == ASCII.lf { out += [ASCII.cr, ASCII.lf]; lineLength = 0; i += 1; continue }
            let atLineEnd = i + 1 == body.count || body[i + 1] == ASCII.lf || (body[i + 1] == ASCII.cr && i + 2 < body.count && body[i + 2] == ASCII.lf)
            let literal = (b >= 33 && b <= 126 && b != ASCII.equals) || (ASCII.isWSP(b) && !atLineEnd)
            emit(literal ? [b] : [ASCII.equals, hex[Int(b >> 4)], hex[Int(b & 15)]])
            i += 1
        }
        return out
    }

    /// Base64 in lines of 76 characters (RFC 2045 §6.8).
    static func encodeBase64(_ body: [UInt8]) -> [UInt8] {
        let text = Array(Base64.encode(body).utf8)
        var out: [UInt8] = []
        var i = 0
        while i < text.count {
            out += text[i..<min(i + maxEncodedLine, text.count)]
            i += maxEncodedLine
            if i < text.count { out += [ASCII.cr, ASCII.lf] }
        }
        return out
    }
}
