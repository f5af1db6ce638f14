// imapd: IMAP on 143 (imap, STARTTLS) and 993 (imaps, implicit TLS) (DESIGN §4).
// Security: uid postern, no capabilities, NoNewPrivs, not dumpable; TLS keys read before the
// drop; mail is reached only over its RPC connection with role imapd, and only under a session
// the store created after a login on that connection.
import IMAPServer

IMAPDWorker.run()
