// Fuzz driver for the RPC frame and message decoders: mutates valid frames at random and
// feeds them to the decoders. `fuzz-ipc [iterations] [seed]`; also a libFuzzer entry point.
import MailIPC

let args = CommandLine.arguments
let n = args.count > 1 ? Int(args[1]) ?? 100_000 : 100_000
let seed = args.count > 2 ? UInt64(args[2]) ?? 1 : 1
let stats = IPCFuzz.run(iterations: n, seed: seed)
print("fuzz-ipc: \(n) inputs, \(stats.frames) frames decoded, \(stats.messages) messages valid, \(stats.errors) rejected, no crash")
