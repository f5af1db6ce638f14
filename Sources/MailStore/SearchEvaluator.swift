// SEARCH evaluated on one message (DESIGN §9: search runs in the store) with RFC 9051 §6.4.4
// semantics. Cheap keys are tried before content keys; a message's bytes are read, decoded and
// case-folded at most once per evaluation, and only when a content key is reached.
import Foundation
import MIME
import MailSyntax

/// What SEARCH can look at of one message; `body` reads the whole message when a text key
/// needs it (called at most once per message by the evaluator).
public struct SearchableMessage {
    public var uid: UInt32, modSeq: UInt64, flags: SystemFlags, keywords: Set<String>
    public var internalDate: Int64, size: UInt64
    public var info: MessageInfo
    public var body: () throws -> [UInt8]
    public init(uid: UInt32, modSeq: UInt64, flags: SystemFlags, keywords: Set<String>, internalDate: Int64, size: UInt64,
                info: MessageInfo, body: @escaping () throws -> [UInt8]) {
        self.uid = uid; self.modSeq = modSeq; self.flags = flags; self.keywords = keywords
        self.internalDate = internalDate; self.size = size; self.info = info; self.body = body
    }
}

public enum SearchEvaluator {
    /// Whether `message` matches `query`. Keywords compare case-insensitively. To test many
    /// messages against one query, prepare it once with `PreparedSearch`.
    public static func matches(_ query: SearchQuery, _ message: SearchableMessage) throws -> Bool {
        try PreparedSearch(query).matches(message)
    }
    /// Whether evaluating `query` can need the message bytes or its parsed info (TEXT, BODY,
    /// HEADER …, sent dates). When false, `info` and `body` are never looked at.
    public static func needsContent(_ query: SearchQuery) -> Bool { PreparedSearch(query).needsContent }
}

/// A query made ready for many messages: needles case-folded once, the children of every AND
/// (and the two sides of every OR) in cost order, so flags, UIDs, dates and sizes decide before
/// any byte of a message is read.
public struct PreparedSearch: Sendable {
    let root: SearchNode
    /// Whether some key needs the message bytes or its parsed info (see `SearchEvaluator`).
    public let needsContent: Bool

    public init(_ query: SearchQuery) { self.init(root: SearchNode(query)) }

    init(root: SearchNode) {
        self.root = root
        needsContent = root.cost > SearchNode.cheap
    }

    public func matches(_ message: SearchableMessage) throws -> Bool {
        var content = SearchContent(message)
        return try root.evaluate(message, &content)
    }

    /// `matches` for a query that needs no content, with one content value made for many
    /// messages (it is never read then; no message copied into it per call).
    func matches(_ message: SearchableMessage, reusing content: inout SearchContent) throws -> Bool {
        precondition(!needsContent, "a content value is only shared by checks that never read it")
        return try root.evaluate(message, &content)
    }
}

/// SearchQuery with folded needles and ordered children.
indirect enum SearchNode: Sendable {
    case all
    case and([SearchNode])
    case or(SearchNode, SearchNode)
    case not(SearchNode)
    case uids([ClosedRange<UInt32>])
    case flags(SystemFlags, set: Bool)
    /// Lowercased keyword.
    case keyword(String, set: Bool)
    case internalDate(SearchQuery.DateRelation, day: Int)
    case sentDate(SearchQuery.DateRelation, day: Int)
    case larger(UInt64), smaller(UInt64)
    /// Lowercased field name, folded needle.
    case header([UInt8], [UInt8])
    case body([UInt8]), text([UInt8])
    case modSeq(UInt64)

    /// Costs: answered from the index row, from the parsed info (no bytes), from the header
    /// bytes, from the decoded body.
    static let cheap = 0, parsedInfo = 1, headerBytes = 2, bodyText = 3

    init(_ q: SearchQuery) {
        switch q {
        case .all: self = .all
        case .and(let children):
            self = .and(children.map(SearchNode.init).enumerated()
                .sorted { ($0.element.cost, $0.offset) < ($1.element.cost, $1.offset) }.map(\.element))
        case .or(let a, let b):
            let (x, y) = (SearchNode(a), SearchNode(b))
            self = x.cost <= y.cost ? .or(x, y) : .or(y, x)
        case .not(let a): self = .not(SearchNode(a))
        case .uids(let r): self = .uids(r)
        case .flags(let f, let set): self = .flags(f, set: set)
        case .keyword(let k, let set): self = .keyword(k.lowercased(), set: set)
        case .internalDate(let rel, let day): self = .internalDate(rel, day: day)
        case .sentDate(let rel, let day): self = .sentDate(rel, day: day)
        case .larger(let n): self = .larger(n)
        case .smaller(let n): self = .smaller(n)
        case .header(let name, let s): self = .header(Array(name.lowercased().utf8), SearchFold.fold(s))
        // An empty string is a substring of every text (RFC 9051 §6.4.4): nothing to read.
        case .body(let s): self = s.isEmpty ? .all : .body(SearchFold.fold(s))
        case .text(let s): self = s.isEmpty ? .all : .text(SearchFold.fold(s))
        case .modSeq(let n): self = .modSeq(n)
        }
    }

    var cost: Int {
        switch self {
        case .all, .uids, .flags, .keyword, .internalDate, .larger, .smaller, .modSeq: return SearchNode.cheap
        case .sentDate: return SearchNode.parsedInfo
        case .header: return SearchNode.headerBytes
        case .body, .text: return SearchNode.bodyText
        case .and(let c): return c.map(\.cost).max() ?? SearchNode.cheap
        case .or(let a, let b): return max(a.cost, b.cost)
        case .not(let a): return a.cost
        }
    }

    func evaluate(_ m: SearchableMessage, _ c: inout SearchContent) throws -> Bool {
        switch self {
        case .all: return true
        case .and(let children):
            for child in children where try !child.evaluate(m, &c) { return false }
            return true
        case .or(let a, let b):
            if try a.evaluate(m, &c) { return true }
            return try b.evaluate(m, &c)
        case .not(let a): return try !a.evaluate(m, &c)
        case .uids(let ranges): return ranges.contains { $0.contains(m.uid) }
        case .flags(let mask, let set): return set ? m.flags.isSuperset(of: mask) : m.flags.isDisjoint(with: mask)
        case .keyword(let k, let set):
            let has = m.keywords.contains(k) || m.keywords.contains { $0.lowercased() == k }
            return has == set
        // RFC 9051 §6.4.4: "disregarding time and timezone"; the internal date's day in UTC.
        case .internalDate(let rel, let day): return Self.compare(Self.day(of: m.internalDate), rel, day)
        case .sentDate(let rel, let day): return Self.compare(c.sentDay(), rel, day)
        case .larger(let n): return m.size > n
        case .smaller(let n): return m.size < n
        case .modSeq(let n): return m.modSeq >= n
        case .header(let name, let needle):
            for field in try c.topHeader() where field.name == name {
                if needle.isEmpty || SearchFold.contains(field.value, needle) { return true }
            }
            return false
        case .body(let needle):
            if try c.surelyLacks(needle) { return false }
            return SearchFold.contains(try c.bodyText(), needle)
        case .text(let needle):
            if try c.surelyLacks(needle) { return false }
            if SearchFold.contains(try c.allHeaders(), needle) { return true }
            return SearchFold.contains(try c.bodyText(), needle)
        }
    }

    static func day(of seconds: Int64) -> Int {
        Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
    }

    static func compare(_ messageDay: Int, _ rel: SearchQuery.DateRelation, _ day: Int) -> Bool {
        switch rel {
        case .before: return messageDay < day
        case .on: return messageDay == day
        case .since: return messageDay >= day
        }
    }
}

/// One message's text as the content keys see it, each piece computed on first use.
struct SearchContent {
    let message: SearchableMessage
    private var raw: [UInt8]?
    private var top: [(name: [UInt8], value: [UInt8])]?
    private var headers: [UInt8]?
    private var body: [UInt8]?

    init(_ message: SearchableMessage) { self.message = message }

    mutating func bytes() throws -> [UInt8] {
        if let raw { return raw }
        let b = try message.body()
        raw = b
        return b
    }

    /// The message's bytes lowercased when its text as TEXT and BODY see it is exactly those
    /// bytes (with separators between fields and parts): 7-bit, no RFC 2047 word, every leaf
    /// identity-encoded in an ASCII-compatible charset. nil otherwise (decoding needed).
    private var plain: [UInt8]??

    /// A one-sided test before any decoding or folding: true only when TEXT/BODY `needle`
    /// surely matches nowhere. Holds for a needle of 7-bit bytes without WSP, CR, LF or ":"
    /// (the separators unfolding and "name: value" lines put in or take out) in a plain
    /// message (`plain`): every match in its folded text is then a match in its lowercased bytes.
    mutating func surelyLacks(_ needle: [UInt8]) throws -> Bool {
        guard !needle.isEmpty, needle.allSatisfy(SearchPrefilter.canPrefilter) else { return false }
        if plain == nil { plain = .some(SearchPrefilter.plainText(try bytes(), message.info.body)) }
        guard let text = plain ?? nil else { return false }
        return !SearchFold.contains(text, needle)
    }

    /// The day the Date: header names in its own zone (RFC 9051 §6.4.4 SENT*: "disregarding
    /// time and timezone"). Without a parsable Date: it is day 0 (1970-01-01), as in Dovecot
    /// (index_mail_get_date: "0 = not found / invalid"): SENTBEFORE matches such a message.
    func sentDay() -> Int {
        guard let value = message.info.envelope.date, let d = RFC5322Date.parseWithOffset(value) else { return 0 }
        return SearchNode.day(of: d.time + Int64(d.offsetMinutes) * 60)
    }

    /// The fields of the top-level header: lowercased name, decoded and folded value.
    mutating func topHeader() throws -> [(name: [UInt8], value: [UInt8])] {
        if let top { return top }
        let b = try bytes()
        var fields: [(name: [UInt8], value: [UInt8])] = []
        SearchHeaders.forEachField(b, 0, message.info.headerSize) { name, value in
            fields.append((name.map(ASCII.lower), SearchFold.fold(value)))
        }
        top = fields
        return fields
    }

    /// Every header section of the message (top level, MIME part headers, headers of attached
    /// messages) as folded "name: value" lines, for TEXT (Dovecot searches them all).
    mutating func allHeaders() throws -> [UInt8] {
        if let headers { return headers }
        let b = try bytes()
        var text = ""
        forEachPart(message.info.body) { part in
            SearchHeaders.forEachField(b, part.headerStart, part.bodyStart) { name, value in
                text += String(decoding: name, as: UTF8.self) + ": " + value + "\n"
            }
        }
        let folded = SearchFold.fold(text)
        headers = folded
        return folded
    }

    /// The decoded text of the body: every text/* leaf (and message/* left unparsed because it
    /// is transfer-encoded), transfer-decoded and converted to UTF-8, folded. Other leaves
    /// (images, application/*, …) are not searched, not even as raw bytes; nor are headers.
    mutating func bodyText() throws -> [UInt8] {
        if let body { return body }
        let b = try bytes()
        var text: [UInt8] = []
        forEachPart(message.info.body) { part in
            guard part.parts.isEmpty, part.message == nil, part.type == "text" || part.type == "message" else { return }
            let lo = min(max(part.bodyStart, 0), b.count), hi = min(max(part.bodyEnd, lo), b.count)
            let encoded = Array(b[lo..<hi])
            let decoded = TransferDecoder.decode(encoded, encoding: part.encoding) ?? encoded
            let s = Charsets.toUTF8(decoded, charset: part.parameter("charset") ?? "utf-8") ?? String(decoding: decoded, as: UTF8.self)
            text.append(contentsOf: SearchFold.fold(s))
            text.append(ASCII.lf)
        }
        body = text
        return text
    }

    /// `part` and every part below it, attached messages' bodies included (depth bounded by
    /// the MIME parser's limit).
    private func forEachPart(_ part: BodyPart, _ visit: (BodyPart) -> Void) {
        visit(part)
        for child in part.parts { forEachPart(child, visit) }
        if let m = part.message { forEachPart(m.body, visit) }
    }
}

/// The bytes-level prefilter of `SearchContent.surelyLacks`.
enum SearchPrefilter {
    /// Charsets whose decoding leaves 7-bit bytes as they are (`Charsets.toUTF8` decodes them
    /// in Swift); with any other (UTF-7, UTF-16, ISO-2022-*, …) a 7-bit body is not its text.
    static let asciiCharsets: Set<String> = [
        "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "cp367", "csascii",
        "iso-8859-1", "iso_8859-1", "iso8859-1", "latin1", "l1", "cp819", "ibm819", "csisolatin1",
        "windows-1252", "cp1252", "x-cp1252",
    ]
    static let identityEncodings: Set<String> = ["", "7bit", "8bit", "binary"]

    @inline(__always) static func canPrefilter(_ b: UInt8) -> Bool {
        b < 0x80 && !ASCII.isWSP(b) && b != ASCII.cr && b != ASCII.lf && b != ASCII.colon
    }

    /// `bytes` lowercased if the message is plain (see `SearchContent.plain`), else nil.
    static func plainText(_ bytes: [UInt8], _ root: BodyPart) -> [UInt8]? {
        guard leavesArePlain(root) else { return nil }
        var out = [UInt8](repeating: 0, count: bytes.count)
        var previous: UInt8 = 0
        for i in bytes.indices {
            let b = bytes[i]
            // 8-bit text folds by Unicode rules; "=?" may open an encoded word (RFC 2047 §2); a
            // CR without LF is dropped from a header value, joining what is around it.
            if b >= 0x80 || (b == UInt8(ascii: "?") && previous == ASCII.equals) { return nil }
            if previous == ASCII.cr && b != ASCII.lf { return nil }
            out[i] = ASCII.lower(b)
            previous = b
        }
        return previous == ASCII.cr ? nil : out
    }

    /// Every leaf is identity-encoded; every text leaf in a charset of `asciiCharsets`.
    static func leavesArePlain(_ part: BodyPart) -> Bool {
        if let m = part.message { return leavesArePlain(m.body) }
        if !part.parts.isEmpty { return part.parts.allSatisfy(leavesArePlain) }
        guard identityEncodings.contains(part.encoding.lowercased().trimmingCharacters(in: .whitespaces)) else { return false }
        guard part.type == "text" || part.type == "message" else { return true }   // the leaves bodyText() converts
        var charset = (part.parameter("charset") ?? "utf-8").lowercased().trimmingCharacters(in: .whitespaces)
        if charset.count >= 2, charset.hasPrefix("\""), charset.hasSuffix("\"") { charset = String(charset.dropFirst().dropLast()) }
        return asciiCharsets.contains(charset)
    }
}

/// Header fields as text: unfolded (RFC 5322 §2.2.3), RFC 2047 words decoded.
enum SearchHeaders {
    /// Calls `visit` with the name bytes and decoded value of each field in `bytes[from..<to]`.
    static func forEachField(_ bytes: [UInt8], _ from: Int, _ to: Int, _ visit: ([UInt8], String) -> Void) {
        let lo = min(max(from, 0), bytes.count), hi = min(max(to, lo), bytes.count)
        bytes.withUnsafeBytes { raw in
            var it = HeaderFieldIterator(raw, from: lo, to: hi)
            while let field = it.next() {
                guard !field.isMalformed else { continue }
                var value: [UInt8] = []
                for i in field.value where bytes[i] != ASCII.cr && bytes[i] != ASCII.lf { value.append(bytes[i]) }
                visit(Array(bytes[field.name]), decode(value))
            }
        }
    }

    /// Trimmed value as text: UTF-8 when it is valid UTF-8 (RFC 6532), else read as
    /// windows-1252 (what raw 8-bit headers mostly are); then RFC 2047 words decoded.
    static func decode(_ value: [UInt8]) -> String {
        var lo = 0, hi = value.count
        while lo < hi && ASCII.isWSP(value[lo]) { lo += 1 }
        while hi > lo && ASCII.isWSP(value[hi - 1]) { hi -= 1 }
        let v = Array(value[lo..<hi])
        let s = ASCII.isValidUTF8(v[...]) ? String(decoding: v, as: UTF8.self)
            : Charsets.toUTF8(v, charset: "windows-1252") ?? String(decoding: v, as: UTF8.self)
        return EncodedWords.decode(s)
    }
}

/// Case-insensitive substring matching as Dovecot does it: Unicode case folding (full, so
/// "STRASSE" finds "straße"), canonical composition, diacritics kept ("ärger" ≠ "arger").
enum SearchFold {
    /// UTF-8 of `s` folded: ASCII lines lowercased directly, runs of other lines through
    /// Foundation's case folding and NFC.
    static func fold(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(u.count)
        var runStart: Int?          // start of a run of lines with non-ASCII bytes
        var lineStart = 0
        var ascii = true
        func flushRun(_ end: Int) {
            guard let start = runStart else { return }
            let text = String(decoding: u[start..<end], as: UTF8.self)
            out.append(contentsOf: text.folding(options: [.caseInsensitive], locale: nil).precomposedStringWithCanonicalMapping.utf8)
            runStart = nil
        }
        for i in 0...u.count {
            if i < u.count && u[i] != ASCII.lf {
                if u[i] >= 0x80 { ascii = false }
                continue
            }
            let end = i < u.count ? i + 1 : i
            if ascii {
                flushRun(lineStart)
                for k in lineStart..<end { out.append(ASCII.lower(u[k])) }
            } else if runStart == nil {
                runStart = lineStart
            }
            lineStart = end
            ascii = true
        }
        flushRun(u.count)
        return out
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        return haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                guard let hb = h.baseAddress, let nb = n.baseAddress else { return false }
                let first = Int32(n[0]), last = h.count - n.count
                var i = 0
                while i <= last, let p = memchr(hb + i, first, last - i + 1) {
                    i = hb.distance(to: UnsafeRawPointer(p))
                    if memcmp(hb + i, nb, n.count) == 0 { return true }
                    i += 1
                }
                return false
            }
        }
    }
}
