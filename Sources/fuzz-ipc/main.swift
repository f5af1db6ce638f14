// Fuzz driver for the RPC frame and message decoders: mutates valid frames at random and
// feeds them to the decoders. `fuzz-ipc [iterations] [seed]`; `fuzz-ipc seeds DIR` writes one
// framed sample of every message type into DIR (the fuzz-rpc libFuzzer seed corpus).
import Foundation
import MailIPC
import NIOCore

let args = CommandLine.arguments
if args.count == 3, args[1] == "seeds" {
    for (i, m) in IPCFuzz.samples.enumerated() {
        var b = ByteBuffer()
        m.frame(requestID: 7, flags: []).write(into: &b)
        FileManager.default.createFile(atPath: "\(args[2])/\(String(format: "%02d", i))-\(type(of: m))", contents: Data(b.readableBytesView))
    }
    exit(0)
}
let n = args.count > 1 ? Int(args[1]) ?? 100_000 : 100_000
let seed = args.count > 2 ? UInt64(args[2]) ?? 1 : 1
let stats = IPCFuzz.run(iterations: n, seed: seed)
print("fuzz-ipc: \(n) inputs, \(stats.frames) frames decoded, \(stats.messages) messages valid, \(stats.errors) rejected, no crash")
