// libFuzzer target for the MIME parser and its binary codec (MessageParser.fuzz).
// `make fuzz` builds it with -sanitize=fuzzer; the regular build replays the files it is given.
import FuzzSupport
import MIME

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-mime") { MessageParser.fuzz($0) } }
}
