// libFuzzer target for the RPC frame and message codec (IPCFuzz.one).
// `make fuzz` builds it with -sanitize=fuzzer; the regular build replays the files it is given.
import FuzzSupport
import MailIPC

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-rpc") { _ = IPCFuzz.one($0) } }
}
