// SASL pieces of SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN mechanisms, responses
// in strict base64 (RFC 4648 §4, MailSyntax.Base64), TLS/auth values that cross the engine/glue boundary, and the
// failure-delay policy. Pure functions; passwords are never logged or echoed by the engine.
import MailSyntax

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

    /// A response line: "=" and the empty line are the empty response (RFC 4954 §4).
    static func decodeResponse(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        if bytes.isEmpty || (bytes.count == 1 && bytes.first == UInt8(ascii: "=")) { return [] }
        return Base64.decode(bytes)
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
}
