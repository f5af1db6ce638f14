// Fuzz entry point for the IMAP engine's pure parts: IMAPFramer, IMAPParser (both name
// encodings), MailboxName and ModifiedUTF7. Traps (precondition) when an invariant breaks.
//
// Invariants: the framer's events do not depend on how the input is split (whole / random
// pieces / byte by byte); it never buffers more than its limits plus one piece; units end with
// LF and stay within maxCommand; nothing follows `.fatal`. A parsed command carries the unit's
// tag; an error's tag, when present, is the unit's. A validated mailbox name validates to
// itself, has no wildcard or control character and matches itself as a LIST pattern. Modified
// UTF-7 that decodes encodes back to the same string.
import MailSyntax

public enum IMAPFuzz {
    /// libFuzzer's buffer.
    public static func run(_ data: UnsafeRawBufferPointer) { run(Array(data)) }

    /// Byte 0 picks the limits (see `limits`), byte 1 seeds the input segmentation; the rest is
    /// what the client sends.
    public static func run(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let limits = self.limits(data[0])
        let input = Array(data[2...])

        let whole = frame(limits, pieces: [input])
        let split = frame(limits, pieces: segment(input, seed: UInt64(data[1])))
        precondition(split == whole, "framer events depend on input segmentation")
        if input.count <= 4096 {
            precondition(frame(limits, pieces: input.map { [$0] }) == whole, "framer events differ byte by byte")
        }
        for event in whole {
            guard case .unit(let unit) = event else { continue }
            for utf8 in [false, true] {
                check(unit, IMAPParser.parse(unit, options: IMAPParserOptions(utf8Accept: utf8, limits: limits)))
            }
        }
        for fragment in fragments(input) { checkName(fragment) }
    }

    /// Small limits so that each is reachable by short inputs.
    static func limits(_ b: UInt8) -> IMAPLimits {
        var l = IMAPLimits()
        if b & 0x01 != 0 { l.maxLine = 40 }
        if b & 0x02 != 0 { l.maxLiteral = 16 }
        if b & 0x04 != 0 { l.maxAppend = 64 }
        if b & 0x08 != 0 { l.maxCommand = 200 }
        if b & 0x10 != 0 { l.maxDepth = 4 }
        if b & 0x20 != 0 { l.maxSequenceItems = 5 }
        if b & 0x40 != 0 { l.maxIDPairs = 2 }
        return l
    }

    /// Splits `input` into pieces of pseudo-random length (1...64).
    static func segment(_ input: [UInt8], seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(seed: seed)
        var pieces: [[UInt8]] = []
        var i = 0
        while i < input.count {
            let end = min(i + Int(rng.next() % 64) + 1, input.count)
            pieces.append(Array(input[i..<end]))
            i = end
        }
        return pieces
    }

    /// Feeds the pieces, draining events after each, and checks the per-event invariants.
    static func frame(_ limits: IMAPLimits, pieces: [[UInt8]]) -> [IMAPFramer.Event] {
        var framer = IMAPFramer(limits: limits)
        var events: [IMAPFramer.Event] = []
        for piece in pieces {
            framer.feed(piece)
            precondition(framer.buffered <= limits.maxCommand + limits.maxLine + piece.count, "framer over its limits")
            while let event = framer.next() {
                if case .fatal? = events.last { preconditionFailure("event after fatal") }
                if case .unit(let unit) = event {
                    precondition(unit.last == ASCII.lf && unit.count <= limits.maxCommand, "bad unit")
                }
                events.append(event)
            }
        }
        return events
    }

    static func check(_ unit: [UInt8], _ result: Result<IMAPCommand, IMAPParseError>) {
        switch result {
        case .success(let command):
            precondition(!command.tag.isEmpty && unit.starts(with: Array(command.tag.utf8)), "tag not the unit's")
        case .failure(let error):
            if let tag = error.tag { precondition(unit.starts(with: Array(tag.utf8)), "error tag not the unit's") }
            precondition(!error.message.isEmpty)
        }
    }

    /// Up to 64 pieces of the input between SP, CR, LF, quote and parentheses.
    static func fragments(_ input: [UInt8]) -> [[UInt8]] {
        input.split(whereSeparator: { $0 == ASCII.space || $0 == ASCII.cr || $0 == ASCII.lf || $0 == ASCII.dquote
            || $0 == ASCII.lparen || $0 == ASCII.rparen }).prefix(64).map(Array.init)
    }

    static func checkName(_ fragment: [UInt8]) {
        let s = String(decoding: fragment, as: UTF8.self)
        if let decoded = ModifiedUTF7.decode(s) {
            precondition(ModifiedUTF7.encode(decoded) == s, "modified UTF-7 does not round-trip")
        }
        if case .success(let name) = MailboxName.validate(s) {
            precondition(MailboxName.validate(name) == .success(name), "validate not idempotent")
            precondition(!name.contains("*") && !name.contains("%") && !name.isEmpty)
            precondition(!name.unicodeScalars.contains { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) })
            precondition(name.utf8.count <= MailboxName.maxBytes)
            precondition(MailboxName.matches(name, pattern: name) && MailboxName.matches(name, pattern: "*"), "name does not match itself")
        }
        if fragment.count <= 2 * MailboxName.maxBytes {       // matching is quadratic in the name
            _ = MailboxName.matches(s, pattern: s)
            _ = MailboxName.combine(reference: s, pattern: "%")
        }
    }
}
