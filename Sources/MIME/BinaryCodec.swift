// Compact binary form of MessageInfo for the store's SQLite BLOB column, with a strict decoder
// that rejects unknown versions, truncation, trailing bytes, overlong integers and invalid UTF-8.
//
// Format, version 1 (all integers LEB128; `int` is zigzag-LEB128 so any Int round-trips):
//   MessageInfo := 0x01 int(size) int(headerSize) int(lines) Envelope BodyPart
//   Envelope    := ostr(date) ostr(subject) alist(from) alist(sender) alist(replyTo)
//                  alist(to) alist(cc) alist(bcc) ostr(inReplyTo) ostr(messageID)
//   alist       := uvar(n) n×(ostr(name) ostr(adl) ostr(mailbox) ostr(host))
//   BodyPart    := str(type) str(subtype) plist ostr(id) ostr(description) str(encoding)
//                  ostr(disposition) plist olist(language) ostr(location) ostr(md5)
//                  int(headerStart) int(bodyStart) int(bodyEnd) int(lines)
//                  uvar(n) n×BodyPart  (0x00 | 0x01 Envelope BodyPart)   -- message
//   plist       := uvar(n) n×(uvar(m) m×str)
//   olist       := 0x00 (nil) | uvar(m+1) m×str
//   str         := uvar(len) bytes(UTF-8);  ostr := 0x00 (nil) | uvar(len+1) bytes

/// Why `MessageInfo(encoded:)` rejected its input; `offset` is where decoding stopped.
public enum MessageInfoDecodingError: Error, Sendable, Equatable {
    case unsupportedVersion(UInt8)
    case truncated(offset: Int)
    case trailingBytes(offset: Int)
    case malformedInteger(offset: Int)
    case invalidUTF8(offset: Int)
    case invalidFlag(offset: Int)
    case tooDeep(offset: Int)
}

extension MessageInfo {
    /// Current format version written by `encoded()`.
    public static let encodingVersion: UInt8 = 1

    /// Serializes for storage (see the format above). Decoding the result yields an equal value.
    public func encoded() -> [UInt8] {
        var w = BinaryWriter()
        w.out.reserveCapacity(256)
        w.out.append(MessageInfo.encodingVersion)
        w.int(size)
        w.int(headerSize)
        w.int(lines)
        w.envelope(envelope)
        w.bodyPart(body)
        return w.out
    }

    /// Strict inverse of `encoded()`.
    public init(encoded bytes: [UInt8]) throws { try self.init(encoded: bytes, envelope: true) }

    /// With `envelope` false the envelope is stepped over (its lengths checked, no string made)
    /// and left empty: FETCH of BODYSTRUCTURE or body sections of many messages needs the rest.
    public init(encoded bytes: [UInt8], envelope: Bool) throws {
        var r = BinaryReader(bytes: bytes)
        let v = try r.byte()
        guard v == MessageInfo.encodingVersion else { throw MessageInfoDecodingError.unsupportedVersion(v) }
        let size = try r.int()
        let headerSize = try r.int()
        let lines = try r.int()
        let env = envelope ? try r.envelope() : try r.skipEnvelope()
        let body = try r.bodyPart(depth: 0)
        guard r.i == bytes.count else { throw MessageInfoDecodingError.trailingBytes(offset: r.i) }
        self.init(size: size, headerSize: headerSize, lines: lines, envelope: env, body: body)
    }

    /// The header size and envelope of an encoding, the body structure after them not read
    /// (SORT and THREAD over a whole mailbox need nothing else).
    public static func envelope(encoded bytes: [UInt8]) throws -> (headerSize: Int, envelope: Envelope) {
        var r = BinaryReader(bytes: bytes)
        let v = try r.byte()
        guard v == MessageInfo.encodingVersion else { throw MessageInfoDecodingError.unsupportedVersion(v) }
        _ = try r.int()
        let headerSize = try r.int()
        _ = try r.int()
        return (headerSize, try r.envelope())
    }
}

struct BinaryWriter {
    var out: [UInt8] = []

    mutating func uvar(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func int(_ v: Int) {
        let x = Int64(v)
        uvar(UInt64(bitPattern: (x << 1) ^ (x >> 63)))
    }

    mutating func str(_ s: String) {
        var s = s
        s.withUTF8 { u in
            uvar(UInt64(u.count))
            out.append(contentsOf: u)
        }
    }

    mutating func ostr(_ s: String?) {
        guard var s else {
            out.append(0)
            return
        }
        s.withUTF8 { u in
            uvar(UInt64(u.count) + 1)
            out.append(contentsOf: u)
        }
    }

    mutating func addresses(_ list: [Address]) {
        uvar(UInt64(list.count))
        for a in list {
            ostr(a.name)
            ostr(a.adl)
            ostr(a.mailbox)
            ostr(a.host)
        }
    }

    mutating func params(_ p: [[String]]) {
        uvar(UInt64(p.count))
        for entry in p {
            uvar(UInt64(entry.count))
            for s in entry { str(s) }
        }
    }

    mutating func envelope(_ e: Envelope) {
        ostr(e.date)
        ostr(e.subject)
        addresses(e.from)
        addresses(e.sender)
        addresses(e.replyTo)
        addresses(e.to)
        addresses(e.cc)
        addresses(e.bcc)
        ostr(e.inReplyTo)
        ostr(e.messageID)
    }

    mutating func bodyPart(_ p: BodyPart) {
        str(p.type)
        str(p.subtype)
        params(p.parameters)
        ostr(p.id)
        ostr(p.description)
        str(p.encoding)
        ostr(p.disposition)
        params(p.dispositionParameters)
        if let lang = p.language {
            uvar(UInt64(lang.count) + 1)
            for s in lang { str(s) }
        } else {
            out.append(0)
        }
        ostr(p.location)
        ostr(p.md5)
        int(p.headerStart)
        int(p.bodyStart)
        int(p.bodyEnd)
        int(p.lines)
        uvar(UInt64(p.parts.count))
        for c in p.parts { bodyPart(c) }
        if let m = p.message {
            out.append(1)
            envelope(m.envelope)
            bodyPart(m.body)
        } else {
            out.append(0)
        }
    }
}

struct BinaryReader {
    let bytes: [UInt8]
    var i = 0

    /// Deepest BodyPart nesting accepted (the parser produces at most hardMaxDepth + 1 levels).
    static let maxDepth = 2 * MIMELimits.hardMaxDepth + 2

    mutating func byte() throws -> UInt8 {
        guard i < bytes.count else { throw MessageInfoDecodingError.truncated(offset: i) }
        defer { i += 1 }
        return bytes[i]
    }

    /// Canonical unsigned LEB128 of at most 64 bits.
    mutating func uvar() throws -> UInt64 {
        let start = i
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let c = try byte()
            if shift == 63 && c > 1 { throw MessageInfoDecodingError.malformedInteger(offset: start) }
            v |= UInt64(c & 0x7F) << shift
            if c & 0x80 == 0 {
                if c == 0 && shift > 0 { throw MessageInfoDecodingError.malformedInteger(offset: start) } // overlong
                return v
            }
            shift += 7
        }
    }

    mutating func int() throws -> Int {
        let u = try uvar()
        let x = Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
        return Int(x)
    }

    /// A count of following items, each at least one byte long: cannot exceed what is left.
    mutating func count() throws -> Int {
        let at = i
        let n = try uvar()
        guard n <= UInt64(bytes.count - i) else { throw MessageInfoDecodingError.truncated(offset: at) }
        return Int(n)
    }

    mutating func utf8(_ n: Int) throws -> String {
        guard n <= bytes.count - i else { throw MessageInfoDecodingError.truncated(offset: i) }
        let decoded = bytes.withUnsafeBufferPointer { all -> String? in
            let b = UnsafeBufferPointer(rebasing: all[i..<(i + n)])
            // ASCII (nearly every field) is valid as it is: no validating decoder for it.
            if !b.contains(where: { $0 >= 0x80 }) { return String(decoding: b, as: UTF8.self) }
            return String(validating: b, as: UTF8.self)
        }
        guard let s = decoded else { throw MessageInfoDecodingError.invalidUTF8(offset: i) }
        i += n
        return s
    }

    mutating func str() throws -> String {
        let at = i
        let n = try uvar()
        guard n <= UInt64(bytes.count - i) else { throw MessageInfoDecodingError.truncated(offset: at) }
        return try utf8(Int(n))
    }

    mutating func ostr() throws -> String? {
        let at = i
        let n = try uvar()
        if n == 0 { return nil }
        guard n - 1 <= UInt64(bytes.count - i) else { throw MessageInfoDecodingError.truncated(offset: at) }
        return try utf8(Int(n - 1))
    }

    mutating func flag() throws -> Bool {
        let at = i
        switch try byte() {
        case 0: return false
        case 1: return true
        default: throw MessageInfoDecodingError.invalidFlag(offset: at)
        }
    }

    mutating func addresses() throws -> [Address] {
        let n = try count()
        var out: [Address] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            out.append(Address(name: try ostr(), adl: try ostr(), mailbox: try ostr(), host: try ostr()))
        }
        return out
    }

    mutating func params() throws -> [[String]] {
        let n = try count()
        var out: [[String]] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let m = try count()
            var entry: [String] = []
            entry.reserveCapacity(m)
            for _ in 0..<m { entry.append(try str()) }
            out.append(entry)
        }
        return out
    }

    /// Steps over an optional string: its length checked, no string made.
    mutating func skipOstr() throws {
        let at = i
        let n = try uvar()
        guard n > 0 else { return }
        guard n - 1 <= UInt64(bytes.count - i) else { throw MessageInfoDecodingError.truncated(offset: at) }
        i += Int(n - 1)
    }

    /// Steps over an envelope as `envelope()` reads it; an empty one stands for it.
    mutating func skipEnvelope() throws -> Envelope {
        try skipOstr(); try skipOstr()
        for _ in 0..<6 {
            for _ in 0..<(try count()) { for _ in 0..<4 { try skipOstr() } }
        }
        try skipOstr(); try skipOstr()
        return Envelope()
    }

    mutating func envelope() throws -> Envelope {
        Envelope(date: try ostr(), subject: try ostr(), from: try addresses(), sender: try addresses(),
                 replyTo: try addresses(), to: try addresses(), cc: try addresses(), bcc: try addresses(),
                 inReplyTo: try ostr(), messageID: try ostr())
    }

    mutating func bodyPart(depth: Int) throws -> BodyPart {
        guard depth <= BinaryReader.maxDepth else { throw MessageInfoDecodingError.tooDeep(offset: i) }
        var p = BodyPart()
        p.type = try str()
        p.subtype = try str()
        p.parameters = try params()
        p.id = try ostr()
        p.description = try ostr()
        p.encoding = try str()
        p.disposition = try ostr()
        p.dispositionParameters = try params()
        let at = i
        let ln = try uvar()
        if ln == 0 {
            p.language = nil
        } else {
            guard ln - 1 <= UInt64(bytes.count - i) else { throw MessageInfoDecodingError.truncated(offset: at) }
            var lang: [String] = []
            for _ in 0..<Int(ln - 1) { lang.append(try str()) }
            p.language = lang
        }
        p.location = try ostr()
        p.md5 = try ostr()
        p.headerStart = try int()
        p.bodyStart = try int()
        p.bodyEnd = try int()
        p.lines = try int()
        let n = try count()
        var parts: [BodyPart] = []
        parts.reserveCapacity(n)
        for _ in 0..<n { parts.append(try bodyPart(depth: depth + 1)) }
        p.parts = parts
        if try flag() {
            let env = try envelope()
            let body = try bodyPart(depth: depth + 1)
            p.message = EncapsulatedMessage(envelope: env, body: body)
        }
        return p
    }
}
