// SASL pieces of SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN mechanisms, strict
// base64 (RFC 4648 §4), TLS/auth values that cross the engine/glue boundary, and the
// failure-delay policy. Pure functions; passwords are never logged or echoed by the engine.

/// A SASL mechanism the engine can run. Advertised as "AUTH PLAIN LOGIN" in this order.
public enum SASLMechanism: String, Sendable, Hashable, CaseIterable {
    case plain = "PLAIN"   // RFC 4616
    case login = "LOGIN"   // draft-murchison-sasl-login
}

/// What the glue learned from the TLS handshake, for the Received header (RFC 3848 "S").
public struct TLSInfo: Sendable, Equatable {
    /// e.g. "TLSv1.3"
    public var version: String
    /// e.g. "TLS_AES_256_GCM_SHA384"
    public var cipher: String
    /// Symmetric key bits, if known.
    public var bits: Int?

    public init(version: String, cipher: String, bits: Int? = nil) {
        self.version = version
        self.cipher = cipher
        self.bits = bits
    }

    /// The text for `TraceHeaders.received(tls:)`: "TLSv1.3 with cipher X (256/256 bits)".
    public var receivedText: String {
        var text = "\(version) with cipher \(cipher)"
        if let bits { text += " (\(bits)/\(bits) bits)" }
        return text
    }
}

/// The glue's verdict on `.authenticate`, passed to `SMTPSession.authenticated(_:)`.
public enum AuthResult: Sendable, Equatable {
    /// 235 2.7.0; the string is the canonical user name (e.g. as stored), kept in the session.
    case success(String)
    /// 535 5.7.8; counts towards `SMTPLimits.maxAuthFailures`.
    case failure
    /// 454 4.7.0 (store unreachable etc.); not counted.
    case tempFail
}

/// Delay before the engine answers a failed authentication: `initial * 2^(n-1)` for the n-th
/// failure of the session, capped at `maximum`. The engine asks for it with `.delay` and
/// answers 535 only when the glue calls `delayElapsed()`.
public struct AuthFailureDelay: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// No delay: 535 is sent at once.
    public static let none = AuthFailureDelay(initial: .zero, maximum: .zero)
    /// 1 s, 2 s, 4 s, 8 s, then 15 s.
    public static let standard = AuthFailureDelay(initial: .seconds(1), maximum: .seconds(15))

    /// Delay for the n-th failure (n >= 1).
    public func delay(afterFailure n: Int) -> Duration {
        guard initial > .zero, maximum > .zero, n >= 1 else { return .zero }
        var d = initial
        var k = 1
        while k < n, d < maximum {
            d = d * 2
            k += 1
        }
        return min(d, maximum)
    }
}

/// Decoding of SASL responses. Errors map to replies in the session.
enum SASL {
    enum DecodeError: Error, Equatable {
        /// Not base64: 501 5.5.2 (RFC 4954 §4).
        case badBase64
        /// Valid base64 but not a valid message for the mechanism: an authentication failure.
        case malformed(user: String)
        /// PLAIN authzid neither empty nor equal to authcid: an authentication failure.
        case authzidMismatch(user: String)
    }

    // base64 = *(4base64-char) [base64-terminal]            (RFC 4954 §4, RFC 4648 §4)
    // base64-char = ALPHA / DIGIT / "+" / "/"
    // base64-terminal = (2base64-char "==") / (3base64-char "=")
    // Unpadded input is accepted too (some clients omit the padding); whitespace is not.
    static func decodeBase64(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var body = bytes
        var padding = 0
        while body.last == UInt8(ascii: "="), padding < 2 {
            body = body.dropLast()
            padding += 1
        }
        if padding > 0, bytes.count % 4 != 0 { return nil }
        if body.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for b in body {
            let v: UInt8
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = b - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = b - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = b - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            default: return nil
            }
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        return out
    }

    static func encodeBase64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            out.append(table[Int(v >> 18 & 63)])
            out.append(table[Int(v >> 12 & 63)])
            out.append(n > 1 ? table[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? table[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A response line: "=" and the empty line are the empty response (RFC 4954 §4).
    static func decodeResponse(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        if bytes.isEmpty || (bytes.count == 1 && bytes.first == UInt8(ascii: "=")) { return [] }
        return decodeBase64(bytes)
    }

    // message  = [authzid] UTF8NUL authcid UTF8NUL passwd     (RFC 4616 §2)
    // authcid  = 1*SAFE ; MUST accept up to 255 octets
    // authzid  = 1*SAFE
    // passwd   = 1*SAFE
    // SAFE     = UTF1 / UTF2 / UTF3 / UTF4 ; any UTF-8 except NUL
    /// Returns (authcid, password). Proxy authorization is not supported: an authzid must
    /// be empty or equal to the authcid.
    static func parsePlain(_ message: [UInt8]) -> Result<(String, String), DecodeError> {
        let parts = message.split(separator: 0, omittingEmptySubsequences: false)
        // Only a three-field message names a user: with fewer fields the second one could be
        // the password, which must never reach a log line.
        let user = parts.count == 3 ? utf8String(parts[1]) ?? "" : ""
        guard parts.count == 3, !parts[1].isEmpty, !parts[2].isEmpty,
              let authzid = utf8String(parts[0]), let authcid = utf8String(parts[1]),
              let password = utf8String(parts[2]) else {
            return .failure(.malformed(user: user))
        }
        guard authzid.isEmpty || authzid == authcid else {
            return .failure(.authzidMismatch(user: authcid))
        }
        return .success((authcid, password))
    }

    /// A LOGIN username or password: non-empty UTF-8 without NUL.
    static func parseLoginField(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty, !bytes.contains(0) else { return nil }
        return utf8String(bytes[...])
    }

    static func utf8String(_ bytes: ArraySlice<UInt8>) -> String? {
        guard ASCII.isValidUTF8(bytes) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A user name as it may appear in a log line that fail2ban parses: bytes outside
    /// 0x21...0x7E (and the backslash) become \xNN, at most 128 bytes are kept.
    static func logSafe(_ user: String) -> String {
        var out = ""
        var count = 0
        for b in user.utf8 {
            if count >= 128 { out += "..."; break }
            if b > 0x20, b < 0x7F, b != ASCII.backslash {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = Array("0123456789abcdef")
                out += "\\x\(hex[Int(b >> 4)])\(hex[Int(b & 15)])"
            }
            count += 1
        }
        return out
    }
}
