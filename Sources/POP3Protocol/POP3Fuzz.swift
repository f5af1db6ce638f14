// Fuzz entry point for the POP3 engine's pure parts: POP3LineFramer, POP3Parser, POP3Engine and
// DotStuffer. Traps (precondition) when an invariant breaks.
//
// Invariants: the framer's events do not depend on how the input is split (whole / random
// pieces / byte by byte) and a line never exceeds maxLine; every reply the engine gives is one
// CRLF-terminated status line (or a well-terminated multi-line response); dot-stuffing a chunked
// input and undoing it gives the input back (with the CRLF the terminator needs).
import MailSyntax

public enum POP3Fuzz {
    /// libFuzzer's buffer.
    public static func run(_ data: UnsafeRawBufferPointer) { run(Array(data)) }

    /// Byte 0 picks the line limit and whether the session is logged in, byte 1 seeds the
    /// segmentation; the rest is what the client sends (and the message the stuffer gets).
    public static func run(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let maxLine = 16 + Int(data[0] & 0x3F) * 8
        let input = Array(data[2...])

        let whole = frame(maxLine, pieces: [input])
        precondition(frame(maxLine, pieces: segment(input, seed: UInt64(data[1]))) == whole, "framer events depend on segmentation")
        if input.count <= 2048 {
            precondition(frame(maxLine, pieces: input.map { [$0] }) == whole, "framer events differ byte by byte")
        }
        var engine = POP3Engine(config: POP3EngineConfig(hostname: "fuzz.example", limits: POP3Limits(maxLine: maxLine), startTLSAvailable: true),
                                tlsActive: data[0] & 0x40 != 0, clientIsLoopback: data[0] & 0x80 != 0)
        let drop = POP3Maildrop(mailbox: 1, uidValidity: 7, messages: [POP3Message(uid: 1, size: 10), POP3Message(uid: 5, size: 3)])
        for event in whole {
            if case .line(let l) = event { precondition(l.count <= maxLine, "a line over maxLine") }
            for action in engine.receive(event) {
                switch action {
                case .reply(let r): check(r.bytes)
                case .replyLines(let r, let lines): precondition(r.multiline(lines).suffix(5) == Array("\r\n.\r\n".utf8) || lines.isEmpty)
                case .login: _ = engine.loginSucceeded(drop)
                case .update: _ = engine.updated(ok: true)
                default: break
                }
            }
        }
        // Dot-stuffing round trip, chunked by the segmentation.
        var stuffer = DotStuffer(), out: [UInt8] = []
        for piece in segment(input, seed: UInt64(data[1])) { stuffer.feed(piece, into: &out) }
        stuffer.finish(into: &out)
        precondition(unstuff(out) == input + (input.isEmpty || input.last == UInt8(ascii: "\n") ? [] : [13, 10]), "dot-stuffing does not round-trip")
    }

    static func frame(_ maxLine: Int, pieces: [[UInt8]]) -> [POP3LineFramer.Event] {
        var f = POP3LineFramer(maxLine: maxLine), out: [POP3LineFramer.Event] = []
        for p in pieces {
            f.feed(p)
            while let e = f.next() { out.append(e) }
        }
        return out
    }

    static func segment(_ input: [UInt8], seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(seed: seed), out: [[UInt8]] = [], i = 0
        while i < input.count {
            let n = 1 + Int(rng.next() % 64)
            out.append(Array(input[i..<min(i + n, input.count)])); i += n
        }
        return out
    }

    static func check(_ line: [UInt8]) {
        precondition(line.suffix(2) == [13, 10], "a reply without CRLF")
        precondition(!line.dropLast(2).contains(where: { $0 == 13 || $0 == 10 }), "a reply with a line break inside")
    }

    /// RFC 1939 §3 from the client's side: strips the terminator and one leading dot per line.
    static func unstuff(_ bytes: [UInt8]) -> [UInt8] {
        precondition(bytes.suffix(3) == Array(".\r\n".utf8), "no terminator")
        let body = bytes.dropLast(3)
        var out: [UInt8] = [], atStart = true
        for b in body {
            if atStart && b == UInt8(ascii: ".") { atStart = false; continue }
            out.append(b); atStart = b == UInt8(ascii: "\n")
        }
        return out
    }
}
