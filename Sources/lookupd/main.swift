// lookupd: Postfix tcp_table(5) / socketmap_table(5) lookups for a Postfix front end (DESIGN §4).
// Security: uid postern, no capabilities, NoNewPrivs; reaches the store only with role
// lookupd, which may ask lookups and nothing else (no mailbox access).
import LookupServer

LookupWorker.run()
