// libFuzzer target for the SMTP/LMTP engine: command, DATA and BDAT parsers (SMTPFuzz).
// `make fuzz` builds it with -sanitize=fuzzer; the regular build replays the files it is given.
import FuzzSupport
import SMTPProtocol

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-smtp") { SMTPFuzz.run($0) } }
}
