// ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2, same as RFC 3501 §7.4.2) written from the
// MIME model computed at delivery, field for field the way Dovecot 2.3 writes them
// (lib-imap/imap-envelope.c, imap-bodystructure.c): quoted lowercase types, one list per language.
import MIME
import MailSyntax

extension IMAPWriter {
    /// RFC 9051 §9 `envelope`: "(" date SP subject SP from SP sender SP reply-to SP to SP cc SP
    /// bcc SP in-reply-to SP message-id ")". Sender and Reply-To fall back to From when empty
    /// (RFC 9051 §7.5.2: the server fills them in).
    public mutating func envelope(_ e: Envelope) {
        bytes.append(ASCII.lparen)
        nstring(e.date); sp()
        nstring(e.subject); sp()
        addressList(e.from); sp()
        addressList(e.sender.isEmpty ? e.from : e.sender); sp()
        addressList(e.replyTo.isEmpty ? e.from : e.replyTo); sp()
        addressList(e.to); sp()
        addressList(e.cc); sp()
        addressList(e.bcc); sp()
        nstring(e.inReplyTo); sp()
        nstring(e.messageID)
        bytes.append(ASCII.rparen)
    }

    /// `"(" 1*address ")"` or NIL for none; addresses follow each other without a space
    /// (RFC 9051 §9 `env-from` etc.). Group markers are in the model already (Model.swift).
    public mutating func addressList(_ list: [Address]) {
        guard !list.isEmpty else { nilAtom(); return }
        bytes.append(ASCII.lparen)
        for a in list {
            // RFC 9051 §9 address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
            bytes.append(ASCII.lparen)
            nstring(a.name); sp()
            nstring(a.adl); sp()
            nstring(a.mailbox); sp()
            nstring(a.host)
            bytes.append(ASCII.rparen)
        }
        bytes.append(ASCII.rparen)
    }

    /// RFC 9051 §9 `body`, parentheses included. `extensible` false is FETCH BODY (no extension
    /// data); true is BODYSTRUCTURE.
    public mutating func bodyStructure(_ p: BodyPart, extensible: Bool) {
        bytes.append(ASCII.lparen)
        if p.type == "multipart" {
            multipartBody(p, extensible: extensible)
        } else {
            singleBody(p, extensible: extensible)
        }
        bytes.append(ASCII.rparen)
    }

    // RFC 9051 §9 body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    //                body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
    private mutating func multipartBody(_ p: BodyPart, extensible: Bool) {
        if p.parts.isEmpty {
            // A multipart needs one body; like Dovecot, an empty text/plain (the parser adds one too).
            bodyStructure(BodyPart(headerStart: p.bodyEnd, bodyStart: p.bodyEnd, bodyEnd: p.bodyEnd), extensible: extensible)
        }
        for child in p.parts { bodyStructure(child, extensible: extensible) }
        sp()
        string(p.subtype)
        guard extensible else { return }
        sp()
        parameterList(p.parameters, defaultCharset: false)
        dispositionLanguageLocation(p)
    }

    // RFC 9051 §9 body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
    //   body-type-basic = media-basic SP body-fields
    //   body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
    //   body-type-text  = media-text SP body-fields SP body-fld-lines
    //   body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
    //   body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
    private mutating func singleBody(_ p: BodyPart, extensible: Bool) {
        let isText = p.type == "text"
        string(p.type); sp()
        string(p.subtype); sp()
        parameterList(p.parameters, defaultCharset: isText); sp()
        nstring(p.id); sp()
        nstring(p.description); sp()
        string(p.encoding); sp()
        number(max(0, p.bodyEnd - p.bodyStart))
        if isText {
            sp(); number(p.lines)
        } else if let m = p.message {
            // message/rfc822 (and message/global, RFC 9051 media-message)
            sp(); envelope(m.envelope)
            sp(); bodyStructure(m.body, extensible: extensible)
            sp(); number(p.lines)
        } else if Self.isMediaMessage(p) {
            // RFC 9051 §9: a media-message is always a body-type-msg, so one left unparsed
            // (transfer-encoded, against RFC 2046 §5.2.1) gets an
            // empty envelope and an empty text/plain body, as Dovecot writes it.
            sp(); envelope(Envelope())
            sp(); bodyStructure(BodyPart(headerStart: p.bodyEnd, bodyStart: p.bodyEnd, bodyEnd: p.bodyEnd),
                                extensible: extensible)
            sp(); number(p.lines)
        }
        guard extensible else { return }
        sp()
        nstring(p.md5)
        dispositionLanguageLocation(p)
    }

    /// RFC 9051 §9 media-message = DQUOTE "MESSAGE" DQUOTE SP DQUOTE ("RFC822" / "GLOBAL") DQUOTE
    static func isMediaMessage(_ p: BodyPart) -> Bool {
        p.type == "message" && (p.subtype == "rfc822" || p.subtype == "global")
    }

    /// RFC 9051 §9 body-fld-param: `("name" "value" ...)` or NIL. Dovecot adds charset us-ascii
    /// to a text part that names no charset (RFC 2045 §5.2's default), and so do we.
    private mutating func parameterList(_ params: [[String]], defaultCharset: Bool) {
        let pairs = Self.rfc2231Merged(params.allSatisfy { $0.count >= 2 } ? params : params.filter { $0.count >= 2 })
        let addCharset = defaultCharset && !pairs.contains { Self.isCharset($0[0]) }
        guard !pairs.isEmpty || addCharset else { nilAtom(); return }
        bytes.append(ASCII.lparen)
        for (i, pair) in pairs.enumerated() {
            if i > 0 { sp() }
            string(pair[0]); sp(); string(pair[1])
        }
        if addCharset {
            if !pairs.isEmpty { sp() }
            raw(#""charset" "us-ascii""#)
        }
        bytes.append(ASCII.rparen)
    }

    /// SP body-fld-dsp SP body-fld-lang SP body-fld-loc, common to both body kinds.
    /// body-fld-dsp = "(" string SP body-fld-param ")" / nil; the language is always written as
    /// a list, one tag or several (Dovecot's form; RFC 9051 allows a lone string too).
    private mutating func dispositionLanguageLocation(_ p: BodyPart) {
        sp()
        if let d = p.disposition {
            bytes.append(ASCII.lparen)
            string(d); sp()
            parameterList(p.dispositionParameters, defaultCharset: false)
            bytes.append(ASCII.rparen)
        } else {
            nilAtom()
        }
        sp()
        if let langs = p.language, !langs.isEmpty {
            bytes.append(ASCII.lparen)
            for (i, l) in langs.enumerated() {
                if i > 0 { sp() }
                string(l)
            }
            bytes.append(ASCII.rparen)
        } else {
            nilAtom()
        }
        sp()
        nstring(p.location)
    }

    /// RFC 2231 §3-§4 parameter continuations joined the way Dovecot's rfc2231_parse does
    /// (the model keeps them raw): plain parameters first, in order; then per name, sorted by
    /// name, `name*0`, `name*1`... joined into `name`, or into `name*` when any segment is
    /// extended (`*n*`; then plain segments get "%" escaped as "%25" and, when the first is plain,
    /// the value starts with "''"). A name whose indexes are not 0, 1, ... without gaps keeps its
    /// segments as they were (`name*n` / `name*n*`). Nothing is percent-decoded.
    /// "charset" in any case, compared as ASCII bytes (no lowercased copy per parameter).
    static func isCharset(_ name: String) -> Bool {
        name.utf8.count == 7 && zip(name.utf8, "charset".utf8).allSatisfy { ($0 | 0x20) == $1 }
    }

    static func rfc2231Merged(_ pairs: [[String]]) -> [[String]] {
        // Nearly every list has no RFC 2231 segment: nothing to merge.
        guard pairs.contains(where: { $0[0].utf8.contains(UInt8(ascii: "*")) }) else { return pairs }
        struct Segment { var name: String, index: Int, extended: Bool, value: String }
        var plain: [[String]] = []
        var segments: [Segment] = []
        for pair in pairs {
            let (name, value) = (pair[0], pair[1])
            guard let star = name.firstIndex(of: "*") else { plain.append(pair); continue }
            // `name*` alone is one extended segment (RFC 2231 §4), `name*n` plain, `name*n*` extended.
            var rest = name[name.index(after: star)...]
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(digits.count)
            let extended = rest.first == "*" || name.index(after: star) == name.endIndex
            if rest.first == "*" { rest = rest.dropFirst() }
            guard rest.isEmpty, digits.count <= 9 else { plain.append(pair); continue }
            segments.append(Segment(name: String(name[..<star]), index: Int(digits) ?? 0, extended: extended, value: value))
        }
        guard !segments.isEmpty else { return pairs }
        segments.sort { ($0.name, $0.index) < ($1.name, $1.index) }
        var out = plain
        var i = 0
        while i < segments.count {
            var j = i
            while j < segments.count && segments[j].name == segments[i].name { j += 1 }
            let group = segments[i..<j]
            let contiguous = group.enumerated().allSatisfy { $0.offset == $0.element.index }
            if !contiguous {
                for s in group { out.append(["\(s.name)*\(s.index)" + (s.extended ? "*" : ""), s.value]) }
            } else {
                let anyExtended = group.contains { $0.extended }
                var value = anyExtended && !group[i].extended ? "''" : ""
                for s in group {
                    value += anyExtended && !s.extended ? percentEscaped(s.value) : s.value
                }
                out.append([anyExtended ? group[i].name + "*" : group[i].name, value])
            }
            i = j
        }
        return out
    }

    private static func percentEscaped(_ v: String) -> String {
        var r = ""
        for c in v {
            if c == "%" { r += "%25" } else { r.append(c) }
        }
        return r
    }
}
