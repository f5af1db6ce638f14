// libFuzzer target for the tcp_table and socketmap decoders (LookupFuzz).
// `make fuzz` builds it with -sanitize=fuzzer; the regular build replays the files it is given.
import FuzzSupport
import LookupProtocol

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-lookup") { LookupFuzz.one($0) } }
}
