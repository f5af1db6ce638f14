// Fuzz entry points for the frame and message decoders (DESIGN §2): any input must end in
// a decoded message or a thrown error, never a crash or an unbounded allocation.
import MailSyntax
import NIOCore

public enum IPCFuzz {
    /// One input: split into frames with a small cap, decode each message.
    public static func one(_ data: [UInt8]) -> (frames: Int, messages: Int, errors: Int) {
        var buf = ByteBuffer(bytes: data)
        let d = FrameDecoder(maxFrame: 1 << 16)
        var frames = 0, messages = 0, errors = 0
        while true {
            do {
                guard let f = try d.decode(&buf) else { break }
                frames += 1
                do { _ = try IPCMessage.decode(f); messages += 1 } catch { errors += 1 }
            } catch { errors += 1; break }
        }
        return (frames, messages, errors)
    }

    static let samples: [IPCMessage] = [
        .hello(major: 1, minor: 0, client: "x"), .lookupRecipient("alice@example.org"),
        .deliverBegin(sender: "a@b", recipients: ["c@d", "e@f"]), .deliverChunk(ByteBuffer(string: "Subject: x\r\n\r\nhi\r\n")),
        .deliverResult([.ok, .unknownUser]), .mailboxes([MailboxInfo(name: "INBOX", specialUse: "", uidValidity: 1, uidNext: 2, highestModSeq: 3, messages: 4, subscribed: true)]),
        .pairs([["a@b", "c@d"]]), .statusResult([ProcessStatus(service: "lmtp", instance: 0, pid: 1, startedAt: 2, restarts: 3, state: "running")]),
        .exportMessage(ExportedMessage(mailbox: "INBOX", uid: 1, internalDate: 2, sender: "s@t", size: 3)),
        .mailboxChanged(session: 9, mailbox: "INBOX", uidNext: 2, exists: 1), .error(.denied, "no"),
    ]

    /// A deterministic mutation loop over valid frames: bit flips, truncation, length lies, splices.
    public static func run(iterations: Int, seed: UInt64) -> (frames: Int, messages: Int, errors: Int) {
        var rng = SplitMix(seed: seed)
        var total = (frames: 0, messages: 0, errors: 0)
        let encoded: [[UInt8]] = samples.map { m in var b = ByteBuffer(); m.frame(requestID: 7).write(into: &b); return Array(b.readableBytesView) }
        for _ in 0..<iterations {
            var input = encoded[Int(rng.next() % UInt64(encoded.count))]
            if rng.next() % 3 == 0 { input += encoded[Int(rng.next() % UInt64(encoded.count))] }
            switch rng.next() % 6 {
            case 0: for _ in 0..<(1 + rng.next() % 4) { let i = Int(rng.next() % UInt64(input.count)); input[i] ^= UInt8(1 << (rng.next() % 8)) }
            case 1: input = Array(input.prefix(Int(rng.next() % UInt64(input.count))))
            case 2: let i = Int(rng.next() % UInt64(min(4, input.count))); input[i] = UInt8(truncatingIfNeeded: rng.next())
            case 3: input = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 4: if input.count > 13 { let i = 12 + Int(rng.next() % UInt64(input.count - 12)); input[i] = 0xff }
            default: input.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(input.count + 1)))
            }
            let r = one(input)
            total.frames += r.frames; total.messages += r.messages; total.errors += r.errors
        }
        return total
    }
}

/// libFuzzer entry point (build with -sanitize=fuzzer and link the fuzz-ipc target's object).
@_cdecl("PosternFuzzIPC")
public func posternFuzzIPC(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = IPCFuzz.one(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
