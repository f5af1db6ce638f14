// POP3 status lines and multi-line responses (RFC 1939 §3), with RFC 2449 §8 response codes
// (RFC 3206 SYS/TEMP, SYS/PERM, AUTH). Every reply text the engine sends is named here.
import MailSyntax

/// RFC 2449 §8 / RFC 3206: the extended response codes Postern sends (LOGIN-DELAY is not used).
public enum POP3ResponseCode: String, Sendable, Equatable {
    case inUse = "IN-USE"
    case sysTemp = "SYS/TEMP"
    case sysPerm = "SYS/PERM"
    case auth = "AUTH"
}

public struct POP3Response: Sendable, Equatable {
    public var ok: Bool
    public var code: POP3ResponseCode?
    public var text: String

    public init(ok: Bool, code: POP3ResponseCode? = nil, _ text: String) { self.ok = ok; self.code = code; self.text = text }
    public static func ok(_ text: String) -> POP3Response { POP3Response(ok: true, text) }
    public static func err(_ text: String, code: POP3ResponseCode? = nil) -> POP3Response { POP3Response(ok: false, code: code, text) }

    /// "+OK text" / "-ERR [CODE] text" with CRLF; CR and LF in the text are dropped (as bytes:
    /// "\r\n" is one Character, which a Character filter would let through).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 24)
        out += ok ? Self.okPrefix : Self.errPrefix
        if let code { out += Array(" [\(code.rawValue)]".utf8) }
        var first = true
        for b in text.utf8 where b != ASCII.cr && b != ASCII.lf {
            if first { out.append(ASCII.space); first = false }
            out.append(b)
        }
        out += Self.crlf
        return out
    }

    static let okPrefix = Array("+OK".utf8), errPrefix = Array("-ERR".utf8), crlf: [UInt8] = [ASCII.cr, ASCII.lf]

    /// RFC 1939 §7 RETR/TOP: "+OK <size> octets" CRLF, handed to `write` from a stack buffer
    /// (no String is built per message). The same bytes as `.ok("\(size) octets").bytes`.
    public static func octets(_ size: Int, _ write: (UnsafeRawBufferPointer) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: octetsLineCapacity) { buf in
            var n = 0
            func put(_ b: UInt8) { buf[n] = b; n += 1 }
            for b in okPrefix { put(b) }
            put(ASCII.space)
            var digits = 1, v = max(size, 0)
            while v >= 10 { v /= 10; digits += 1 }
            v = max(size, 0); n += digits
            for i in 1...digits { buf[n - i] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10 }
            for b in octetsSuffix { put(b) }
            write(UnsafeRawBufferPointer(start: buf.baseAddress, count: n))
        }
    }

    static let octetsSuffix = Array(" octets\r\n".utf8)
    /// "+OK " + the 19 digits of Int.max + " octets\r\n", rounded up.
    static let octetsLineCapacity = 48

    /// A status line, then `lines` (dot-stuffed), then the terminating "." (RFC 1939 §3).
    public func multiline(_ lines: [String]) -> [UInt8] {
        var out = bytes
        for l in lines {
            if l.hasPrefix(".") { out.append(UInt8(ascii: ".")) }
            out += Array(l.utf8); out += [13, 10]
        }
        out += Array(".\r\n".utf8)
        return out
    }
}

/// The replies of the engine and its driver, by meaning.
public enum POP3Reply {
    public static func greeting(_ hostname: String) -> POP3Response { .ok("\(hostname) Postern POP3 ready") }
    public static let bye = POP3Response.ok("Logging out")
    public static let unknownCommand = POP3Response.err("Unknown command")
    public static let notNow = POP3Response.err("Command not valid in this state")
    public static let lineTooLong = POP3Response.err("Line too long")
    public static let noSuchMessage = POP3Response.err("No such message")
    public static let alreadyDeleted = POP3Response.err("Message already deleted")
    public static let apopUnsupported = POP3Response.err("APOP is not supported")
    public static let userFirst = POP3Response.err("USER first")
    public static let plaintextDisallowed = POP3Response.err("Plaintext authentication disallowed without TLS", code: .auth)
    public static let authFailed = POP3Response.err("Authentication failed", code: .auth)
    public static let authCancelled = POP3Response.err("Authentication cancelled")
    public static let authMalformed = POP3Response.err("Invalid base64 data")
    public static let authzRefused = POP3Response.err("Authorization identity not allowed", code: .auth)
    public static let unsupportedMechanism = POP3Response.err("Unsupported authentication mechanism")
    public static let tempFail = POP3Response.err("Temporary failure, try again later", code: .sysTemp)
    public static let inUse = POP3Response.err("Maildrop is locked by another session", code: .inUse)
    public static let tlsUnavailable = POP3Response.err("TLS is already active or not available")
    public static let beginTLS = POP3Response.ok("Begin TLS negotiation")
    public static let tooManyErrors = POP3Response.err("Too many errors, closing")
    public static let autologout = POP3Response.err("Autologout; idle for too long")
    public static let shutdown = POP3Response.err("Server shutting down", code: .sysTemp)
    public static let updateFailed = POP3Response.err("Some deleted messages were not removed", code: .sysTemp)
    public static let userAccepted = POP3Response.ok("Send PASS")
    public static let noop = POP3Response.ok("")
    public static let capabilities = POP3Response.ok("Capability list follows")
}

/// A refusal carries the -ERR line to send.
extension POP3Response: Error {}
