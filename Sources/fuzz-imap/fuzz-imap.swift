// libFuzzer target for the IMAP framer and parser (placeholder until IMAPFuzz lands).
import FuzzSupport
import IMAPProtocol

@main
struct Fuzz {
    static func main() { FuzzReplay.main("fuzz-imap") { _ in } }
}
