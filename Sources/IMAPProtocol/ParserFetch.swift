// IMAPParser, FETCH and STORE arguments (RFC 9051 §6.4.5, §6.4.6; RFC 3516 BINARY; RFC 7162
// CHANGEDSINCE, VANISHED, UNCHANGEDSINCE). Macros are expanded here.
import MailSyntax

extension IMAPCursor {
    /// fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    ///         "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    /// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
    /// fetch-modifier = "CHANGEDSINCE" SP mod-sequence-valzer / "VANISHED"   (RFC 7162 §7)
    mutating func fetch(uid: Bool) throws(ParseFailure) -> FetchCommand {
        let set = try sequenceSet()
        try sp()
        var attributes: [FetchAttribute]
        if peek() == ASCII.lparen {
            attributes = try parenList("fetch attributes") { (c: inout IMAPCursor) throws(ParseFailure) in try c.fetchAttribute() }
        } else if takeWord("ALL") {
            attributes = Self.fastMacro + [.envelope]           // RFC 9051 §6.4.5 macros
        } else if takeWord("FAST") {
            attributes = Self.fastMacro
        } else if takeWord("FULL") {
            attributes = Self.fastMacro + [.envelope, .body]
        } else {
            attributes = [try fetchAttribute()]
        }
        var command = FetchCommand(sequences: set, attributes: attributes)
        guard take(ASCII.space) else { return command }
        let modifiers = try parenList("fetch modifiers") { (c: inout IMAPCursor) throws(ParseFailure) -> UInt64? in
            switch try c.keyword("fetch modifier") {
            case "CHANGEDSINCE": try c.sp(); return try c.number64("mod-sequence")
            case "VANISHED": return nil
            default: throw ParseFailure("unknown fetch modifier")
            }
        }
        for m in modifiers {
            if let m {
                guard command.changedSince == nil else { throw ParseFailure("CHANGEDSINCE given twice") }
                command.changedSince = m
            } else {
                command.vanished = true
            }
        }
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
        if command.vanished, !uid || command.changedSince == nil {
            throw ParseFailure("VANISHED needs UID FETCH and CHANGEDSINCE", code: IMAPResponseCodes.clientBug)
        }
        return command
    }

    static let fastMacro: [FetchAttribute] = [.flags, .internalDate, .rfc822Size]

    /// fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" / ".TEXT"] /
    ///             "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] /
    ///             "BODY.PEEK" section [partial] / "BINARY" [".PEEK"] section-binary [partial] /
    ///             "BINARY.SIZE" section-binary / "MODSEQ"
    mutating func fetchAttribute() throws(ParseFailure) -> FetchAttribute {
        let start = c.pos
        while let b = peek(), ASCII.isLetDig(b) || b == ASCII.dot { c.pos += 1 }
        let name = c.string(start..<c.pos).uppercased()
        switch name {
        case "ENVELOPE": return .envelope
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.SIZE": return .rfc822Size
        case "RFC822.TEXT": return .rfc822Text
        case "BODYSTRUCTURE": return .bodyStructure
        case "UID": return .uid
        case "MODSEQ": return .modSeq
        case "BODY", "BODY.PEEK":
            guard peek() == ASCII.lbracket else {
                guard name == "BODY" else { throw ParseFailure("expected [ after BODY.PEEK") }
                return .body
            }
            let section = try section()
            return .bodySection(section, partial: try partial(), peek: name == "BODY.PEEK")
        case "BINARY", "BINARY.PEEK":
            let part = try sectionBinary()
            return .binary(part: part, partial: try partial(), peek: name == "BINARY.PEEK")
        case "BINARY.SIZE":
            return .binarySize(part: try sectionBinary())
        default:
            throw ParseFailure("unknown fetch attribute")
        }
    }

    /// section = "[" [section-spec] "]"
    /// section-spec = section-msgtext / (section-part ["." section-text])
    /// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    /// section-text = section-msgtext / "MIME"
    mutating func section() throws(ParseFailure) -> Section {
        try expect(ASCII.lbracket, "[")
        var section = Section()
        if take(ASCII.rbracket) { return section }
        if let b = peek(), ASCII.isDigit(b) {
            section.part = try sectionPart()
            if take(ASCII.rbracket) { return section }
            try expect(ASCII.dot, ". in section")
        }
        let start = c.pos
        while let b = peek(), ASCII.isAlpha(b) || b == ASCII.dot { c.pos += 1 }
        switch c.string(start..<c.pos).uppercased() {
        case "HEADER": section.text = .header
        case "TEXT": section.text = .text
        case "MIME":
            guard !section.part.isEmpty else { throw ParseFailure("MIME needs a part number") }
            section.text = .mime
        case "HEADER.FIELDS": try sp(); section.text = .headerFields(try headerList())
        case "HEADER.FIELDS.NOT": try sp(); section.text = .headerFieldsNot(try headerList())
        default: throw ParseFailure("invalid section")
        }
        try expect(ASCII.rbracket, "] after section")
        return section
    }

    /// section-part = nz-number *("." nz-number)
    mutating func sectionPart() throws(ParseFailure) -> [Int] {
        var part: [Int] = []
        repeat {
            guard part.count < limits.maxDepth else { throw ParseFailure("section part too deep", code: IMAPResponseCodes.limit) }
            part.append(Int(try nzNumber("part number")))
        } while peek() == ASCII.dot && peek(1).map(ASCII.isDigit) == true && take(ASCII.dot)
        return part
    }

    /// section-binary = "[" [section-part] "]"
    mutating func sectionBinary() throws(ParseFailure) -> [Int] {
        try expect(ASCII.lbracket, "[ after BINARY")
        if take(ASCII.rbracket) { return [] }
        let part = try sectionPart()
        try expect(ASCII.rbracket, "] after section part")
        return part
    }

    /// header-list = "(" header-fld-name *(SP header-fld-name) ")"; header-fld-name = astring
    mutating func headerList() throws(ParseFailure) -> [String] {
        try parenList("header field names") { (c: inout IMAPCursor) throws(ParseFailure) in
            let name = try c.astring("header field name")
            guard name.allSatisfy(ASCII.isFtext) else { throw ParseFailure("invalid header field name") }
            return String(decoding: name, as: UTF8.self)
        }
    }

    /// partial = "<" number64 "." nz-number64 ">"
    mutating func partial() throws(ParseFailure) -> Partial? {
        guard take(ASCII.lt) else { return nil }
        let offset = try number("partial offset")
        try expect(ASCII.dot, ". in partial")
        let length = try nzNumber("partial length")
        try expect(ASCII.gt, "> after partial")
        return Partial(offset: offset, length: length)
    }

    /// store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
    /// store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"
    /// store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer          (RFC 7162 §7)
    /// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
    mutating func store() throws(ParseFailure) -> StoreCommand {
        let set = try sequenceSet()
        try sp()
        var unchangedSince: UInt64? = nil
        if peek() == ASCII.lparen {
            let values = try parenList("store modifiers") { (c: inout IMAPCursor) throws(ParseFailure) in
                guard try c.keyword("store modifier") == "UNCHANGEDSINCE" else { throw ParseFailure("unknown store modifier") }
                try c.sp()
                return try c.number64("mod-sequence")
            }
            guard values.count == 1 else { throw ParseFailure("UNCHANGEDSINCE given twice") }
            unchangedSince = values[0]
            try sp()
        }
        let operation: StoreCommand.Operation
        if take(UInt8(ascii: "+")) { operation = .add } else if take(ASCII.dash) { operation = .remove } else { operation = .replace }
        let silent: Bool
        switch try keyword("FLAGS") {
        case "FLAGS": silent = false
        case "FLAGS.SILENT": silent = true
        default: throw ParseFailure("expected FLAGS or FLAGS.SILENT")
        }
        try sp()
        var flags: [Flag]
        if peek() == ASCII.lparen {
            flags = try flagList()
        } else {
            flags = []
            repeat {
                guard flags.count < limits.maxSequenceItems else { throw ParseFailure("too many flags", code: IMAPResponseCodes.limit) }
                flags.append(try flag())
            } while take(ASCII.space)
        }
        return StoreCommand(sequences: set, operation: operation, silent: silent, flags: flags, unchangedSince: unchangedSince)
    }
}
