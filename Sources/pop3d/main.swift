// pop3d: POP3 on 110 (pop3, STLS) and 995 (pop3s, implicit TLS) (DESIGN §4).
// Security: uid postern, no capabilities, NoNewPrivs, not dumpable; TLS keys read before the
// drop; mail is reached only over its RPC connection with role pop3d — the store confines that
// role to the INBOX of a user who logged in on that connection.
import POP3Server

POP3DWorker.run()
