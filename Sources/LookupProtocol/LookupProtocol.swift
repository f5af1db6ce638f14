// Postfix lookup-table protocols, as pure values: tcp_table(5) lines with %XX encoding and
// socketmap_table(5) netstrings. Decoders take bytes, return requests or "need more" and how
// many bytes they used (so a caller consumes from the front without copying), and enforce
// named limits; encoders build replies. No sockets here.

/// The maps lookupd serves (DESIGN §4).
public enum LookupMap: String, Sendable, CaseIterable {
    case recipients     // does this address exist here? value "OK" (virtual_mailbox_maps, relay_recipient_maps)
    case aliases        // alias targets, comma-separated (virtual_alias_maps)
    case domains        // is this one of our domains? (virtual_mailbox_domains)
    case senders        // address → owning login(s) (smtpd_sender_login_maps)
}

public enum LookupAnswer: Sendable, Equatable {
    case found(String)
    case notFound
    case temporary(String)
    case permanent(String)
}

public struct LookupLimits: Sendable, Equatable {
    public var maxKeyLength: Int
    public var maxRequestLength: Int
    public init(maxKeyLength: Int = 1024, maxRequestLength: Int = 4096) {
        self.maxKeyLength = maxKeyLength; self.maxRequestLength = maxRequestLength
    }

    /// Bytes of the netstring framing around a request: up to `SocketMap.maxLengthDigits`
    /// digits, ":" and "," (a tcp_table line's CRLF is shorter).
    public static let framingOverhead = SocketMap.maxLengthDigits + 2

    /// The longest complete request on the wire. A buffer holding this many bytes always
    /// decodes to a request or a refusal, never to "need more bytes": a reader may stop
    /// reading there without stalling the session.
    public var maxBufferedRequest: Int { maxRequestLength + Self.framingOverhead }
}

public enum DecodeResult<T: Sendable & Equatable>: Sendable, Equatable {
    case request(T)
    case needMoreBytes
    case invalid(String)        // answer with an error; for socketmap the stream is then closed
}

// MARK: - tcp_table

/// tcp_table(5): "get SPACE key NEWLINE" and "put SPACE key SPACE value NEWLINE"; replies
/// "200 SPACE value", "400 SPACE reason" (try again), "500 SPACE reason" (not found / error).
public enum TCPTable {
    public enum Request: Sendable, Equatable { case get(String), put(String, String) }

    /// Takes one line from the front of `buffer` (consuming it) and parses it. An over-long
    /// line is answered once: `discarding` then swallows the rest of it, up to its newline.
    public static func decode(_ buffer: inout [UInt8], discarding: inout Bool, limits: LookupLimits) -> DecodeResult<Request> {
        let (result, consumed) = decode(prefixOf: buffer, discarding: &discarding, limits: limits)
        buffer.removeFirst(consumed)
        return result
    }

    /// Parses one line from the front of `bytes` and says how many bytes it used (the line and
    /// its newline, or what `discarding` swallowed); the caller drops them.
    public static func decode<C: BidirectionalCollection>(prefixOf bytes: C, discarding: inout Bool,
                                             limits: LookupLimits) -> (DecodeResult<Request>, consumed: Int) where C.Element == UInt8 {
        var start = bytes.startIndex
        var consumed = 0
        if discarding {
            guard let nl = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return (.needMoreBytes, bytes.count) }
            start = bytes.index(after: nl)
            consumed = bytes.distance(from: bytes.startIndex, to: start)
            discarding = false
        }
        let rest = bytes[start...]
        guard let nl = rest.firstIndex(of: UInt8(ascii: "\n")) else {
            // A trailing CR may be the first half of the CRLF, which does not count (below).
            let pending = rest.count - (rest.last == UInt8(ascii: "\r") ? 1 : 0)
            if pending > limits.maxRequestLength { discarding = true; return (.invalid("request too long"), bytes.count) }
            return (.needMoreBytes, consumed)
        }
        consumed = bytes.distance(from: bytes.startIndex, to: nl) + 1
        var line = bytes[start..<nl]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return (parse(line, limits: limits), consumed)
    }

    /// One request line without its line end.
    static func parse<S: Collection>(_ line: S, limits: LookupLimits) -> DecodeResult<Request> where S.Element == UInt8 {
        if line.count > limits.maxRequestLength { return .invalid("request too long") }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let verb = parts.first.map({ String(decoding: $0, as: UTF8.self).lowercased() }) else { return .invalid("empty request") }
        switch (verb, parts.count) {
        case ("get", 2):
            guard let key = percentDecode(parts[1]) else { return .invalid("bad %-encoding") }
            guard !key.isEmpty, key.utf8.count <= limits.maxKeyLength else { return .invalid(key.isEmpty ? "empty key" : "key too long") }
            guard !key.utf8.contains(0) else { return .invalid("NUL in key") }   // %00: never a shorter key
            return .request(.get(key))
        case ("put", 3):
            guard let k = percentDecode(parts[1]), let v = percentDecode(parts[2]) else { return .invalid("bad %-encoding") }
            return .request(.put(k, v))
        default:
            return .invalid("unknown request")
        }
    }

    /// Stateless form, for a single complete buffer.
    public static func decode(_ buffer: inout [UInt8], limits: LookupLimits) -> DecodeResult<Request> {
        var discarding = false
        return decode(&buffer, discarding: &discarding, limits: limits)
    }

    public static func encode(_ answer: LookupAnswer) -> [UInt8] {
        switch answer {
        case .found(let v): return Array("200 ".utf8) + percentEncode(v) + [10]
        case .notFound: return Array("500 not found\n".utf8)
        case .temporary(let r): return Array("400 ".utf8) + percentEncode(r) + [10]
        case .permanent(let r): return Array("500 ".utf8) + percentEncode(r) + [10]
        }
    }

    /// %XX decoding (tcp_table(5)): anything may be encoded; a bare "%" not followed by two hex digits is an error.
    public static func percentDecode<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
        var out: [UInt8] = []; out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        func hex(_ c: UInt8) -> UInt8? {
            switch c { case 48...57: return c - 48; case 65...70: return c - 55; case 97...102: return c - 87; default: return nil }
        }
        while i != bytes.endIndex {
            let c = bytes[i]
            if c == UInt8(ascii: "%") {
                let a = bytes.index(after: i)
                guard a != bytes.endIndex else { return nil }
                let b = bytes.index(after: a)
                guard b != bytes.endIndex, let h = hex(bytes[a]), let l = hex(bytes[b]) else { return nil }
                out.append(h << 4 | l)
                i = bytes.index(after: b)
            } else {
                out.append(c); i = bytes.index(after: i)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// Encodes whitespace, "%", control characters and non-ASCII bytes as %XX, as Postfix's
    /// tcp_table client expects of the server.
    public static func percentEncode(_ s: String) -> [UInt8] {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for c in s.utf8 {
            if c <= 32 || c >= 127 || c == UInt8(ascii: "%") {
                out += [UInt8(ascii: "%"), digits[Int(c >> 4)], digits[Int(c & 15)]]
            } else { out.append(c) }
        }
        return out
    }
}

// MARK: - socketmap

/// socketmap_table(5) (the Sendmail socket map): netstrings "LEN:name SPACE key," in both
/// directions; replies "OK value", "NOTFOUND ", "TEMP reason", "TIMEOUT reason", "PERM reason".
public enum SocketMap {
    public struct Request: Sendable, Equatable { public var map: String; public var key: String }

    /// Netstring length digits at most (a length over `maxRequestLength` is refused sooner).
    public static let maxLengthDigits = 10

    /// Takes one netstring from the front of `buffer` (consuming it) and parses it.
    public static func decode(_ buffer: inout [UInt8], limits: LookupLimits) -> DecodeResult<Request> {
        let (result, consumed) = decode(prefixOf: buffer, limits: limits)
        buffer.removeFirst(consumed)
        return result
    }

    /// Parses one netstring from the front of `bytes` and says how many bytes it used (0 unless
    /// a whole netstring was there; after `.invalid` the stream cannot be resynchronised).
    public static func decode<C: Collection>(prefixOf bytes: C, limits: LookupLimits) -> (DecodeResult<Request>, consumed: Int) where C.Element == UInt8 {
        // netstring: [1-9][0-9]* ":" bytes ","  (or "0:,")
        var i = bytes.startIndex, digits = 0, length = 0
        while i != bytes.endIndex, (48...57).contains(bytes[i]) {
            length = length * 10 + Int(bytes[i] - 48)
            i = bytes.index(after: i); digits += 1
            if length > limits.maxRequestLength || digits > maxLengthDigits { return (.invalid("netstring too long"), 0) }
        }
        if i == bytes.endIndex { return (.needMoreBytes, 0) }
        guard digits > 0, bytes[i] == UInt8(ascii: ":"), !(digits > 1 && bytes[bytes.startIndex] == 48) else { return (.invalid("bad netstring length"), 0) }
        let start = bytes.index(after: i)
        guard let end = bytes.index(start, offsetBy: length, limitedBy: bytes.endIndex), end != bytes.endIndex else { return (.needMoreBytes, 0) }
        guard bytes[end] == UInt8(ascii: ",") else { return (.invalid("netstring not terminated by ','"), 0) }
        let consumed = bytes.distance(from: bytes.startIndex, to: end) + 1
        let body = bytes[start..<end]
        guard let sp = body.firstIndex(of: UInt8(ascii: " ")) else { return (.invalid("no map name"), consumed) }
        guard let map = String(validating: body[..<sp], as: UTF8.self), !map.isEmpty,
              let key = String(validating: body[body.index(after: sp)...], as: UTF8.self) else { return (.invalid("invalid UTF-8"), consumed) }
        guard !key.isEmpty, key.utf8.count <= limits.maxKeyLength else { return (.invalid(key.isEmpty ? "empty key" : "key too long"), consumed) }
        guard !key.utf8.contains(0) else { return (.invalid("NUL in key"), consumed) }       // never a shorter key
        return (.request(Request(map: map, key: key)), consumed)
    }

    public static func encode(_ answer: LookupAnswer) -> [UInt8] {
        let text: String
        switch answer {
        case .found(let v): text = "OK \(v)"
        case .notFound: text = "NOTFOUND "
        case .temporary(let r): text = "TEMP \(r)"
        case .permanent(let r): text = "PERM \(r)"
        }
        return netstring(Array(text.utf8))
    }

    public static func netstring(_ b: [UInt8]) -> [UInt8] { Array("\(b.count):".utf8) + b + [UInt8(ascii: ",")] }
}
