// DKIM signing (RFC 6376 §5; rsa-sha256 §3.3.1, ed25519-sha256 RFC 8463) with relaxed/relaxed
// canonicalisation. The message streams through `update` in chunks of any size: the header
// section is kept (bounded by DKIMLimits.maximumHeaderBytes), the body is only hashed.
import MailSyntax
#if canImport(Glibc)
import Glibc
#endif

public final class DKIMSigner {
    /// RFC 6376 §5.4.1's recommended fields, and the mailing-list fields (RFC 2369, 2919):
    /// "List-*" stands for every field whose name starts with "List-".
    public static let defaultHeaders = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                                        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Reply-To", "List-*"]

    public let domain: String
    public let selector: String
    public let key: DKIMKey
    public let algorithm: DKIMAlgorithm
    /// Lower-cased field names to sign, "from" first (RFC 6376 §5.4: it must be signed).
    public let headers: [String]

    private var header = [UInt8]()
    private var fields = [HeaderField]()
    private var position = 0
    private var partial: HeaderField?
    private var inBody = false
    private var done = false
    private var body = RelaxedBodyCanonicalizer()
    private let bodyHash = SHA256()

    /// `algorithm` defaults to the key's; `headers` are field names, case-insensitive, with
    /// "Prefix-*" for every field starting so. Throws for an invalid domain or selector, or an
    /// algorithm the key cannot sign.
    public init(domain: String, selector: String, key: DKIMKey, algorithm: DKIMAlgorithm? = nil,
                headers: [String] = DKIMSigner.defaultHeaders) throws {
        guard let d = DKIMName.normalized(domain) else { throw DKIMError.invalidName(domain) }
        guard let s = DKIMName.normalized(selector) else { throw DKIMError.invalidName(selector) }
        if let algorithm, algorithm != key.algorithm { throw DKIMError.algorithmMismatch(algorithm) }
        self.domain = d
        self.selector = s
        self.key = key
        self.algorithm = key.algorithm
        var names = ["from"]
        for h in headers.map({ $0.lowercased() }) where !names.contains(h) && !h.isEmpty && !h.contains(":") { names.append(h) }
        self.headers = names
    }

    deinit { if !done { bodyHash.discard() } }

    /// The next bytes of the message (header section, then body), exactly as it will be sent.
    public func update(_ chunk: UnsafeRawBufferPointer) throws {
        guard !done else { throw DKIMError.finished }
        if inBody { hashBody(chunk); return }
        header.append(contentsOf: chunk)
        try readHeader(complete: false)
    }

    public func update(_ chunk: [UInt8]) throws { try chunk.withUnsafeBytes { try update($0) } }

    /// The DKIM-Signature field to put before the message's first line, "DKIM-Signature: …\r\n",
    /// folded at DKIMLimits.foldColumn. `timestamp` (t=, seconds since the epoch) defaults to now.
    public func finish(timestamp: Int64? = nil) throws -> String {
        guard !done else { throw DKIMError.finished }
        if !inBody { try readHeader(complete: true) }
        done = true
        body.finish { bodyHash.update($0) }
        let bh = Base64.encode(bodyHash.finish())

        // RFC 6376 §5.4.2: each instance of a name, from the bottom up; a name once more than it
        // occurs ("over-signing") matches nothing, so no such field can be added later.
        var names = [String](), data = [UInt8]()
        try header.withUnsafeBytes { buf in
            for name in expandedNames(buf) {
                let instances = fields.filter { HeaderFieldIterator.nameEquals(buf, $0, Array(name.utf8)) }
                if name == "from" && instances.isEmpty { throw DKIMError.missingFrom }
                for f in instances.reversed() {
                    names.append(name)
                    data += RelaxedHeader.canonicalize(buf, f)
                }
            }
        }
        names.append("from")

        var folder = FieldFolder(name: "DKIM-Signature")
        folder.word("v=1;")
        folder.word("a=\(algorithm.rawValue);")
        folder.word("c=relaxed/relaxed;")
        folder.word("d=\(domain);")
        folder.word("s=\(selector);")
        folder.word("t=\(timestamp ?? Int64(time(nil)));")
        for (i, n) in names.enumerated() {
            folder.word((i == 0 ? "h=" : "") + n + (i == names.count - 1 ? ";" : ":"), space: i == 0)
        }
        folder.word("bh=")
        folder.splittable(bh + ";")
        folder.word("b=")
        // RFC 6376 §3.7: the signature field itself, b= empty, canonicalised, without its CRLF.
        let unsigned = folder.text
        data += RelaxedHeader.canonicalize(name: Array("DKIM-Signature".utf8), value: Array(unsigned.utf8.dropFirst("DKIM-Signature:".utf8.count)),
                                           terminated: false)
        folder.splittable(Base64.encode(try key.sign(data)))
        return folder.text + "\r\n"
    }

    /// Signs a whole message at once; returns the DKIM-Signature field.
    public static func sign(_ message: [UInt8], domain: String, selector: String, key: DKIMKey,
                            headers: [String] = defaultHeaders, timestamp: Int64? = nil) throws -> String {
        let s = try DKIMSigner(domain: domain, selector: selector, key: key, headers: headers)
        try s.update(message)
        return try s.finish(timestamp: timestamp)
    }

    // MARK: header section

    private func readHeader(complete: Bool) throws {
        try header.withUnsafeBytes { buf in
            var it = HeaderFieldIterator(buf, from: position, complete: complete, resuming: partial)
            while let f = it.next() { if !f.isMalformed { fields.append(f) } }
            partial = it.partial
            position = it.position
            switch it.end {
            case .emptyLine(let bodyStart)?:
                inBody = true
                hashBody(UnsafeRawBufferPointer(rebasing: buf[bodyStart...]))
            case .endOfInput?:
                inBody = true
            case .needMoreBytes?, nil:
                guard buf.count <= DKIMLimits.maximumHeaderBytes else { throw DKIMError.headerTooLarge }
            }
        }
        if inBody { header.removeSubrange(min(position, header.count)...) }
    }

    private func hashBody(_ bytes: UnsafeRawBufferPointer) {
        body.update(bytes) { bodyHash.update($0) }
    }

    /// `headers` with each "Prefix-*" replaced by the distinct names present that start so.
    private func expandedNames(_ buf: UnsafeRawBufferPointer) -> [String] {
        var out = [String]()
        for h in headers {
            guard h.hasSuffix("*") else { if !out.contains(h) { out.append(h) }; continue }
            let prefix = h.dropLast()
            for f in fields {
                let n = String(decoding: buf[f.name], as: UTF8.self).lowercased()
                if n.hasPrefix(prefix) && !out.contains(n) { out.append(n) }
            }
        }
        return out
    }
}

/// Builds a header field folded at DKIMLimits.foldColumn (RFC 5322 §2.2.3: CRLF + TAB is FWS).
struct FieldFolder {
    private var lines: [String]

    init(name: String) { lines = [name + ":"] }

    var text: String { lines.joined(separator: "\r\n\t") }

    /// The current line's width; a continuation line's leading TAB counts as one column.
    private var column: Int { lines[lines.count - 1].utf8.count + (lines.count > 1 ? 1 : 0) }

    /// `w` after a space, or on a new line if it would pass the fold column.
    mutating func word(_ w: String, space: Bool = true) {
        if column + (space ? 1 : 0) + w.utf8.count > DKIMLimits.foldColumn && column > 1 {
            lines.append(w)
        } else {
            lines[lines.count - 1] += (space ? " " : "") + w
        }
    }

    /// `s` (base64: FWS may stand between any two characters, RFC 6376 §3.5) filling each line.
    mutating func splittable(_ s: String) {
        var rest = Substring(s)
        while !rest.isEmpty {
            let room = DKIMLimits.foldColumn - column
            if room <= 0 { lines.append(""); continue }
            lines[lines.count - 1] += rest.prefix(room)
            rest = rest.dropFirst(room)
        }
    }
}
