// A DKIM signing key over OpenSSL 3 (RSA, RFC 6376 §3.3.1 / RFC 8301; Ed25519, RFC 8463):
// generation, unencrypted PEM in and out (never prompts for a passphrase), the DNS TXT record
// that publishes it (RFC 6376 §3.6.1), and signing. Immutable once made; safe to share.
import COpenSSL
import MailSyntax
#if canImport(Glibc)
import Glibc
#endif

public enum DKIMError: Error, Equatable, CustomStringConvertible {
    /// The PEM is no private key OpenSSL can read (or it is encrypted).
    case unreadableKey(String)
    /// A key DKIM cannot sign with: not RSA or Ed25519, or RSA under `DKIMLimits.minimumRSABits`.
    case unsupportedKey(String)
    /// The algorithm does not fit the key (rsa-sha256 with an Ed25519 key, or the reverse).
    case algorithmMismatch(DKIMAlgorithm)
    /// RFC 6376 §5.4: From is the one field a signature must cover.
    case missingFrom
    /// The header section passed `DKIMLimits.maximumHeaderBytes` before its end.
    case headerTooLarge
    /// d= or s= is no valid DNS name (RFC 6376 §3.5), so no key path or record can be made.
    case invalidName(String)
    /// `update` after `finish`, or `finish` twice.
    case finished
    case openSSL(String)
    case file(String)

    public var description: String {
        switch self {
        case .unreadableKey(let s): return "unreadable DKIM key: \(s)"
        case .unsupportedKey(let s): return "unsupported DKIM key: \(s)"
        case .algorithmMismatch(let a): return "the key cannot sign \(a.rawValue)"
        case .missingFrom: return "the message has no From field (RFC 6376 §5.4)"
        case .headerTooLarge: return "the header section exceeds \(DKIMLimits.maximumHeaderBytes) bytes"
        case .invalidName(let n): return "invalid DKIM domain or selector: \(n)"
        case .finished: return "the signature is already finished"
        case .openSSL(let s): return "OpenSSL: \(s)"
        case .file(let s): return s
        }
    }
}

public enum DKIMLimits {
    /// RFC 8301 §3.2: verifiers must not accept RSA keys under 1024 bits; signers should use 2048.
    public static let minimumRSABits = 1024
    public static let generatedRSABits = 2048
    /// A header section larger than this is refused rather than buffered (the body streams).
    public static let maximumHeaderBytes = 1 << 20
    /// RFC 6376 §3.5: the signature field is folded to lines of at most this many columns.
    public static let foldColumn = 78
    /// RFC 1035 §3.3.14: one character-string of a TXT record holds at most 255 octets.
    public static let txtStringLength = 255
}

/// a= (RFC 6376 §3.5, RFC 8463 §3).
public enum DKIMAlgorithm: String, Sendable, CaseIterable {
    case rsaSHA256 = "rsa-sha256"
    case ed25519SHA256 = "ed25519-sha256"

    /// k= of the key record (RFC 6376 §3.6.1, RFC 8463 §4).
    public var keyType: String { self == .rsaSHA256 ? "rsa" : "ed25519" }
}

public final class DKIMKey: @unchecked Sendable {
    /// What `generate` makes.
    public enum Kind: String, Sendable, CaseIterable {
        case rsa2048 = "rsa"
        case ed25519 = "ed25519"
    }

    // Immutable after init; OpenSSL 3 allows concurrent signing with one EVP_PKEY.
    private let pkey: OpaquePointer
    /// The algorithm this key signs with.
    public let algorithm: DKIMAlgorithm

    private init(owning pkey: OpaquePointer) throws {
        self.pkey = pkey
        if EVP_PKEY_is_a(pkey, "ED25519") == 1 {
            algorithm = .ed25519SHA256
        } else if EVP_PKEY_is_a(pkey, "RSA") == 1 {
            let bits = Int(EVP_PKEY_get_bits(pkey))
            guard bits >= DKIMLimits.minimumRSABits else {
                EVP_PKEY_free(pkey)
                throw DKIMError.unsupportedKey("RSA \(bits) bits, under \(DKIMLimits.minimumRSABits) (RFC 8301 §3.2)")
            }
            algorithm = .rsaSHA256
        } else {
            let name = EVP_PKEY_get0_type_name(pkey).map { String(cString: $0) } ?? "unknown"
            EVP_PKEY_free(pkey)
            throw DKIMError.unsupportedKey("\(name): DKIM signs with RSA or Ed25519")
        }
    }

    deinit { EVP_PKEY_free(pkey) }

    /// A new key (RSA 2048 bits, or Ed25519) from OpenSSL's random generator.
    public static func generate(_ kind: Kind) throws -> DKIMKey {
        Self.clearErrors()
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, kind == .rsa2048 ? "RSA" : "ED25519", nil) else { throw openSSLError("no key context") }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_keygen_init(ctx) == 1 else { throw openSSLError("keygen init") }
        if kind == .rsa2048, EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, Int32(DKIMLimits.generatedRSABits)) != 1 { throw openSSLError("RSA bits") }
        var pkey: OpaquePointer?
        guard EVP_PKEY_generate(ctx, &pkey) == 1, let pkey else { throw openSSLError("key generation") }
        return try DKIMKey(owning: pkey)
    }

    /// An unencrypted PEM private key (PKCS#8 "PRIVATE KEY" or "RSA PRIVATE KEY").
    public convenience init(pem: [UInt8]) throws {
        Self.clearErrors()
        guard let bio = pem.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else { throw Self.openSSLError("memory BIO") }
        defer { BIO_free(bio) }
        // A passphrase callback that refuses: an encrypted key fails instead of prompting.
        guard let pkey = PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil) else {
            throw DKIMError.unreadableKey(Self.drainErrors() ?? "no PEM private key")
        }
        try self.init(owning: pkey)
    }

    /// Reads the PEM key file at `path` (done by the agent before it drops privileges).
    public convenience init(contentsOfFile path: String) throws {
        try self.init(pem: try DKIMKeyFile.read(path))
    }

    /// The private key as PKCS#8 PEM.
    public func privateKeyPEM() throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw Self.openSSLError("memory BIO") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) == 1 else { throw Self.openSSLError("PEM encoding") }
        var out = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        let n = out.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
        guard n == out.count else { throw Self.openSSLError("PEM read back") }
        return out
    }

    /// p= (RFC 6376 §3.6.1): base64 of the DER SubjectPublicKeyInfo for RSA, of the 32 raw
    /// public-key bytes for Ed25519 (RFC 8463 §4.2).
    public func publicKeyBase64() throws -> String {
        switch algorithm {
        case .ed25519SHA256:
            var len = 0
            guard EVP_PKEY_get_raw_public_key(pkey, nil, &len) == 1 else { throw Self.openSSLError("raw public key") }
            var raw = [UInt8](repeating: 0, count: len)
            guard EVP_PKEY_get_raw_public_key(pkey, &raw, &len) == 1 else { throw Self.openSSLError("raw public key") }
            return Base64.encode(Array(raw.prefix(len)))
        case .rsaSHA256:
            let len = i2d_PUBKEY(pkey, nil)
            guard len > 0 else { throw Self.openSSLError("public key DER") }
            var der = [UInt8](repeating: 0, count: Int(len))
            let written = der.withUnsafeMutableBufferPointer { b -> Int32 in
                var p: UnsafeMutablePointer<UInt8>? = b.baseAddress
                return i2d_PUBKEY(pkey, &p)
            }
            guard written == len else { throw Self.openSSLError("public key DER") }
            return Base64.encode(der)
        }
    }

    /// The TXT record's text: "v=DKIM1; k=rsa; p=…" (RFC 6376 §3.6.1).
    public func txtRecord() throws -> String {
        "v=DKIM1; k=\(algorithm.keyType); p=\(try publicKeyBase64())"
    }

    /// The record as a zone file writes it: quoted character-strings of at most 255 octets
    /// (RFC 1035 §3.3.14), which a resolver joins back into one text.
    public func txtRecordZoneStrings() throws -> [String] {
        var rest = Substring(try txtRecord()), out = [String]()
        while !rest.isEmpty {
            out.append(String(rest.prefix(DKIMLimits.txtStringLength)))
            rest = rest.dropFirst(DKIMLimits.txtStringLength)
        }
        return out
    }

    /// The signature over `data`: RSASSA-PKCS1-v1_5 with SHA-256 of `data` (RFC 6376 §3.3.1),
    /// or PureEdDSA over SHA-256 of `data` (RFC 8463 §3: the hash is what Ed25519 signs).
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        Self.clearErrors()
        guard let md = EVP_MD_CTX_new() else { throw Self.openSSLError("digest context") }
        defer { EVP_MD_CTX_free(md) }
        let input: [UInt8]
        switch algorithm {
        case .rsaSHA256:
            guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, pkey) == 1 else { throw Self.openSSLError("sign init") }
            input = data
        case .ed25519SHA256:
            guard EVP_DigestSignInit(md, nil, nil, nil, pkey) == 1 else { throw Self.openSSLError("sign init") }
            input = SHA256.digest(data)
        }
        var len = 0
        guard EVP_DigestSign(md, nil, &len, input, input.count) == 1 else { throw Self.openSSLError("signature size") }
        var sig = [UInt8](repeating: 0, count: len)
        guard EVP_DigestSign(md, &sig, &len, input, input.count) == 1 else { throw Self.openSSLError("signing") }
        return Array(sig.prefix(len))
    }

    static func clearErrors() { ERR_clear_error() }

    /// This thread's OpenSSL errors as "reason; reason", the queue emptied; nil when none.
    static func drainErrors() -> String? {
        var reasons = [String]()
        while case let e = ERR_get_error(), e != 0 {
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            reasons.append(String(cString: buf))
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    static func openSSLError(_ what: String) -> DKIMError {
        .openSSL(drainErrors().map { "\(what): \($0)" } ?? what)
    }
}

/// Streaming SHA-256 (OpenSSL EVP): for bh= over a body of any size.
struct SHA256 {
    private let ctx: OpaquePointer

    init() {
        ctx = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count) }
    }

    /// The digest; the context is freed (call once).
    func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &out, &len)
        EVP_MD_CTX_free(ctx)
        return Array(out.prefix(Int(len)))
    }

    /// Frees the context without a digest (a signer dropped unfinished).
    func discard() { EVP_MD_CTX_free(ctx) }

    static func digest(_ data: [UInt8]) -> [UInt8] {
        let h = SHA256()
        data.withUnsafeBytes { h.update($0) }
        return h.finish()
    }
}
