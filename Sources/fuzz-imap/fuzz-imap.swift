// libFuzzer target for the IMAP engine's framer, command parser and mailbox-name rules
// (IMAPFuzz). `make fuzz` builds it with -sanitize=fuzzer; the regular build replays the files it is given.
import FuzzSupport
import IMAPProtocol

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-imap") { IMAPFuzz.run($0) } }
}
