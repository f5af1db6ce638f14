// libFuzzer target for the POP3 engine's framer, parser, state machine and dot-stuffing
// (POP3Fuzz). `make fuzz` builds it with -sanitize=fuzzer; the regular build replays the files it is given.
import FuzzSupport
import POP3Protocol

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-pop3") { POP3Fuzz.run($0) } }
}
